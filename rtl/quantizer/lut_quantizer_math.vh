// Arithmetic of rtl/quantizer/lut_quantizer.v: rounding an exact value onto the FP16 grid, the constant division of
// the scale, and the normalization of an FP16 magnitude. Functions only; include inside a module body.

// Rounds the exact positive value v = p * 2^e (plus a tail below p's last bit when tail is set) onto the FP16 grid
// and returns {inexact, pattern}: the 17-bit magnitude pattern of the result (bits >= 0x7C00 mean the result is past
// 65504: the caller decides what overflow gives), inexact = v is not on the grid. ceil = 1 rounds up to the smallest
// FP16 value >= v; ceil = 0 rounds to nearest, ties to even. p must be non-zero.
// How: with bl = bit length of p, v's leading bit has exponent ev = e + bl - 1. A normal result (ev >= -14) keeps the
// 11 bits p[bl-1 : bl-11], a subnormal one the bits of weight >= 2^-24; r = the number of p's bits below the kept
// ones (r = bl - 11 or -24 - e). The pattern of a normal value 1.m * 2^ev is ((ev + 15) << 10) + m, which is
// ((ev + 14) << 10) + kept for the 11-bit kept value (its leading one adds the last 1 to the exponent field), and a
// rounding carry out of the kept bits moves into the exponent field, as IEEE encodings allow; a subnormal pattern is
// the kept value itself (units 2^-24).
// Worked example: v = 5 * 1035 * 2^-12 (e2m1's midpoint 1.25 times the scale 1035 * 2^-10 = 1.0107421875): p = 5175
// = 0b1_0100_0011_0111 (bl 13), e = -12, ev = 0 (normal); r = 2: kept = 1293 = 0b101_0000_1101, dropped bits 0b11
// -> inexact; ceil: 1294 -> pattern (14 << 10) + 1294 = 0x3D0E = 1.263671875, the smallest FP16 value >= 1.26342...
/* verilator lint_off UNUSEDSIGNAL */  // ev14's and kept's top bits: zero wherever the result is used
function automatic [17:0] fpq_grid(input [19:0] p, input signed [9:0] e, input ceil_mode, input tail);
  reg [4:0] bl;
  reg signed [9:0] ev, ev14, r_s;
  reg [4:0] r;
  reg [19:0] kept, below, dropped, round_mask;
  reg round_bit, rest, inexact, inc;
  reg [16:0] field, pat;
  integer i;
  begin
    bl = 5'd0;
    for (i = 0; i < 20; i = i + 1)
      if (p[i]) bl = i[4:0] + 5'd1;
    ev = e + $signed({5'd0, bl}) - 10'sd1;
    ev14 = ev + 10'sd14;
    r_s = (ev >= -10'sd14) ? $signed({5'd0, bl}) - 10'sd11 : -10'sd24 - e;
    r = (r_s > 10'sd20) ? 5'd20 : (r_s < 10'sd0) ? 5'd0 : r_s[4:0];  // r_s >= 0 for non-zero p
    kept = p >> r;
    below = (20'd1 << r) - 20'd1;          // the dropped positions (r = 20: all)
    round_mask = below ^ (below >> 1);    // the highest dropped position, bit r-1 (none when r = 0)
    dropped = p & below;
    round_bit = (p & round_mask) != 20'd0;
    rest = ((p & (below >> 1)) != 20'd0) || tail;
    inexact = (dropped != 20'd0) || tail;
    inc = ceil_mode ? inexact : (round_bit && (rest || kept[0]));
    field = (ev >= -10'sd14) ? {1'b0, ev14[5:0], 10'd0} : 17'd0;
    pat = field + kept[16:0] + {16'd0, inc};
    fpq_grid = {inexact, pat};
  end
endfunction
/* verilator lint_on UNUSEDSIGNAL */

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
