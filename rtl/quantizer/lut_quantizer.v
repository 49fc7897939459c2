// lut_quantizer: groups of FP16 values -> absmax -> FP16 scale -> low-bit codes, L elements per cycle, bit-exact with
// the contract (quant::scale_from_absmax with ScaleType::kFp16, then quant::encode / quant::encode_dual, overflow
// saturating) for e2m1, e1m2, e2m3 and DFQ, rounding to nearest with ties to even (ROUNDING = 0) or ties toward
// +inf (ROUNDING = 1, the FPQVAR kernel's).
//
// How it quantizes (the seed's LUT quantizer, made exact). The code of x is the number of the format's midpoints
// mid_i (i = 0 .. N-1; e2m1: 0.25 0.75 1.25 1.75 2.5 3.5 5) whose scaled value T_i = mid_i * s lies below |x|, ties
// broken by the rounding mode. Once per group the unit turns each T_i into a 16-bit threshold D_i such that, for
// every FP16 x, key(x) = {|x| bits (15), !sign} >= D_i exactly when x rounds past midpoint i:
//   C_i = the smallest FP16 magnitude >= T_i (an exact ceiling: T_i = k_i * S * 2^(e - frac) has up to 20
//         significant bits), exact_i = (C_i == T_i);
//   RNE:      D_i = {C_i + (exact_i && i even), 0}   (a tie at i rounds up to the even index i + 1 iff i is odd)
//   ties-up:  D_i = {C_i, exact_i}                    (a tie rounds up for x > 0, whose key ends in 1, not for x < 0)
// FP16 magnitude patterns order like their values, so each lane compares its 16-bit key with the sorted D_i:
// a binary search, one comparator per magnitude bit (3 for FP4, 5 for FP6), the thresholds shared by all L lanes.
// A T_i past 65504 gets C_i = 0x7C00, which only +-inf reaches (they saturate to the maximum, as encode does); a
// scale of 0 gets every D_i = 0xFFFF (every x encodes to the zero of its sign); NaN gives code 0; -0 gives the code
// of -0. Worked example (e2m1, RNE, s = 1.0107421875 = 0x3C0B): T_2 = 1.25 * s = 1.263427.., C_2 = 0x3D0E
// (1.263671875), not exact, D_2 = 0x7A1C; x = 1.2636 (0x3D0D) has key 0x7A1B < D_2 (index <= 2), x = 1.26367 (0x3D0E)
// has key 0x7A1D >= D_2 (index >= 3).
// The scale: s = RNE_fp16(absmax / qmax) with qmax = q * 2^qe (q odd: 3, 7, 15), the absmax's normalized significand
// divided by q in 18-bit restoring long division (remainder -> sticky), then one rounding; absmax 0 -> 0, a
// quotient that rounds to 0 -> 2^-24, one past 65504 (or absmax = inf) -> 65504. NaN elements are left out of the
// absmax. DFQ keeps two absmaxes (elements with the sign bit set -> the negative side, NEG_FMT) and two scales.
//
// Structure, per group of GROUP = L * B elements (B beats of L lanes):
//   ingest   each accepted beat is written into the group buffer (DEPTH beats, a LUT RAM) and enters the absmax
//            tree (log2(L) registered levels, then a running max over the group's beats);
//   scale    the group's absmax (via a FIFO of groups) goes through a 4-stage elastic pipeline: normalize, divide,
//            round, normalize the scale;
//   thresholds  per side, ceil(NB / B) generator units round the NB family bases (k = 1, 3, 5, ..; NB = 4 e2m1,
//            7 e1m2, 16 e2m3) and derive the other midpoints by exact doubling (below), in C <= B cycles, into the
//            `next` bank: the per-group work, shared by the lanes;
//   quantize the group's beats are read from the buffer once its thresholds are ready; reading its first beat moves
//            `next` into the search pipeline's bank. Each lane: x register, IW = BITS - 1 search stages with a
//            register after every REG_EVERY of them, the code register. The thresholds travel down the pipeline
//            with the beats (one copy per register segment, shared by the lanes), so consecutive groups overlap.
// cfg_fixed = 1 replaces the computed scale(s) by cfg_scale (DFQ: cfg_scale_neg for the negative side) for every
// group: quant's QuantSpec::fixed_scale, here an FP16 value (positive finite or 0; its sign bit is ignored). The
// cfg_* inputs are static: change them only while the unit holds no group.
//
// Handshakes (valid/ready, as rtl/pe/pe.v): a transfer happens on a rising edge where valid && ready.
//   in : in_valid, in_ready, in_x (lane i at in_x[16*i +: 16]); every B accepted beats form a group.
//        in_ready = the buffer has a free beat (a register: no combinational path from the output side).
//   out: out_valid, out_ready, out_code (lane i at out_code[BITS*i +: BITS]), out_last (the group's last beat),
//        out_scale (the group's scale; DFQ: the positive side's), out_scale_neg (DFQ: the negative side's, else 0);
//        the scales are valid with every beat of their group. The output pipeline advances as a whole:
//        advance = !out_valid || out_ready.
// Timing (asserted by tests/rtl/lut_quantizer_test.cpp; rtl/timing.hpp lut_quantizer_*):
//   LATENCY = B + log2(L) + C + NSEG + 6 cycles, NSEG = ceil((BITS - 1) / REG_EVERY), C = the larger side's
//     generator steps: from the cycle whose rising edge accepts a group's first beat (unit empty, beats back to back,
//     out_ready high) to the first cycle with that group's first code beat on the output. The terms: B - 1 cycles for
//     the rest of the group, the leaf registers (1), log2(L) tree levels, the running max and FIFO write (1), the
//     scale pipeline (4), C generator steps, the x register (1), NSEG - 1 search registers and the code register.
//     (L = 32, GROUP 128: e2m1 B = 4, C = 4, NSEG = 3 -> 22 cycles; e2m3 C = 4, NSEG = 5 -> 24.)
//   Interval: one beat per cycle in and out, i.e. one group per B cycles, while the buffer holds the groups in flight:
//     a group's first beat is read LATENCY - NSEG - 1 cycles after it was written, so DEPTH >= LATENCY - NSEG beats
//     keeps in_ready high at out_ready high; a smaller buffer makes in_ready drop (never loses data).
// Widths: L, GROUP powers of two, 2 <= L <= GROUP; DEPTH a power of two >= B.
`include "lut_quantizer_params.svh"

module lut_quantizer #(
    parameter integer FMT = `FPQVAR_QFMT_E2M1,  // the format (DFQ: the positive side's)
    parameter integer DFQ = 0,                  // 1: dual format, NEG_FMT for the elements whose sign bit is set
    parameter integer NEG_FMT = `FPQVAR_QFMT_E1M2,
    parameter integer ROUNDING = 0,             // 0: ties to even; 1: ties toward +inf
    parameter integer L = 32,                   // lanes (elements per cycle)
    parameter integer GROUP = 128,              // elements per quantization group
    parameter integer DEPTH = 32,               // group buffer, in beats
    parameter integer REG_EVERY = 1,            // search stages per register
    parameter integer BITS = `FPQVAR_QFMT_BITS(FMT)
) (
    input  wire              clk,
    input  wire              rst,        // synchronous, active high: empties the unit
    input  wire              in_valid,
    output wire              in_ready,
    input  wire [16*L-1:0]   in_x,
    input  wire              cfg_fixed,
    input  wire [15:0]       cfg_scale,
    input  wire [15:0]       cfg_scale_neg,
    output reg               out_valid,
    input  wire              out_ready,
    output reg  [BITS*L-1:0] out_code,
    output reg               out_last,
    output reg  [15:0]       out_scale,
    output reg  [15:0]       out_scale_neg
);
`include "lut_quantizer_formats.svh"
`include "quantizer/lut_quantizer_math.vh"

  // EP doubled (see the generators): {overflow, sticky, field (5), mantissa (12)}; normal: field + 1 (31: overflow);
  // subnormal (field 0): the pattern shifted left (at most into field 1: the pattern is linear there).
  function automatic [18:0] fpq_double(input [18:0] e);
    begin
      if (e[18]) fpq_double = e;
      else if (e[16:12] == 5'd0) fpq_double = {e[18:17], e[15:0], 1'b0};
      else if (e[16:12] == 5'd30) fpq_double = {1'b1, e[17], 17'd0};
      else fpq_double = {e[18:17], e[16:12] + 5'd1, e[11:0]};
    end
  endfunction
  // The 16-bit threshold D from EP (key {|x|, !sign} >= D exactly when x rounds past the midpoint):
  // C = the FP16 ceiling = (EP >> 2) + (anything below), 0x7C00 past 65504; RNE: D = {C + (exact && even), 0};
  // ties-up: D = {C, exact}; a zero scale: 0xFFFF.
  function automatic [15:0] fpq_threshold(input [18:0] e, input even, input szero);
    reg below, exact, over;
    reg [15:0] c;
    begin
      below = e[17] || (e[1:0] != 2'd0);
      c = {1'b0, e[16:2]} + {15'd0, below};
      over = e[18] || (c >= 16'h7c00);
      exact = !below && !over;
      if (over) c = 16'h7c00;
      if (szero) fpq_threshold = 16'hffff;
      else if (ROUNDING == 0) fpq_threshold = {c[14:0] + {14'd0, exact && even}, 1'b0};
      else fpq_threshold = {c[14:0], exact};
    end
  endfunction

  localparam integer IW = BITS - 1;                  // magnitude index bits
  localparam integer N = (1 << IW) - 1;              // midpoints (thresholds) per side
  localparam integer SIDES = (DFQ != 0) ? 2 : 1;     // side 0: positive (or the only one), side 1: negative
  localparam integer B = GROUP / L;                  // beats per group
  localparam integer BW = (B > 1) ? $clog2(B) : 1;
  localparam integer LOG2L = $clog2(L);
  localparam integer AW = $clog2(DEPTH);
  // generator steps per group: the larger side's (<= B; see the generators below)
  localparam integer NB_P = fpqvar_qfmt_nbase(FMT);
  localparam integer NB_N = (DFQ != 0) ? fpqvar_qfmt_nbase(NEG_FMT) : 1;
  localparam integer C_P = (NB_P + (NB_P + B - 1) / B - 1) / ((NB_P + B - 1) / B);
  localparam integer C_N = (NB_N + (NB_N + B - 1) / B - 1) / ((NB_N + B - 1) / B);
  localparam integer C = (C_P > C_N) ? C_P : C_N;
  localparam integer CW = (C > 1) ? $clog2(C) : 1;
  localparam integer NSEG = (IW + REG_EVERY - 1) / REG_EVERY;
  localparam integer TF = 1 << $clog2(DEPTH / B + 1);  // group FIFO entries (> the groups the buffer holds)
  localparam integer TFW = $clog2(TF);
  localparam integer BANK = SIDES * N * 16 + 32;      // thresholds of a group + its two scales
  localparam [BW-1:0] kLastBeat = B[BW-1:0] - 1'b1;

  // ---------------- ingest: buffer and absmax tree ----------------
  reg [AW:0] wptr, rptr;
  wire [AW:0] fill = wptr - rptr;
  assign in_ready = (fill != DEPTH[AW:0]);
  wire accept = in_valid && in_ready;
  reg [BW-1:0] in_beat;

  reg [16*L-1:0] buffer [0:DEPTH-1];
  always @(posedge clk) begin
    if (accept) buffer[wptr[AW-1:0]] <= in_x;
  end

  // Absmax trees, heap-indexed as in pe.v (leaves L..2L-1 registered from the accepted beat; node n = max(2n, 2n+1)
  // one level later). tree_p holds the positive side's magnitudes (every element when not DFQ), tree_n the negative
  // side's; an element of the other side, or a NaN, enters as 0. (Masking at the leaf registers: yosys maps it with
  // fewer LUTs than masking where the first level reads raw leaves, 871 against 1335 LUT for 32 leaves.)
  (* mem2reg *) reg [14:0] tree_p [1:2*L-1];
  (* mem2reg *) reg [14:0] tree_n [1:2*L-1];
  reg [LOG2L:0] tv;  // valid of the leaf level (bit 0) and of each tree level
  reg [LOG2L:0] tl;  // last beat of its group
  genvar gn;
  generate
    for (gn = 0; gn < L; gn = gn + 1) begin : g_leaf
      wire [15:0] xl = in_x[16*gn +: 16];
      wire nan = (xl[14:10] == 5'h1f) && (xl[9:0] != 10'd0);
      wire to_neg = (DFQ != 0) && xl[15];
      always @(posedge clk) begin
        tree_p[L+gn] <= (nan || to_neg) ? 15'd0 : xl[14:0];
        tree_n[L+gn] <= (nan || !to_neg) ? 15'd0 : xl[14:0];
      end
    end
    for (gn = 1; gn < L; gn = gn + 1) begin : g_node
      always @(posedge clk) begin
        tree_p[gn] <= (tree_p[2*gn] > tree_p[2*gn+1]) ? tree_p[2*gn] : tree_p[2*gn+1];
      end
      // (without DFQ the negative tree's leaves are 0 and synthesis removes it)
      always @(posedge clk) begin
        tree_n[gn] <= (tree_n[2*gn] > tree_n[2*gn+1]) ? tree_n[2*gn] : tree_n[2*gn+1];
      end
    end
  endgenerate
  wire [14:0] root_p = tree_p[1];
  wire [14:0] root_n = tree_n[1];

  // Running max over the group's beats; the group's absmax goes into the group FIFO with its last beat.
  reg [14:0] run_p, run_n;
  reg run_open;  // a beat of the current group has passed the root
  wire [14:0] max_p = (run_open && run_p > root_p) ? run_p : root_p;
  wire [14:0] max_n = (run_open && run_n > root_n) ? run_n : root_n;
  reg [29:0] gfifo [0:TF-1];
  reg [TFW:0] gf_w, gf_r;
  wire gf_empty = (gf_w == gf_r);
  wire gf_pop;

  always @(posedge clk) begin
    if (rst) begin
      wptr <= {(AW+1){1'b0}};
      in_beat <= {BW{1'b0}};
      tv <= {(LOG2L+1){1'b0}};
      tl <= {(LOG2L+1){1'b0}};
      run_open <= 1'b0;
      gf_w <= {(TFW+1){1'b0}};
    end else begin
      if (accept) begin
        wptr <= wptr + 1'b1;
        in_beat <= (in_beat == kLastBeat) ? {BW{1'b0}} : in_beat + 1'b1;
      end
      tv <= (tv << 1) | {{LOG2L{1'b0}}, accept};
      tl <= (tl << 1) | {{LOG2L{1'b0}}, accept && (in_beat == kLastBeat)};
      if (tv[LOG2L]) begin
        run_open <= !tl[LOG2L];
        run_p <= max_p;
        run_n <= max_n;
        if (tl[LOG2L]) begin
          gfifo[gf_w[TFW-1:0]] <= {max_n, max_p};
          gf_w <= gf_w + 1'b1;
        end
      end
    end
  end

  // ---------------- scale pipeline (elastic, 4 stages) and threshold generators ----------------
  // s1: absmax normalized; s2: quotient; s3: scale pattern; s4: scale normalized for the thresholds. Each stage
  // holds one group; a stage advances when the next one is free or advancing.
  reg v1, v2, v3, v4;
  wire gen_start;
  wire adv4 = !v4 || gen_start;
  wire adv3 = !v3 || adv4;
  wire adv2 = !v2 || adv3;
  wire adv1 = !v1 || adv2;
  assign gf_pop = adv1 && !gf_empty;
  wire [29:0] gf_head = gfifo[gf_r[TFW-1:0]];

  always @(posedge clk) begin
    if (rst) begin
      v1 <= 1'b0;
      v2 <= 1'b0;
      v3 <= 1'b0;
      v4 <= 1'b0;
      gf_r <= {(TFW+1){1'b0}};
    end else begin
      if (gf_pop) gf_r <= gf_r + 1'b1;
      if (adv1) v1 <= !gf_empty;
      if (adv2) v2 <= v1;
      if (adv3) v3 <= v2;
      if (adv4) v4 <= v3;
    end
  end

  // Threshold generators. The midpoints come in families (lut_quantizer_formats.svh): the bases i < NB have
  // k_i = 2i + 1, every other midpoint is a base doubled once or twice (e2m1: 5 -> 10 -> 20, 7 -> 14; e2m3:
  // 17..31 -> 34..62 -> 68..116). Per side, US units walk the bases, unit u taking bases u*CS .. u*CS + CS-1 in CS
  // steps (CS = ceil(NB / US) <= B), P = (2j + 1) * sig accumulating 2 * sig per step (no multiplier). Each step
  // turns T_j = P * 2^texp into EP_j: the FP16 pattern of T_j on a grid Q = 2 bits finer than FP16's (12 mantissa
  // bits; subnormals in units of 2^-26), truncated, plus a sticky bit for what lies below. A member 2^d * T_j
  // (d <= Q) is EP_j doubled: +1 in the exponent field when normal, a left shift when subnormal (the FP16 pattern is
  // linear across the subnormal/normal boundary). A subnormal doubling moves an unknown bit into the extended grid's
  // last place, but with d <= Q doublings the bits at and above FP16's last place and the test "anything below it"
  // (extended bits or sticky) stay exact, which is all the ceiling needs: C = (EP >> Q) + (anything below).
  // Step 0 runs in the cycle gen_start is high (from s4's registers), the later steps from the latched scale.
  reg gen_busy;
  reg [CW-1:0] gen_step;
  reg next_full;
  wire consume;  // the output side moves `next` into its pipeline this cycle
  assign gen_start = v4 && !gen_busy && (!next_full || consume);
  wire gen_active = gen_start || gen_busy;
  wire [CW-1:0] step = gen_start ? {CW{1'b0}} : gen_step;
  wire gen_done = gen_active && (step == C[CW-1:0] - 1'b1);
  wire [SIDES*N*16-1:0] next_thr;  // side s (0: positive), threshold i at [(s*N + i)*16 +: 16]
  wire [31:0] next_scales;         // {negative side's scale, positive side's (or the only) scale}

  genvar gs, gu;
  generate
    for (gs = 0; gs < SIDES; gs = gs + 1) begin : g_side
      localparam integer F = (gs == 0) ? FMT : NEG_FMT;
      localparam integer QO = fpqvar_qfmt_qmax_odd(F);
      localparam integer QE7 = fpqvar_qfmt_qmax_exp(F) + 7;
      localparam integer FRAC = fpqvar_qfmt_frac(F);
      localparam [4:0] kQo = QO[4:0];
      localparam signed [9:0] kQe7 = QE7[9:0];
      localparam signed [9:0] kFrac = FRAC[9:0];
      wire [14:0] amax = (gs == 0) ? gf_head[14:0] : gf_head[29:15];
      wire [14:0] fixed = (gs == 0) ? cfg_scale[14:0] : cfg_scale_neg[14:0];
      // s1: absmax = m * 2^ea, m normalized
      reg a_zero1, a_inf1;
      reg [10:0] m1;
      reg signed [9:0] ea1;
      wire [20:0] norm_a = fpq_normalize(amax);
      // s2: q = floor(m * 2^7 / qmax_odd) (>= 2^13: 13+ significant bits), sticky = remainder != 0:
      //     absmax / qmax = (q + fraction) * 2^(ea - qmax_exp - 7)
      reg a_zero2, a_inf2, sticky2;
      reg [17:0] q2;
      reg signed [9:0] e2;
      wire [18:0] div = fpq_div_const({m1, 7'd0}, kQo);
      // s3: RNE onto the FP16 grid; underflow -> 2^-24, overflow -> 65504
      localparam integer QPOS = 17 - $clog2(QO + 1);  // q2's leading one: bit QPOS or QPOS + 1
      reg [15:0] s3_pattern;
      wire [16:0] pat = fpq_scale_round(q2, e2, sticky2, QPOS);
      wire [15:0] computed = a_zero2 ? 16'h0000 :
                             (a_inf2 || pat >= 17'h07c00) ? 16'h7bff :
                             (pat == 17'd0) ? 16'h0001 : {1'b0, pat[14:0]};
      // s4: the scale as s4_sig * 2^s4_exp, s4_sig normalized (s4_zero: a zero scale)
      reg [15:0] s4_pattern;
      reg s4_zero;
      reg [10:0] s4_sig;
      reg signed [9:0] s4_exp;
      wire [20:0] norm_s = fpq_normalize(s3_pattern[14:0]);
      always @(posedge clk) begin
        if (adv1) begin
          a_zero1 <= (amax == 15'd0);
          a_inf1 <= (amax == 15'h7c00);
          m1 <= norm_a[10:0];
          ea1 <= norm_a[20:11];
        end
        if (adv2) begin
          a_zero2 <= a_zero1;
          a_inf2 <= a_inf1;
          q2 <= div[18:1];
          sticky2 <= div[0];
          e2 <= ea1 - kQe7;
        end
        if (adv3) s3_pattern <= cfg_fixed ? {1'b0, fixed} : computed;
        if (adv4) begin
          s4_pattern <= s3_pattern;
          s4_zero <= (s3_pattern[14:0] == 15'd0);
          s4_sig <= norm_s[10:0];
          s4_exp <= norm_s[20:11];
        end
      end

      // The generator's scale: s4's in the start cycle, then the latched copy.
      reg [15:0] g_pattern;
      reg g_zero;
      reg [10:0] g_sig;
      reg signed [9:0] g_exp;
      always @(posedge clk) begin
        if (gen_start) begin
          g_pattern <= s4_pattern;
          g_zero <= s4_zero;
          g_sig <= s4_sig;
          g_exp <= s4_exp;
        end
      end
      wire [10:0] sig = gen_start ? s4_sig : g_sig;
      wire signed [9:0] texp = (gen_start ? s4_exp : g_exp) - kFrac;  // T = P * 2^texp
      wire szero = gen_start ? s4_zero : g_zero;
      assign next_scales[16*gs +: 16] = g_pattern;

      localparam integer NB = fpqvar_qfmt_nbase(F);
      localparam integer US = (NB + B - 1) / B;      // units
      localparam integer CS = (NB + US - 1) / US;    // steps (<= C)
      localparam integer PW = $clog2((2 * NB - 1) * 2048);  // P < (2 NB - 1) * 2^11
      wire [US*3*16-1:0] d_units;  // unit u's thresholds for its base (d = 0) and the base doubled (d = 1, 2)
      for (gu = 0; gu < US; gu = gu + 1) begin : g_unit
        localparam integer K0 = 2 * gu * CS + 1;  // k of the unit's first base
        localparam [PW-1:0] kK0 = K0[PW-1:0];
        reg [PW-1:0] p_acc;
        wire [PW-1:0] p = gen_start ? kK0 * {{(PW-11){1'b0}}, sig} : p_acc;
        always @(posedge clk) begin
          if (gen_active) p_acc <= p + {{(PW-12){1'b0}}, sig, 1'b0};
        end
        wire [18:0] ep;  // {overflow, sticky, EP (17 bits: 5-bit field, 12-bit mantissa)}
        lut_quantizer_ep #(.PW(PW)) u_ep (.p(p), .texp(texp), .ep(ep));
        wire [18:0] ep1 = fpq_double(ep);
        wire [18:0] ep2 = fpq_double(ep1);
        wire even = ((gu * CS) % 2 == 0) ^ step[0];  // parity of the base (its members share it)
        assign d_units[16*(3*gu) +: 16] = fpq_threshold(ep, even, szero);
        assign d_units[16*(3*gu+1) +: 16] = fpq_threshold(ep1, even, szero);
        assign d_units[16*(3*gu+2) +: 16] = fpq_threshold(ep2, even, szero);
      end
      wire unused_d_units = ^d_units;  // the doublings of bases without such members
      for (gu = 0; gu < N; gu = gu + 1) begin : g_thr
        localparam integer BASE = fpqvar_qfmt_base(F, gu);
        localparam integer DBL = fpqvar_qfmt_dbl(F, gu);
        localparam integer STEP = BASE % CS;
        localparam integer SRC = 3 * (BASE / CS) + DBL;
        reg [15:0] d;
        always @(posedge clk) begin
          if (gen_active && step == STEP[CW-1:0]) d <= d_units[16*SRC +: 16];
        end
        assign next_thr[(gs*N + gu)*16 +: 16] = d;
      end
    end
    if (SIDES == 1) begin : g_no_neg
      assign next_scales[31:16] = 16'd0;
    end
  endgenerate
  wire [BANK-1:0] next_bank = {next_scales, next_thr};

  always @(posedge clk) begin
    if (rst) begin
      gen_busy <= 1'b0;
      gen_step <= {CW{1'b0}};
      next_full <= 1'b0;
    end else begin
      if (gen_active) begin
        gen_busy <= !gen_done;
        gen_step <= gen_done ? {CW{1'b0}} : step + 1'b1;
      end
      if (gen_done) next_full <= 1'b1;
      else if (consume) next_full <= 1'b0;
    end
  end

  // ---------------- quantize: read, search, output ----------------
  wire advance = !out_valid || out_ready;
  reg [BW-1:0] rd_beat;
  wire can_read = (rd_beat != {BW{1'b0}}) || next_full;
  wire rd = advance && can_read;
  assign consume = rd && (rd_beat == {BW{1'b0}});

  reg [16*L-1:0] x_q;
  reg [NSEG:0] sv;   // valid of the x register (bit 0) and of each segment's register
  reg [NSEG:0] sl;   // last beat of its group
  reg [BANK-1:0] seg_bank [0:NSEG-1];  // segment g's thresholds: [0] loads from `next`, [g] from [g-1]

  always @(posedge clk) begin
    if (rst) begin
      rptr <= {(AW+1){1'b0}};
      rd_beat <= {BW{1'b0}};
      sv <= {(NSEG+1){1'b0}};
      out_valid <= 1'b0;
    end else if (advance) begin
      if (rd) begin
        rptr <= rptr + 1'b1;
        rd_beat <= (rd_beat == kLastBeat) ? {BW{1'b0}} : rd_beat + 1'b1;
      end
      sv <= (sv << 1) | {{NSEG{1'b0}}, rd};
      out_valid <= sv[NSEG-1];
    end
  end
  always @(posedge clk) begin
    if (advance) begin
      if (rd) x_q <= buffer[rptr[AW-1:0]];
      sl <= (sl << 1) | {{NSEG{1'b0}}, rd && (rd_beat == kLastBeat)};
      out_last <= sl[NSEG-1];
      out_scale <= seg_bank[NSEG-1][SIDES*N*16 +: 16];
      out_scale_neg <= seg_bank[NSEG-1][SIDES*N*16 + 16 +: 16];
    end
  end
  generate
    for (gn = 0; gn < NSEG; gn = gn + 1) begin : g_bank
      always @(posedge clk) begin
        if (gn == 0) begin
          if (consume) seg_bank[0] <= next_bank;
        end else if (advance) begin
          seg_bank[gn] <= seg_bank[gn-1];
        end
      end
    end
  endgenerate

  wire [NSEG*BANK-1:0] banks;
  generate
    for (gn = 0; gn < NSEG; gn = gn + 1) begin : g_banks
      assign banks[gn*BANK +: BANK] = seg_bank[gn];
    end
    for (gn = 0; gn < L; gn = gn + 1) begin : g_lane
      wire [BITS-1:0] code;
      lut_quantizer_lane #(.IW(IW), .N(N), .SIDES(SIDES), .BANK(BANK), .NSEG(NSEG), .REG_EVERY(REG_EVERY)) u_lane (
          .clk(clk), .advance(advance), .x(x_q[16*gn +: 16]), .banks(banks), .code(code));
      always @(posedge clk) begin
        if (advance) out_code[BITS*gn +: BITS] <= code;
      end
    end
  endgenerate
  wire unused_bits = ^{sl[NSEG], sv[NSEG], cfg_scale[15], cfg_scale_neg[15]};
endmodule
