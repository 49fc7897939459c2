// The constants of the quantizer and Hadamard RTL, derived from quant/ and checked against it before they are
// written (nothing here is typed by hand):
//   - per low-bit format of rtl/quantizer/lut_quantizer.v: the code width, the largest magnitude index N, the
//     midpoints between adjacent magnitudes as integers k_i in units of 2^-frac (midpoint_i = k_i * 2^-frac,
//     i = 0 .. N-1), and qmax = max_value() as odd * 2^exp. Each midpoint is checked against quant::encode: with
//     s = 1, the midpoint itself is a tie (RNE keeps the even index, ties-up goes up) and its FP32 neighbours round
//     down and up;
//   - the GHT signs D of quant::ght_signs (seed 42) and k = quant::hw_scale(n) for the block sizes 2 .. 1024.
#include "tools/gen_rtl_tables/datapath_tables.hpp"

#include <bit>
#include <tuple>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <vector>

#include <fmt/format.h>

#include "quant/encode.hpp"
#include "quant/format.hpp"
#include "quant/hadamard.hpp"

namespace fpqvar::gen_rtl_tables {
namespace {

namespace q = fpqvar::quant;

std::string banner(const std::string& file_name, const std::string& source) {
  return fmt::format(
      "// {} -- GENERATED FILE, DO NOT EDIT.\n"
      "// Source: {},\n"
      "// written by tools/gen_rtl_tables/datapath_tables.cpp.\n"
      "// Regenerate: cmake --build <build-dir> --target fpqvar_rtl_tables\n"
      "//         or: <build-dir>/tools/gen_rtl_tables/gen_rtl_tables --out <dir>\n",
      file_name, source);
}

// The formats lut_quantizer supports, in id order (its FMT / NEG_FMT parameters).
struct QuantFormat {
  const char* id;    // Verilog identifier suffix (FPQVAR_QFMT_<id>)
  const char* name;  // quant preset
};
constexpr QuantFormat kFormats[] = {{"E2M1", "e2m1"}, {"E1M2", "e1m2"}, {"E2M3", "e2m3"}};

// The most doublings from a family's base to a member the RTL's threshold generator derives exactly (it keeps that
// many extra bits below the FP16 grid; lut_quantizer.v).
constexpr int kMaxDoublings = 2;

// The largest midpoint numerator the RTL's threshold datapath takes: k * S (S < 2^11) must fit its 20-bit operand.
constexpr std::int64_t kMaxMidpoint = (std::int64_t(1) << 9) - 1;

struct FormatConsts {
  int bits = 0, n = 0, frac = 0;
  std::vector<std::int64_t> k;  // i = 0 .. n-1
  // Families: the midpoints i < nbase are the bases, k_i = 2i + 1; every other midpoint is a base doubled:
  // k_i = k_base(i) * 2^dbl(i), dbl(i) <= kMaxDoublings (the RTL derives it from its base; see lut_quantizer.v).
  int nbase = 0;
  std::vector<int> base, dbl;
  std::int64_t qmax_odd = 0;
  int qmax_exp = 0;
};

FormatConsts make_consts(const QuantFormat& qf) {
  const q::Format& f = q::format_by_name(qf.name);
  if (f.kind != q::FormatKind::kFloat || !f.is_signed() || f.has_nan() || f.has_inf() || !f.has_subnormals)
    throw std::runtime_error(fmt::format("{}: lut_quantizer takes signed all-finite floats with subnormals", qf.name));
  FormatConsts c;
  c.bits = f.bits;
  c.n = f.max_index();
  if (c.n != (1 << (f.bits - 1)) - 1)
    throw std::runtime_error(fmt::format("{}: largest index {} is not 2^(bits-1)-1", qf.name, c.n));
  c.frac = f.frac_bits() + 1;  // a midpoint has one more fraction bit than the grid
  for (int i = 0; i < c.n; ++i) {
    const double mid = 0.5 * (f.magnitude(i) + f.magnitude(i + 1));
    const double scaled = std::ldexp(mid, c.frac);
    if (scaled != std::trunc(scaled) || scaled < 1.0 || scaled > double(kMaxMidpoint))
      throw std::runtime_error(fmt::format("{}: midpoint {} is not an integer in 1..{} units of 2^-{}", qf.name, mid,
                                           kMaxMidpoint, c.frac));
    const auto k = static_cast<std::int64_t>(scaled);
    if (!c.k.empty() && k <= c.k.back())
      throw std::runtime_error(fmt::format("{}: midpoints do not increase at index {}", qf.name, i));
    c.k.push_back(k);
    // The contract's view of this midpoint (s = 1): a tie that RNE sends to the even index and ties-up sends up
    // (for x > 0; down for x < 0), with its FP32 neighbours on either side.
    const auto x = static_cast<float>(mid);
    const q::EncodeMode rne{q::Rounding::kNearestEven, q::Overflow::kSaturate};
    const q::EncodeMode up{q::Rounding::kNearestTiesUp, q::Overflow::kSaturate};
    const int even = (i % 2 == 0) ? i : i + 1;
    const bool ok = f.index_of(q::encode(f, x, rne)) == even && f.index_of(q::encode(f, x, up)) == i + 1 &&
                    f.index_of(q::encode(f, -x, up)) == i &&
                    f.index_of(q::encode(f, std::nextafter(x, 0.0f), rne)) == i &&
                    f.index_of(q::encode(f, std::nextafter(x, 1e30f), rne)) == i + 1;
    if (!ok) throw std::runtime_error(fmt::format("{}: quant::encode disagrees with midpoint {} = {}", qf.name, i, mid));
  }
  // Families (checked: the RTL relies on k_i = 2i + 1 for the bases).
  while (c.nbase < c.n && c.k[std::size_t(c.nbase)] == 2 * c.nbase + 1) ++c.nbase;
  for (int i = 0; i < c.n; ++i) {
    std::int64_t k = c.k[std::size_t(i)];
    int d = 0;
    while (k % 2 == 0) k /= 2, ++d;
    const int b = int((k - 1) / 2);
    if (b >= c.nbase || d > kMaxDoublings || (i < c.nbase) != (d == 0) || (i - b) % 2 != 0)
      throw std::runtime_error(fmt::format("{}: midpoint {} (k = {}) is not a base 2j+1 < 2*{} (of its parity) times "
                                           "2^d, d <= {}",
                                           qf.name, i, c.k[std::size_t(i)], c.nbase, kMaxDoublings));
    c.base.push_back(b);
    c.dbl.push_back(d);
  }
  // qmax = odd * 2^exp
  double qmax = f.max_value();
  int e = 0;
  while (qmax != std::trunc(qmax)) qmax *= 2.0, --e;
  auto odd = static_cast<std::int64_t>(qmax);
  while (odd % 2 == 0) odd /= 2, ++e;
  if (odd >= 16 || std::ldexp(double(odd), e) != f.max_value())
    throw std::runtime_error(fmt::format("{}: qmax {} is not odd * 2^e with odd < 16", qf.name, f.max_value()));
  c.qmax_odd = odd;
  c.qmax_exp = e;
  return c;
}

// function automatic integer NAME(input integer f): one value per format id (format 0 for an unknown id).
std::string per_format_function(const std::string& name, const std::string& what,
                                const std::vector<FormatConsts>& cs, auto value) {
  std::string s = fmt::format("// {}\nfunction automatic integer {}(input integer f);\n  begin\n    case (f)\n", what, name);
  for (std::size_t i = 0; i < cs.size(); ++i)
    s += fmt::format("      {}: {} = {};  // {}\n", i, name, value(cs[i]), kFormats[i].name);
  s += fmt::format("      default: {} = {};\n    endcase\n  end\nendfunction\n", name, value(cs[0]));
  return s;
}

}  // namespace

std::string lut_quantizer_params_text() {
  std::vector<FormatConsts> cs;
  for (const auto& qf : kFormats) cs.push_back(make_consts(qf));
  std::string s = banner("lut_quantizer_params.svh", "quant/format.cpp (the presets)");
  s += "// Format ids of rtl/quantizer/lut_quantizer.v (its FMT / NEG_FMT parameters) and the code width of each, as\n"
       "// guarded `defines: include at file scope. The format's constants are in lut_quantizer_formats.svh.\n";
  s += "`ifndef FPQVAR_LUT_QUANTIZER_PARAMS_SVH\n`define FPQVAR_LUT_QUANTIZER_PARAMS_SVH\n";
  std::string bits = std::to_string(cs[0].bits);
  for (std::size_t i = 0; i < std::size(kFormats); ++i) {
    s += fmt::format("`define FPQVAR_QFMT_{} {}  // {}\n", kFormats[i].id, i, kFormats[i].name);
    if (i > 0) bits = fmt::format("((f) == {} ? {} : {})", i, cs[i].bits, bits);
  }
  s += fmt::format("// code width (sign included) of format f (format 0's for an unknown id)\n"
                   "`define FPQVAR_QFMT_BITS(f) {}\n", bits);
  s += "`endif\n";
  return s;
}

std::string lut_quantizer_formats_text() {
  std::vector<FormatConsts> cs;
  for (const auto& qf : kFormats) cs.push_back(make_consts(qf));
  std::string s = banner("lut_quantizer_formats.svh",
                         "quant/format.cpp (the presets' magnitudes and max_value), checked against quant::encode");
  s += "// The constants of the low-bit formats of rtl/quantizer/lut_quantizer.v, by format id (lut_quantizer_params.svh),\n"
       "// as functions: include inside a module body.\n";
  s += per_format_function("fpqvar_qfmt_bits", "code width, sign included", cs, [](const FormatConsts& c) { return c.bits; });
  s += per_format_function("fpqvar_qfmt_n", "largest magnitude index N (= 2^(bits-1) - 1): N midpoints, i = 0 .. N-1",
                           cs, [](const FormatConsts& c) { return c.n; });
  s += per_format_function("fpqvar_qfmt_frac", "the midpoints' unit: midpoint_i = k_i * 2^-frac", cs,
                           [](const FormatConsts& c) { return c.frac; });
  s += per_format_function("fpqvar_qfmt_qmax_odd", "qmax = max_value() = qmax_odd * 2^qmax_exp", cs,
                           [](const FormatConsts& c) { return c.qmax_odd; });
  s += per_format_function("fpqvar_qfmt_qmax_exp", "(signed)", cs, [](const FormatConsts& c) { return c.qmax_exp; });
  s += per_format_function("fpqvar_qfmt_nbase", "the family bases: midpoints 0 .. nbase-1, k_i = 2i + 1", cs,
                           [](const FormatConsts& c) { return c.nbase; });
  for (const auto& [fname, what, member] :
       {std::tuple{"fpqvar_qfmt_base", "the base of midpoint i's family (i itself for a base)", &FormatConsts::base},
        std::tuple{"fpqvar_qfmt_dbl", "d: k_i = k_base * 2^d (0 for a base)", &FormatConsts::dbl}}) {
    s += fmt::format("// {}\nfunction automatic integer {}(input integer f, input integer i);\n  begin\n"
                     "    {} = 0;\n    case (f)\n", what, fname, fname);
    for (std::size_t fi = 0; fi < cs.size(); ++fi) {
      s += fmt::format("      {}: begin  // {}\n        case (i)\n", fi, kFormats[fi].name);
      for (std::size_t i = 0; i < cs[fi].k.size(); ++i)
        s += fmt::format("          {}: {} = {};\n", i, fname, (cs[fi].*member)[i]);
      s += fmt::format("          default: {} = 0;\n        endcase\n      end\n", fname);
    }
    s += fmt::format("      default: {} = 0;\n    endcase\n  end\nendfunction\n", fname);
  }
  s += "// k_i, the midpoint between magnitudes i and i+1 in units of 2^-frac (i = 0 .. N-1). Example, e2m1 (frac 2):\n"
       "// magnitudes 0 0.5 1 1.5 2 3 4 6 -> midpoints 0.25 0.75 1.25 1.75 2.5 3.5 5 -> k = 1 3 5 7 10 14 20.\n";
  s += "function automatic integer fpqvar_qfmt_k(input integer f, input integer i);\n  begin\n"
       "    fpqvar_qfmt_k = 0;\n    case (f)\n";
  for (std::size_t fi = 0; fi < cs.size(); ++fi) {
    s += fmt::format("      {}: begin  // {}\n        case (i)\n", fi, kFormats[fi].name);
    for (std::size_t i = 0; i < cs[fi].k.size(); ++i)
      s += fmt::format("          {}: fpqvar_qfmt_k = {};\n", i, cs[fi].k[i]);
    s += "          default: fpqvar_qfmt_k = 0;\n        endcase\n      end\n";
  }
  s += "      default: fpqvar_qfmt_k = 0;\n    endcase\n  end\nendfunction\n";
  return s;
}

std::string hadamard_params_text() {
  constexpr int kMaxBlock = 1024;
  constexpr std::uint64_t kSeed = 42;
  const auto d = q::ght_signs(kMaxBlock, kSeed);
  // The signs of a block of n are the first n draws, whatever n (ght_signs(n) is a prefix of ght_signs(1024)).
  const auto d128 = q::ght_signs(128, kSeed);
  for (std::size_t j = 0; j < d128.size(); ++j)
    if (d128[j] != d[j]) throw std::runtime_error("ght_signs(128) is not a prefix of ght_signs(1024)");
  std::string hex;
  for (int nib = kMaxBlock / 4 - 1; nib >= 0; --nib) {
    unsigned v = 0;
    for (int b = 3; b >= 0; --b) v = v << 1 | (d[std::size_t(nib * 4 + b)] < 0 ? 1u : 0u);
    hex += fmt::format("{:x}", v);
  }
  std::string s = banner("hadamard_params.svh", "quant/hadamard.cpp (ght_signs, seed 42; hw_scale)");
  s += "// Constants of rtl/hadamard/hadamard.v. Include inside a module body.\n";
  s += fmt::format(
      "// FPQVAR_GHT_NEG: bit j set when D_j = -1 (the j-th mt19937({}) output is even), j = 0 .. {}; a block of n\n"
      "// uses bits 0 .. n-1. Seed 42 begins D = {}{}{}{}{}{}{}{} ...\n",
      kSeed, kMaxBlock - 1, d[0] < 0 ? '-' : '+', d[1] < 0 ? '-' : '+', d[2] < 0 ? '-' : '+', d[3] < 0 ? '-' : '+',
      d[4] < 0 ? '-' : '+', d[5] < 0 ? '-' : '+', d[6] < 0 ? '-' : '+', d[7] < 0 ? '-' : '+');
  s += fmt::format("localparam [{}:0] FPQVAR_GHT_NEG = {}'h{};\n", kMaxBlock - 1, kMaxBlock, hex);
  s += "// k = RNE_fp32(1 / float32(sqrt(n))) (quant::hw_scale), FP32 bits, for n = 2 .. 1024 (0 otherwise).\n"
       "function automatic [31:0] fpqvar_ght_hw_scale(input integer n);\n  begin\n    case (n)\n";
  for (int n = 2; n <= kMaxBlock; n *= 2)
    s += fmt::format("      {}: fpqvar_ght_hw_scale = 32'h{:08x};\n", n, std::bit_cast<std::uint32_t>(q::hw_scale(n)));
  s += "      default: fpqvar_ght_hw_scale = 32'h00000000;\n    endcase\n  end\nendfunction\n";
  return s;
}

}  // namespace fpqvar::gen_rtl_tables
