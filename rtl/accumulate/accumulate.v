// accumulate: the dequantize-and-accumulate unit. Per quantization group it takes the PE's exact integer group
// sum(s) and the group's scales, and accumulates the group partials in FP32 in arrival (= ascending group) order,
// bit-exact with quant/pe_contract.hpp:
//   combined = RNE_fp32(s_a * s_w)                                        (quant::combined_scale)
//   partial  = RNE_fp32(sum * 2^-f * combined)                            (quant::group_partial)
//   DFQ:       RNE_fp32(sum_neg * 2^-f * combined_neg + sum_pos * 2^-f * combined_pos), one rounding of the exact
//              sum of the two exact products                              (quant::dfq_group_partial)
//   acc = +0; acc = RNE_fp32(acc + partial) per group; the group flagged in_last ends the output: acc goes out and
//   the next group starts a new output from +0.
//
// How the partial is computed exactly. Each term |sum| * M * 2^(E - f) (M the 24-bit significand of `combined`,
// |sum| < 2^(SUM_BITS-1)) is an exact (SUM_BITS-1+24)-bit integer product, normalized so that its leading one sits
// at the top of a PW-bit window. Without DFQ that window is rounded once to FP32 (below). With DFQ the term with the
// lower leading exponent is aligned to the other's in a window of PW + 3 bits (guard, round, and a sticky bit that
// ORs everything shifted further), added or subtracted, normalized and rounded once: the result is the correctly
// rounded exact sum, by the argument of an ordinary FP adder (an alignment of 2 or more leaves at most one bit of
// normalization, and the rounding point lies PW - 24 bits above the sticky bit; an alignment of 0 or 1 loses nothing).
// The rounding to FP32 keeps 24 bits (fewer for a subnormal result: the window is first shifted right until its last
// kept bit weighs 2^-149), rounds to nearest even on guard and sticky, and overflows to +-inf.
// Worked example (e2m1 x e2m1, f = 2; quant/pe_contract.hpp's): sum = 28, s_a = 0.5, s_w = 3: combined = 1.5 =
// 0xC00000 * 2^-23; term = 28 * 0xC00000 * 2^-25 = 10.5 exactly: partial 0x41280000.
// Specials: a term with combined = +inf is +-inf (NaN when its sum is 0, as 0 * inf in the contract's double);
// +inf + -inf is NaN; NaN scales give NaN. The tests compare NaN results as NaN (payloads are not in the contract).
// The accumulation uses rtl/fp/fp32_add.v (the FP32 add of the contract).
//
// Handshakes (valid/ready as rtl/pe/pe.v): in_valid/in_ready carry one group (its sums, its scales, in_last);
// out_valid/out_ready one accumulated output. The pipeline advances as a whole: advance = !out_valid || out_ready,
// in_ready = advance.
// Timing (asserted by tests/rtl/accumulate_test.cpp; rtl/timing.hpp):
//   LATENCY = 5 cycles: an output whose last group is accepted in cycle t is valid in cycle t + 5 (input registers,
//   combined scales, products, partial, accumulator/output register).
//   Interval: one group per cycle (the accumulator adds in one cycle: a combinational FP32 add in the loop).
// SUM_BITS: width of the signed group sums (the contract bounds |sum| < 2^29: 30 bits are enough for any group).
module accumulate #(
    parameter integer SUM_BITS = 30,
    parameter integer FRAC_BITS = 2,   // f: the product unit 2^-f of the multiplier pair (2 e2m1, 3 DFQ, 6 e2m3)
    parameter integer DFQ = 0          // 1: two sums per group (negative-side and positive-side activations)
) (
    input  wire                       clk,
    input  wire                       rst,
    input  wire                       in_valid,
    output wire                       in_ready,
    input  wire                       in_last,       // the last group of this output
    input  wire signed [SUM_BITS-1:0] in_sum,        // DFQ: the positive side's sum
    input  wire signed [SUM_BITS-1:0] in_sum_neg,    // DFQ: the negative side's sum (unused otherwise)
    input  wire [31:0]                in_scale_a,    // FP32; DFQ: the positive side's activation scale
    input  wire [31:0]                in_scale_a_neg,
    input  wire [31:0]                in_scale_w,
    output reg                        out_valid,
    input  wire                       out_ready,
    output reg  [31:0]                out_acc
);
  localparam integer MW = SUM_BITS;       // |sum| width (|-2^(SUM_BITS-1)| included)
  localparam integer PW = MW + 24;        // exact product width
  localparam integer AW = PW + 3;         // aligned window: product, guard, round, sticky

  wire advance = !out_valid || out_ready;
  assign in_ready = advance;

  // ---- stage 0: input registers ----
  reg v0, l0;
  reg signed [SUM_BITS-1:0] sum_p0, sum_n0;
  reg [31:0] sa_p0, sa_n0, sw0;
  // ---- stage 1: combined scales ----
  reg v1, l1;
  reg signed [SUM_BITS-1:0] sum_p1, sum_n1;
  reg [31:0] c_p1, c_n1;
  wire [31:0] c_p, c_n;
  fp32_mul u_cp (.a(sa_p0), .b(sw0), .y(c_p));
  generate
    if (DFQ != 0) begin : g_cn
      fp32_mul u_cn (.a(sa_n0), .b(sw0), .y(c_n));
    end else begin : g_no_cn
      assign c_n = 32'd0;
      wire unused_n = ^{sa_n0, sum_n0};
    end
  endgenerate

  // ---- stage 2: exact products, normalized: term = (-1)^s * mant * 2^(ev - (PW-1)), mant[PW-1] = 1 ----
  // A term's class: 0 finite non-zero, 1 zero, 2 infinite, 3 NaN.
  reg v2, l2;
  reg [PW+14:0] term_p_q, term_n_q;

  /* verilator lint_off UNUSEDSIGNAL */  // c[31]: scales are positive (the sign is ignored)
  function automatic [PW+1+2+12-1:0] make_term(input signed [SUM_BITS-1:0] sum, input [31:0] c);
    // returns {class (2), sign (1), exponent of the leading bit (12, signed), normalized mantissa (PW)}
    reg [MW-1:0] mag;
    reg [23:0] mc;
    reg [PW-1:0] prod, norm;
    reg signed [11:0] elsb, ev;
    reg [1:0] cls;
    reg [6:0] lz;
    integer i;
    begin
      mag = sum[SUM_BITS-1] ? -sum : sum;
      mc = {c[30:23] != 8'd0, c[22:0]};
      prod = {{(PW-MW){1'b0}}, mag} * {{(PW-24){1'b0}}, mc};
      // value = prod * 2^(max(field,1) - 150 - f)
      elsb = $signed({4'd0, (c[30:23] == 8'd0) ? 8'd1 : c[30:23]}) - 12'sd150 - FRAC_BITS[11:0];
      lz = 7'd0;
      for (i = 0; i < PW; i = i + 1)
        if (prod[i]) lz = PW[6:0] - 7'd1 - i[6:0];
      norm = prod << lz;
      ev = elsb + $signed({5'd0, PW[6:0]}) - 12'sd1 - $signed({5'd0, lz});
      if (c[30:23] == 8'hff) cls = (c[22:0] != 23'd0 || sum == 0) ? 2'd3 : 2'd2;  // NaN scale, 0 * inf: NaN
      else if (sum == 0 || c[30:0] == 31'd0) cls = 2'd1;
      else cls = 2'd0;
      make_term = {cls, sum[SUM_BITS-1], ev, norm};
    end
  endfunction
  /* verilator lint_on UNUSEDSIGNAL */
  wire [PW+14:0] term_p = make_term(sum_p1, c_p1);
  wire [PW+14:0] term_n = make_term(sum_n1, c_n1);

  // ---- stage 3: the partial, one rounding ----
  reg v3, l3;
  reg [31:0] partial3;

  // Rounds (-1)^sign * r * 2^(ev - (RW-1)) (r[RW-1] = 1, plus a sticky tail) to FP32.
  localparam integer RW = AW;
  /* verilator lint_off UNUSEDSIGNAL */  // field[11], packed_val[33:32]: zero wherever the result is used
  function automatic [31:0] round_fp32(input sign, input [RW-1:0] r, input signed [11:0] ev, input tail);
    reg subnormal;
    reg signed [11:0] dsh;
    reg [7:0] sh;
    reg [RW-1:0] rd, lost_mask;
    reg lost, guard, sticky, inc;
    reg [23:0] kept;
    reg [24:0] rounded;
    reg signed [11:0] field;
    reg [33:0] packed_val;
    begin
      subnormal = ev < -12'sd126;
      dsh = -12'sd126 - ev;
      sh = !subnormal ? 8'd0 : (dsh > RW[11:0]) ? RW[7:0] : dsh[7:0];
      rd = r >> sh;
      lost_mask = (sh >= RW[7:0]) ? {RW{1'b1}} : (({{(RW-1){1'b0}}, 1'b1} << sh) - 1'b1);
      lost = (r & lost_mask) != {RW{1'b0}};
      kept = rd[RW-1 -: 24];
      guard = rd[RW-25];
      sticky = ((rd & ({RW{1'b1}} >> 25)) != {RW{1'b0}}) || lost || tail;
      inc = guard && (sticky || kept[0]);
      rounded = {1'b0, kept} + {24'd0, inc};
      field = subnormal ? 12'sd0 : ev + 12'sd126;
      packed_val = {field[10:0], 23'd0} + {9'd0, rounded};
      if (!subnormal && (ev > 12'sd127 || packed_val[31:23] >= 9'd255)) round_fp32 = {sign, 31'h7f800000};
      else round_fp32 = {sign, packed_val[30:0]};
    end
  endfunction
  /* verilator lint_on UNUSEDSIGNAL */

  wire [31:0] partial;
  generate
    if (DFQ == 0) begin : g_single
      wire [1:0] cls = term_p_q[PW+14 -: 2];
      wire s = term_p_q[PW+12];
      wire signed [11:0] ev = term_p_q[PW+11 -: 12];
      wire [PW-1:0] m = term_p_q[PW-1:0];
      assign partial = (cls == 2'd3) ? 32'hffc00000 :
                       (cls == 2'd2) ? {s, 31'h7f800000} :
                       (cls == 2'd1) ? {s, 31'd0} : round_fp32(s, {m, 3'b000}, ev, 1'b0);
      wire unused_n = ^term_n_q;
    end else begin : g_dual
      wire [1:0] cp = term_p_q[PW+14 -: 2], cn = term_n_q[PW+14 -: 2];
      wire sp = term_p_q[PW+12], sn = term_n_q[PW+12];
      wire signed [11:0] ep = term_p_q[PW+11 -: 12], en = term_n_q[PW+11 -: 12];
      wire [PW-1:0] mp = term_p_q[PW-1:0], mn = term_n_q[PW-1:0];
      // x: the term of larger magnitude (leading exponent, then mantissa), so that x - z >= 0; a zero term is x only
      // when both are zero
      wire n_first = (cp == 2'd1) || (cn == 2'd0 && (en > ep || (en == ep && mn > mp)));
      wire sx = n_first ? sn : sp, sz = n_first ? sp : sn;
      wire signed [11:0] ex = n_first ? en : ep, ez = n_first ? ep : en;
      wire [PW-1:0] mx = n_first ? mn : mp;
      wire [PW-1:0] mz = (n_first ? (cp == 2'd1) : (cn == 2'd1)) ? {PW{1'b0}} : (n_first ? mp : mn);
      wire signed [11:0] dl = ex - ez;  // >= 0 when z is non-zero
      wire far = (mz == {PW{1'b0}}) || dl >= AW[11:0];
      wire [7:0] d = far ? 8'd0 : dl[7:0];
      wire [AW-1:0] z_full = {mz, 3'b000};
      wire [AW-1:0] z_shift = far ? {AW{1'b0}} : (z_full >> d);
      wire [AW-1:0] z_lost = far ? {AW{1'b1}} : (({{(AW-1){1'b0}}, 1'b1} << d) - 1'b1);
      wire z_sticky = (z_full & z_lost) != {AW{1'b0}};
      wire [AW-1:0] z_al = {z_shift[AW-1:1], z_shift[0] | z_sticky};
      wire sub = sx ^ sz;
      wire [AW:0] sum = sub ? ({1'b0, mx, 3'b000} - {1'b0, z_al}) : ({1'b0, mx, 3'b000} + {1'b0, z_al});
      reg [7:0] lz;
      integer i;
      always @* begin
        lz = 8'd0;
        for (i = 0; i < AW; i = i + 1)
          if (sum[i]) lz = AW[7:0] - 8'd1 - i[7:0];
      end
      wire [AW-1:0] norm = sum[AW] ? {sum[AW:2], sum[1] | sum[0]} : (sum[AW-1:0] << lz);
      wire signed [11:0] ev = sum[AW] ? ex + 12'sd1 : ex - $signed({4'd0, lz});
      wire both_zero = (cp == 2'd1) && (cn == 2'd1);
      wire any_nan = (cp == 2'd3) || (cn == 2'd3) || (cp == 2'd2 && cn == 2'd2 && sp != sn);
      assign partial = any_nan ? 32'hffc00000 :
                       (cp == 2'd2) ? {sp, 31'h7f800000} :
                       (cn == 2'd2) ? {sn, 31'h7f800000} :
                       (both_zero || sum == {(AW+1){1'b0}}) ? 32'd0 : round_fp32(sx, norm, ev, 1'b0);
    end
  endgenerate

  // ---- stage 4: the accumulator ----
  reg [31:0] acc;
  wire [31:0] acc_sum;
  fp32_add u_acc (.a(acc), .b(partial3), .y(acc_sum));

  always @(posedge clk) begin
    if (rst) begin
      v0 <= 1'b0;
      v1 <= 1'b0;
      v2 <= 1'b0;
      v3 <= 1'b0;
      out_valid <= 1'b0;
      acc <= 32'd0;
    end else if (advance) begin
      v0 <= in_valid;
      v1 <= v0;
      v2 <= v1;
      v3 <= v2;
      out_valid <= v3 && l3;
      if (v3) acc <= l3 ? 32'd0 : acc_sum;
    end
  end
  always @(posedge clk) begin
    if (advance) begin
      l0 <= in_last;
      sum_p0 <= in_sum;
      sum_n0 <= in_sum_neg;
      sa_p0 <= in_scale_a;
      sa_n0 <= in_scale_a_neg;
      sw0 <= in_scale_w;
      l1 <= l0;
      sum_p1 <= sum_p0;
      sum_n1 <= (DFQ != 0) ? sum_n0 : {SUM_BITS{1'b0}};
      c_p1 <= c_p;
      c_n1 <= c_n;
      l2 <= l1;
      term_p_q <= term_p;
      term_n_q <= term_n;
      l3 <= l2;
      partial3 <= partial;
      if (v3 && l3) out_acc <= acc_sum;
    end
  end
endmodule
