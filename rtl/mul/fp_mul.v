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
// question (docs/synthesis.md: yosys 0.23, xcup): the table for e2m1 and DFQ, the significand product for e2m3, and
// those are the defaults. The magnitude is module fp_mag (below), which the PE (rtl/pe/pe.v) uses directly: it
// folds the sign into its adder tree instead of negating each product. Every table (the magnitudes and the decodes)
// is generated from quant/ at build time (tools/gen_rtl_tables -> fp_mul_tables.svh), which also checks the
// sign-magnitude split against quant's whole product table before writing it; nothing here is typed by hand.
//
// PAIR selects the operand formats (ids from fpqvar_pairs.svh; the integer pairs use rtl/mul/int_mul.v):
//   0 `FPQVAR_PAIR_E2M1_E2M1  e2m1 x e2m1            a, w 4 bits, p 9 bits, f = 2 (6*6 = 144 * 2^-2)
//   1 `FPQVAR_PAIR_DFQ4_E2M1  dfq-e1m2-e2m1 x e2m1   a, w 4 bits, p 10 bits, f = 3 (product in units of the scale
//                                                    of a's side: a[3] = 1 -> negative side)
//   2 `FPQVAR_PAIR_E2M3_E2M3  e2m3 x e2m3            a, w 6 bits, p 13 bits, f = 6
// Negation: p = (|p| ^ {n}) + n on one carry chain, n = a_sign ^ w_sign: per output bit one small LUT (|p|_k ^ n)
// feeding the chain. The magnitude is kept a hierarchy of its own through synthesis (keep_hierarchy on u_mag; the
// synthesis script flattens after mapping): left to itself, yosys merges the XOR into the table and maps every bit
// as an 8-input function (4 LUT6 + 3 MUXF each: 30 LUT + 21 MUXF for e2m1, where the table alone is 7 LUT6 + 1 LUT4
// and the negation 8 small LUTs: 16 LUT, no MUXF). Not for the e2m3 significand product, which is smaller merged.
// Example (pair 0): a = 4'b0111 (6.0), w = 4'b1011 (-1.5): signs 0 ^ 1 = negative; |p| = entry {111, 011} = 36
// (9.0 * 2^2; form 1: 6.0 * 2 = 3 << 2, 1.5 * 2 = 3 << 0, 9 << 2 = 36); p = -36 = 9'h1dc.
`include "fpqvar_pairs.svh"

module fp_mul #(
    parameter integer PAIR = `FPQVAR_PAIR_E2M1_E2M1,
    // Multiplier form: 0 magnitude table, 1 significand product + shift. Default: the smaller in synthesis
    // (docs/synthesis.md): the table for e2m1 and DFQ, the significand product for e2m3.
    parameter integer FORM = (PAIR == `FPQVAR_PAIR_E2M3_E2M3) ? 1 : 0,
    parameter integer A_BITS = `FPQVAR_MUL_A_BITS(PAIR),
    parameter integer W_BITS = `FPQVAR_MUL_W_BITS(PAIR),
    parameter integer P_BITS = `FPQVAR_MUL_P_BITS(PAIR)
) (
    input  wire        [A_BITS-1:0] a,  // activation code
    input  wire        [W_BITS-1:0] w,  // weight code
    output wire signed [P_BITS-1:0] p   // exact product, units of 2^-f
);
  localparam integer IA = `FPQVAR_MUL_A_IDX_BITS(PAIR);
  localparam integer IW = `FPQVAR_MUL_W_IDX_BITS(PAIR);
  localparam integer MAG_BITS = `FPQVAR_MUL_MAG_BITS(PAIR);
  wire negative = a[A_BITS-1] ^ w[W_BITS-1];
  wire [MAG_BITS-1:0] mag;
  generate
    if (PAIR == `FPQVAR_PAIR_E2M3_E2M3 && FORM == 1) begin : g_merged
      // The e2m3 significand product and the negation synthesize smaller together, spelled here as before fp_mag
      // existed: 49 LUT, against 56 with the magnitude kept apart and 55 through fp_mag (docs/synthesis.md).
      /* verilator lint_off UNUSEDPARAM */
      `include "fp_mul_tables.svh"
      /* verilator lint_on UNUSEDPARAM */
      fp_sig_mul #(
          .SA(`FPQVAR_MUL_E2M3_E2M3_A_SIG_BITS), .HA(`FPQVAR_MUL_E2M3_E2M3_A_SH_BITS),
          .SW(`FPQVAR_MUL_E2M3_E2M3_W_SIG_BITS), .HW(`FPQVAR_MUL_E2M3_E2M3_W_SH_BITS), .MAG_BITS(MAG_BITS)
      ) u_sig (.da(`FPQVAR_DEC_E2M3_E2M3_A(a[IA-1:0])), .dw(`FPQVAR_DEC_E2M3_E2M3_W(w[IW-1:0])), .mag(mag));
    end else begin : g_kept
      (* keep_hierarchy *) fp_mag #(.PAIR(PAIR), .FORM(FORM)) u_mag (.a_idx(a[IA-1:0]), .w_idx(w[IW-1:0]), .mag(mag));
    end
  endgenerate
  // Conditional negation as (x ^ {n}) + n: the XOR folds into the LUTs that feed the carry chain. A zero magnitude
  // with differing signs (-0) gives 0: the product of a zero is +0 in two's complement.
  wire [P_BITS-1:0] mag_ext = {{(P_BITS-MAG_BITS){1'b0}}, mag};
  assign p = $signed((mag_ext ^ {P_BITS{negative}}) + {{(P_BITS-1){1'b0}}, negative});
endmodule

// fp_mag: |product| of two magnitude indices, units 2^-f (FORM 0: one table; FORM 1: significand product + shift).
// A DFQ activation's index includes its side bit (the top one). Combinational. Used by fp_mul (which adds the sign)
// and by the PE (rtl/pe/pe.v), which registers it as a tree leaf and handles the sign in the tree.
// Example (pair 0): a_idx = 3'b111 (6.0), w_idx = 3'b011 (1.5): mag = 36 (9.0 * 2^2).
/* verilator lint_off DECLFILENAME */
module fp_mag #(
    parameter integer PAIR = `FPQVAR_PAIR_E2M1_E2M1,
    parameter integer FORM = (PAIR == `FPQVAR_PAIR_E2M3_E2M3) ? 1 : 0,
    parameter integer IA = `FPQVAR_MUL_A_IDX_BITS(PAIR),
    parameter integer IW = `FPQVAR_MUL_W_IDX_BITS(PAIR),
    parameter integer MAG_BITS = `FPQVAR_MUL_MAG_BITS(PAIR)
) (
    input  wire [IA-1:0]       a_idx,
    input  wire [IW-1:0]       w_idx,
    output wire [MAG_BITS-1:0] mag
);
  `include "fp_mul_tables.svh"
  generate
    if (PAIR == `FPQVAR_PAIR_E2M3_E2M3) begin : g_e2m3
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
