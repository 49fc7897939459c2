// pe: one processing element, a G-lane dot product of low-bit codes, exact in integers (quant/pe_contract.hpp).
// PAIR (fpqvar_pairs.svh) picks the lanes: the FP pairs use fp_mag (rtl/mul/fp_mul.v: the product's magnitude, the
// sign handled in the adder tree), the integer baseline's pairs (INT8_INT8, INT4_INT4) int_mul (rtl/mul/int_mul.v);
// everything else (ports, handshake, timing) is the same, so the integer machine is this PE with integer units.
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
//     128: 10). These are the register stages: the input registers, the leaf registers (each lane's product
//     magnitude and sign, or an integer lane's product; the multipliers are combinational), $clog2(G) adder-tree
//     levels, and the accumulator/output registers.
//     rtl/timing.hpp states the same as C++ functions (pe_latency), which the tests and sim/ use.
//   Initiation interval 1 beat per cycle while out_ready is high; with out_ready low the pipeline holds.
//
// Widths: lane codes A_BITS/W_BITS (4, 4 or 6, 6; integers 8 or 4); products P_BITS (9, 10, 13; integers 2W);
// tree SUM_BITS = P_BITS + $clog2(G); accumulator and outputs ACC_BITS = SUM_BITS + BEAT_BITS, exact for groups of
// up to 2^BEAT_BITS beats.
// Cost (fpqvar synth, docs/synthesis.md): G = 32, e2m1: 634 LUT (19.8 per lane), no MUXF.
// Lane i's code sits at in_a[i*A_BITS +: A_BITS] (lane 0 in the low bits).
`include "fpqvar_pairs.svh"

module pe #(
    parameter integer PAIR = `FPQVAR_PAIR_E2M1_E2M1,
    parameter integer G = 32,  // lanes; a power of two (16, 32, 64, 128)
    // Multiplier form. FP pairs (rtl/mul/fp_mul.v): 0 magnitude table, 1 significand product + shift; default the
    // smaller in synthesis (docs/synthesis.md): the table for e2m1 and DFQ, the significand product for e2m3.
    // Integer pairs (rtl/mul/int_mul.v): 0 radix-4 Booth in fabric, 1 the `*` operator (a DSP slice where allowed).
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
  localparam integer MAG_BITS = P_BITS - 1;  // FP pairs: |product| bits (fp_mag)
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

  // Leaves and adder trees, heap-indexed: node n (1 <= n < 2G) is tree_pos[n] with its sign bit sign_pos[n]; leaves are
  // nodes G..2G-1 (lane i = node G+i), node n combines nodes 2n and 2n+1, node 1 is the root. Every node is a
  // register, so the level of node n is its pipeline stage and the root holds the sum of the leaves registered
  // LOG2G cycles earlier. Example G = 4: leaves 4..7; nodes 2 = 4+5 and 3 = 6+7 one cycle later; root 1 = 2+3 another
  // cycle later.
  //
  // Signs in the tree (the FP pairs): a node holds s and a sign bit n and stands for the value (-1)^n * s. A leaf is
  // a lane's product magnitude (fp_mag, a table of the two magnitude indices) with n = a_sign ^ w_sign, so no lane
  // negates its product. A node adds its right child to its left one when their signs agree and subtracts it when
  // they differ, and keeps the left sign:
  //     (-1)^nl * sl + (-1)^nr * sr = (-1)^nl * (sl + (-1)^(nl ^ nr) * sr),
  // one add/subtract (rtl/lib/addsub.v: one carry chain, one LUT per bit) with sub = nl ^ nr. The group accumulator
  // applies the root's sign once, adding or subtracting the root. Example (G = 2): lanes +6.0 * -1.5 (leaf 36, n = 1)
  // and +1.0 * +2.0 (leaf 8, n = 0), units 2^-2: sub = 1, s = 36 - 8 = 28, n = 1: the value -28 = -9.0 + 2.0 = -7.0.
  // The integer pairs' leaves are signed products (int_mul) with n = 0, so every node is a plain adder.
  // DFQ: the activation's top bit is its side and its sign. Two trees: a lane's leaf in tree_pos is its positive-side
  // magnitude (an e2m1 x e2m1 table) with n = w_sign, zeroed when the lane is on the negative side; in tree_neg its
  // negative-side magnitude (e1m2 x e2m1) with n = !w_sign, zeroed on the positive side. Each table has 6 inputs.
  // Widths: a leaf needs P_BITS (the magnitude and a sign bit); a node at level k (1 above the leaves) P_BITS + k,
  // since |s| <= 2^k * max|leaf|; the root SUM_BITS. Nodes are stored SUM_BITS wide (sign-extended) and read at their
  // level's width, so synthesis keeps only the bits a node needs.
  // Arrays of nodes rather than one flat vector: Verilator then keeps a node in a machine word (a flat vector's
  // unaligned slices cost many word operations each: 3.5x the generated C++ of a 16 x 16 array), and yosys turns
  // them into plain registers (mem2reg: every index is a constant once the generate loops elaborate).
  // (Verilator lint: a node's upper bits are read by no one, and the _neg arrays are unused except for DFQ.)
  /* verilator lint_off UNUSEDSIGNAL */
  /* verilator lint_off UNDRIVEN */
  (* mem2reg *) reg signed [SUM_BITS-1:0] tree_pos [1:2*G-1];
  (* mem2reg *) reg signed [SUM_BITS-1:0] tree_neg [1:2*G-1];
  (* mem2reg *) reg sign_pos [1:2*G-1];
  (* mem2reg *) reg sign_neg [1:2*G-1];
  /* verilator lint_on UNDRIVEN */
  /* verilator lint_on UNUSEDSIGNAL */
  // One always block per node (generate loops, not for loops: the simulator cannot schedule delayed assignments to
  // array elements inside a for loop it does not unroll, and it unrolls none longer than 64).
  genvar n;
  generate
    for (n = 0; n < G; n = n + 1) begin : g_leaf
      wire [A_BITS-1:0] a_l = a_q[n*A_BITS +: A_BITS];
      wire [W_BITS-1:0] w_l = w_q[n*W_BITS +: W_BITS];
      if (IS_INT != 0) begin : g_int
        wire signed [P_BITS-1:0] product;
        int_mul #(.W(A_BITS), .BOOTH(FORM == 0 ? 1 : 0)) u_mul (.a(a_l), .b(w_l), .product(product));
        always @(posedge clk) begin
          if (advance) begin
            tree_pos[G+n] <= {{(SUM_BITS-P_BITS){product[P_BITS-1]}}, product};
            sign_pos[G+n] <= 1'b0;
          end
        end
      end else if (IS_DFQ != 0) begin : g_dfq
        wire side_neg = a_l[A_BITS-1];
        wire [MAG_BITS-1:0] mag_p, mag_n;
        fp_mag #(.PAIR(PAIR), .FORM(FORM)) u_pos (
            .a_idx({1'b0, a_l[A_BITS-2:0]}), .w_idx(w_l[W_BITS-2:0]), .mag(mag_p));
        fp_mag #(.PAIR(PAIR), .FORM(FORM)) u_neg (
            .a_idx({1'b1, a_l[A_BITS-2:0]}), .w_idx(w_l[W_BITS-2:0]), .mag(mag_n));
        // The other side's leaf is zeroed by the flip-flops' synchronous reset (one enable-gated reset per lane and
        // tree), not by a multiplexer in front of each bit.
        wire clear_pos = advance && side_neg;
        wire clear_neg = advance && !side_neg;
        always @(posedge clk) begin
          if (clear_pos) tree_pos[G+n] <= {SUM_BITS{1'b0}};
          else if (advance) tree_pos[G+n] <= {{(SUM_BITS-MAG_BITS){1'b0}}, mag_p};
        end
        always @(posedge clk) begin
          if (clear_neg) tree_neg[G+n] <= {SUM_BITS{1'b0}};
          else if (advance) tree_neg[G+n] <= {{(SUM_BITS-MAG_BITS){1'b0}}, mag_n};
        end
        always @(posedge clk) begin
          if (advance) begin
            sign_pos[G+n] <= w_l[W_BITS-1];
            sign_neg[G+n] <= !w_l[W_BITS-1];
          end
        end
      end else begin : g_fp
        wire [MAG_BITS-1:0] mag;
        fp_mag #(.PAIR(PAIR), .FORM(FORM)) u_mag (.a_idx(a_l[A_BITS-2:0]), .w_idx(w_l[W_BITS-2:0]), .mag(mag));
        always @(posedge clk) begin
          if (advance) begin
            tree_pos[G+n] <= {{(SUM_BITS-MAG_BITS){1'b0}}, mag};
            sign_pos[G+n] <= a_l[A_BITS-1] ^ w_l[W_BITS-1];
          end
        end
      end
    end
    for (n = 1; n < G; n = n + 1) begin : g_node
      localparam integer LEVEL = LOG2G + 1 - $clog2(n + 1);  // 1 just above the leaves, LOG2G at the root
      localparam integer NW = P_BITS + LEVEL;                 // this node's width; its children's is NW - 1
      wire signed [NW-1:0] s_pos;
      addsub #(.A_BITS(NW-1), .B_BITS(NW-1), .Y_BITS(NW)) u_pos (
          .a(tree_pos[2*n][NW-2:0]), .b(tree_pos[2*n+1][NW-2:0]),
          .sub(sign_pos[2*n] ^ sign_pos[2*n+1]), .s(s_pos));
      always @(posedge clk) begin
        if (advance) begin
          tree_pos[n] <= {{(SUM_BITS-NW){s_pos[NW-1]}}, s_pos};
          sign_pos[n] <= sign_pos[2*n];
        end
      end
      // Only DFQ needs the second tree; for the other pairs its nodes do not exist, in synthesis and in the
      // simulation model alike (where they would cost time).
      if (IS_DFQ != 0) begin : g_neg
        wire signed [NW-1:0] s_neg;
        addsub #(.A_BITS(NW-1), .B_BITS(NW-1), .Y_BITS(NW)) u_neg (
            .a(tree_neg[2*n][NW-2:0]), .b(tree_neg[2*n+1][NW-2:0]),
            .sub(sign_neg[2*n] ^ sign_neg[2*n+1]), .s(s_neg));
        always @(posedge clk) begin
          if (advance) begin
            tree_neg[n] <= {{(SUM_BITS-NW){s_neg[NW-1]}}, s_neg};
            sign_neg[n] <= sign_neg[2*n];
          end
        end
      end
    end
  endgenerate

  // The roots' values: (-1)^n * s, applied as an add/subtract in the accumulator.
  wire signed [SUM_BITS-1:0] root_pos = tree_pos[1];
  wire root_pos_n = sign_pos[1];
  wire signed [SUM_BITS-1:0] root_neg;
  wire root_neg_n;
  generate
    if (IS_DFQ != 0) begin : g_root_neg
      assign root_neg = tree_neg[1];
      assign root_neg_n = sign_neg[1];
    end else begin : g_no_neg
      assign root_neg = {SUM_BITS{1'b0}};
      assign root_neg_n = 1'b0;
    end
  endgenerate

  // Group accumulator: adds the roots of a group's beats, each with its sign (an add/subtract: the root's sign is the
  // carry-in); the last beat's total goes to the outputs and clears the accumulator. Written so that every register
  // is a plain flip-flop with clock enable and synchronous reset (FDRE), no multiplexer in front of it:
  //   acc: reset by rst or by a group's last beat, enabled by a valid beat; out_sum: enabled by a group's last beat.
  reg signed [ACC_BITS-1:0] acc_pos;
  reg signed [ACC_BITS-1:0] acc_neg;
  wire signed [ACC_BITS-1:0] total_pos, total_neg;
  addsub #(.A_BITS(ACC_BITS), .B_BITS(SUM_BITS), .Y_BITS(ACC_BITS)) u_acc_pos (
      .a(acc_pos), .b(root_pos), .sub(root_pos_n), .s(total_pos));
  addsub #(.A_BITS(ACC_BITS), .B_BITS(SUM_BITS), .Y_BITS(ACC_BITS)) u_acc_neg (
      .a(acc_neg), .b(root_neg), .sub(root_neg_n), .s(total_neg));
  wire root_valid = stage_valid[STAGES-1];
  wire root_last = stage_last[STAGES-1];
  wire take = advance && root_valid;        // a valid beat leaves the tree
  wire group_done = take && root_last;      // ... and it ends its group

  always @(posedge clk) begin
    if (rst || group_done) begin
      acc_pos <= {ACC_BITS{1'b0}};
      acc_neg <= {ACC_BITS{1'b0}};
    end else if (take) begin
      acc_pos <= total_pos;
      acc_neg <= total_neg;
    end
  end
  // The sums need no reset: out_valid says when they mean something.
  always @(posedge clk) begin
    if (group_done) begin
      out_sum <= total_pos;
      out_sum_neg <= (IS_DFQ != 0) ? total_neg : {ACC_BITS{1'b0}};
    end
  end
  always @(posedge clk) begin
    if (rst) out_valid <= 1'b0;
    else if (advance) out_valid <= group_done;
  end
endmodule
