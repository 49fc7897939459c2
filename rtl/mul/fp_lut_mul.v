// fp_lut_mul: the low-bit floating-point multiplier of FPQVAR-Sim, built from a lookup table.
//
// Contract (quant/product_table.hpp): p = value(a) * value(w) * 2^FRAC_BITS exactly, a signed two's-complement
// integer of P_BITS bits. The table content is generated from quant/ at build time (tools/gen_rtl_tables ->
// fp_lut_mul_tables.svh); nothing here is typed by hand. Purely combinational: the PE registers around it.
//
// PAIR selects the operand formats (ids from fp_lut_mul_params.svh):
//   0 `FPQVAR_PAIR_E2M1_E2M1  e2m1 x e2m1            a, w 4 bits, p 9 bits, f = 2 (6*6 = 144 * 2^-2)
//   1 `FPQVAR_PAIR_DFQ4_E2M1  dfq-e1m2-e2m1 x e2m1   a, w 4 bits, p 10 bits, f = 3 (product in units of the scale
//                                                    of a's side: a[3] = 1 -> negative side)
//   2 `FPQVAR_PAIR_E2M3_E2M3  e2m3 x e2m3            a, w 6 bits, p 13 bits, f = 6
// Example (pair 0): a = 4'b0111 (6.0), w = 4'b1011 (-1.5): 6.0 * -1.5 = -9.0 = -36 * 2^-2 -> p = 9'h1dc.
`include "fp_lut_mul_params.svh"

module fp_lut_mul #(
    parameter integer PAIR = `FPQVAR_PAIR_E2M1_E2M1,
    parameter integer A_BITS = `FPQVAR_MUL_A_BITS(PAIR),
    parameter integer W_BITS = `FPQVAR_MUL_W_BITS(PAIR),
    parameter integer P_BITS = `FPQVAR_MUL_P_BITS(PAIR)
) (
    input  wire        [A_BITS-1:0] a,  // activation code
    input  wire        [W_BITS-1:0] w,  // weight code
    output wire signed [P_BITS-1:0] p   // exact product, units of 2^-f
);
  `include "fp_lut_mul_tables.svh"

  wire [A_BITS+W_BITS-1:0] index = {a, w};
  generate
    if (PAIR == `FPQVAR_PAIR_E2M3_E2M3) begin : g_e2m3
      assign p = FPQVAR_ROM_E2M3_E2M3[index * `FPQVAR_MUL_E2M3_E2M3_ROM_STRIDE +: P_BITS];
    end else if (PAIR == `FPQVAR_PAIR_DFQ4_E2M1) begin : g_dfq4
      assign p = FPQVAR_ROM_DFQ4_E2M1[index * `FPQVAR_MUL_DFQ4_E2M1_ROM_STRIDE +: P_BITS];
    end else begin : g_e2m1
      assign p = FPQVAR_ROM_E2M1_E2M1[index * `FPQVAR_MUL_E2M1_E2M1_ROM_STRIDE +: P_BITS];
    end
  endgenerate
endmodule
