// gen_rtl_tables: writes the LUT multipliers' product tables, taken from quant/ (make_product_table), as Verilog
// include files, so that the RTL and the arithmetic contract cannot drift apart. Run by the build (rtl/CMakeLists.txt)
// whenever quant/ changes; never edit its output by hand.
//
// Output, in --out DIR:
//   fp_lut_mul_params.svh     `define constants (pair ids, code widths, product widths, fixed-point units), guarded;
//                             safe to include anywhere, including at file scope.
//   fp_lut_mul_tables.svh     one constant ROM per pair, FPQVAR_ROM_<pair>, entry {a, w} = the product; include
//                             it inside a module body (rtl/mul/fp_lut_mul.v does).
// Each file is written to a temporary name and renamed into place, so an interrupted run never leaves a file that
// looks complete.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "quant/format.hpp"
#include "quant/product_table.hpp"

namespace {

namespace q = fpqvar::quant;

// The multiplier pairs the RTL supports, in pair-id order (the PAIR parameter of fp_lut_mul / pe / pe_array).
struct Pair {
  const char* id;  // Verilog identifier suffix
  const char* activation;
  const char* weight;
};
constexpr Pair kPairs[] = {
    {"E2M1_E2M1", "e2m1", "e2m1"},           // 0: W4A4
    {"DFQ4_E2M1", "dfq-e1m2-e2m1", "e2m1"},  // 1: W4A4 fc2 input (DFQ activation)
    {"E2M3_E2M3", "e2m3", "e2m3"},           // 2: W6A6
};

// Bits per ROM entry: the product width rounded up to a power of two, so that the entry select {a, w} * stride is
// a plain shift of the index. With a stride of 10 (the DFQ pair's width) yosys builds a multiplier and a barrel
// shifter for the select (~250 LUTs); with 16 the same table maps to ~33 LUTs.
int rom_stride(int width_bits) {
  int s = 1;
  while (s < width_bits) s *= 2;
  return s;
}

std::string banner(const std::string& file_name) {
  return fmt::format(
      "// {} -- GENERATED FILE, DO NOT EDIT.\n"
      "// Source: quant/product_table.cpp (fpqvar::quant::make_product_table) and quant/format.cpp (the presets),\n"
      "// written by tools/gen_rtl_tables/gen_rtl_tables.cpp.\n"
      "// Regenerate: cmake --build <build-dir> --target fpqvar_rtl_tables\n"
      "//         or: <build-dir>/tools/gen_rtl_tables/gen_rtl_tables --out <dir>\n",
      file_name);
}

std::string params_text() {
  std::string s = banner("fp_lut_mul_params.svh");
  s += "`ifndef FPQVAR_FP_LUT_MUL_PARAMS_SVH\n`define FPQVAR_FP_LUT_MUL_PARAMS_SVH\n";
  s += "// Per pair: activation code bits, weight code bits, product bits (two's complement), f (product unit 2^-f),\n"
       "// and whether the activation is a DFQ code whose top bit selects the negative side (1) or the positive one (0).\n";
  for (std::size_t i = 0; i < std::size(kPairs); ++i) {
    const Pair& p = kPairs[i];
    const q::ProductTable t = q::make_product_table(q::format_by_name(p.activation), q::format_by_name(p.weight));
    s += fmt::format("\n// pair {}: {} x {}, products {} .. {}\n", i, t.a.name, t.b.name, t.min_product,
                     t.max_product);
    s += fmt::format("`define FPQVAR_PAIR_{} {}\n", p.id, i);
    s += fmt::format("`define FPQVAR_MUL_{}_A_BITS {}\n", p.id, t.a.bits);
    s += fmt::format("`define FPQVAR_MUL_{}_W_BITS {}\n", p.id, t.b.bits);
    s += fmt::format("`define FPQVAR_MUL_{}_P_BITS {}\n", p.id, t.width_bits);
    s += fmt::format("`define FPQVAR_MUL_{}_FRAC_BITS {}\n", p.id, t.frac_bits);
    s += fmt::format("`define FPQVAR_MUL_{}_DFQ {}\n", p.id, t.a.kind == q::FormatKind::kDual ? 1 : 0);
    s += fmt::format("`define FPQVAR_MUL_{}_ROM_STRIDE {}\n", p.id, rom_stride(t.width_bits));
  }
  // Selectors by pair id, so that every module derives its port widths from PAIR the same way:
  // `FPQVAR_MUL_A_BITS(PAIR) is the activation code width of pair PAIR (pair 0 for an unknown id).
  s += "\n// Per-pair widths selected by pair id (an unknown id selects pair 0).\n";
  for (const char* field : {"A_BITS", "W_BITS", "P_BITS"}) {
    std::string expr = fmt::format("`FPQVAR_MUL_{}_{}", kPairs[0].id, field);
    for (std::size_t i = 1; i < std::size(kPairs); ++i)
      expr = fmt::format("((pair) == `FPQVAR_PAIR_{} ? `FPQVAR_MUL_{}_{} : {})", kPairs[i].id, kPairs[i].id, field, expr);
    s += fmt::format("`define FPQVAR_MUL_{}(pair) {}\n", field, expr);
  }
  s += "\n`endif\n";
  return s;
}

std::string tables_text() {
  std::string s = banner("fp_lut_mul_tables.svh");
  s += "// One ROM per pair: entry {a, w} (activation code a, weight code w) holds the exact product as a signed\n"
       "// integer in units of 2^-FRAC_BITS, sign-extended to ROM_STRIDE bits (P_BITS rounded up to a power of two),\n"
       "// at bits [{a, w} * ROM_STRIDE +: ROM_STRIDE] of the constant. Codes that\n"
       "// are not finite numbers in either format (none in these all-finite formats) hold 0. A constant indexed by the\n"
       "// codes, not a case statement: the simulation model stays small (a 4096-way case inlined into every lane of\n"
       "// a PE takes Verilator's C++ many minutes to compile), and synthesis sees the same truth table.\n"
       "// Include inside a module body (rtl/mul/fp_lut_mul.v does).\n";
  for (const Pair& p : kPairs) {
    const q::ProductTable t = q::make_product_table(q::format_by_name(p.activation), q::format_by_name(p.weight));
    const std::size_t n = t.products.size();
    s += fmt::format("\n// {} x {}: {} entries, products {} .. {} in units of 2^-{}\n", t.a.name, t.b.name, n,
                     t.min_product, t.max_product, t.frac_bits);
    const int stride = rom_stride(t.width_bits);
    s += fmt::format("localparam [{}*{}-1:0] FPQVAR_ROM_{} = {{\n", n, stride, p.id);
    // Highest entry first, as a Verilog concatenation puts its first element in the top bits. Two's-complement
    // bits of each product: e2m1 x e2m1 entry {0111, 1011} = 6.0 * -1.5 = -9.0 = -36 * 2^-2 -> 16'hffdc.
    for (std::size_t row = n; row > 0; row -= 16) {
      s += fmt::format("    // entries {} .. {}\n    ", row - 1, row - 16);
      for (std::size_t i = row; i > row - 16; --i) {
        const std::size_t e = i - 1;
        const std::int32_t v = t.valid[e] ? t.products[e] : 0;
        const std::uint32_t bits = static_cast<std::uint32_t>(v) & ((1u << stride) - 1u);
        s += fmt::format("{}'h{:x}{}", stride, bits, e == 0 ? "\n" : (i == row - 15 ? ",\n" : ", "));
      }
    }
    s += "};\n";
  }
  return s;
}

void write_atomically(const std::filesystem::path& path, const std::string& text) {
  const std::filesystem::path tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw std::runtime_error(fmt::format("{}: cannot open for writing", tmp.string()));
    out << text;
    out.close();
    if (!out) throw std::runtime_error(fmt::format("{}: write failed", tmp.string()));
  }
  std::filesystem::rename(tmp, path);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Write the LUT multiplier tables of quant/ as Verilog include files"};
  std::string out_dir;
  app.add_option("--out", out_dir, "directory to write fp_lut_mul_params.svh and fp_lut_mul_tables.svh")
      ->required();
  CLI11_PARSE(app, argc, argv);
  try {
    std::filesystem::create_directories(out_dir);
    write_atomically(std::filesystem::path(out_dir) / "fp_lut_mul_params.svh", params_text());
    write_atomically(std::filesystem::path(out_dir) / "fp_lut_mul_tables.svh", tables_text());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gen_rtl_tables: %s\n", e.what());
    return 1;
  }
  return 0;
}
