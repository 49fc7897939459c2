// fp_mul: the low-bit floating-point multiplier (block `mul`) of FPQVAR-Sim, sign-magnitude, built from lookup tables.
//
// Contract (quant/product_table.hpp): p = value(a) * value(w) * 2^FRAC_BITS exactly, a signed two's-complement
// integer of P_BITS bits. Purely combinational: the PE registers around it.
//
// Structure: every code is a sign bit over a magnitude index, so p = (a_sign ^ w_sign) ? -|p| : |p|, and |p| depends
// on the two magnitude indices only (a DFQ activation keeps its top bit in the index: it is its sign *and* the side
// that says which magnitude format the other bits use). FORM picks how |p| is made:
//   FORM 0  one table |p|[{a_idx, w_idx}] (e2m1: 64 entries of 8 bits; e2m3: 1024 of 12), 4x fewer entries than a
//           table over whole codes;
//   FORM 1  decode each operand's magnitude index to {shift, significand} (e2m3: 1.mmm / 0.mmm and the exponent
//           field), multiply the significands (4 x 4 bits for e2m3) and shift by the sum of the shifts.
// Both forms are bit-identical for every code pair (tests/rtl/mul_test.cpp); which is smaller is a synthesis
// question (docs/synthesis.md: yosys 0.23, xcup): the table for e2m1 (30 vs 56 LUTs) and DFQ (30 vs 37), the
// significand product for e2m3 (49 vs 84), and those are the defaults. Every table (the magnitudes and the decodes)
// is generated from quant/ at build time (tools/gen_rtl_tables -> fp_mul_tables.svh), which also checks the
// sign-magnitude split against quant's whole product table before writing it; nothing here is typed by hand.
//
// PAIR selects the operand formats (ids from fpqvar_pairs.svh; the integer pairs use rtl/mul/int_mul.v):
//   0 `FPQVAR_PAIR_E2M1_E2M1  e2m1 x e2m1            a, w 4 bits, p 9 bits, f = 2 (6*6 = 144 * 2^-2)
//   1 `FPQVAR_PAIR_DFQ4_E2M1  dfq-e1m2-e2m1 x e2m1   a, w 4 bits, p 10 bits, f = 3 (product in units of the scale
//                                                    of a's side: a[3] = 1 -> negative side)
//   2 `FPQVAR_PAIR_E2M3_E2M3  e2m3 x e2m3            a, w 6 bits, p 13 bits, f = 6
// Example (pair 0): a = 4'b0111 (6.0), w = 4'b1011 (-1.5): signs 0 ^ 1 = negative; |p| = entry {111, 011} = 36
// (9.0 * 2^2; form 1: 6.0 * 2 = 3 << 2, 1.5 * 2 = 3 << 0, 9 << 2 = 36); p = -36 = 9'h1dc.
`include "fpqvar_pairs.svh"

module fp_mul #(
    parameter integer PAIR = `FPQVAR_PAIR_E2M1_E2M1,
    // Multiplier form (rtl/mul/fp_mul.v): 0 magnitude table, 1 significand product + shift. Default: the smaller
    // in synthesis (docs/synthesis.md): the table for e2m1 and DFQ, the significand product for e2m3.
    parameter integer FORM = (PAIR == `FPQVAR_PAIR_E2M3_E2M3) ? 1 : 0,
    parameter integer A_BITS = `FPQVAR_MUL_A_BITS(PAIR),
    parameter integer W_BITS = `FPQVAR_MUL_W_BITS(PAIR),
    parameter integer P_BITS = `FPQVAR_MUL_P_BITS(PAIR)
) (
    input  wire        [A_BITS-1:0] a,  // activation code
    input  wire        [W_BITS-1:0] w,  // weight code
    output wire signed [P_BITS-1:0] p   // exact product, units of 2^-f
);
  `include "fp_mul_tables.svh"

  localparam integer MAG_BITS = P_BITS - 1;
  wire negative = a[A_BITS-1] ^ w[W_BITS-1];
  wire [MAG_BITS-1:0] mag;
  // Conditional negation as (x ^ {n}) + n: the XOR folds into the LUTs that feed the carry chain. A zero magnitude
  // with differing signs (-0) gives 0: the product of a zero is +0 in two's complement.
  assign p = $signed(({1'b0, mag} ^ {P_BITS{negative}}) + {{(P_BITS-1){1'b0}}, negative});

  generate
    if (PAIR == `FPQVAR_PAIR_E2M3_E2M3) begin : g_e2m3
      localparam integer IA = `FPQVAR_MUL_E2M3_E2M3_A_IDX_BITS;
      localparam integer IW = `FPQVAR_MUL_E2M3_E2M3_W_IDX_BITS;
      wire [IA-1:0] a_idx = a[IA-1:0];
      wire [IW-1:0] w_idx = w[IW-1:0];
      if (FORM == 0) begin : g_table
        wire [IA+IW-1:0] idx = {a_idx, w_idx};
        assign mag = `FPQVAR_MAG_E2M3_E2M3(idx);
      end else begin : g_sig
        fp_sig_mul #(
            .SA(`FPQVAR_MUL_E2M3_E2M3_A_SIG_BITS), .HA(`FPQVAR_MUL_E2M3_E2M3_A_SH_BITS),
            .SW(`FPQVAR_MUL_E2M3_E2M3_W_SIG_BITS), .HW(`FPQVAR_MUL_E2M3_E2M3_W_SH_BITS), .MAG_BITS(MAG_BITS)
        ) u_sig (.da(`FPQVAR_DEC_E2M3_E2M3_A(a_idx)), .dw(`FPQVAR_DEC_E2M3_E2M3_W(w_idx)), .mag(mag));
      end
    end else if (PAIR == `FPQVAR_PAIR_DFQ4_E2M1) begin : g_dfq4
      localparam integer IA = `FPQVAR_MUL_DFQ4_E2M1_A_IDX_BITS;  // all 4 bits: the side selects e1m2 or e2m1
      localparam integer IW = `FPQVAR_MUL_DFQ4_E2M1_W_IDX_BITS;
      wire [IA-1:0] a_idx = a[IA-1:0];
      wire [IW-1:0] w_idx = w[IW-1:0];
      if (FORM == 0) begin : g_table
        wire [IA+IW-1:0] idx = {a_idx, w_idx};
        assign mag = `FPQVAR_MAG_DFQ4_E2M1(idx);
      end else begin : g_sig
        fp_sig_mul #(
            .SA(`FPQVAR_MUL_DFQ4_E2M1_A_SIG_BITS), .HA(`FPQVAR_MUL_DFQ4_E2M1_A_SH_BITS),
            .SW(`FPQVAR_MUL_DFQ4_E2M1_W_SIG_BITS), .HW(`FPQVAR_MUL_DFQ4_E2M1_W_SH_BITS), .MAG_BITS(MAG_BITS)
        ) u_sig (.da(`FPQVAR_DEC_DFQ4_E2M1_A(a_idx)), .dw(`FPQVAR_DEC_DFQ4_E2M1_W(w_idx)), .mag(mag));
      end
    end else begin : g_e2m1
      localparam integer IA = `FPQVAR_MUL_E2M1_E2M1_A_IDX_BITS;
      localparam integer IW = `FPQVAR_MUL_E2M1_E2M1_W_IDX_BITS;
      wire [IA-1:0] a_idx = a[IA-1:0];
      wire [IW-1:0] w_idx = w[IW-1:0];
      if (FORM == 0) begin : g_table
        wire [IA+IW-1:0] idx = {a_idx, w_idx};
        assign mag = `FPQVAR_MAG_E2M1_E2M1(idx);
      end else begin : g_sig
        fp_sig_mul #(
            .SA(`FPQVAR_MUL_E2M1_E2M1_A_SIG_BITS), .HA(`FPQVAR_MUL_E2M1_E2M1_A_SH_BITS),
            .SW(`FPQVAR_MUL_E2M1_E2M1_W_SIG_BITS), .HW(`FPQVAR_MUL_E2M1_E2M1_W_SH_BITS), .MAG_BITS(MAG_BITS)
        ) u_sig (.da(`FPQVAR_DEC_E2M1_E2M1_A(a_idx)), .dw(`FPQVAR_DEC_E2M1_E2M1_W(w_idx)), .mag(mag));
      end
    end
  endgenerate
endmodule

// fp_sig_mul: |p| = (sig_a * sig_w) << (sh_a + sh_w) from two decoded operands da = {sh_a, sig_a}, dw = {sh_w, sig_w}
// (FORM 1 of fp_mul). The generator guarantees the result fits MAG_BITS for every pair of decodes it emits.
// It lives in fp_mul's file so that every source list naming the multiplier keeps working.
// Example (e2m3): 7.5 -> {2, 4'b1111}, 0.125 -> {0, 4'b0001}: (15 * 1) << 2 = 60 = 0.9375 * 2^6.
/* verilator lint_off DECLFILENAME */
module fp_sig_mul #(
    parameter integer SA = 4,
    parameter integer HA = 2,
    parameter integer SW = 4,
    parameter integer HW = 2,
    parameter integer MAG_BITS = 12
) (
    input  wire [HA+SA-1:0]    da,
    input  wire [HW+SW-1:0]    dw,
    output wire [MAG_BITS-1:0] mag
);
  localparam integer H = ((HA > HW) ? HA : HW) + 1;
  wire [SA+SW-1:0] sig = {{SW{1'b0}}, da[SA-1:0]} * {{SA{1'b0}}, dw[SW-1:0]};
  wire [H-1:0] sh = {{(H-HA){1'b0}}, da[HA+SA-1:SA]} + {{(H-HW){1'b0}}, dw[HW+SW-1:SW]};
  wire [MAG_BITS-1:0] sig_ext = {{(MAG_BITS-SA-SW){1'b0}}, sig};
  assign mag = sig_ext << sh;
endmodule
/* verilator lint_on DECLFILENAME */
