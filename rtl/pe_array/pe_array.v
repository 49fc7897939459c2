// pe_array: R x C processing elements (rtl/pe/pe.v) with operand broadcast and a row-by-row output drain.
//
// Broadcast: PE (r, c) multiplies activation vector r (in_a, row r at [r*G*A_BITS +: G*A_BITS]) by weight vector c
// (in_w, column c at [c*G*W_BITS +: G*W_BITS]); one beat feeds all R*C PEs, which run in lockstep (same handshake,
// same enable), so the array computes an R x C tile of group sums per group. Outputs are exact integers as in pe.v.
// Drain: when the PEs finish a group, their R*C sums move into an output bank in one cycle; the bank then drains one
// row per transfer: out_row = r, out_sum / out_sum_neg = the C sums of row r (column c at [c*ACC_BITS +: ACC_BITS]),
// rows in ascending order. While the bank is full the PEs' outputs wait (their pipelines stall once their output
// registers are full too); the bank reloads in the same cycle its last row leaves.
//
// Timing (cycle convention of pe.v): a group whose last beat is accepted in cycle t drains row 0 in cycle
// t + LATENCY, LATENCY = $clog2(G) + 4 (the PE's $clog2(G) + 3, plus the bank), row r in cycle t + LATENCY + r while
// out_ready stays high. A group of B beats
// occupies the inputs B cycles and the drain R cycles: the array sustains one beat per cycle when B >= R.
`include "fp_lut_mul_params.svh"

module pe_array #(
    parameter integer PAIR = `FPQVAR_PAIR_E2M1_E2M1,
    parameter integer R = 16,
    parameter integer C = 16,
    parameter integer G = 32,
    parameter integer BEAT_BITS = 8,
    parameter integer A_BITS = `FPQVAR_MUL_A_BITS(PAIR),
    parameter integer W_BITS = `FPQVAR_MUL_W_BITS(PAIR),
    parameter integer P_BITS = `FPQVAR_MUL_P_BITS(PAIR),
    parameter integer ACC_BITS = P_BITS + $clog2(G) + BEAT_BITS,
    parameter integer ROW_BITS = (R > 1) ? $clog2(R) : 1
) (
    input  wire                      clk,
    input  wire                      rst,
    input  wire                      in_valid,
    output wire                      in_ready,
    input  wire                      in_last,
    input  wire [R*G*A_BITS-1:0]     in_a,
    input  wire [C*G*W_BITS-1:0]     in_w,
    output wire                      out_valid,
    input  wire                      out_ready,
    output wire [ROW_BITS-1:0]       out_row,
    output wire [C*ACC_BITS-1:0]     out_sum,
    output wire [C*ACC_BITS-1:0]     out_sum_neg
);
  wire [R*C-1:0] pe_in_ready;
  wire [R*C-1:0] pe_out_valid;
  wire [R*C*ACC_BITS-1:0] pe_sum;
  wire [R*C*ACC_BITS-1:0] pe_sum_neg;

  reg bank_full;
  reg [ROW_BITS-1:0] drain_row;
  reg [R*C*ACC_BITS-1:0] bank_sum;
  reg [R*C*ACC_BITS-1:0] bank_sum_neg;

  localparam integer LAST_ROW_INT = R - 1;
  localparam [ROW_BITS-1:0] LAST_ROW = LAST_ROW_INT[ROW_BITS-1:0];
  wire last_row_leaves = bank_full && out_ready && (drain_row == LAST_ROW);
  wire bank_load = !bank_full || last_row_leaves;  // the PEs' out_ready
  // All PEs see the same inputs and the same out_ready, so their handshake signals are equal; AND them anyway so
  // that no PE's signal is left unread.
  assign in_ready = &pe_in_ready;

  genvar r, c;
  generate
    for (r = 0; r < R; r = r + 1) begin : g_row
      for (c = 0; c < C; c = c + 1) begin : g_col
        pe #(.PAIR(PAIR), .G(G), .BEAT_BITS(BEAT_BITS)) u_pe (
            .clk(clk),
            .rst(rst),
            .in_valid(in_valid && in_ready),
            .in_ready(pe_in_ready[r*C + c]),
            .in_last(in_last),
            .in_a(in_a[r*G*A_BITS +: G*A_BITS]),
            .in_w(in_w[c*G*W_BITS +: G*W_BITS]),
            .out_valid(pe_out_valid[r*C + c]),
            .out_ready(bank_load),
            .out_sum(pe_sum[(r*C + c)*ACC_BITS +: ACC_BITS]),
            .out_sum_neg(pe_sum_neg[(r*C + c)*ACC_BITS +: ACC_BITS]));
      end
    end
  endgenerate

  always @(posedge clk) begin
    if (rst) begin
      bank_full <= 1'b0;
      drain_row <= {ROW_BITS{1'b0}};
    end else begin
      if (bank_load && (&pe_out_valid)) begin
        bank_full <= 1'b1;
        drain_row <= {ROW_BITS{1'b0}};
      end else if (last_row_leaves) begin
        bank_full <= 1'b0;
        drain_row <= {ROW_BITS{1'b0}};
      end else if (bank_full && out_ready) begin
        drain_row <= drain_row + 1'b1;
      end
    end
  end

  always @(posedge clk) begin
    if (bank_load && (&pe_out_valid)) begin
      bank_sum <= pe_sum;
      bank_sum_neg <= pe_sum_neg;
    end
  end

  assign out_valid = bank_full;
  assign out_row = drain_row;
  assign out_sum = bank_sum[drain_row*C*ACC_BITS +: C*ACC_BITS];
  assign out_sum_neg = bank_sum_neg[drain_row*C*ACC_BITS +: C*ACC_BITS];
endmodule
