// absmax_scale: reduce a group of FP16 values to their absmax and derive the group's scale, bit-exact with
// quant::scale_from_absmax (quant/tensor_quant.hpp):
//   SCALE_POW2 = 0: s = RNE_fp16(absmax / qmax); absmax 0 -> 0; a quotient below FP16's smallest subnormal -> 2^-24;
//                   one that overflows (or absmax = inf) -> 65504.
//   SCALE_POW2 = 1: s = 2^(floor(log2 absmax) - floor(log2 qmax)) as an e8m0 code (biased by 127, clamped to
//                   2^-127 .. 2^127; absmax = inf -> 2^127); absmax 0 -> scale_is_zero (e8m0 has no zero).
// NaN elements are left out of the absmax (an all-NaN group has absmax 0); an inf makes it inf.
//
// qmax is the format's largest magnitude, derived from the same parameters as fp_quantizer. It is q * 2^QE with q
// odd, so the one constant division is by q, done as a multiply by the rounded-up reciprocal:
//   Q = floor(N * M / 2^34), M = ceil(2^34 / q), exact for every N < 2^25 when q < 128 (the error term
//   N * (M*q - 2^34) / (q * 2^34) < 2^-9 stays below the gap 1/q to the next integer), and the remainder
//   N - Q*q gives the sticky bit. e2m1: qmax 6 = 3 * 2^1, M = ceil(2^34/3) = 5726623062.
// Worked example (e2m1): absmax = 1.0 -> normalized significand 1024, exponent ea_n = -10; N = 1024 << 14 = 2^24;
// Q = floor(2^24 / 3) = 5592405 = 0b101_0101_0101_0101_0101_0101 (leading one p = 22), remainder 1 (sticky);
// value = Q * 2^(ea_n - QE - 14) = Q * 2^-25 = 0.16666..; keep 11 bits (shift 12): 1365, round bit 0 ->
// 1365 * 2^-13 = 0.1666259765625 = RNE_fp16(1/6), FP16 0x3155.
// Purely combinational: a comparator tree over the group, then the scale datapath.
module absmax_scale #(
    parameter integer GROUP = 8,       // values per group
    parameter integer BITS = 4,        // the format, as in fp_quantizer
    parameter integer MAN_BITS = 1,
    parameter integer BIAS = 1,
    parameter integer IS_INT = 0,
    parameter integer SCALE_POW2 = 0
) (
    input  wire [16*GROUP-1:0] x,            // element i in x[16*i +: 16]
    output wire [15:0]         absmax,       // FP16 bits, sign clear
    output wire [15:0]         scale,        // FP16 bits, or the e8m0 code in scale[7:0] (SCALE_POW2)
    output wire                scale_is_zero // absmax = 0: the group encodes to zeros whatever the scale
);
  localparam integer N = (1 << (BITS - 1)) - 1;
  localparam integer FRAC = (IS_INT != 0) ? 1 : BIAS + MAN_BITS;

  function automatic integer grid(input integer i);  // as in fp_quantizer: magnitude i in units of 2^(1-FRAC)
    integer e, m;
    begin
      if (IS_INT != 0) begin
        grid = i;
      end else begin
        e = i >> MAN_BITS;
        m = i & ((1 << MAN_BITS) - 1);
        if (e == 0) grid = m;
        else grid = ((1 << MAN_BITS) + m) << (e - 1);
      end
    end
  endfunction
  function automatic integer trailing_zeros(input integer v);
    integer t;
    begin
      t = 0;
      while (((v >> t) & 1) == 0) t = t + 1;
      trailing_zeros = t;
    end
  endfunction
  function automatic integer floor_log2(input integer v);
    integer t;
    begin
      t = 0;
      while ((v >> (t + 1)) != 0) t = t + 1;
      floor_log2 = t;
    end
  endfunction
  function automatic [63:0] reciprocal(input integer q);  // ceil(2^34 / q)
    reg [63:0] one, divisor;
    begin
      one = 64'd1 << 34;
      divisor = {32'd0, q};
      reciprocal = (one + divisor - 64'd1) / divisor;
    end
  endfunction

  localparam integer QMAX_UNITS = grid(N);
  localparam integer QTZ = trailing_zeros(QMAX_UNITS);
  localparam integer Q = QMAX_UNITS >> QTZ;                 // odd part of qmax
  localparam integer QE = QTZ + 1 - FRAC;                   // qmax = Q * 2^QE
  localparam integer EMAX = floor_log2(Q) + QE;             // floor(log2 qmax)
  localparam [63:0] M_WIDE = reciprocal(Q);
  localparam [35:0] M = M_WIDE[35:0];
  localparam signed [9:0] kEmax = EMAX[9:0];
  localparam signed [9:0] kQe = QE[9:0];

  // ---- absmax: FP16 magnitudes order as unsigned integers; NaN (exponent 31, mantissa != 0) counts as 0 ----
  function automatic [14:0] magnitude_of(input [14:0] v);
    begin
      magnitude_of = (v[14:10] == 5'h1f && v[9:0] != 10'd0) ? 15'd0 : v[14:0];
    end
  endfunction
  reg [14:0] running;
  integer gi;
  always @* begin
    running = 15'd0;
    for (gi = 0; gi < GROUP; gi = gi + 1)
      if (magnitude_of(x[16*gi +: 15]) > running) running = magnitude_of(x[16*gi +: 15]);
  end
  assign absmax = {1'b0, running};
  assign scale_is_zero = (running == 15'd0);
  wire a_is_inf = (running == 15'h7c00);

  // ---- normalize: absmax = sig_n * 2^ea_n with sig_n in [2^10, 2^11) ----
  wire [10:0] sig = {running[14:10] != 5'd0, running[9:0]};
  wire signed [9:0] ea = $signed({5'd0, (running[14:10] == 5'd0) ? 5'd1 : running[14:10]}) - 10'sd25;
  reg [3:0] lz;
  integer bi;
  always @* begin
    lz = 4'd0;
    for (bi = 0; bi <= 10; bi = bi + 1)
      if (sig[bi]) lz = 4'd10 - bi[3:0];
  end
  wire [10:0] sig_n = sig << lz;
  wire signed [9:0] ea_n = ea - $signed({6'd0, lz});

  generate
    if (SCALE_POW2 != 0) begin : g_pow2
      // floor(log2 absmax) = ea_n + 10; e8m0 code = that - EMAX + 127, clamped to 0..254
      wire signed [9:0] e = a_is_inf ? 10'sd127 : ea_n + 10'sd10 - kEmax;
      wire signed [9:0] clamped = (e < -10'sd127) ? -10'sd127 : (e > 10'sd127) ? 10'sd127 : e;
      wire [9:0] biased = clamped + 10'sd127;
      assign scale = scale_is_zero ? 16'd0 : {8'd0, biased[7:0]};
      wire unused_pow2 = ^{biased[9:8], sig_n};
    end else begin : g_fp16
      // quotient absmax / qmax = (N / Q) * 2^base, N = sig_n << 14 (25 bits), base = ea_n - QE - 14
      wire [24:0] n_dividend = {sig_n, 14'd0};
      wire [60:0] n_times_m = n_dividend * M;
      wire [26:0] quot = n_times_m[60:34];                     // < 2^25
      wire [33:0] back = quot * Q;
      wire        rem_nonzero = (back[24:0] != n_dividend);
      wire signed [9:0] base = ea_n - kQe - 10'sd14;
      // p = position of quot's leading one (17..24 since N >= 2^24 and Q < 128)
      reg [4:0] p;
      integer pi;
      always @* begin
        p = 5'd0;
        for (pi = 0; pi < 27; pi = pi + 1)
          if (quot[pi]) p = pi[4:0];
      end
      wire signed [9:0] e_val = base + $signed({5'd0, p});     // value in [2^e_val, 2^(e_val+1))
      wire              normal = (e_val >= -10'sd14);
      // keep 11 bits (normal) or the bits down to 2^-24 (subnormal): shift = max(p - 10, -24 - base)
      wire signed [9:0] sub_shift = -10'sd24 - base;
      wire signed [9:0] nrm_shift = $signed({5'd0, p}) - 10'sd10;
      wire signed [9:0] shift_s = normal ? nrm_shift : sub_shift;
      wire [4:0]  shift = (shift_s > 10'sd27) ? 5'd27 : shift_s[4:0];  // >= 7 always; 27 flushes everything
      wire [26:0] kept = quot >> shift;
      wire [26:0] below = quot & ((27'd1 << shift) - 27'd1);
      wire        round_bit = (shift == 5'd0) ? 1'b0 : below[shift - 5'd1];
      wire        sticky = rem_nonzero || ((below & ((27'd1 << (shift - 5'd1)) - 27'd1)) != 27'd0);
      wire        inc = round_bit && (sticky || kept[0]);
      // normal: field (e_val + 14) << 10 plus the 11-bit significand (its hidden bit adds the last 1 to the
      // exponent field); subnormal: the significand alone. A rounding carry moves into the exponent field, as
      // IEEE encodings allow.
      wire signed [9:0] field = normal ? e_val + 10'sd14 : 10'sd0;
      wire [20:0] bits_sum = {field[9:0], 10'd0} + {10'd0, kept[10:0]} + {20'd0, inc};
      wire        overflow = a_is_inf || (normal && e_val > 10'sd15) || (bits_sum >= 21'h7c00);
      assign scale = scale_is_zero ? 16'd0 :
                     overflow ? 16'h7bff :
                     (bits_sum == 21'd0) ? 16'h0001 : {1'b0, bits_sum[14:0]};
      wire unused_fp16 = ^{n_times_m[33:0], back[33:25], kept[26:11], bits_sum[20:15]};
    end
  endgenerate
endmodule
