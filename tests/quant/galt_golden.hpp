// Reader of tests/fixtures/galt/galt_golden.txt (tools/golden/make_galt_golden.py: the line format is in its
// docstring) and the generator of the cases' inputs, which the script does not store: value(seed, i) =
// ((SplitMix64(seed * 2^32 + i) >> 40) mod 2001 - 1000) / 512, exact in FP32.
#pragma once

#include <bit>
#include <cstdint>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "quant/calibration.hpp"

namespace fpqvar::quant::galt_golden {

inline std::uint64_t splitmix64(std::uint64_t x) {
  std::uint64_t z = x + 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

inline double value(std::uint64_t seed, std::uint64_t i) {
  const std::uint64_t k = (splitmix64((seed << 32) + i) >> 40) % 2001;
  return (static_cast<double>(k) - 1000.0) / 512.0;
}

struct Eval {
  std::string tag;
  int batch = 0;
  std::vector<float> s, grad;
  std::vector<double> gabs;
  double loss = 0.0;
};

struct Case {
  std::string name;
  std::int64_t in = 0, out = 0, tokens = 0;
  std::uint64_t seed_x = 0, seed_w = 0;
  double outlier_factor = 1.0;
  std::vector<std::int64_t> outliers;
  nlohmann::json recipe;
  std::vector<RowRange> batches;
  std::vector<Eval> evals;
  double mse_ones = 0.0, mse_after = 0.0;
  double lr = 0.0, wd = 0.0;
  int epochs = 0;
  std::vector<double> epoch_loss;
  std::vector<float> s_after;
};

struct AdamWUnit {
  double lr = 0.0, wd = 0.0;
  std::vector<float> p0;
  std::vector<std::vector<float>> grads, params;  // per step: the gradient given, the parameter after the step
};

struct Golden {
  std::vector<Case> cases;
  AdamWUnit adamw;
};

// The problem of a case: X = value(seed_x, t * in + j) (outlier columns times outlier_factor), W = value(seed_w,
// o * in + j) / 8, exactly as the script builds them.
inline LayerProblem make_problem(const Case& c) {
  LayerProblem p;
  p.in_features = c.in;
  p.out_features = c.out;
  p.tokens = c.tokens;
  p.act.resize(static_cast<std::size_t>(c.tokens * c.in));
  for (std::int64_t t = 0; t < c.tokens; ++t)
    for (std::int64_t j = 0; j < c.in; ++j)
      p.act[static_cast<std::size_t>(t * c.in + j)] =
          static_cast<float>(value(c.seed_x, static_cast<std::uint64_t>(t * c.in + j)));
  for (std::int64_t j : c.outliers)
    for (std::int64_t t = 0; t < c.tokens; ++t)
      p.act[static_cast<std::size_t>(t * c.in + j)] *= static_cast<float>(c.outlier_factor);
  p.weight.resize(static_cast<std::size_t>(c.out * c.in));
  for (std::size_t i = 0; i < p.weight.size(); ++i) p.weight[i] = static_cast<float>(value(c.seed_w, i) / 8.0);
  p.batches = c.batches;
  p.recipe = layer_recipe_from_json(c.recipe, "galt_golden.txt", "recipe");
  return p;
}

namespace detail {

[[noreturn]] inline void fail(const std::string& path, int line, const std::string& what) {
  throw std::runtime_error(path + ":" + std::to_string(line) + ": " + what);
}

template <class T>
T hex_value(const std::string& tok, const std::string& path, int line) {
  using U = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
  if (tok.size() != 2 * sizeof(T)) fail(path, line, "bad hex value '" + tok + "'");
  std::size_t used = 0;
  const unsigned long long v = std::stoull(tok, &used, 16);
  if (used != tok.size()) fail(path, line, "bad hex value '" + tok + "'");
  return std::bit_cast<T>(static_cast<U>(v));
}

template <class T>
std::vector<T> hex_list(std::istringstream& in, std::size_t n, const std::string& path, int line) {
  std::vector<T> v;
  std::string tok;
  while (v.size() < n && in >> tok) v.push_back(hex_value<T>(tok, path, line));
  if (v.size() != n) fail(path, line, "expected " + std::to_string(n) + " values");
  return v;
}

}  // namespace detail

inline Golden load(const std::string& path) {
  std::ifstream f(path);
  if (!f) throw std::runtime_error(path + ": cannot open");
  Golden g;
  std::string text;
  int line_no = 0;
  Case* c = nullptr;
  Eval* ev = nullptr;
  bool in_adamw_unit = false;
  std::size_t unit_n = 0;
  while (std::getline(f, text)) {
    ++line_no;
    if (text.empty() || text[0] == '#') continue;
    std::istringstream in(text);
    std::string key;
    in >> key;
    auto need_case = [&] {
      if (c == nullptr) detail::fail(path, line_no, "'" + key + "' outside a case");
    };
    if (key == "case") {
      g.cases.emplace_back();
      c = &g.cases.back();
      ev = nullptr;
      std::size_t n_out = 0;
      if (!(in >> c->name >> c->in >> c->out >> c->tokens >> c->seed_x >> c->seed_w >> c->outlier_factor >> n_out))
        detail::fail(path, line_no, "bad case line");
      for (std::size_t i = 0; i < n_out; ++i) {
        std::int64_t j = 0;
        if (!(in >> j) || j < 0 || j >= c->in) detail::fail(path, line_no, "bad outlier list");
        c->outliers.push_back(j);
      }
      if (c->in < 1 || c->out < 1 || c->tokens < 1 || c->in * c->tokens > (1 << 24))
        detail::fail(path, line_no, "bad case shape");
    } else if (key == "recipe") {
      need_case();
      try {
        c->recipe = nlohmann::json::parse(text.substr(7));
      } catch (const std::exception& e) {
        detail::fail(path, line_no, std::string("bad recipe JSON: ") + e.what());
      }
    } else if (key == "batches") {
      need_case();
      std::size_t n = 0;
      in >> n;
      for (std::size_t i = 0; i < n; ++i) {
        RowRange r;
        if (!(in >> r.begin >> r.end)) detail::fail(path, line_no, "bad batches line");
        c->batches.push_back(r);
      }
    } else if (key == "eval") {
      need_case();
      c->evals.emplace_back();
      ev = &c->evals.back();
      if (!(in >> ev->tag >> ev->batch) || ev->batch < 0 || static_cast<std::size_t>(ev->batch) >= c->batches.size())
        detail::fail(path, line_no, "bad eval line");
    } else if (key == "s" || key == "loss" || key == "grad" || key == "gabs") {
      need_case();
      if (ev == nullptr) detail::fail(path, line_no, "'" + key + "' outside an eval");
      const auto n = static_cast<std::size_t>(c->in);
      if (key == "s") ev->s = detail::hex_list<float>(in, n, path, line_no);
      if (key == "grad") ev->grad = detail::hex_list<float>(in, n, path, line_no);
      if (key == "gabs") ev->gabs = detail::hex_list<double>(in, n, path, line_no);
      if (key == "loss") ev->loss = detail::hex_list<double>(in, 1, path, line_no)[0];
    } else if (key == "mse_ones" || key == "mse_after") {
      need_case();
      (key == "mse_ones" ? c->mse_ones : c->mse_after) = detail::hex_list<double>(in, 1, path, line_no)[0];
    } else if (key == "adamw") {
      need_case();
      if (!(in >> c->lr >> c->wd >> c->epochs) || c->epochs < 1) detail::fail(path, line_no, "bad adamw line");
    } else if (key == "epoch_loss") {
      need_case();
      c->epoch_loss = detail::hex_list<double>(in, static_cast<std::size_t>(c->epochs), path, line_no);
    } else if (key == "s_after") {
      need_case();
      c->s_after = detail::hex_list<float>(in, static_cast<std::size_t>(c->in), path, line_no);
    } else if (key == "end") {
      need_case();
      if (c->evals.size() != 2 || c->s_after.empty() || c->epoch_loss.empty() || c->recipe.is_null())
        detail::fail(path, line_no, "incomplete case " + c->name);
      c = nullptr;
    } else if (key == "adamw_unit") {
      std::size_t steps = 0;
      if (!(in >> g.adamw.lr >> g.adamw.wd >> unit_n >> steps) || unit_n < 1 || unit_n > 4096)
        detail::fail(path, line_no, "bad adamw_unit line");
      in_adamw_unit = true;
    } else if (key == "p0") {
      if (!in_adamw_unit) detail::fail(path, line_no, "p0 outside adamw_unit");
      g.adamw.p0 = detail::hex_list<float>(in, unit_n, path, line_no);
    } else if (key == "step") {
      if (!in_adamw_unit) detail::fail(path, line_no, "step outside adamw_unit");
      g.adamw.grads.push_back(detail::hex_list<float>(in, unit_n, path, line_no));
      g.adamw.params.push_back(detail::hex_list<float>(in, unit_n, path, line_no));
    } else {
      detail::fail(path, line_no, "unknown line '" + key + "'");
    }
  }
  if (c != nullptr) throw std::runtime_error(path + ": truncated (case " + c->name + " has no end)");
  if (g.cases.empty() || g.adamw.params.empty()) throw std::runtime_error(path + ": incomplete fixture");
  return g;
}

}  // namespace fpqvar::quant::galt_golden
