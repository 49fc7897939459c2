// pe_array: R x C processing elements (rtl/pe/pe.v) with operand broadcast and an output drain of DRAIN_W rows per
// cycle.
//
// Broadcast: PE (r, c) multiplies activation vector r (in_a, row r at [r*G*A_BITS +: G*A_BITS]) by weight vector c
// (in_w, column c at [c*G*W_BITS +: G*W_BITS]); one beat feeds all R*C PEs, which run in lockstep (same handshake,
// same enable), so the array computes an R x C tile of group sums per group. Outputs are exact integers as in pe.v.
// Drain: when the PEs finish a group, their R*C sums move into an output bank in one cycle; the bank then drains
// DRAIN_W rows per transfer (R / DRAIN_W transfers per group, rows in ascending order): out_row = the first row of
// the transfer (0, DRAIN_W, 2*DRAIN_W, ...), and out_sum / out_sum_neg hold rows out_row .. out_row + DRAIN_W - 1,
// row out_row + j column c at [(j*C + c)*ACC_BITS +: ACC_BITS]. While the bank is full the PEs' outputs wait (their
// pipelines stall once their output registers are full too); the bank reloads in the same cycle its last transfer
// leaves. DRAIN_W divides R; DRAIN_W = R drains a whole tile per cycle.
//
// Timing (cycle convention of pe.v):
//   (rtl/timing.hpp states these as C++ functions: pe_array_latency, pe_array_transfers_per_group, ...)
//   LATENCY = $clog2(G) + 4 (the PE's $clog2(G) + 3, plus the bank): a group whose last beat is accepted in cycle t
//     drains its first transfer in cycle t + LATENCY and transfer k in cycle t + LATENCY + k while out_ready stays
//     high (G = 32: 9).
//   Throughput: a group of B beats occupies the inputs B cycles and the drain R / DRAIN_W cycles, so the array
//     sustains one beat per cycle (every MAC busy) when B >= R / DRAIN_W, and B / (R / DRAIN_W) beats per cycle
//     otherwise. Example: 16 x 16 PEs, G = 32, group 128 (B = 4): DRAIN_W = 1 reaches 4/16 = 25% of the MACs,
//     DRAIN_W = 4 all of them (the output bus is then 4 * 16 sums of ACC_BITS = 22 bits per cycle).
`include "fpqvar_pairs.svh"

module pe_array #(
    parameter integer PAIR = `FPQVAR_PAIR_E2M1_E2M1,
    // FP multiplier form (rtl/mul/fp_mul.v): 0 magnitude table, 1 significand product + shift. Default: the smaller
    // in synthesis (docs/synthesis.md): the table for e2m1 and DFQ, the significand product for e2m3.
    parameter integer FORM = (PAIR == `FPQVAR_PAIR_E2M3_E2M3) ? 1 : 0,
    parameter integer R = 16,
    parameter integer C = 16,
    parameter integer G = 32,
    parameter integer DRAIN_W = 1,  // rows drained per transfer; divides R
    parameter integer BEAT_BITS = 8,
    parameter integer A_BITS = `FPQVAR_MUL_A_BITS(PAIR),
    parameter integer W_BITS = `FPQVAR_MUL_W_BITS(PAIR),
    parameter integer P_BITS = `FPQVAR_MUL_P_BITS(PAIR),
    parameter integer ACC_BITS = P_BITS + $clog2(G) + BEAT_BITS,
    parameter integer ROW_BITS = (R > 1) ? $clog2(R) : 1
) (
    input  wire                            clk,
    input  wire                            rst,
    input  wire                            in_valid,
    output wire                            in_ready,
    input  wire                            in_last,
    input  wire [R*G*A_BITS-1:0]           in_a,
    input  wire [C*G*W_BITS-1:0]           in_w,
    output wire                            out_valid,
    input  wire                            out_ready,
    output wire [ROW_BITS-1:0]             out_row,      // first row of this transfer
    output wire [DRAIN_W*C*ACC_BITS-1:0]   out_sum,
    output wire [DRAIN_W*C*ACC_BITS-1:0]   out_sum_neg
);
  localparam integer STEPS = R / DRAIN_W;  // transfers per group
  localparam integer ROW_W = C * ACC_BITS;  // one row of sums

  wire [R*C-1:0] pe_in_ready;
  wire [R*C-1:0] pe_out_valid;
  wire [R*ROW_W-1:0] pe_sum;
  wire [R*ROW_W-1:0] pe_sum_neg;

  reg bank_full;
  reg [ROW_BITS-1:0] drain_row;  // first row of the current transfer
  // The bank, one entry per row (an array of rows keeps each row's select simple for Verilator and yosys alike).
  (* mem2reg *) reg [ROW_W-1:0] bank_sum [0:R-1];
  (* mem2reg *) reg [ROW_W-1:0] bank_sum_neg [0:R-1];

  localparam integer LAST_ROW_INT = R - DRAIN_W;
  localparam integer DRAIN_W_INT = DRAIN_W;
  localparam [ROW_BITS-1:0] LAST_ROW = LAST_ROW_INT[ROW_BITS-1:0];
  localparam [ROW_BITS-1:0] ROW_STEP = DRAIN_W_INT[ROW_BITS-1:0];
  wire last_transfer_leaves = bank_full && out_ready && (drain_row == LAST_ROW);
  wire bank_load = !bank_full || last_transfer_leaves;  // the PEs' out_ready
  wire load_now = bank_load && (&pe_out_valid);
  // All PEs see the same inputs and the same out_ready, so their handshake signals are equal; AND them anyway so
  // that no PE's signal is left unread.
  assign in_ready = &pe_in_ready;

  genvar r, c, j;
  generate
    if (STEPS * DRAIN_W != R || DRAIN_W < 1) begin : g_bad_drain
      // Elaboration-time check: DRAIN_W must divide R. (An undefined module stops both Verilator and yosys.)
      pe_array_drain_w_must_divide_r u_error ();
    end
    for (r = 0; r < R; r = r + 1) begin : g_row
      for (c = 0; c < C; c = c + 1) begin : g_col
        pe #(.PAIR(PAIR), .FORM(FORM), .G(G), .BEAT_BITS(BEAT_BITS)) u_pe (
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
      always @(posedge clk) begin
        if (load_now) begin
          bank_sum[r] <= pe_sum[r*ROW_W +: ROW_W];
          bank_sum_neg[r] <= pe_sum_neg[r*ROW_W +: ROW_W];
        end
      end
    end
    for (j = 0; j < DRAIN_W; j = j + 1) begin : g_drain
      localparam [ROW_BITS-1:0] J = j[ROW_BITS-1:0];
      assign out_sum[j*ROW_W +: ROW_W] = bank_sum[drain_row + J];
      assign out_sum_neg[j*ROW_W +: ROW_W] = bank_sum_neg[drain_row + J];
    end
  endgenerate

  always @(posedge clk) begin
    if (rst) begin
      bank_full <= 1'b0;
      drain_row <= {ROW_BITS{1'b0}};
    end else begin
      if (load_now) begin
        bank_full <= 1'b1;
        drain_row <= {ROW_BITS{1'b0}};
      end else if (last_transfer_leaves) begin
        bank_full <= 1'b0;
        drain_row <= {ROW_BITS{1'b0}};
      end else if (bank_full && out_ready) begin
        drain_row <= drain_row + ROW_STEP;
      end
    end
  end

  assign out_valid = bank_full;
  assign out_row = drain_row;
endmodule
