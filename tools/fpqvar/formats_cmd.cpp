// `fpqvar formats`: list the number formats, print a format's code table, quantize a raw float32 file, and print
// the LUT multiplier's product table of two formats.
#include <cmath>
#include <memory>
#include <numeric>
#include <optional>
#include <random>
#include <string>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "quant/format.hpp"
#include "quant/product_table.hpp"
#include "quant/tensor_quant.hpp"
#include "tools/fpqvar/cli_util.hpp"
#include "tools/fpqvar/commands.hpp"

namespace fpqvar::cli {
namespace {

using quant::Format;
using quant::FormatKind;

// Shortest text that reads back as the same double ("0.5", "448", "1.52587890625e-05", "inf").
std::string num(double v) { return fmt::format("{}", v); }

std::string kind_text(const Format& f) {
  switch (f.kind) {
    case FormatKind::kInt: return "int";
    case FormatKind::kDual: return "dual";
    case FormatKind::kFloat: break;
  }
  switch (f.special) {
    case quant::SpecialValues::kIeee: return "ieee";
    case quant::SpecialValues::kFiniteNan: return "fn";
    case quant::SpecialValues::kFnuz: return "fnuz";
    case quant::SpecialValues::kAllFinite: return "finite";
  }
  return "?";
}

nlohmann::json format_json(const Format& f) {
  nlohmann::json j{{"name", f.name}, {"kind", kind_text(f)}, {"bits", f.bits}};
  if (f.kind == FormatKind::kFloat) {
    j["sign_bits"] = f.sign_bits;
    j["exp_bits"] = f.exp_bits;
    j["man_bits"] = f.man_bits;
    j["bias"] = f.bias;
  }
  if (f.kind == FormatKind::kDual) j["sides"] = {f.sides[0].name, f.sides[1].name};
  j["max"] = f.max_value();
  j["min_normal"] = f.min_normal();
  j["min_subnormal"] = f.min_subnormal();
  if (f.kind == FormatKind::kDual) {
    j["max_negative_side"] = f.max_value(0);
    j["min_subnormal_negative_side"] = f.min_subnormal(0);
  }
  j["has_inf"] = f.has_inf();
  j["has_nan"] = f.has_nan();
  j["has_negative_zero"] = f.has_negative_zero();
  j["description"] = f.describe();
  return j;
}

void cmd_list(bool json) {
  if (json) {
    nlohmann::json arr = nlohmann::json::array();
    for (const auto& f : quant::presets()) arr.push_back(format_json(f));
    fmt::print("{}\n", arr.dump(2));
    return;
  }
  fmt::print("{:<15} {:>4} {:<6} {:>5} {:>4}  {:>12} {:>14} {:>16}  {}\n", "format", "bits", "kind", "E.M", "bias",
             "max", "min normal", "min subnormal", "specials");
  for (const auto& f : quant::presets()) {
    const std::string em = f.kind == FormatKind::kFloat ? fmt::format("{}.{}", f.exp_bits, f.man_bits) : "-";
    const std::string bias = f.kind == FormatKind::kFloat ? std::to_string(f.bias) : "-";
    std::string specials = f.has_inf() ? "inf nan" : f.has_nan() ? "nan" : "none";
    if (f.has_negative_zero()) specials += " -0";
    std::string max = num(f.max_value()), min_n = num(f.min_normal()), min_s = num(f.min_subnormal());
    if (f.kind == FormatKind::kDual) {
      max = fmt::format("-{}/+{}", num(f.max_value(0)), num(f.max_value(1)));
      min_n = fmt::format("{}/{}", num(f.min_normal(0)), num(f.min_normal(1)));
      min_s = fmt::format("{}/{}", num(f.min_subnormal(0)), num(f.min_subnormal(1)));
    }
    fmt::print("{:<15} {:>4} {:<6} {:>5} {:>4}  {:>12} {:>14} {:>16}  {}\n", f.name, f.bits, kind_text(f), em, bias,
               max, min_n, min_s, specials);
  }
}

std::string code_bits(const Format& f, int code) {
  std::string s;
  for (int b = f.bits - 1; b >= 0; --b) {
    s += ((code >> b) & 1) ? '1' : '0';
    if (f.kind == FormatKind::kFloat && ((b == f.bits - f.sign_bits && f.sign_bits) || (b == f.man_bits && f.man_bits)))
      s += '.';
  }
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}

void cmd_table(const std::string& name, bool json) {
  const Format& f = quant::format_by_name(name);
  nlohmann::json arr = nlohmann::json::array();
  if (!json) fmt::print("{}\n{:>4} {:>4} {:<12} {:>20}  {}\n", f.describe(), "code", "hex", "bits", "value", "note");
  for (int c = 0; c < f.code_count(); ++c) {
    const auto code = static_cast<std::uint8_t>(c);
    const double v = f.decode(code);
    std::string note;
    if (f.is_nan_code(code)) note = "NaN";
    else if (f.is_inf_code(code)) note = "inf";
    else if (v == 0.0) note = std::signbit(v) ? "-0" : "+0";
    else if (f.kind == FormatKind::kFloat && std::fabs(v) < f.min_normal()) note = "subnormal";
    else if (std::fabs(v) == f.max_value(f.side_of(code))) note = "max";
    if (f.kind == FormatKind::kInt && c == (1 << (f.bits - 1))) note = "not produced by encode";
    if (f.kind == FormatKind::kDual) note = (f.side_of(code) ? "x s_pos " : "x s_neg ") + note;
    if (json) {
      arr.push_back({{"code", c}, {"bits", code_bits(f, c)}, {"value", std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(num(v))},
                     {"note", note}});
    } else {
      fmt::print("{:>4} {:>4} {:<12} {:>20}  {}\n", c, fmt::format("{:02x}", c), code_bits(f, c), num(v), note);
    }
  }
  if (json) fmt::print("{}\n", nlohmann::json{{"format", format_json(f)}, {"codes", arr}}.dump(2));
}

void cmd_products(const std::string& a_name, const std::string& b_name, bool json, bool csv) {
  const auto t = quant::make_product_table(quant::format_by_name(a_name), quant::format_by_name(b_name));
  const auto luts = quant::lut6_costs(t);
  const int total_luts = std::accumulate(luts.begin(), luts.end(), 0);
  if (json) {
    nlohmann::json rows = nlohmann::json::array();
    for (int ca = 0; ca < t.a.code_count(); ++ca)
      for (int cb = 0; cb < t.b.code_count(); ++cb) {
        const auto i = (std::size_t(ca) << t.b.bits) | std::size_t(cb);
        rows.push_back({{"a", ca}, {"b", cb}, {"product", t.products[i]}, {"valid", t.valid[i] != 0}});
      }
    fmt::print("{}\n", nlohmann::json{{"a", t.a.name}, {"b", t.b.name}, {"frac_bits", t.frac_bits},
                                      {"width_bits", t.width_bits}, {"min", t.min_product}, {"max", t.max_product},
                                      {"lut6_per_bit", luts}, {"lut6_total", total_luts}, {"products", rows}}
                           .dump(1));
    return;
  }
  if (csv) {
    fmt::print("a,b,value_a,value_b,product,valid\n");
    for (int ca = 0; ca < t.a.code_count(); ++ca)
      for (int cb = 0; cb < t.b.code_count(); ++cb) {
        const auto i = (std::size_t(ca) << t.b.bits) | std::size_t(cb);
        fmt::print("{},{},{},{},{},{}\n", ca, cb, num(t.a.decode(std::uint8_t(ca))), num(t.b.decode(std::uint8_t(cb))),
                   t.products[i], int(t.valid[i]));
      }
    return;
  }
  fmt::print("{} x {}: products are integers in units of 2^-{}, range [{}, {}], {} bits two's complement\n", t.a.name,
             t.b.name, t.frac_bits, t.min_product, t.max_product, t.width_bits);
  fmt::print("LUT6 per output bit (Shannon estimate, LSB first): {} = {} LUT6\n\n", fmt::join(luts, " "), total_luts);
  if (t.a.code_count() * t.b.code_count() > 256 * 16) {
    fmt::print("({} entries: use --csv or --json for the full table)\n", t.products.size());
    return;
  }
  fmt::print("{:>8} |", "a \\ b");
  for (int cb = 0; cb < t.b.code_count(); ++cb) fmt::print(" {:>5}", num(t.b.decode(std::uint8_t(cb))));
  fmt::print("\n{:->9}+{:->{}}\n", "", "", 6 * t.b.code_count());
  for (int ca = 0; ca < t.a.code_count(); ++ca) {
    fmt::print("{:>8} |", num(t.a.decode(std::uint8_t(ca))));
    for (int cb = 0; cb < t.b.code_count(); ++cb) {
      const auto i = (std::size_t(ca) << t.b.bits) | std::size_t(cb);
      fmt::print(" {:>5}", t.valid[i] ? std::to_string(t.products[i]) : std::string("-"));
    }
    fmt::print("\n");
  }
}

struct QuantizeOptions {
  std::string input, output, codes, format = "e2m1", rounding = "rne", overflow = "saturate";
  std::string scale_type = "fp16", granularity;
  std::optional<float> scale;
  std::optional<int> group;
  std::optional<std::int64_t> cols;
  std::uint64_t seed = 0;
  bool clip = false;
};

void cmd_quantize(const QuantizeOptions& o) {
  const std::vector<float> x = read_f32_file(o.input);
  quant::QuantSpec spec;
  spec.format = quant::format_by_name(o.format);
  spec.mode = {quant::parse_rounding(o.rounding), quant::parse_overflow(o.overflow)};
  spec.scale_type = quant::parse_scale_type(o.scale_type);
  spec.seed = o.seed;
  spec.clip.enabled = o.clip;
  if (o.scale && o.group) throw UserError("--scale and --group are exclusive: a fixed scale has no groups");
  const auto n = static_cast<std::int64_t>(x.size());
  std::int64_t cols = o.cols.value_or(n);
  if (cols <= 0 || (n > 0 && n % cols != 0))
    throw UserError(fmt::format("{}: {} values do not form rows of --cols {}", o.input, n, cols));
  if (n == 0) cols = 0;
  const std::int64_t rows = cols > 0 ? n / cols : 0;
  if (o.scale) {
    spec.fixed_scale = *o.scale;
    spec.granularity = quant::Granularity::kTensor;
  } else if (o.group) {
    spec.granularity = quant::Granularity::kGroup;
    spec.group_size = *o.group;
  } else if (!o.granularity.empty()) {
    spec.granularity = quant::parse_granularity(o.granularity);
  } else {
    spec.granularity = quant::Granularity::kTensor;
  }
  if (!o.granularity.empty() && (o.scale || o.group))
    throw UserError("--granularity cannot be combined with --scale or --group");
  if (spec.granularity == quant::Granularity::kGroup && !o.group) spec.group_size = 128;
  if (auto errors = spec.validate(cols); !errors.empty())
    throw UserError(fmt::format("{}: {}", o.input, fmt::join(errors, "; ")));
  const auto q = quant::quantize(x, rows, cols, spec);
  const auto y = quant::dequantize(q);
  // Error statistics over the finite pairs, for the log line.
  double se = 0.0, ss = 0.0;
  std::int64_t finite = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double d = double(y[i]) - double(x[i]);
    if (!std::isfinite(d)) continue;
    se += d * d;
    ss += double(x[i]) * double(x[i]);
    ++finite;
  }
  if (!o.codes.empty()) write_file_atomic(o.codes, q.codes);
  write_f32_file(o.output, y);
  const double sqnr = se > 0 ? 10.0 * std::log10(ss / se) : INFINITY;
  spdlog::info("{}: {} values ({} x {}) -> {} {} ({} scales, {}, {}, {}); SQNR {:.2f} dB over {} finite values",
               o.input, n, rows, cols, spec.format.name, quant::to_string(spec.granularity), q.scales.size(),
               quant::to_string(spec.scale_type), o.rounding, o.overflow, sqnr, finite);
}

struct CompareOptions {
  std::int64_t rows = 256, cols = 1024;
  std::uint64_t seed = 0;
  double outlier_fraction = 0.01, outlier_scale = 30.0;
  std::string json_out;
};

// Quantizes one synthetic activation-like tensor (Gaussian values, a few outlier columns, a GELU-like copy for DFQ)
// with each configuration FPQVAR compares and prints the SQNR of each: the formats demo of the quick start.
void cmd_compare(const CompareOptions& o) {
  if (o.rows <= 0 || o.cols <= 0 || o.cols % 128 != 0)
    throw UserError(fmt::format("--rows must be positive and --cols a positive multiple of 128 (got {} x {})", o.rows,
                                o.cols));
  std::mt19937_64 rng(o.seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::bernoulli_distribution is_outlier(o.outlier_fraction);
  std::vector<float> outlier_gain(static_cast<std::size_t>(o.cols), 1.0f);
  for (auto& g : outlier_gain)
    if (is_outlier(rng)) g = static_cast<float>(o.outlier_scale);
  std::vector<float> x(static_cast<std::size_t>(o.rows * o.cols)), gelu(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) {
    x[i] = normal(rng) * outlier_gain[i % static_cast<std::size_t>(o.cols)];
    const double v = static_cast<double>(normal(rng)) * 2.0;  // tanh-GELU of N(0, 4): dense small negatives, long tail
    gelu[i] = static_cast<float>(0.5 * v * (1.0 + std::tanh(0.7978845608028654 * (v + 0.044715 * v * v * v))));
  }
  struct Config {
    std::string label, format;
    quant::Granularity granularity;
    int group;
    quant::ScaleType scale;
    quant::Rounding rounding;
    bool gelu_input;
  };
  using G = quant::Granularity;
  using S = quant::ScaleType;
  using R = quant::Rounding;
  const std::vector<Config> configs = {
      {"INT4 per-token (LiteVAR-style)", "int4", G::kToken, 0, S::kFp32, R::kNearestEven, false},
      {"INT4 group-128", "int4", G::kGroup, 128, S::kFp16, R::kNearestEven, false},
      {"FP4 E2M1 per-token", "e2m1", G::kToken, 0, S::kFp16, R::kNearestEven, false},
      {"FP4 E2M1 group-128 (FPQVAR W4A4)", "e2m1", G::kGroup, 128, S::kFp16, R::kNearestEven, false},
      {"FP4 E2M1 group-128 ties-up (ref.)", "e2m1", G::kGroup, 128, S::kFp16, R::kNearestTiesUp, false},
      {"MXFP4 E2M1 group-32 pow2 scale", "e2m1", G::kGroup, 32, S::kPow2, R::kNearestEven, false},
      {"NVFP4 E2M1 group-16 e4m3 scale", "e2m1", G::kGroup, 16, S::kE4m3, R::kNearestEven, false},
      {"FP6 E2M3 per-token (FPQVAR W6A6)", "e2m3", G::kToken, 0, S::kFp16, R::kNearestEven, false},
      {"INT8 per-token", "int8", G::kToken, 0, S::kFp32, R::kNearestEven, false},
      {"GELU out: E2M1 group-128", "e2m1", G::kGroup, 128, S::kFp16, R::kNearestEven, true},
      {"GELU out: DFQ E1M2-/E2M1+ group-128", "dfq-e1m2-e2m1", G::kGroup, 128, S::kFp16, R::kNearestEven, true},
      {"GELU out: INT6 per-token", "int6", G::kToken, 0, S::kFp32, R::kNearestEven, true},
      {"GELU out: DFQ INT6-/E2M3+ per-token", "dfq-int6-e2m3", G::kToken, 0, S::kFp16, R::kNearestEven, true},
  };
  nlohmann::json rows = nlohmann::json::array();
  fmt::print("{} x {} synthetic activations (seed {}, {:.1f}% outlier columns x{}); GELU rows use tanh-GELU of N(0,4)\n\n",
             o.rows, o.cols, o.seed, 100.0 * o.outlier_fraction, o.outlier_scale);
  fmt::print("{:<38} {:>10} {:>10} {:>12}\n", "configuration", "SQNR dB", "bits/elem", "scales");
  for (const auto& c : configs) {
    quant::QuantSpec spec;
    spec.format = quant::format_by_name(c.format);
    spec.granularity = c.granularity;
    if (c.group) spec.group_size = c.group;
    spec.scale_type = c.scale;
    spec.mode.rounding = c.rounding;
    const auto& in = c.gelu_input ? gelu : x;
    const auto q = quant::quantize(in, o.rows, o.cols, spec);
    const auto y = quant::dequantize(q);
    double se = 0, ss = 0;
    for (std::size_t i = 0; i < in.size(); ++i) {
      const double d = double(y[i]) - double(in[i]);
      se += d * d;
      ss += double(in[i]) * double(in[i]);
    }
    const double sqnr = 10.0 * std::log10(ss / se);
    const int scale_bits = c.scale == S::kFp32 ? 32 : c.scale == S::kFp16 ? 16 : 8;
    const double scales = double(q.scales.size() + q.scales_neg.size());
    const double bits = spec.format.bits + scales * scale_bits / double(in.size());
    fmt::print("{:<38} {:>10.2f} {:>10.3f} {:>12}\n", c.label, sqnr, bits, static_cast<std::int64_t>(scales));
    rows.push_back({{"configuration", c.label}, {"format", c.format}, {"granularity", quant::to_string(c.granularity)},
                    {"group", c.group}, {"scale_type", quant::to_string(c.scale)},
                    {"rounding", quant::to_string(c.rounding)}, {"input", c.gelu_input ? "gelu" : "activations"},
                    {"sqnr_db", sqnr}, {"bits_per_element", bits}});
  }
  if (!o.json_out.empty()) {
    const nlohmann::json doc{{"rows", o.rows}, {"cols", o.cols}, {"seed", o.seed},
                             {"outlier_fraction", o.outlier_fraction}, {"outlier_scale", o.outlier_scale},
                             {"results", rows}};
    write_text_file(o.json_out, doc.dump(2) + "\n");
    spdlog::info("wrote {}", o.json_out);
  }
}

}  // namespace

namespace {
void register_formats(CLI::App& app) {
  auto* formats = app.add_subcommand("formats", "Low-bit number formats: list, code tables, quantization, products");
  formats->require_subcommand(1);

  auto* list = formats->add_subcommand("list", "Every format with its bits, bias, max, min normal and min subnormal");
  auto list_json = std::make_shared<bool>(false);
  list->add_flag("--json", *list_json, "Print JSON instead of a table");
  list->callback([list_json] { cmd_list(*list_json); });

  auto* table = formats->add_subcommand("table", "Every code of a format and its value");
  auto table_name = std::make_shared<std::string>();
  auto table_json = std::make_shared<bool>(false);
  table->add_option("FORMAT", *table_name, "Format name (see `formats list`)")->required();
  table->add_flag("--json", *table_json, "Print JSON instead of a table");
  table->callback([=] { cmd_table(*table_name, *table_json); });

  auto* products = formats->add_subcommand("products", "The LUT multiplier's product table of formats A and B");
  auto pa = std::make_shared<std::string>(), pb = std::make_shared<std::string>();
  auto p_json = std::make_shared<bool>(false), p_csv = std::make_shared<bool>(false);
  products->add_option("A", *pa, "Format of the first operand")->required();
  products->add_option("B", *pb, "Format of the second operand")->required();
  auto* pj = products->add_flag("--json", *p_json, "Print JSON");
  products->add_flag("--csv", *p_csv, "Print CSV rows")->excludes(pj);
  products->callback([=] { cmd_products(*pa, *pb, *p_json, *p_csv); });

  auto* quantize = formats->add_subcommand("quantize", "Quantize raw little-endian float32 values and decode them back");
  auto o = std::make_shared<QuantizeOptions>();
  quantize->add_option("--input,-i", o->input, "Raw little-endian float32 input file")->required();
  quantize->add_option("--output,-o", o->output, "Decoded float32 output file")->required();
  quantize->add_option("--codes", o->codes, "Also write the codes, one byte each");
  quantize->add_option("--format,-f", o->format, "Target format")->capture_default_str();
  quantize->add_option("--rounding", o->rounding, "rne | ties-up | toward-zero | stochastic")->capture_default_str();
  quantize->add_option("--overflow", o->overflow, "saturate | inf | nan")->capture_default_str();
  quantize->add_option("--scale", o->scale, "Fixed scale for every value (no absmax scaling)");
  quantize->add_option("--group", o->group, "Absmax scaling per group of G values along each row");
  quantize->add_option("--granularity", o->granularity, "tensor | channel | token | column | group (default tensor)");
  quantize->add_option("--cols", o->cols, "Row length K (default: the whole file is one row)");
  quantize->add_option("--scale-type", o->scale_type, "fp32 | fp16 | pow2 (e8m0) | e4m3")->capture_default_str();
  quantize->add_option("--seed", o->seed, "Seed of stochastic rounding")->capture_default_str();
  quantize->add_flag("--clip-search", o->clip, "Search a clipped absmax per block minimising the MSE");
  quantize->callback([o] { cmd_quantize(*o); });

  auto* compare = formats->add_subcommand("compare", "SQNR of FPQVAR's and the baselines' formats on synthetic data");
  auto c = std::make_shared<CompareOptions>();
  compare->add_option("--rows", c->rows, "Tokens")->capture_default_str();
  compare->add_option("--cols", c->cols, "Channels (a multiple of 128)")->capture_default_str();
  compare->add_option("--seed", c->seed, "Generator seed")->capture_default_str();
  compare->add_option("--outlier-fraction", c->outlier_fraction, "Fraction of outlier channels")->capture_default_str();
  compare->add_option("--outlier-scale", c->outlier_scale, "Outlier channel gain")->capture_default_str();
  compare->add_option("--json", c->json_out, "Also write the results as JSON to this file");
  compare->callback([c] { cmd_compare(*c); });
}

}  // namespace

static const Registrar kRegisterFormats{"formats", 10, &register_formats};

}  // namespace fpqvar::cli
