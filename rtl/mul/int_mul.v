// int_mul: W x W signed (two's complement) integer multiplier (block `mul`), the integer baseline's counterpart of
// the FP4/FP6 LUT multiplier (rtl/mul/fp_mul.v); the lanes of rtl/pe/pe.v for the integer pairs (fpqvar_pairs.svh).
// Combinational; synthesized with `synth_xilinx -nodsp` it becomes LUTs and carry chains (`fpqvar synth mul-int8`).
// Codes are quant's kInt codes: int4 0b1001 = -7, 0b0111 = 7, product -49 = 0b1100_1111 in 2W = 8 bits. The code
// 100..0 (-2^(W-1)) is never produced by the quantizer but multiplies correctly: (-8) * (-8) = 64 fits in 2W bits.
//
// Structure (BOOTH = 1, W = 4 and 8; otherwise the `*` operator): radix-4 Booth recoding, the integer baseline
// optimized with the same care as the FP multipliers. b is read as W/2 digits d_j = -2 b[2j+1] + b[2j] + b[2j-1]
// (b[-1] = 0) in {-2, -1, 0, 1, 2}, so a * b = sum_j d_j * a * 4^j: W/2 partial products instead of W. Each partial
// product is |d_j| * a (a or 2a, W+1 bits) complemented when d_j < 0; the missing +1 of each negation (neg_j at
// weight 4^j) goes into the zero low bits of the next row, the last one into a short final increment. Every
// partial-product bit is one 5-input LUT (int_booth_pp, kept a hierarchy of its own in synthesis so that yosys does
// not merge it into the adders' LUTs, which made 8-input functions: 182 LUT + 77 MUXF for the `*` operator against
// 74 LUT, no MUXF, here for W = 8); the rows are summed on carry chains (rtl/lib/addsub.v).
// Example (W = 4): a = 0b0111 (7), b = 0b1101 (-3): b[-1..3] = 0,1,0,1,1: d_0 = -2*0 + 1 + 0 = 1, d_1 = -2*1 + 1 + 0
// = -1: 7 * 1 + 7 * -1 * 4 = -21 = 8'b1110_1011.
module int_mul #(
    parameter integer W = 8,
    // 1: radix-4 Booth partial products on carry chains (the fabric multiplier); 0: the `*` operator, which yosys
    // maps onto a DSP slice when DSPs are allowed (the integer PE's FORM 1, unit pe-int8-dsp).
    parameter integer BOOTH = 1
) (
    input  wire [W-1:0]   a,
    input  wire [W-1:0]   b,
    output wire [2*W-1:0] product
);
  generate
    if (BOOTH != 0 && (W == 8 || W == 4)) begin : g_booth
      wire [W:0] b_ext = {b, 1'b0};
      wire [W:0] pp0, pp1;
      wire n0, n1;
      (* keep_hierarchy *) int_booth_pp #(.W(W)) u_pp0 (.a(a), .t(b_ext[2:0]), .pp(pp0), .neg(n0));
      (* keep_hierarchy *) int_booth_pp #(.W(W)) u_pp1 (.a(a), .t(b_ext[4:2]), .pp(pp1), .neg(n1));
      // s01 = pp0 + (pp1 << 2) + n0 (n0 in the hole at bit 0), W + 4 bits.
      wire signed [W+3:0] s01;
      addsub #(.A_BITS(W+3), .B_BITS(W+1), .Y_BITS(W+4)) u_s01 (
          .a({pp1, 1'b0, n0}), .b(pp0), .sub(1'b0), .s(s01));
      if (W == 4) begin : g_w4
        // product = s01 + n1 * 4: an increment of bits [7:2].
        wire signed [2*W-3:0] high;
        addsub #(.A_BITS(2*W-2), .B_BITS(2), .Y_BITS(2*W-2)) u_fix (
            .a(s01[2*W-1:2]), .b({1'b0, n1}), .sub(1'b0), .s(high));
        assign product = {high, s01[1:0]};
      end else begin : g_w8
        wire [W:0] pp2, pp3;
        wire n2, n3;
        (* keep_hierarchy *) int_booth_pp #(.W(W)) u_pp2 (.a(a), .t(b_ext[6:4]), .pp(pp2), .neg(n2));
        (* keep_hierarchy *) int_booth_pp #(.W(W)) u_pp3 (.a(a), .t(b_ext[8:6]), .pp(pp3), .neg(n3));
        // s23 = pp2 + (pp3 << 2) + n2, at weight 2^4; total = s01 + (s23 << 4) + n1 * 4 (n1 in the hole at bit 2).
        wire signed [W+3:0] s23;
        addsub #(.A_BITS(W+3), .B_BITS(W+1), .Y_BITS(W+4)) u_s23 (
            .a({pp3, 1'b0, n2}), .b(pp2), .sub(1'b0), .s(s23));
        wire signed [2*W-1:0] total;
        addsub #(.A_BITS(W+8), .B_BITS(W+4), .Y_BITS(2*W)) u_total (
            .a({s23, 1'b0, n1, 2'b00}), .b(s01), .sub(1'b0), .s(total));
        // + n3 * 2^6: an increment of bits [15:6].
        wire signed [2*W-7:0] high;
        addsub #(.A_BITS(2*W-6), .B_BITS(2), .Y_BITS(2*W-6)) u_fix (
            .a(total[2*W-1:6]), .b({1'b0, n3}), .sub(1'b0), .s(high));
        assign product = {high, total[5:0]};
      end
    end else begin : g_operator
      assign product = $signed(a) * $signed(b);
    end
  endgenerate
endmodule

// int_booth_pp: one radix-4 Booth partial product of int_mul: t = {b[2j+1], b[2j], b[2j-1]} selects d in
// {-2..2}; pp = |d| * a (W+1 bits, sign-extended a or a << 1, or 0), complemented when d < 0 (neg = 1; the +1 that
// completes the negation is added by int_mul). Each pp bit depends on a[k], a[k-1] and t: one 5-input LUT.
// Example (W = 4): a = 0b0111, t = 3'b011 (d = 2): pp = 5'b01110, neg = 0; t = 3'b101 (d = -1): pp = ~5'b00111 =
// 5'b11000, neg = 1 (11000 + 1 = -7).
/* verilator lint_off DECLFILENAME */
module int_booth_pp #(
    parameter integer W = 8
) (
    input  wire [W-1:0] a,
    input  wire [2:0]   t,
    output wire [W:0]   pp,
    output wire         neg
);
  assign neg = t[2] & ~(t[1] & t[0]);
  wire one = t[1] ^ t[0];
  wire two = (t == 3'b011) || (t == 3'b100);
  wire [W:0] m = one ? {a[W-1], a} : (two ? {a, 1'b0} : {(W+1){1'b0}});
  assign pp = m ^ {(W+1){neg}};
endmodule
/* verilator lint_on DECLFILENAME */
