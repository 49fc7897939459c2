// int_pe: the integer baseline's processing element. LANES signed W-bit products per cycle (one int_mul_lut per
// lane), an adder tree, and a group accumulator: with `valid`, acc <= (first ? 0 : acc) + sum of the lane
// products. The accumulator is ACC_W bits wide; callers size it for their group (LANES * cycles products of
// magnitude <= 2^(2W-2) each; the default 32 bits holds 2^16 int8 products). One cycle of latency: the sum of the
// lanes sampled at edge t is in `acc` after edge t. LANES = 1 is the integer MAC of the cost table.
// The conversion group_sum * s_act * s_w to FP32 (DESIGN.md, the PE contract) happens downstream of `acc`.
module int_pe #(
    parameter integer W = 8,
    parameter integer LANES = 4,
    parameter integer ACC_W = 32
) (
    input  wire               clk,
    input  wire               valid,
    input  wire               first,   // start a new group: drop the previous sum
    input  wire [W*LANES-1:0] a,       // lane i in a[W*i +: W]
    input  wire [W*LANES-1:0] b,
    output reg  [ACC_W-1:0]   acc
);
  wire [2*W*LANES-1:0] products;
  genvar li;
  generate
    for (li = 0; li < LANES; li = li + 1) begin : g_lane
      int_mul_lut #(.W(W)) u_mul (.a(a[W*li +: W]), .b(b[W*li +: W]), .product(products[2*W*li +: 2*W]));
    end
  endgenerate

  // Sum of the lanes, each sign-extended to ACC_W (synthesis builds the tree; the order of exact integer
  // additions does not change the result).
  reg [ACC_W-1:0] lane_sum;
  integer si;
  always @* begin
    lane_sum = {ACC_W{1'b0}};
    for (si = 0; si < LANES; si = si + 1)
      lane_sum = lane_sum + {{(ACC_W - 2 * W){products[2*W*si + 2*W - 1]}}, products[2*W*si +: 2*W]};
  end

  always @(posedge clk) begin
    if (valid) acc <= (first ? {ACC_W{1'b0}} : acc) + lane_sum;
  end
endmodule
