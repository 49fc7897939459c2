// hadamard: the online Hadamard unit of the `hw` mode, bit-exact with the contract's x' = x * s (one FP32 multiply
// per element, models/hw_backend.hpp step 1) followed by quant::rotate_activation_hw (quant/hadamard.hpp) with GHT
// blocks of BLOCK elements: per block, the sign flips D_j (FPQVAR's mt19937(42) draw, exact), the FP32 fast
// Walsh-Hadamard transform in the contract's stage order h = 1, 2, ..., BLOCK/2 (pair (i, i+h) with (i & h) == 0
// -> (a + b, a - b), each add rounded once to FP32), then one FP32 multiply by k = RNE_fp32(1 / float32(sqrt(BLOCK)))
// (0x3DB504F3 for 128). Every operation is an IEEE binary32 operation of rtl/fp (RNE, subnormals, inf, NaN); the
// pair order within a stage does not change any result (each output reads only its own pair), so a streaming
// schedule computes exactly the contract's values. The sign and the constant k come from quant/ through
// tools/gen_rtl_tables (hadamard_params.svh).
//
// Structure: LANES elements per beat, B = BLOCK / LANES beats per block, natural order in and out.
//   multiply   x * s (HAS_S = 1; HAS_S = 0 passes x), then the sign flip (an XOR of the sign bit): one register;
//   FWHT stage h < LANES  (log2(LANES) stages): the pairs lie in one beat: LANES/2 butterflies, LANES adders,
//              one register;
//   FWHT stage h >= LANES (log2(B) stages): the pairs lie D = h / LANES beats apart. A stage collects each run of
//              2D beats in a memory (two halves `lo` and `hi`, double-buffered), and emits out[k] = lo[k] + hi[k]
//              for the first D beats and out[D+k] = lo[k] - hi[k] for the next D, one beat per cycle on LANES
//              adders (each adder adds or subtracts): output k leaves as soon as hi[k] has arrived, so the stage
//              delays the stream by D + 2 cycles (the memory write and the output register);
//   scale      * k: one register.
// Adders: log2(BLOCK) * LANES FP32 add/subtract units; multipliers: LANES (x * s, HAS_S = 1) + LANES (* k, one
// constant operand).
//
// Handshakes (valid/ready as rtl/pe/pe.v): in_valid/in_ready/in_x/in_s, LANES elements of the block's next beat
// (element j of a beat at [32*j +: 32]); out_valid/out_ready/out_x/out_last (the block's last beat). The pipeline
// advances as a whole: advance = !out_valid || out_ready, in_ready = advance; input bubbles flow through.
// Timing (asserted by tests/rtl/hadamard_test.cpp; rtl/timing.hpp):
//   LATENCY = 3 + log2(LANES) + (B - 1) + 2 * log2(B) cycles from the acceptance of a block's first beat (unit
//     empty, beats back to back, out_ready high) to its first output beat (the input, multiply and output
//     registers; one per spatial stage; D + 2 per temporal stage, D = 1, 2, .., B/2). BLOCK 128: LANES 1 -> 144,
//     4 -> 46, 8 -> 29, 32 -> 15, 128 -> 10.
//   Interval: one beat per cycle, one block per B cycles.
module hadamard #(
    parameter integer BLOCK = 128,  // GHT block, a power of two <= 1024
    parameter integer LANES = 4,    // elements per beat, a power of two <= BLOCK
    parameter integer HAS_S = 1     // 1: multiply by in_s first (the GALT vector s); 0: no in_s
) (
    input  wire                 clk,
    input  wire                 rst,
    input  wire                 in_valid,
    output wire                 in_ready,
    input  wire [32*LANES-1:0]  in_x,
    input  wire [32*LANES-1:0]  in_s,
    output wire                 out_valid,
    input  wire                 out_ready,
    output wire [32*LANES-1:0]  out_x,
    output wire                 out_last
);
`include "hadamard_params.svh"
  localparam integer B = BLOCK / LANES;
  localparam integer BW = (B > 1) ? $clog2(B) : 1;
  localparam integer LOG2BLOCK = $clog2(BLOCK);
  localparam [31:0] kScale = fpqvar_ght_hw_scale(BLOCK);
  localparam [BW-1:0] kLastBeat = B[BW-1:0] - 1'b1;

  wire advance = !out_valid || out_ready;
  assign in_ready = advance;

  // ---- input registers ----
  reg v_in;
  reg [32*LANES-1:0] x_in, s_in;
  reg [BW-1:0] beat_in;  // position of the input beat in its block
  reg [BW-1:0] beat_next;
  always @(posedge clk) begin
    if (rst) begin
      v_in <= 1'b0;
      beat_next <= {BW{1'b0}};
    end else if (advance) begin
      v_in <= in_valid;
      if (in_valid) beat_next <= (beat_next == kLastBeat) ? {BW{1'b0}} : beat_next + 1'b1;
    end
  end
  always @(posedge clk) begin
    if (advance) begin
      x_in <= in_x;
      s_in <= in_s;
      beat_in <= beat_next;
    end
  end

  // ---- x * s and the signs ----
  // Stage k of the chain: valid v[k], data d[k] (stage 0: after the multiply; stage 1 .. LOG2BLOCK: after FWHT stage
  // h = 2^(k-1)).
  wire [LOG2BLOCK:0] v;
  wire [32*LANES-1:0] d [0:LOG2BLOCK];
  reg v_mul;
  reg [32*LANES-1:0] d_mul;
  genvar j;
  generate
    for (j = 0; j < LANES; j = j + 1) begin : g_mul
      wire [31:0] prod;
      if (HAS_S != 0) begin : g_s
        fp32_mul u_mul (.a(x_in[32*j +: 32]), .b(s_in[32*j +: 32]), .y(prod));
      end else begin : g_no_s
        assign prod = x_in[32*j +: 32];
        wire unused_s = ^s_in[32*j +: 32];
      end
      // D_j of element beat * LANES + j: a constant per (beat, lane), selected by the beat
      reg neg;
      integer bi;
      always @* begin
        neg = 1'b0;
        for (bi = 0; bi < B; bi = bi + 1)
          if (beat_in == bi[BW-1:0]) neg = FPQVAR_GHT_NEG[bi * LANES + j];
      end
      always @(posedge clk) begin
        if (advance) d_mul[32*j +: 32] <= {prod[31] ^ neg, prod[30:0]};
      end
    end
  endgenerate
  always @(posedge clk) begin
    if (rst) v_mul <= 1'b0;
    else if (advance) v_mul <= v_in;
  end
  assign v[0] = v_mul;
  assign d[0] = d_mul;

  // ---- FWHT stages ----
  genvar k;
  generate
    for (k = 0; k < LOG2BLOCK; k = k + 1) begin : g_stage
      localparam integer H = 1 << k;
      if (H < LANES) begin : g_spatial
        reg vq;
        reg [32*LANES-1:0] q;
        for (j = 0; j < LANES; j = j + 1) begin : g_lane
          // lane j pairs with lane j ^ H: the lower one gets a + b, the upper one a - b
          localparam integer LO = j & ~H;
          localparam integer HI = j | H;
          wire [31:0] a = d[k][32*LO +: 32];
          wire [31:0] b = d[k][32*HI +: 32];
          wire [31:0] y;
          fp32_add u_add (.a(a), .b((j & H) != 0 ? {~b[31], b[30:0]} : b), .y(y));
          always @(posedge clk) begin
            if (advance) q[32*j +: 32] <= y;
          end
        end
        always @(posedge clk) begin
          if (rst) vq <= 1'b0;
          else if (advance) vq <= v[k];
        end
        assign v[k+1] = vq;
        assign d[k+1] = q;
      end else begin : g_temporal
        hadamard_stage #(.LANES(LANES), .D(H / LANES)) u_stage (
            .clk(clk), .rst(rst), .advance(advance), .in_valid(v[k]), .in_x(d[k]),
            .out_valid(v[k+1]), .out_x(d[k+1]));
      end
    end
  endgenerate

  // ---- * k into the output register ----
  reg vout;
  reg [32*LANES-1:0] xout;
  reg last_out;
  reg [BW-1:0] beat_out;
  generate
    for (j = 0; j < LANES; j = j + 1) begin : g_scale
      wire [31:0] y;
      fp32_mul u_k (.a(d[LOG2BLOCK][32*j +: 32]), .b(kScale), .y(y));
      always @(posedge clk) begin
        if (advance) xout[32*j +: 32] <= y;
      end
    end
  endgenerate
  always @(posedge clk) begin
    if (rst) begin
      vout <= 1'b0;
      beat_out <= {BW{1'b0}};
    end else if (advance) begin
      vout <= v[LOG2BLOCK];
      if (v[LOG2BLOCK]) beat_out <= (beat_out == kLastBeat) ? {BW{1'b0}} : beat_out + 1'b1;
    end
  end
  always @(posedge clk) begin
    if (advance) last_out <= (beat_out == kLastBeat);
  end
  assign out_valid = vout;
  assign out_x = xout;
  assign out_last = last_out;
endmodule
