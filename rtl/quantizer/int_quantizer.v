// int_quantizer: FP16 value and scale -> symmetric INTn code (two's complement, range +-(2^(BITS-1)-1)),
// bit-exact with quant::encode for the int2..int8 formats: x/s rounded to nearest (ties to even, or toward +inf),
// saturated, NaN -> 0, -0 -> 0. int8, s = 0.5: x = -1.25 -> -2.5 -> -2 (RNE) or -2 (ties-up) -> code 0xFE;
// x = 1.25 -> 2.5 -> 2 (RNE) or 3 (ties-up).
// The integer grid is a special case of fp_quantizer's midpoint comparison (midpoints (2i+1)/2), so this is that
// unit with IS_INT = 1; the integer baseline keeps its own name for the cost table.
module int_quantizer #(
    parameter integer BITS = 8,
    parameter integer ROUNDING = 0,    // 0: ties to even; 1: ties toward +inf
    parameter integer SCALE_POW2 = 0,  // 0: FP16 scale; 1: e8m0 exponent in scale[7:0]
    parameter integer ARCH = 1         // fp_quantizer's: 1 = binary search (BITS comparators instead of 2^(BITS-1))
) (
    input  wire [15:0]     x,
    input  wire [15:0]     scale,
    output wire [BITS-1:0] code
);
  wire [BITS-2:0] index_unused;
  wire negative_unused;
  fp_quantizer #(.BITS(BITS), .IS_INT(1), .ROUNDING(ROUNDING), .SCALE_POW2(SCALE_POW2), .ARCH(ARCH))
      u_quant (.x(x), .scale(scale), .code(code), .index(index_unused), .negative(negative_unused));
endmodule
