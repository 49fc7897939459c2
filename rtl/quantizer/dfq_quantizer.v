// dfq_quantizer: FPQVAR's Dual Format Quantization of one FP16 value, bit-exact with quant::encode_dual.
// The sign bit of x (-0 included) selects the side: set -> the negative side's format with s_neg, code 1.idx;
// clear -> the positive side's format with s_pos, code 0.idx. Both sides are sign-magnitude here (as
// quant::Format::code_of for kDual), also when the negative side is an integer format. NaN -> 0.
// dfq-e1m2-e2m1 (W4A4 fc2 input): x = -0.3, s_neg = 0.25 -> e1m2 |x|/s = 1.2 -> 1.25 = index 5 -> code 0b1101.
// Two fp_quantizer instances, one per side; only the one x's sign selects reaches the output.
module dfq_quantizer #(
    parameter integer BITS = 4,
    parameter integer NEG_MAN_BITS = 2, parameter integer NEG_BIAS = 1, parameter integer NEG_IS_INT = 0,
    parameter integer POS_MAN_BITS = 1, parameter integer POS_BIAS = 1,
    parameter integer ROUNDING = 0,    // 0: ties to even; 1: ties toward +inf
    parameter integer SCALE_POW2 = 0,
    parameter integer ARCH = 0         // fp_quantizer's: 0 = parallel midpoint comparators, 1 = binary search
) (
    input  wire [15:0]     x,
    input  wire [15:0]     scale_neg,
    input  wire [15:0]     scale_pos,
    output wire [BITS-1:0] code
);
  wire [BITS-1:0] unused_neg_code, unused_pos_code;
  wire [BITS-2:0] neg_index, pos_index;
  wire unused_neg_sign, unused_pos_sign;
  fp_quantizer #(.BITS(BITS), .MAN_BITS(NEG_MAN_BITS), .BIAS(NEG_BIAS), .IS_INT(NEG_IS_INT), .ROUNDING(ROUNDING),
                 .SCALE_POW2(SCALE_POW2), .ARCH(ARCH))
      u_neg (.x(x), .scale(scale_neg), .code(unused_neg_code), .index(neg_index), .negative(unused_neg_sign));
  fp_quantizer #(.BITS(BITS), .MAN_BITS(POS_MAN_BITS), .BIAS(POS_BIAS), .IS_INT(0), .ROUNDING(ROUNDING),
                 .SCALE_POW2(SCALE_POW2), .ARCH(ARCH))
      u_pos (.x(x), .scale(scale_pos), .code(unused_pos_code), .index(pos_index), .negative(unused_pos_sign));
  wire x_is_nan = (x[14:10] == 5'h1f) && (x[9:0] != 10'd0);
  assign code = x_is_nan ? {BITS{1'b0}} : x[15] ? {1'b1, neg_index} : {1'b0, pos_index};
endmodule
