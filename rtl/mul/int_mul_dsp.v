// int_mul_dsp: W x W signed integer multiplier shaped for a DSP48E2 slice: input registers (AREG/BREG) and the
// multiplier register (MREG), so yosys' synth_xilinx maps the product onto one DSP48E2 with its internal pipeline
// registers. Latency 2 clock cycles: inputs sampled at edge t appear on `product` after edge t+1. `ce` gates all
// registers (the DSP's CE pins). Same arithmetic as int_mul (rtl/mul/int_mul.v).
module int_mul_dsp #(
    parameter integer W = 8
) (
    input  wire           clk,
    input  wire           ce,
    input  wire [W-1:0]   a,
    input  wire [W-1:0]   b,
    output reg  [2*W-1:0] product
);
  reg [W-1:0] a_reg, b_reg;
  always @(posedge clk) begin
    if (ce) begin
      a_reg <= a;
      b_reg <= b;
      product <= $signed(a_reg) * $signed(b_reg);
    end
  end
endmodule
