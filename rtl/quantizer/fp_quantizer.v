// fp_quantizer: FP16 value x and a scale s -> low-bit code, division-free, bit-exact with quant::encode
// (quant/encode.hpp) for the all-finite float formats (e2m1, e1m2, e2m3, e3m2, ...) and the symmetric integer
// formats (int2..int8), rounding to nearest with ties to even (ROUNDING = 0) or ties toward +inf (ROUNDING = 1),
// overflow saturating (the only policy these formats have: no inf, no NaN).
//
// How it rounds without dividing. The format's magnitudes, extended by one grid point `next` past the maximum, are
// g(i) * 2^(1-FRAC) for the integers g(i) below (FRAC = BIAS + MAN_BITS for floats, 1 for integers). The midpoint
// between magnitudes i and i+1 is k_i * 2^-FRAC with k_i = g(i) + g(i+1), an integer. With |x| = A * 2^ea
// (A the 11-bit FP16 significand) and s = S * 2^es:
//     |x| > k_i * 2^-FRAC * s   <=>   A * 2^d > k_i * S,   d = ea - es + FRAC,
// two integers compared exactly. The magnitude index is the number of midpoints |x| lies strictly above; when |x|
// sits exactly on the next midpoint (a tie) RNE adds the index's low bit (to reach the even neighbour) and
// ties-up adds 1 for positive x only (-2.5 -> -2). An index past the maximum saturates.
// Worked example, e2m1 (FRAC 2, g = 0 1 2 3 4 6 8 12 16, k = 1 3 5 7 10 14 20 28), x = 2.5 (A = 1280, ea = -9),
// s = 1.0 (S = 1024, es = -10): d = 3, A*2^d = 10240; k_i*S = 1024 3072 5120 7168 10240 ...: strictly above the
// first four midpoints, equal to k_4 = 10 -> tie, index 4 (2.0) + low bit 0 -> 4 under RNE (2.5 -> 2.0), 5 (3.0)
// under ties-up.
// Special inputs (as quant::encode): NaN -> code 0; s = 0 -> the zero of x's sign (+-inf included); +-inf -> +-max; -0 and negative
// values that round to zero keep the sign bit (floats) or give 0 (integers, which have no -0).
//
// The scale is an FP16 bit pattern (positive, finite; 0 allowed) or, with SCALE_POW2 = 1, an OCP MX e8m0 exponent
// in scale[7:0] (s = 2^(scale[7:0] - 127); 0xFF, e8m0's NaN, is not a valid input). Purely combinational.
module fp_quantizer #(
    parameter integer BITS = 4,        // code width, sign included
    parameter integer MAN_BITS = 1,    // floats: mantissa bits (exponent bits = BITS - 1 - MAN_BITS)
    parameter integer BIAS = 1,        // floats: exponent bias
    parameter integer IS_INT = 0,      // 1: symmetric two's-complement integer of BITS bits (MAN_BITS, BIAS unused)
    parameter integer ROUNDING = 0,    // 0: nearest, ties to even; 1: nearest, ties toward +inf
    parameter integer SCALE_POW2 = 0,  // 0: FP16 scale; 1: e8m0 exponent in scale[7:0]
    parameter integer ARCH = 0         // 0: all midpoint comparisons in parallel; 1: binary search, BITS stages
) (
    input  wire [15:0]     x,
    input  wire [15:0]     scale,
    output wire [BITS-1:0] code,
    output wire [BITS-2:0] index,     // the magnitude index of the code (for the DFQ wrapper)
    output wire            negative   // the sign of x (set for -0 too)
);
  localparam integer N = (1 << (BITS - 1)) - 1;  // largest finite magnitude index
  localparam integer kCount = N + 1;  // magnitudes 0..N plus the overflow point
  localparam integer FRAC = (IS_INT != 0) ? 1 : BIAS + MAN_BITS;

  // g(i): magnitude i in units of 2^(1-FRAC). Floats: e2m1 index 5 = exponent 2, mantissa 1 -> (2+1) << 1 = 6
  // units of 0.5 = 3.0.
  function automatic integer grid(input integer i);
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

  function automatic integer bit_width(input integer v);  // bits needed for 0..v
    integer w;
    begin
      w = 1;
      while ((1 << w) <= v) w = w + 1;
      bit_width = w;
    end
  endfunction

  localparam integer KW = bit_width(grid(N) + grid(N + 1));  // width of the largest midpoint numerator k_N
  localparam integer SW = (SCALE_POW2 != 0) ? 1 : 11;             // scale significand width
  localparam integer PW = KW + SW;                           // width of k_i * S
  localparam integer LW = 11 + PW + 11;                      // window of the aligned comparison

  // ---- operands ----
  wire [4:0] x_exp = x[14:10];
  wire       x_is_special = (x_exp == 5'h1f);
  wire       x_is_nan = x_is_special && (x[9:0] != 10'd0);
  wire       x_is_inf = x_is_special && (x[9:0] == 10'd0);
  wire [10:0] a_sig = {x_exp != 5'd0, x[9:0]};
  // ea = max(x_exp, 1) - 25 (the exponent of the significand's unit bit)
  wire signed [11:0] ea = $signed({7'd0, (x_exp == 5'd0) ? 5'd1 : x_exp}) - 12'sd25;

  wire [SW-1:0] s_sig;
  wire signed [11:0] es;
  wire s_is_zero;
  generate
    if (SCALE_POW2 != 0) begin : g_pow2
      assign s_sig = 1'b1;
      assign es = $signed({4'd0, scale[7:0]}) - 12'sd127;
      assign s_is_zero = 1'b0;
    end else begin : g_fp16
      assign s_sig = {scale[14:10] != 5'd0, scale[9:0]};
      assign es = $signed({7'd0, (scale[14:10] == 5'd0) ? 5'd1 : scale[14:10]}) - 12'sd25;
      assign s_is_zero = (scale[14:0] == 15'd0);
    end
  endgenerate

  localparam signed [11:0] kFrac = FRAC[11:0];
  localparam signed [11:0] kProductWidth = PW[11:0];
  wire signed [11:0] d = ea - es + kFrac;
  // d >= PW: A * 2^d >= 2^PW > every k_i * S (A >= 1). d <= -11: A * 2^d < 1 <= every k_i * S. In between, shift
  // both sides by 11 so that the shift amount d + 11 is positive: L = A << (d + 11), R_i = (k_i * S) << 11.
  wire all_above = (d >= kProductWidth) && (a_sig != 11'd0);
  wire all_below = (d <= -12'sd11) || (a_sig == 11'd0);
  wire [5:0] shift = (all_above || all_below) ? 6'd0 : d[5:0] + 6'd11;
  wire [LW-1:0] lhs = {{(LW - 11){1'b0}}, a_sig} << shift;

  // below_count = the number of midpoints strictly below |x| (0 .. N+1); is_tie = |x| sits on midpoint below_count.
  wire [BITS-1:0] below_count;
  wire            is_tie;
  genvar gi;
  generate
    if (ARCH == 0) begin : g_parallel
      // One comparator per midpoint: above[i] = |x| > mid_i * s, tie[i] = |x| == mid_i * s. The midpoints increase
      // with i, so `above` is a thermometer code 1..10..0 and its population count is below_count.
      wire [N:0] above, tie;
      for (gi = 0; gi <= N; gi = gi + 1) begin : g_mid
        localparam integer K = grid(gi) + grid(gi + 1);
        wire [PW-1:0] product = {{SW{1'b0}}, K[KW-1:0]} * {{KW{1'b0}}, s_sig};
        wire [LW-1:0] rhs = {{(LW - PW - 11){1'b0}}, product, 11'd0};
        assign above[gi] = all_above || (!all_below && (lhs > rhs));
        assign tie[gi] = !all_above && !all_below && (lhs == rhs);
      end
      assign below_count = count_ones(above);
      assign is_tie = |tie;
    end else begin : g_successive
      // Binary search over the same comparisons, one bit of below_count per stage (BITS stages, one multiplier
      // k_j * S and one comparator each instead of N+1). Stage for bit b tries cand = partial + 2^b and keeps it
      // when |x| > mid_(cand-1) * s. A tie can only be met at the candidate that ends the search one above the
      // result (cand - 1 == below_count): the stage of the lowest zero bit of below_count tests exactly that
      // midpoint, so a rejected equal comparison anywhere is the tie. e2m1, |x|/s = 2.5 (k * S: 1 3 5 7 10 ..,
      // |x| = 10 in those units): b=3 cand 8 (k_7 = 28) no; b=2 cand 4 (k_3 = 7) yes; b=1 cand 6 (k_5 = 14) no;
      // b=0 cand 5 (k_4 = 10) equal -> rejected, tie; below_count 4, tie at midpoint 4 (2.5).
      wire [(N + 1)*KW-1:0] k_table;  // k_j at [j*KW +: KW]
      for (gi = 0; gi <= N; gi = gi + 1) begin : g_k
        localparam integer K = grid(gi) + grid(gi + 1);
        assign k_table[gi*KW +: KW] = K[KW-1:0];
      end
      wire [(BITS + 1)*BITS-1:0] partial /*verilator split_var*/;  // after stage st: partial[st*BITS +: BITS], stage 0 input = 0
      wire [BITS:0] tie_seen /*verilator split_var*/;
      assign partial[BITS-1:0] = {BITS{1'b0}};
      assign tie_seen[0] = 1'b0;
      for (gi = 0; gi < BITS; gi = gi + 1) begin : g_stage
        wire [BITS:0] cand = {1'b0, partial[gi*BITS +: BITS]} + ({{BITS{1'b0}}, 1'b1} << (BITS - 1 - gi));
        wire in_range = (cand <= kCount[BITS:0]);
        wire [BITS:0] j = cand - 1'b1;
        wire [KW-1:0] k = k_table[j[BITS-2:0]*KW +: KW];
        wire [PW-1:0] product = {{SW{1'b0}}, k} * {{KW{1'b0}}, s_sig};
        wire [LW-1:0] rhs = {{(LW - PW - 11){1'b0}}, product, 11'd0};
        wire gt = in_range && (all_above || (!all_below && (lhs > rhs)));
        wire eq = in_range && !all_above && !all_below && (lhs == rhs);
        assign partial[(gi + 1)*BITS +: BITS] = gt ? cand[BITS-1:0] : partial[gi*BITS +: BITS];
        assign tie_seen[gi + 1] = tie_seen[gi] || (!gt && eq);
        wire unused_j_top = j[BITS] ^ j[BITS-1];
      end
      assign below_count = partial[BITS*BITS +: BITS];
      assign is_tie = tie_seen[BITS];
    end
  endgenerate

  function automatic [BITS-1:0] count_ones(input [N:0] v);
    integer i;
    begin
      count_ones = 0;
      for (i = 0; i <= N; i = i + 1) count_ones = count_ones + {{(BITS - 1){1'b0}}, v[i]};
    end
  endfunction

  wire            tie_away = (ROUNDING == 0) ? below_count[0] : !x[15];
  wire [BITS:0]   rounded = {1'b0, below_count} + {{BITS{1'b0}}, is_tie && tie_away};
  // s = 0 wins over inf (quant::encode checks the all-zero group first: every non-NaN x -> the zero of its sign)
  wire [BITS-2:0] idx = (s_is_zero || x_is_nan) ? {(BITS - 1){1'b0}} :
                        x_is_inf ? N[BITS-2:0] :
                        (rounded > N[BITS:0]) ? N[BITS-2:0] : rounded[BITS-2:0];

  wire unused_scale_bits = ^scale;  // FP16 scales ignore the sign; e8m0 scales use scale[7:0] only
  assign index = idx;
  assign negative = x[15];
  generate
    if (IS_INT != 0) begin : g_int_code
      // two's complement of the signed index; -0 and NaN give 0
      assign code = (x[15] && !x_is_nan) ? (~{1'b0, idx} + 1'b1) : {1'b0, idx};
    end else begin : g_float_code
      assign code = x_is_nan ? {BITS{1'b0}} : {x[15], idx};
    end
  endgenerate
endmodule
