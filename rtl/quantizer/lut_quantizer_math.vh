// Arithmetic of rtl/quantizer/lut_quantizer.v: rounding an exact value onto the FP16 grid, the constant division of
// the scale, and the normalization of an FP16 magnitude. Functions only; include inside a module body.

// The scale's one rounding: the quotient q * 2^e (q = floor(m * 2^7 / qmax_odd) for a normalized 11-bit m, so its
// leading one is at bit POS or POS + 1, POS = 17 - bitlength(qmax_odd); tail = the division's remainder was not 0)
// rounded to nearest even onto the FP16 grid: returns the 17-bit pattern (>= 0x7C00: past 65504; 0: rounds to 0).
// A normal result keeps the 11 bits from the leading one; a subnormal one (below 2^-14) the bits of weight >= 2^-24.
// Worked example (e2m1: qmax 6 = 3 * 2^1, POS 15): absmax 1.0 = 1024 * 2^-10 -> q = floor(1024 * 2^7 / 3) = 43690
// = 0b1010_1010_1010_1010 (leading one at bit 15), remainder 2 (tail), e = -10 - 1 - 7 = -18: q * 2^-18 = 0.1666..,
// ev = -18 + 15 = -3; kept = q[15:5] = 1365, round bit q[4] = 0 -> pattern ((-3 + 14) << 10) + 1365 = 0x3155, the
// FP16 value nearest 1/6.
function automatic [16:0] fpq_scale_round(input [17:0] q, input signed [9:0] e, input tail, input integer pos);
  reg top;
  reg [11:0] w;        // leading one, 10 mantissa bits, round bit
  reg rest;
  reg signed [9:0] ev, ss;
  reg [10:0] kept;
  reg round_bit, sticky, inc;
  reg [16:0] pat;
  integer i;
  begin
    top = q[pos + 1];
    w = top ? q[pos + 1 -: 12] : q[pos -: 12];
    rest = tail || (top ? ((q & ((18'd1 << (pos - 10)) - 18'd1)) != 18'd0)
                        : ((q & ((18'd1 << (pos - 11)) - 18'd1)) != 18'd0));
    ev = e + pos[9:0] + {9'd0, top};
    if (ev >= -10'sd14) begin
      kept = w[11:1];
      round_bit = w[0];
      sticky = rest;
    end else begin
      // subnormal: w * 2^(ev + 13) = w >> (ss + 1), ss = -14 - ev >= 1
      ss = -10'sd14 - ev;
      kept = 11'd0;
      round_bit = 1'b0;
      sticky = rest || (w != 12'd0);
      for (i = 1; i <= 12; i = i + 1)
        if (ss == i[9:0]) begin
          kept = w[11:1] >> i;
          round_bit = w[i];
          sticky = rest || ((w & ((12'd1 << i) - 12'd1)) != 12'd0);
        end
    end
    inc = round_bit && (sticky || kept[0]);
    pat = (ev >= -10'sd14) ? {1'b0, ev[5:0] + 6'd14, 10'd0} + {6'd0, kept} + {16'd0, inc}
                           : {6'd0, kept} + {16'd0, inc};
    fpq_scale_round = pat;
  end
endfunction

// An FP16 magnitude pattern (15 bits, finite, non-zero) as sig * 2^exp with sig normalized to [2^10, 2^11):
// returns {exp (10-bit signed), sig (11 bits)}. Subnormals are shifted up: 0x0001 = 2^-24 -> 1024 * 2^-34.
function automatic [20:0] fpq_normalize(input [14:0] v);
  reg [10:0] sig;
  reg signed [9:0] ex;
  reg [3:0] lz;
  integer i;
  begin
    sig = {v[14:10] != 5'd0, v[9:0]};
    ex = $signed({5'd0, (v[14:10] == 5'd0) ? 5'd1 : v[14:10]}) - 10'sd25;
    lz = 4'd0;
    for (i = 0; i <= 10; i = i + 1)
      if (sig[i]) lz = 4'd10 - i[3:0];
    fpq_normalize = {ex - $signed({6'd0, lz}), sig << lz};
  end
endfunction

// floor(n / q) and whether the remainder is non-zero ({quotient, rem_nonzero}), for a small odd constant q < 16:
// restoring long division, one quotient bit per step (a 5-input function of the running remainder and the next
// dividend bit). Example, 0b110000 / 3: remainders 1 3->0 0 0 0 0 -> quotient 0b010000 = 16, remainder 0.
function automatic [18:0] fpq_div_const(input [17:0] n, input [4:0] q);
  reg [4:0] rem, t;
  reg [17:0] quo;
  integer b;
  begin
    rem = 5'd0;
    quo = 18'd0;
    for (b = 17; b >= 0; b = b - 1) begin
      t = {rem[3:0], n[b]};
      if (t >= q) begin
        quo[b] = 1'b1;
        rem = t - q;
      end else begin
        rem = t;
      end
    end
    fpq_div_const = {quo, rem != 5'd0};
  end
endfunction
