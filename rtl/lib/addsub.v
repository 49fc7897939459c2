// addsub: s = sub ? a - b : a + b, signed, exact (Y_BITS holds every result), on one carry chain: the adder of the
// PE's tree nodes and group accumulator (rtl/pe/pe.v), which add or subtract a child according to the signs, and of
// the integer multiplier's partial products (rtl/mul/int_mul.v). rtl/lib/ holds such helpers shared by blocks.
// Combinational. Example: A_BITS = B_BITS = 4, Y_BITS = 5: a = 4'b0111 (7), b = 4'b1100 (-4), sub = 1: s = 11 =
// 5'b01011; sub = 0: s = 3.
//
// Two spellings of the same function:
//   - behavioural (Verilator, and any tool but the project's yosys flow): a + (b ^ {sub}) + sub;
//   - with FPQVAR_YOSYS defined (`fpqvar synth` reads the RTL with -DFPQVAR_YOSYS -icells): yosys' own $alu cell,
//     Y = A + (BI ? ~B : B) + CI with BI = CI = sub, which yosys maps onto one carry chain with the XOR inside each
//     bit's LUT and A on the chain's DI inputs: one LUT per bit. Written behaviourally, yosys 0.23 sorts the operands
//     of the addition and in about half the nodes puts the XORed one on DI, which then needs a LUT of its own: two
//     LUTs per bit (883 against 746 LUTs for a 32-lane FP4 PE).
// tests/rtl/CMakeLists.txt proves the two spellings equivalent with yosys (fpqvar_synth_addsub_equiv).
module addsub #(
    parameter integer A_BITS = 8,
    parameter integer B_BITS = 8,
    parameter integer Y_BITS = 9
) (
    input  wire signed [A_BITS-1:0] a,
    input  wire signed [B_BITS-1:0] b,
    input  wire                     sub,
    output wire signed [Y_BITS-1:0] s
);
`ifdef FPQVAR_YOSYS
  wire [Y_BITS-1:0] x_unused, co_unused;
  \$alu #(.A_SIGNED(1), .B_SIGNED(1), .A_WIDTH(A_BITS), .B_WIDTH(B_BITS), .Y_WIDTH(Y_BITS)) u_alu (
      .A(a), .B(b), .BI(sub), .CI(sub), .X(x_unused), .Y(s), .CO(co_unused));
`else
  wire signed [Y_BITS-1:0] a_ext = {{(Y_BITS-A_BITS){a[A_BITS-1]}}, a};
  wire signed [Y_BITS-1:0] b_ext = {{(Y_BITS-B_BITS){b[B_BITS-1]}}, b};
  assign s = a_ext + (b_ext ^ {Y_BITS{sub}}) + {{(Y_BITS-1){1'b0}}, sub};
`endif
endmodule
