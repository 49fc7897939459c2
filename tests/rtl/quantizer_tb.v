// Test top for tests/rtl/quantizer_test.cpp: every quantizer configuration under test in one verilated model, so
// that the suite compiles one model instead of one per parameter set. All instances share x and the scales.
module quantizer_tb (
    input  wire [15:0] x,
    input  wire [15:0] scale,        // FP16 scale (also the DFQ negative side's)
    input  wire [15:0] scale_pos,    // DFQ positive side's FP16 scale
    input  wire [7:0]  scale_e8m0,   // e8m0 exponent for the pow2-scale instances
    output wire [3:0]  e2m1_rne, e2m1_up, e1m2_rne, e1m2_up,
    output wire [5:0]  e2m3_rne, e2m3_up,
    output wire [3:0]  e2m1_pow2_rne, e2m1_pow2_up,
    output wire [5:0]  e2m3_pow2_rne,
    output wire [3:0]  dfq4_rne, dfq4_up,
    // the same with fp_quantizer's binary-search architecture (ARCH = 1)
    output wire [3:0]  e2m1_sar_rne, e2m1_sar_up, e1m2_sar_rne, e1m2_sar_up, e2m1_pow2_sar_up, dfq4_sar_up,
    output wire [5:0]  e2m3_sar_rne, e2m3_sar_up, dfq6_sar_rne,
    output wire [5:0]  dfq6_rne, dfq6_up,
    // the integer baseline's int_quantizer (ARCH = 1, its default; and ARCH = 0 for two of them)
    output wire [3:0]  q_int4_rne, q_int4_up, q_int4_par_rne,
    output wire [7:0]  q_int8_rne, q_int8_up, q_int8_par_up,
    // absmax_scale on a group of 4 = {x, scale, scale_pos, 0}: the scales of several formats
    output wire [15:0] absmax,
    output wire [15:0] s_e2m1, s_e1m2, s_e2m3, s_int4, s_int8, s_int6,
    output wire [15:0] s_e2m1_pow2, s_e2m3_pow2,
    output wire        s_zero
);
`define FPQ(name, bits, man, bias, rnd, pow2, sc) \
  wire [bits-2:0] unused_``name``_i; wire unused_``name``_n; \
  fp_quantizer #(.BITS(bits), .MAN_BITS(man), .BIAS(bias), .ROUNDING(rnd), .SCALE_POW2(pow2)) \
      u_``name (.x(x), .scale(sc), .code(name), .index(unused_``name``_i), .negative(unused_``name``_n));
  `FPQ(e2m1_rne, 4, 1, 1, 0, 0, scale)
  `FPQ(e2m1_up, 4, 1, 1, 1, 0, scale)
  `FPQ(e1m2_rne, 4, 2, 1, 0, 0, scale)
  `FPQ(e1m2_up, 4, 2, 1, 1, 0, scale)
  `FPQ(e2m3_rne, 6, 3, 1, 0, 0, scale)
  `FPQ(e2m3_up, 6, 3, 1, 1, 0, scale)
  `FPQ(e2m1_pow2_rne, 4, 1, 1, 0, 1, {8'd0, scale_e8m0})
  `FPQ(e2m1_pow2_up, 4, 1, 1, 1, 1, {8'd0, scale_e8m0})
  `FPQ(e2m3_pow2_rne, 6, 3, 1, 0, 1, {8'd0, scale_e8m0})
`define FPQS(name, bits, man, bias, rnd, pow2, sc) \
  wire [bits-2:0] unused_``name``_i; wire unused_``name``_n; \
  fp_quantizer #(.BITS(bits), .MAN_BITS(man), .BIAS(bias), .ROUNDING(rnd), .SCALE_POW2(pow2), .ARCH(1)) \
      u_``name (.x(x), .scale(sc), .code(name), .index(unused_``name``_i), .negative(unused_``name``_n));
  `FPQS(e2m1_sar_rne, 4, 1, 1, 0, 0, scale)
  `FPQS(e2m1_sar_up, 4, 1, 1, 1, 0, scale)
  `FPQS(e1m2_sar_rne, 4, 2, 1, 0, 0, scale)
  `FPQS(e1m2_sar_up, 4, 2, 1, 1, 0, scale)
  `FPQS(e2m3_sar_rne, 6, 3, 1, 0, 0, scale)
  `FPQS(e2m3_sar_up, 6, 3, 1, 1, 0, scale)
  `FPQS(e2m1_pow2_sar_up, 4, 1, 1, 1, 1, {8'd0, scale_e8m0})
`undef FPQS
`undef FPQ
  dfq_quantizer #(.BITS(4), .NEG_MAN_BITS(2), .NEG_BIAS(1), .POS_MAN_BITS(1), .POS_BIAS(1), .ROUNDING(1), .ARCH(1))
      u_dfq4_sar_up (.x(x), .scale_neg(scale), .scale_pos(scale_pos), .code(dfq4_sar_up));
  dfq_quantizer #(.BITS(6), .NEG_IS_INT(1), .POS_MAN_BITS(3), .POS_BIAS(1), .ROUNDING(0), .ARCH(1))
      u_dfq6_sar_rne (.x(x), .scale_neg(scale), .scale_pos(scale_pos), .code(dfq6_sar_rne));
  dfq_quantizer #(.BITS(4), .NEG_MAN_BITS(2), .NEG_BIAS(1), .POS_MAN_BITS(1), .POS_BIAS(1), .ROUNDING(0))
      u_dfq4_rne (.x(x), .scale_neg(scale), .scale_pos(scale_pos), .code(dfq4_rne));
  dfq_quantizer #(.BITS(4), .NEG_MAN_BITS(2), .NEG_BIAS(1), .POS_MAN_BITS(1), .POS_BIAS(1), .ROUNDING(1))
      u_dfq4_up (.x(x), .scale_neg(scale), .scale_pos(scale_pos), .code(dfq4_up));
  dfq_quantizer #(.BITS(6), .NEG_IS_INT(1), .POS_MAN_BITS(3), .POS_BIAS(1), .ROUNDING(0))
      u_dfq6_rne (.x(x), .scale_neg(scale), .scale_pos(scale_pos), .code(dfq6_rne));
  dfq_quantizer #(.BITS(6), .NEG_IS_INT(1), .POS_MAN_BITS(3), .POS_BIAS(1), .ROUNDING(1))
      u_dfq6_up (.x(x), .scale_neg(scale), .scale_pos(scale_pos), .code(dfq6_up));

  int_quantizer #(.BITS(4), .ROUNDING(0)) u_q4_rne (.x(x), .scale(scale), .code(q_int4_rne));
  int_quantizer #(.BITS(4), .ROUNDING(1)) u_q4_up (.x(x), .scale(scale), .code(q_int4_up));
  int_quantizer #(.BITS(8), .ROUNDING(0)) u_q8_rne (.x(x), .scale(scale), .code(q_int8_rne));
  int_quantizer #(.BITS(8), .ROUNDING(1)) u_q8_up (.x(x), .scale(scale), .code(q_int8_up));
  int_quantizer #(.BITS(4), .ROUNDING(0), .ARCH(0)) u_q4_par_rne (.x(x), .scale(scale), .code(q_int4_par_rne));
  int_quantizer #(.BITS(8), .ROUNDING(1), .ARCH(0)) u_q8_par_up (.x(x), .scale(scale), .code(q_int8_par_up));

  wire [63:0] group = {16'd0, scale_pos, scale, x};
  wire [15:0] unused_absmax[0:7];
  wire [7:0] unused_zero;
  absmax_scale #(.GROUP(4), .BITS(4), .MAN_BITS(1), .BIAS(1)) u_s_e2m1 (.x(group), .absmax(absmax), .scale(s_e2m1), .scale_is_zero(s_zero));
  absmax_scale #(.GROUP(4), .BITS(4), .MAN_BITS(2), .BIAS(1)) u_s_e1m2 (.x(group), .absmax(unused_absmax[0]), .scale(s_e1m2), .scale_is_zero(unused_zero[0]));
  absmax_scale #(.GROUP(4), .BITS(6), .MAN_BITS(3), .BIAS(1)) u_s_e2m3 (.x(group), .absmax(unused_absmax[1]), .scale(s_e2m3), .scale_is_zero(unused_zero[1]));
  absmax_scale #(.GROUP(4), .BITS(4), .IS_INT(1)) u_s_int4 (.x(group), .absmax(unused_absmax[2]), .scale(s_int4), .scale_is_zero(unused_zero[2]));
  absmax_scale #(.GROUP(4), .BITS(8), .IS_INT(1)) u_s_int8 (.x(group), .absmax(unused_absmax[3]), .scale(s_int8), .scale_is_zero(unused_zero[3]));
  absmax_scale #(.GROUP(4), .BITS(6), .IS_INT(1)) u_s_int6 (.x(group), .absmax(unused_absmax[4]), .scale(s_int6), .scale_is_zero(unused_zero[4]));
  absmax_scale #(.GROUP(4), .BITS(4), .MAN_BITS(1), .BIAS(1), .SCALE_POW2(1)) u_s_e2m1_p (.x(group), .absmax(unused_absmax[5]), .scale(s_e2m1_pow2), .scale_is_zero(unused_zero[5]));
  absmax_scale #(.GROUP(4), .BITS(6), .MAN_BITS(3), .BIAS(1), .SCALE_POW2(1)) u_s_e2m3_p (.x(group), .absmax(unused_absmax[6]), .scale(s_e2m3_pow2), .scale_is_zero(unused_zero[6]));
endmodule
