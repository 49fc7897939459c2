// hadamard_stage: one FWHT stage of rtl/hadamard/hadamard.v whose pairs lie D beats apart (stride h = D * LANES
// elements): for every run of 2D beats of the stream, out[k] = in[k] + in[D+k] and out[D+k] = in[k] - in[D+k]
// (k = 0 .. D-1, lane by lane), each an FP32 add of rtl/fp/fp32_add.v, in stream order.
//
// Each run is written into a double-buffered memory: its first D beats into `lo`, its last D into `hi`, buffer
// `wbuf`. The read side walks the runs in order, one output beat per cycle when its operands are there: output
// position r < D needs hi[r] (written once the run's beat D + r has arrived); positions D .. 2D-1 read lo and hi
// entries already written. The sums and differences share one adder per lane (a subtraction flips b's sign).
// Stalls: everything holds while advance is low. Two buffers are enough without a write stall: the reader finishes
// a run at most D + 1 cycles after its last beat arrived, while the writer needs 2D cycles to fill the other buffer
// before it comes back to this one.
// Delay: a beat present at the input in cycle t reaches the output in cycle t + D + 2 in a stream without bubbles
// (position D+k arrives at t, is written at the edge ending t, read for output k in t+1 and registered).
module hadamard_stage #(
    parameter integer LANES = 4,
    parameter integer D = 1
) (
    input  wire                clk,
    input  wire                rst,
    input  wire                advance,
    input  wire                in_valid,
    input  wire [32*LANES-1:0] in_x,
    output reg                 out_valid,
    output reg  [32*LANES-1:0] out_x
);
  localparam integer KW = (D > 1) ? $clog2(D) : 1;  // k bits (D = 1: one bit, k = 0 only)
  localparam integer PB = $clog2(2 * D) + 1;        // position bits, with room for position + D
  localparam integer RUN = 2 * D;
  localparam [PB-1:0] kRun = RUN[PB-1:0];           // beats per run
  localparam [PB-1:0] kHalf = D[PB-1:0];

  reg [32*LANES-1:0] lo [0:(2 << KW)-1];  // address {buffer, k}
  reg [32*LANES-1:0] hi [0:(2 << KW)-1];
  reg wbuf, rbuf;
  reg [PB-1:0] wpos, rpos;  // position in the run being written / read (0 .. 2D-1)

  // the address {buffer, k} of position p of a run in buffer `bufsel` (k = p mod D)
  /* verilator lint_off UNUSEDSIGNAL */  // kk's top bits: k < D
  function automatic [KW:0] addr(input bufsel, input [PB-1:0] p);
    reg [PB-1:0] kk;
    begin
      kk = (p >= kHalf) ? p - kHalf : p;
      addr = {bufsel, kk[KW-1:0]};
    end
  endfunction
  /* verilator lint_on UNUSEDSIGNAL */

  wire same = (rbuf == wbuf);  // reading the run still being written
  wire can_read = !same || (rpos >= kHalf) || (wpos > rpos + kHalf);
  wire rd = advance && can_read;

  always @(posedge clk) begin
    if (advance && in_valid) begin
      if (wpos < kHalf) lo[addr(wbuf, wpos)] <= in_x;
      else hi[addr(wbuf, wpos)] <= in_x;
    end
  end

  wire [32*LANES-1:0] a = lo[addr(rbuf, rpos)];
  wire [32*LANES-1:0] b = hi[addr(rbuf, rpos)];
  wire sub = rpos >= kHalf;
  wire [32*LANES-1:0] y;
  genvar j;
  generate
    for (j = 0; j < LANES; j = j + 1) begin : g_lane
      fp32_add u_add (.a(a[32*j +: 32]), .b({b[32*j+31] ^ sub, b[32*j +: 31]}), .y(y[32*j +: 32]));
    end
  endgenerate

  always @(posedge clk) begin
    if (rst) begin
      wbuf <= 1'b0;
      rbuf <= 1'b0;
      wpos <= {PB{1'b0}};
      rpos <= {PB{1'b0}};
      out_valid <= 1'b0;
    end else if (advance) begin
      if (in_valid) begin
        if (wpos == kRun - 1'b1) begin
          wpos <= {PB{1'b0}};
          wbuf <= !wbuf;
        end else begin
          wpos <= wpos + 1'b1;
        end
      end
      out_valid <= can_read;
      if (can_read) begin
        if (rpos == kRun - 1'b1) begin
          rpos <= {PB{1'b0}};
          rbuf <= !rbuf;
        end else begin
          rpos <= rpos + 1'b1;
        end
      end
    end
  end
  always @(posedge clk) begin
    if (rd) out_x <= y;
  end
endmodule
