// gen_rtl_tables: writes the format pairs of the datapath (one id list) and the LUT multipliers' product tables,
// taken from quant/ (make_product_table), as Verilog include files and a C++ header, so that the RTL, the tests,
// sim/ and the arithmetic contract cannot drift apart. Run by the build (rtl/CMakeLists.txt) whenever quant/
// changes; never edit its output by hand.
//
// Output, in --out DIR:
//   fpqvar_pairs.svh          `define constants (pair ids, code widths, product widths, fixed-point units), guarded;
//                             safe to include anywhere, including at file scope.
//   fpqvar_pairs.hpp          the same pair list for C++ (namespace fpqvar::rtl): the ids the RTL tests and sim/
//                             pass as the PAIR parameter, with each pair's formats and widths.
//   fp_mul_tables.svh         per FP pair, the sign-magnitude multiplier's tables (|product| by magnitude indices,
//                             and each operand's {shift, significand} decode), as one truth-table constant per
//                             output bit with a lookup macro; include it inside a module body (fp_mul.v does).
// Before writing, every entry of quant's whole-code product table is checked against the split (sign = XOR of the
// sign bits, magnitude from the table and from the significand form): a pair the split does not hold for fails.
// Each file is written to a temporary name and renamed into place, so an interrupted run never leaves a file that
// looks complete.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "quant/format.hpp"
#include "quant/product_table.hpp"
#include "tools/gen_rtl_tables/datapath_tables.hpp"

namespace {

namespace q = fpqvar::quant;

// The format pairs of the datapath, in pair-id order: the PAIR parameter of fp_mul / pe / pe_array, and
// fpqvar::rtl::Pair in C++. This list is the one place pair ids are assigned.
struct Pair {
  const char* id;       // Verilog identifier suffix (FPQVAR_PAIR_<id>)
  const char* cpp;      // C++ enumerator (fpqvar::rtl::Pair::<cpp>)
  const char* activation;
  const char* weight;
};
constexpr Pair kPairs[] = {
    {"E2M1_E2M1", "kE2m1E2m1", "e2m1", "e2m1"},           // 0: W4A4
    {"DFQ4_E2M1", "kDfq4E2m1", "dfq-e1m2-e2m1", "e2m1"},  // 1: W4A4 fc2 input (DFQ activation)
    {"E2M3_E2M3", "kE2m3E2m3", "e2m3", "e2m3"},           // 2: W6A6
    {"INT8_INT8", "kInt8Int8", "int8", "int8"},           // 3: the integer baseline, W8A8
    {"INT4_INT4", "kInt4Int4", "int4", "int4"},           // 4: the integer baseline, W4A4
};

bool is_int_pair(const Pair& p) { return q::format_by_name(p.activation).kind == q::FormatKind::kInt; }

// An integer pair's multiplier is a W x W two's-complement multiplier (rtl/mul/int_mul.v) with a 2W-bit product:
// every code, -2^(W-1) included (the quantizer never emits it, the multiplier still handles it: (-128)^2 = 2^14
// fits 16 signed bits), so the product width is 2W whatever quant's symmetric table needs (int8: 15 bits).
struct IntPair {
  q::ProductTable table;
  int bits = 0, p_bits = 0;
};
IntPair make_int_pair(const Pair& p) {
  const q::Format& fa = q::format_by_name(p.activation);
  const q::Format& fw = q::format_by_name(p.weight);
  IntPair ip{q::make_product_table(fa, fw), fa.bits, 2 * fa.bits};
  if (fa.kind != q::FormatKind::kInt || fw.kind != q::FormatKind::kInt || fa.bits != fw.bits)
    throw std::runtime_error(fmt::format("pair {}: an integer pair has two integer formats of one width", p.id));
  if (ip.table.frac_bits != 0 || ip.table.width_bits > ip.p_bits)
    throw std::runtime_error(fmt::format("pair {}: quant's products (2^-{}, {} bits) do not fit a {}-bit integer",
                                         p.id, ip.table.frac_bits, ip.table.width_bits, ip.p_bits));
  // The multiplier's products are the plain two's-complement products of the codes: check quant agrees.
  for (std::uint32_t a = 0; a < (1u << fa.bits); ++a)
    for (std::uint32_t w = 0; w < (1u << fw.bits); ++w) {
      const int sa = int(a) - ((a >> (fa.bits - 1)) & 1u ? (1 << fa.bits) : 0);
      const int sw = int(w) - ((w >> (fw.bits - 1)) & 1u ? (1 << fw.bits) : 0);
      if (ip.table.valid[(std::size_t(a) << fw.bits) | w] && ip.table.at(std::uint8_t(a), std::uint8_t(w)) != sa * sw)
        throw std::runtime_error(fmt::format("pair {}: quant's product of ({}, {}) is not {}", p.id, a, w, sa * sw));
    }
  return ip;
}

// The sign-magnitude split of a pair, derived from and checked against quant's product table. Every code is a sign
// bit over a magnitude index (quant/format.hpp), and value(a) * value(w) = (-1)^(sa ^ sw) * |product|, so the
// multiplier looks up (or computes) the unsigned magnitude from the two magnitude indices only and negates it when
// the signs differ: a table of 2^(A_BITS-1+W_BITS-1) entries, 4x fewer than over whole codes. A DFQ activation's
// top bit is its sign *and* its side (which magnitude format the other bits use), so it stays in the index too.
//
// Form 1 (significand x significand, exponents added) uses the operands' decodes: magnitude index i of an operand
// of format F has |value| * 2^F.frac_bits() = sig << sh with sig < 2^SIG_BITS, and the product magnitude is
// (sig_a * sig_w) << (sh_a + sh_w). Example, e2m3 (frac 3): index 0b11111 = 7.5 -> 60 = 15 << 2 (sig 1.111b, the
// exponent field 3 -> shift 2); index 0b00001 = 0.125 -> 1 = 1 << 0 (a subnormal).
struct OperandDecode {
  int idx_bits = 0;
  int sig_bits = 0, sh_bits = 0;
  std::vector<std::uint32_t> sig, sh;  // per magnitude index
};

struct PairSplit {
  q::ProductTable table;
  int a_idx_bits = 0, w_idx_bits = 0, mag_bits = 0;
  std::vector<std::uint32_t> mag;  // [a_idx << w_idx_bits | w_idx]
  OperandDecode da, dw;
};

int bit_length(std::uint64_t v) {
  int n = 0;
  while (v != 0) {
    ++n;
    v >>= 1;
  }
  return n;
}

// The decode of every magnitude index of operand format f (idx_bits wide: for a DFQ format the side bit included).
OperandDecode make_decode(const q::Format& f, int idx_bits) {
  OperandDecode d;
  d.idx_bits = idx_bits;
  std::vector<std::uint64_t> scaled;
  for (std::uint32_t i = 0; i < (1u << idx_bits); ++i) {
    const double v = std::ldexp(std::fabs(f.decode(std::uint8_t(i))), f.frac_bits());
    if (!(v == std::trunc(v)) || v > 65535.0)
      throw std::runtime_error(fmt::format("{}: code {} is not an integer multiple of 2^-{}", f.name, i, f.frac_bits()));
    scaled.push_back(std::uint64_t(v));
  }
  // The narrowest significand with which every scaled magnitude is sig << sh.
  for (d.sig_bits = 1;; ++d.sig_bits) {
    bool fits = true;
    for (std::uint64_t n : scaled) {
      const int sh = std::max(0, bit_length(n) - d.sig_bits);
      if ((n & ((1ull << sh) - 1)) != 0) fits = false;
    }
    if (fits) break;
  }
  std::uint32_t max_sh = 0;
  for (std::uint64_t n : scaled) {
    const int sh = std::max(0, bit_length(n) - d.sig_bits);
    d.sig.push_back(std::uint32_t(n >> sh));
    d.sh.push_back(std::uint32_t(sh));
    max_sh = std::max(max_sh, std::uint32_t(sh));
  }
  d.sh_bits = std::max(1, bit_length(max_sh));
  return d;
}

PairSplit make_split(const Pair& p) {
  const q::Format& fa = q::format_by_name(p.activation);
  const q::Format& fw = q::format_by_name(p.weight);
  PairSplit s{q::make_product_table(fa, fw), 0, 0, 0, {}, {}, {}};
  const q::ProductTable& t = s.table;
  if (!fa.is_signed() || !fw.is_signed() || fw.kind == q::FormatKind::kDual)
    throw std::runtime_error(fmt::format("pair {}: operands must be signed, the weight not DFQ", p.id));
  s.a_idx_bits = fa.kind == q::FormatKind::kDual ? fa.bits : fa.bits - 1;
  s.w_idx_bits = fw.bits - 1;
  s.mag_bits = t.width_bits - 1;
  s.da = make_decode(fa, s.a_idx_bits);
  s.dw = make_decode(fw, s.w_idx_bits);
  if (fa.frac_bits() + fw.frac_bits() != t.frac_bits)
    throw std::runtime_error(fmt::format("pair {}: operand units 2^-{} x 2^-{} are not the table's 2^-{}", p.id,
                                         fa.frac_bits(), fw.frac_bits(), t.frac_bits));
  s.mag.assign(std::size_t(1) << (s.a_idx_bits + s.w_idx_bits), 0);
  // Every entry of the whole-code table must be the signed magnitude of its indices' entry, and both forms must
  // give that magnitude: otherwise the split does not hold for this pair and nothing is written.
  for (std::uint32_t a = 0; a < (1u << fa.bits); ++a) {
    for (std::uint32_t w = 0; w < (1u << fw.bits); ++w) {
      const std::size_t e = (std::size_t(a) << fw.bits) | w;
      if (!t.valid[e]) throw std::runtime_error(fmt::format("pair {}: code pair ({}, {}) has no product", p.id, a, w));
      const std::uint32_t ai = a & ((1u << s.a_idx_bits) - 1u), wi = w & ((1u << s.w_idx_bits) - 1u);
      const bool negative = ((a >> (fa.bits - 1)) ^ (w >> (fw.bits - 1))) & 1u;
      const std::int64_t prod = t.products[e];
      const std::uint64_t mag = std::uint64_t(prod < 0 ? -prod : prod);
      if (prod != 0 && (prod < 0) != negative)
        throw std::runtime_error(fmt::format("pair {}: sign of ({}, {}) is not the XOR of the sign bits", p.id, a, w));
      if (bit_length(mag) > s.mag_bits)
        throw std::runtime_error(fmt::format("pair {}: |product| {} exceeds {} bits", p.id, mag, s.mag_bits));
      const std::size_t m = (std::size_t(ai) << s.w_idx_bits) | wi;
      s.mag[m] = std::uint32_t(mag);  // the same for every sign: checked below
      const std::uint64_t form1 = (std::uint64_t(s.da.sig[ai]) * s.dw.sig[wi]) << (s.da.sh[ai] + s.dw.sh[wi]);
      if (form1 != mag)
        throw std::runtime_error(fmt::format("pair {}: significand form gives {} for ({}, {}), the table {}", p.id,
                                             form1, a, w, mag));
    }
  }
  for (std::uint32_t a = 0; a < (1u << fa.bits); ++a)
    for (std::uint32_t w = 0; w < (1u << fw.bits); ++w) {
      const std::uint32_t ai = a & ((1u << s.a_idx_bits) - 1u), wi = w & ((1u << s.w_idx_bits) - 1u);
      const std::int64_t prod = s.table.at(std::uint8_t(a), std::uint8_t(w));
      if (std::uint64_t(prod < 0 ? -prod : prod) != s.mag[(std::size_t(ai) << s.w_idx_bits) | wi])
        throw std::runtime_error(fmt::format("pair {}: |product| of ({}, {}) differs from its magnitude entry", p.id, a, w));
    }
  return s;
}

std::string banner(const std::string& file_name) {
  return fmt::format(
      "// {} -- GENERATED FILE, DO NOT EDIT.\n"
      "// Source: the pair list kPairs of tools/gen_rtl_tables/gen_rtl_tables.cpp (which writes this file),\n"
      "// quant/product_table.cpp (fpqvar::quant::make_product_table) and quant/format.cpp (the presets).\n"
      "// Regenerate: cmake --build <build-dir> --target fpqvar_rtl_tables\n"
      "//         or: <build-dir>/tools/gen_rtl_tables/gen_rtl_tables --out <dir>\n",
      file_name);
}

// Per-pair facts shared by the Verilog and the C++ outputs.
struct PairFacts {
  int a_bits = 0, w_bits = 0, p_bits = 0, frac_bits = 0;
  bool dfq = false, is_int = false;
  std::int32_t min_product = 0, max_product = 0;
};
PairFacts facts_of(const Pair& p) {
  PairFacts f;
  if (is_int_pair(p)) {
    const IntPair ip = make_int_pair(p);
    f = {ip.bits, ip.bits, ip.p_bits, 0, false, true, ip.table.min_product, ip.table.max_product};
  } else {
    const PairSplit sp = make_split(p);
    const q::ProductTable& t = sp.table;
    f = {t.a.bits, t.b.bits, t.width_bits, t.frac_bits, t.a.kind == q::FormatKind::kDual, false, t.min_product,
         t.max_product};
  }
  return f;
}

std::string params_text() {
  std::string s = banner("fpqvar_pairs.svh");
  s += "`ifndef FPQVAR_PAIRS_SVH\n`define FPQVAR_PAIRS_SVH\n";
  s += "// Per pair: activation code bits, weight code bits, product bits (two's complement), f (product unit 2^-f),\n"
       "// whether the activation is a DFQ code whose top bit selects the negative side (1) or the positive one (0),\n"
       "// whether the pair is an integer one (two's-complement codes, rtl/mul/int_mul.v); for FP pairs the\n"
       "// sign-magnitude split (fp_mul.v): magnitude index bits of a and w (a DFQ activation keeps its side bit),\n"
       "// |product| bits; form 1: significand and shift bits of each operand's decode.\n";
  for (std::size_t i = 0; i < std::size(kPairs); ++i) {
    const Pair& p = kPairs[i];
    const PairFacts f = facts_of(p);
    s += fmt::format("\n// pair {}: {} x {}, products {} .. {}\n", i, p.activation, p.weight, f.min_product,
                     f.max_product);
    s += fmt::format("`define FPQVAR_PAIR_{} {}\n", p.id, i);
    s += fmt::format("`define FPQVAR_MUL_{}_A_BITS {}\n", p.id, f.a_bits);
    s += fmt::format("`define FPQVAR_MUL_{}_W_BITS {}\n", p.id, f.w_bits);
    s += fmt::format("`define FPQVAR_MUL_{}_P_BITS {}\n", p.id, f.p_bits);
    s += fmt::format("`define FPQVAR_MUL_{}_FRAC_BITS {}\n", p.id, f.frac_bits);
    s += fmt::format("`define FPQVAR_MUL_{}_DFQ {}\n", p.id, f.dfq ? 1 : 0);
    s += fmt::format("`define FPQVAR_MUL_{}_INT {}\n", p.id, f.is_int ? 1 : 0);
    if (f.is_int) continue;
    const PairSplit sp = make_split(p);
    s += fmt::format("`define FPQVAR_MUL_{}_A_IDX_BITS {}\n", p.id, sp.a_idx_bits);
    s += fmt::format("`define FPQVAR_MUL_{}_W_IDX_BITS {}\n", p.id, sp.w_idx_bits);
    s += fmt::format("`define FPQVAR_MUL_{}_MAG_BITS {}\n", p.id, sp.mag_bits);
    s += fmt::format("`define FPQVAR_MUL_{}_A_SIG_BITS {}\n", p.id, sp.da.sig_bits);
    s += fmt::format("`define FPQVAR_MUL_{}_A_SH_BITS {}\n", p.id, sp.da.sh_bits);
    s += fmt::format("`define FPQVAR_MUL_{}_W_SIG_BITS {}\n", p.id, sp.dw.sig_bits);
    s += fmt::format("`define FPQVAR_MUL_{}_W_SH_BITS {}\n", p.id, sp.dw.sh_bits);
  }
  // Selectors by pair id, so that every module derives its port widths from PAIR the same way:
  // `FPQVAR_MUL_A_BITS(PAIR) is the activation code width of pair PAIR (pair 0 for an unknown id).
  s += "\n// Per-pair fields selected by pair id (an unknown id selects pair 0).\n";
  for (const char* field : {"A_BITS", "W_BITS", "P_BITS", "FRAC_BITS", "DFQ", "INT"}) {
    std::string expr = fmt::format("`FPQVAR_MUL_{}_{}", kPairs[0].id, field);
    for (std::size_t i = 1; i < std::size(kPairs); ++i)
      expr = fmt::format("((pair) == `FPQVAR_PAIR_{} ? `FPQVAR_MUL_{}_{} : {})", kPairs[i].id, kPairs[i].id, field, expr);
    s += fmt::format("`define FPQVAR_MUL_{}(pair) {}\n", field, expr);
  }
  // The sign-magnitude split's fields exist for the FP pairs only (an integer or unknown id selects pair 0).
  for (const char* field : {"A_IDX_BITS", "W_IDX_BITS", "MAG_BITS"}) {
    std::string expr = fmt::format("`FPQVAR_MUL_{}_{}", kPairs[0].id, field);
    for (std::size_t i = 1; i < std::size(kPairs); ++i) {
      if (is_int_pair(kPairs[i])) continue;
      expr = fmt::format("((pair) == `FPQVAR_PAIR_{} ? `FPQVAR_MUL_{}_{} : {})", kPairs[i].id, kPairs[i].id, field, expr);
    }
    s += fmt::format("`define FPQVAR_MUL_{}(pair) {}\n", field, expr);
  }
  s += fmt::format("`define FPQVAR_PAIR_COUNT {}\n", std::size(kPairs));
  s += "\n`endif\n";
  return s;
}

// The C++ twin of fpqvar_pairs.svh: what the RTL tests and sim/ use to name a pair and size its ports.
std::string header_text() {
  std::string s = banner("fpqvar_pairs.hpp");
  s += "// The format pairs of the datapath (the PAIR parameter of rtl/mul/fp_mul.v, rtl/pe/pe.v, rtl/pe_array/pe_array.v),\n"
       "// with the same ids as fpqvar_pairs.svh. Widths: a_bits/w_bits are the code widths, p_bits the multiplier's\n"
       "// two's-complement product width; products are integers in units of 2^-frac_bits (of the DFQ side's scale\n"
       "// for a DFQ activation).\n"
       "#pragma once\n\n#include <array>\n#include <cstdint>\n#include <optional>\n#include <string_view>\n\n"
       "namespace fpqvar::rtl {\n\n";
  s += "enum class Pair : int {\n";
  for (std::size_t i = 0; i < std::size(kPairs); ++i)
    s += fmt::format("  {} = {},  // {} x {}\n", kPairs[i].cpp, i, kPairs[i].activation, kPairs[i].weight);
  s += "};\n\n";
  s += "struct PairInfo {\n"
       "  Pair pair;\n"
       "  std::string_view verilog_name;  // the suffix of `FPQVAR_PAIR_<name>\n"
       "  std::string_view activation;    // quant::format_by_name names\n"
       "  std::string_view weight;\n"
       "  int a_bits, w_bits, p_bits, frac_bits;\n"
       "  bool dfq;     // the activation's top bit selects the DFQ side (two group sums)\n"
       "  bool is_int;  // two's-complement integer codes (the integer baseline)\n"
       "  std::int32_t min_product, max_product;  // over the codes quant defines\n"
       "};\n\n";
  s += fmt::format("inline constexpr std::array<PairInfo, {}> kPairs = {{{{\n", std::size(kPairs));
  for (std::size_t i = 0; i < std::size(kPairs); ++i) {
    const Pair& p = kPairs[i];
    const PairFacts f = facts_of(p);
    s += fmt::format("    {{Pair::{}, \"{}\", \"{}\", \"{}\", {}, {}, {}, {}, {}, {}, {}, {}}},\n", p.cpp, p.id,
                     p.activation, p.weight, f.a_bits, f.w_bits, f.p_bits, f.frac_bits, f.dfq, f.is_int,
                     f.min_product, f.max_product);
  }
  s += "}};\n\n";
  s += "[[nodiscard]] constexpr const PairInfo& pair_info(Pair p) { return kPairs[static_cast<std::size_t>(p)]; }\n"
       "[[nodiscard]] constexpr int pair_id(Pair p) { return static_cast<int>(p); }\n"
       "// The pair of an id (the PAIR parameter's value), if there is one.\n"
       "[[nodiscard]] constexpr std::optional<Pair> pair_of_id(int id) {\n"
       "  if (id < 0 || id >= static_cast<int>(kPairs.size())) return std::nullopt;\n"
       "  return kPairs[static_cast<std::size_t>(id)].pair;\n"
       "}\n\n}  // namespace fpqvar::rtl\n";
  return s;
}

// A table of `values` (index -> value of `width` bits) as one truth-table constant per output bit,
// NAME_B<k> = bit k of every entry (entry i at bit i), and a macro NAME(idx) = {NAME_B<width-1>[idx], ..., NAME_B0[idx]}
// that looks the table up. Example, the e2m1 x e2m1 magnitudes (index {a_idx, w_idx}, 6 bits): entry {111, 011}
// = 6.0 * 1.5 = 9.0 = 36 * 2^-2 = 8'b00100100, so bit 2 and bit 5 of entry 59 are set: bit 59 of NAME_B2 and NAME_B5.
std::string bit_sliced_table(const std::string& name, const std::vector<std::uint32_t>& values, int width) {
  const std::size_t n = values.size();
  std::string s;
  // A wide constant is a concatenation of 256-bit hex literals (a literal cannot span lines), top entries first.
  constexpr std::size_t kChunk = 256;
  for (int k = 0; k < width; ++k) {
    std::vector<std::string> chunks;
    for (std::size_t hi = n; hi > 0;) {
      const std::size_t lo = hi > kChunk ? hi - kChunk : 0;
      std::string hex;
      for (std::size_t j = (hi - lo + 3) / 4; j > 0; --j) {  // nibbles from the top: entries lo+4j-1 .. lo+4j-4
        unsigned nib = 0;
        for (int b = 3; b >= 0; --b) {
          const std::size_t e = lo + (j - 1) * 4 + std::size_t(b);
          nib = nib << 1 | (e < hi ? (values[e] >> k) & 1u : 0u);
        }
        hex += fmt::format("{:x}", nib);
      }
      chunks.push_back(fmt::format("{}'h{}", hi - lo, hex));
      hi = lo;
    }
    s += fmt::format("localparam [{}:0] {}_B{} = {}{}{};\n", n - 1, name, k, chunks.size() > 1 ? "{\n    " : "",
                     fmt::join(chunks, ",\n    "), chunks.size() > 1 ? "}" : "");
  }
  std::string sel;
  for (int k = width - 1; k >= 0; --k) sel += fmt::format("{}_B{}[idx]{}", name, k, k == 0 ? "" : ", ");
  s += fmt::format("`define {}(idx) {{{}}}\n", name, sel);
  return s;
}

std::string tables_text() {
  std::string s = banner("fp_mul_tables.svh");
  s += "// Per FP pair, the sign-magnitude multiplier's tables (rtl/mul/fp_mul.v):\n"
       "//   FPQVAR_MAG_<pair>(idx): |product| for idx = {a magnitude index, w magnitude index} (form 0), units 2^-f;\n"
       "//   FPQVAR_DEC_<pair>_A(idx), _W(idx): {shift, significand} of an operand's magnitude index (form 1).\n"
       "// Each table is stored as one truth-table constant per output bit (NAME_B<k>, entry i at bit i) and looked up\n"
       "// bit by bit: a 1-bit select from a constant is a plain multiplexer tree to synthesis (yosys maps it in\n"
       "// seconds, where a select of a whole entry from one wide ROM constant took it more than 30 minutes for\n"
       "// e2m3) and a constant bit test to Verilator. Include inside a module body (rtl/mul/fp_mul.v does).\n";
  for (const Pair& p : kPairs) {
    if (is_int_pair(p)) continue;  // int_mul.v is a plain multiplier: no tables
    const PairSplit sp = make_split(p);
    const q::ProductTable& t = sp.table;
    s += fmt::format("\n// {} x {}: {} magnitude entries of {} bits (|products| up to {}, units 2^-{})\n", t.a.name,
                     t.b.name, sp.mag.size(), sp.mag_bits, std::max(-t.min_product, t.max_product), t.frac_bits);
    s += bit_sliced_table(fmt::format("FPQVAR_MAG_{}", p.id), sp.mag, sp.mag_bits);
    for (const auto& [side, d] : {std::pair{"A", &sp.da}, std::pair{"W", &sp.dw}}) {
      std::vector<std::uint32_t> packed;
      for (std::size_t i = 0; i < d->sig.size(); ++i) packed.push_back(d->sh[i] << d->sig_bits | d->sig[i]);
      s += fmt::format("// {} decode: {{shift ({} bits), significand ({} bits)}} per magnitude index\n",
                       side == std::string("A") ? t.a.name : t.b.name, d->sh_bits, d->sig_bits);
      s += bit_sliced_table(fmt::format("FPQVAR_DEC_{}_{}", p.id, side), packed, d->sh_bits + d->sig_bits);
    }
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
  app.add_option("--out", out_dir, "directory to write fpqvar_pairs.svh, fpqvar_pairs.hpp and fp_mul_tables.svh")
      ->required();
  CLI11_PARSE(app, argc, argv);
  try {
    std::filesystem::create_directories(out_dir);
    write_atomically(std::filesystem::path(out_dir) / "fpqvar_pairs.svh", params_text());
    write_atomically(std::filesystem::path(out_dir) / "fpqvar_pairs.hpp", header_text());
    write_atomically(std::filesystem::path(out_dir) / "fp_mul_tables.svh", tables_text());
    write_atomically(std::filesystem::path(out_dir) / "lut_quantizer_params.svh",
                     fpqvar::gen_rtl_tables::lut_quantizer_params_text());
    write_atomically(std::filesystem::path(out_dir) / "lut_quantizer_formats.svh",
                     fpqvar::gen_rtl_tables::lut_quantizer_formats_text());
    write_atomically(std::filesystem::path(out_dir) / "hadamard_params.svh",
                     fpqvar::gen_rtl_tables::hadamard_params_text());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gen_rtl_tables: %s\n", e.what());
    return 1;
  }
  return 0;
}
