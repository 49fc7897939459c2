// int_mul: W x W signed (two's complement) integer multiplier (block `mul`), the integer baseline's counterpart of
// the FP4/FP6 LUT multiplier (rtl/mul/fp_mul.v); the lanes of rtl/pe/pe.v for the integer pairs (fpqvar_pairs.svh).
// Combinational; synthesized with `synth_xilinx -nodsp` it becomes LUTs and carry chains (`fpqvar synth mul-int8`). Codes are quant's kInt codes: int4 0b1001 = -7,
// 0b0111 = 7, product -49 = 0b1_1100_1111 in 2W = 8 bits. The code 100..0 (-2^(W-1)) is never produced by the
// quantizer but multiplies correctly: (-8) * (-8) = 64 fits in 2W bits.
module int_mul #(
    parameter integer W = 8
) (
    input  wire [W-1:0]   a,
    input  wire [W-1:0]   b,
    output wire [2*W-1:0] product
);
  assign product = $signed(a) * $signed(b);
endmodule
