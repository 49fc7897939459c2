// Test top for tests/rtl/int_test.cpp: the integer baseline's units in one verilated model.
module int_tb (
    input  wire        clk,
    input  wire [7:0]  a8, b8,
    input  wire [3:0]  a4, b4,
    output wire [15:0] mul8_lut,
    output wire [7:0]  mul4_lut,
    output wire [15:0] mul8_dsp,        // two cycles after a8/b8
    input  wire [15:0] x, scale,
    output wire [3:0]  q_int4_rne, q_int4_up,
    output wire [7:0]  q_int8_rne, q_int8_up,
    output wire [3:0]  q_int4_par_rne,       // ARCH = 0 (parallel comparators); the others use ARCH = 1
    output wire [7:0]  q_int8_par_up,
    // PEs: 4 lanes each
    input  wire        valid, first,
    input  wire [31:0] pe8_a, pe8_b,
    input  wire [15:0] pe4_a, pe4_b,
    output wire [31:0] pe8_acc, pe4_acc
);
  int_mul_lut #(.W(8)) u_mul8_lut (.a(a8), .b(b8), .product(mul8_lut));
  int_mul_lut #(.W(4)) u_mul4_lut (.a(a4), .b(b4), .product(mul4_lut));
  int_mul_dsp #(.W(8)) u_mul8_dsp (.clk(clk), .ce(1'b1), .a(a8), .b(b8), .product(mul8_dsp));
  int_quantizer #(.BITS(4), .ROUNDING(0)) u_q4_rne (.x(x), .scale(scale), .code(q_int4_rne));
  int_quantizer #(.BITS(4), .ROUNDING(1)) u_q4_up (.x(x), .scale(scale), .code(q_int4_up));
  int_quantizer #(.BITS(8), .ROUNDING(0)) u_q8_rne (.x(x), .scale(scale), .code(q_int8_rne));
  int_quantizer #(.BITS(8), .ROUNDING(1)) u_q8_up (.x(x), .scale(scale), .code(q_int8_up));
  int_quantizer #(.BITS(4), .ROUNDING(0), .ARCH(0)) u_q4_par_rne (.x(x), .scale(scale), .code(q_int4_par_rne));
  int_quantizer #(.BITS(8), .ROUNDING(1), .ARCH(0)) u_q8_par_up (.x(x), .scale(scale), .code(q_int8_par_up));
  int_pe #(.W(8), .LANES(4)) u_pe8 (.clk(clk), .valid(valid), .first(first), .a(pe8_a), .b(pe8_b), .acc(pe8_acc));
  int_pe #(.W(4), .LANES(4)) u_pe4 (.clk(clk), .valid(valid), .first(first), .a(pe4_a), .b(pe4_b), .acc(pe4_acc));
endmodule
