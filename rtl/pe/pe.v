// pe: one processing element, a G-lane dot product of low-bit codes, exact in integers (quant/pe_contract.hpp).
// PAIR (fpqvar_pairs.svh) picks the lanes: the FP pairs use fp_mul (rtl/mul/fp_mul.v), the integer baseline's pairs
// (INT8_INT8, INT4_INT4) int_mul (rtl/mul/int_mul.v); everything else (ports, handshake, timing) is the same, so the
// integer machine is this PE with integer units.
//
// Per accepted beat, lane i multiplies in_a[i] by in_w[i] in its multiplier (exact product, units of 2^-f); a
// pipelined adder tree sums the G products; the group accumulator adds the beats of one quantization group and
// emits the group sum with the beat flagged in_last. A group of K elements is K/G beats (G = 32, group 128: four
// beats). All arithmetic is exact two's complement: no rounding anywhere in the PE.
// DFQ (PAIR = 1): the activation's top bit selects its side; the PE keeps two sums, out_sum_neg over the lanes
// whose activation is on the negative side and out_sum over the rest, each in units of 2^-f of its own side's scale.
// For the other pairs out_sum is the whole group sum and out_sum_neg is 0.
//
// Handshakes (valid/ready, AXI-stream style: a transfer happens on a rising edge where valid && ready):
//   in : in_valid, in_ready, in_last, in_a, in_w      out: out_valid, out_ready, out_sum, out_sum_neg
// The pipeline advances as a whole (one enable): advance = !out_valid || out_ready, and in_ready = advance (the
// one combinational path, out_ready -> in_ready). Bubbles (in_valid low) flow through as invalid beats.
//
// Timing:
//   LATENCY = $clog2(G) + 3 cycles: a group whose last beat is accepted in cycle t (in_valid && in_ready at the
//     rising edge ending cycle t) has out_valid high with its sums in cycle t + LATENCY (G = 16: 7, 32: 8, 64: 9,
//     128: 10). These are the register stages: the input registers, the product registers (the tree's leaves;
//     the multipliers are combinational), $clog2(G) adder-tree levels, and the accumulator/output registers.
//     rtl/timing.hpp states the same as C++ functions (pe_latency), which the tests and sim/ use.
//   Initiation interval 1 beat per cycle while out_ready is high; with out_ready low the pipeline holds.
//
// Widths: lane codes A_BITS/W_BITS (4, 4 or 6, 6; integers 8 or 4); products P_BITS (9, 10, 13; integers 2W); tree SUM_BITS = P_BITS + $clog2(G);
// accumulator and outputs ACC_BITS = SUM_BITS + BEAT_BITS, exact for groups of up to 2^BEAT_BITS beats.
// Lane i's code sits at in_a[i*A_BITS +: A_BITS] (lane 0 in the low bits).
`include "fpqvar_pairs.svh"

module pe #(
    parameter integer PAIR = `FPQVAR_PAIR_E2M1_E2M1,
    parameter integer G = 32,  // lanes; a power of two (16, 32, 64, 128)
    // FP multiplier form (rtl/mul/fp_mul.v): 0 magnitude table, 1 significand product + shift. Default: the smaller
    // in synthesis (docs/synthesis.md): the table for e2m1 and DFQ, the significand product for e2m3. Unused by the
    // integer pairs.
    parameter integer FORM = (PAIR == `FPQVAR_PAIR_E2M3_E2M3) ? 1 : 0,
    parameter integer BEAT_BITS = 8,
    parameter integer A_BITS = `FPQVAR_MUL_A_BITS(PAIR),
    parameter integer W_BITS = `FPQVAR_MUL_W_BITS(PAIR),
    parameter integer P_BITS = `FPQVAR_MUL_P_BITS(PAIR),
    parameter integer LOG2G = $clog2(G),
    parameter integer SUM_BITS = P_BITS + LOG2G,
    parameter integer ACC_BITS = SUM_BITS + BEAT_BITS
) (
    input  wire                       clk,
    input  wire                       rst,          // synchronous, active high: empties the pipeline and accumulator
    input  wire                       in_valid,
    output wire                       in_ready,
    input  wire                       in_last,      // this beat ends a quantization group
    input  wire [G*A_BITS-1:0]        in_a,         // activation codes, lane i at [i*A_BITS +: A_BITS]
    input  wire [G*W_BITS-1:0]        in_w,         // weight codes, lane i at [i*W_BITS +: W_BITS]
    output reg                        out_valid,
    input  wire                       out_ready,
    output reg signed [ACC_BITS-1:0]  out_sum,      // group sum (DFQ: of the positive-side lanes), units 2^-f
    output reg signed [ACC_BITS-1:0]  out_sum_neg   // DFQ: group sum of the negative-side lanes; else 0
);
  // A simulation-only hint (the metacomment below): the simulator keeps each PE an instance of one C++ class instead
  // of flattening it into its parent. Measured on a 16 x 16 pe_array (G = 32): ~120 MB of generated C++ flattened,
  // 52 MB with the hint, 15 MB with the hint and the per-node adder tree below (Verilator 5.006 still schedules each
  // instance's sequential code apart). Synthesis and the simulated behaviour are unchanged.
  /* verilator no_inline_module */
  localparam integer IS_DFQ = `FPQVAR_MUL_DFQ(PAIR);
  localparam integer IS_INT = `FPQVAR_MUL_INT(PAIR);
  // Valid/last bits of the stages: [0] input registers, [1] products, [1 + k] tree level k done (k = 1..LOG2G).
  localparam integer STAGES = LOG2G + 2;

  wire advance = !out_valid || out_ready;
  assign in_ready = advance;

  reg [STAGES-1:0] stage_valid;
  reg [STAGES-1:0] stage_last;
  reg [G*A_BITS-1:0] a_q;
  reg [G*W_BITS-1:0] w_q;

  always @(posedge clk) begin
    if (rst) begin
      stage_valid <= {STAGES{1'b0}};
      stage_last <= {STAGES{1'b0}};
    end else if (advance) begin
      stage_valid <= {stage_valid[STAGES-2:0], in_valid};
      stage_last <= {stage_last[STAGES-2:0], in_last};
    end
  end

  always @(posedge clk) begin
    if (advance) begin
      a_q <= in_a;
      w_q <= in_w;
    end
  end

  // Products of the registered operands, G combinational multipliers.
  (* mem2reg *) wire signed [P_BITS-1:0] products [0:G-1];
  genvar lane;
  generate
    for (lane = 0; lane < G; lane = lane + 1) begin : g_lane
      if (IS_INT != 0) begin : g_int
        int_mul #(.W(A_BITS)) u_mul (
            .a(a_q[lane*A_BITS +: A_BITS]),
            .b(w_q[lane*W_BITS +: W_BITS]),
            .product(products[lane]));
      end else begin : g_fp
        fp_mul #(.PAIR(PAIR), .FORM(FORM)) u_mul (
            .a(a_q[lane*A_BITS +: A_BITS]),
            .w(w_q[lane*W_BITS +: W_BITS]),
            .p(products[lane]));
      end
    end
  endgenerate

  // Adder trees, heap-indexed: node n (1 <= n < 2G) is tree[n]; leaves are nodes G..2G-1 (lane i = node G+i,
  // registered products sign-extended to SUM_BITS), node n = node 2n + node 2n+1, node 1 is the root. Every node is a
  // register, so the level of node n (floor(log2 n)) is its pipeline stage and the root holds the sum of the leaves
  // registered LOG2G cycles earlier. Example G = 4: leaves 4..7; nodes 2 = 4+5 and 3 = 6+7 one cycle later; root
  // 1 = 2+3 another cycle later.
  // Arrays of nodes rather than one flat vector: Verilator then keeps a node in a machine word (a flat vector's
  // unaligned slices cost many word operations each: 3.5x the generated C++ of a 16 x 16 array), and yosys turns
  // them into plain registers (mem2reg: every index is a constant once the generate loops elaborate).
  (* mem2reg *) reg signed [SUM_BITS-1:0] tree_pos [1:2*G-1];
  (* mem2reg *) reg signed [SUM_BITS-1:0] tree_neg [1:2*G-1];
  // One always block per node (generate loops, not for loops: the simulator cannot schedule delayed assignments to
  // array elements inside a for loop it does not unroll, and it unrolls none longer than 64).
  genvar n;
  generate
    for (n = 0; n < G; n = n + 1) begin : g_leaf
      wire [SUM_BITS-1:0] product_ext = {{(SUM_BITS-P_BITS){products[n][P_BITS-1]}}, products[n]};
      // DFQ: the activation's top bit (sign) selects the tree; otherwise every lane goes to tree_pos.
      wire to_neg = (IS_DFQ != 0) && a_q[n*A_BITS + A_BITS-1];
      always @(posedge clk) begin
        if (advance) begin
          tree_pos[G+n] <= to_neg ? {SUM_BITS{1'b0}} : product_ext;
          tree_neg[G+n] <= to_neg ? product_ext : {SUM_BITS{1'b0}};
        end
      end
    end
    for (n = 1; n < G; n = n + 1) begin : g_node
      always @(posedge clk) begin
        if (advance) tree_pos[n] <= tree_pos[2*n] + tree_pos[2*n+1];
      end
      // Only DFQ needs the second tree; for the other pairs its nodes do not exist, in synthesis and in the
      // simulation model alike (where they would cost time).
      if (IS_DFQ != 0) begin : g_neg
        always @(posedge clk) begin
          if (advance) tree_neg[n] <= tree_neg[2*n] + tree_neg[2*n+1];
        end
      end
    end
  endgenerate

  wire signed [SUM_BITS-1:0] root_pos = tree_pos[1];
  wire signed [SUM_BITS-1:0] root_neg = tree_neg[1];

  // Group accumulator: adds the roots of a group's beats; the last beat's total goes to the outputs.
  reg signed [ACC_BITS-1:0] acc_pos;
  reg signed [ACC_BITS-1:0] acc_neg;
  wire signed [ACC_BITS-1:0] total_pos = acc_pos + {{(ACC_BITS-SUM_BITS){root_pos[SUM_BITS-1]}}, root_pos};
  wire signed [ACC_BITS-1:0] total_neg = acc_neg + {{(ACC_BITS-SUM_BITS){root_neg[SUM_BITS-1]}}, root_neg};
  wire root_valid = stage_valid[STAGES-1];
  wire root_last = stage_last[STAGES-1];

  always @(posedge clk) begin
    if (rst) begin
      acc_pos <= {ACC_BITS{1'b0}};
      acc_neg <= {ACC_BITS{1'b0}};
      out_valid <= 1'b0;
      out_sum <= {ACC_BITS{1'b0}};
      out_sum_neg <= {ACC_BITS{1'b0}};
    end else if (advance) begin
      out_valid <= root_valid && root_last;
      if (root_valid) begin
        if (root_last) begin
          out_sum <= total_pos;
          out_sum_neg <= (IS_DFQ != 0) ? total_neg : {ACC_BITS{1'b0}};
          acc_pos <= {ACC_BITS{1'b0}};
          acc_neg <= {ACC_BITS{1'b0}};
        end else begin
          acc_pos <= total_pos;
          acc_neg <= total_neg;
        end
      end
    end
  end
endmodule
