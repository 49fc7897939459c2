// Test top for tests/rtl/fp32_test.cpp: rtl/fp's adder and multiplier on the same operands.
module fp32_tb (
    input  wire [31:0] a,
    input  wire [31:0] b,
    output wire [31:0] sum,
    output wire [31:0] prod
);
  fp32_add u_add (.a(a), .b(b), .y(sum));
  fp32_mul u_mul (.a(a), .b(b), .y(prod));
endmodule
