#include "quant/product_table.hpp"

#include <bit>
#include <cmath>
#include <set>
#include <tuple>
#include <stdexcept>

#include <fmt/format.h>

namespace fpqvar::quant {
namespace {

// A Boolean function of n <= 16 inputs as its truth table (bit i of the vector = f(i)).
using Truth = std::vector<bool>;

bool depends_on(const Truth& t, int n, int var) {
  const std::size_t stride = std::size_t(1) << var;
  for (std::size_t i = 0; i < (std::size_t(1) << n); ++i)
    if (!(i & stride) && t[i] != t[i | stride]) return true;
  return false;
}

// Removes input `var` from t by fixing it to `value`.
Truth cofactor(const Truth& t, int n, int var, bool value) {
  Truth out(std::size_t(1) << (n - 1));
  const std::size_t low_mask = (std::size_t(1) << var) - 1;
  for (std::size_t j = 0; j < out.size(); ++j) {
    const std::size_t i = (j & low_mask) | ((j & ~low_mask) << 1) | (value ? (std::size_t(1) << var) : 0);
    out[j] = t[i];
  }
  return out;
}

// A function together with the original input each of its variables stands for, so that identical tables over
// different inputs are not mistaken for one shareable LUT.
struct Node {
  Truth truth;
  std::vector<int> inputs;  // inputs[k] = original input index of variable k
  bool operator<(const Node& o) const { return std::tie(inputs, truth) < std::tie(o.inputs, o.truth); }
};

// Drops the variables the function does not depend on.
Node reduce_support(Node f) {
  for (int var = static_cast<int>(f.inputs.size()) - 1; var >= 0; --var) {
    const int n = static_cast<int>(f.inputs.size());
    if (!depends_on(f.truth, n, var)) {
      f.truth = cofactor(f.truth, n, var, false);
      f.inputs.erase(f.inputs.begin() + var);
    }
  }
  return f;
}

int cost(Node f_in, std::set<Node>& built) {
  Node f = reduce_support(std::move(f_in));
  const int n = static_cast<int>(f.inputs.size());
  if (n == 0) return 0;                 // a constant needs no LUT
  if (!built.insert(f).second) return 0;  // an identical function of the same inputs is already built
  if (n <= 6) return 1;
  const int var = n - 1;
  std::vector<int> rest(f.inputs.begin(), f.inputs.end() - 1);
  return cost({cofactor(f.truth, n, var, false), rest}, built) + cost({cofactor(f.truth, n, var, true), rest}, built) +
         1;  // the 2:1 multiplexer selecting between the cofactors
}

}  // namespace

ProductTable make_product_table(const Format& a, const Format& b) {
  for (const Format* f : {&a, &b}) {
    if (f->kind == FormatKind::kFloat && !f->has_subnormals)
      throw std::invalid_argument(fmt::format("{} has no zero; it is a scale format, not a multiplier operand", f->name));
    if (auto errors = f->validate(); !errors.empty())
      throw std::invalid_argument(fmt::format("{} is invalid: {}", f->name, fmt::join(errors, "; ")));
  }
  ProductTable t;
  t.a = a;
  t.b = b;
  t.frac_bits = a.frac_bits() + b.frac_bits();
  if (t.frac_bits > 30) throw std::invalid_argument(fmt::format("{} x {} needs 2^-{} units", a.name, b.name, t.frac_bits));
  const std::size_t n = std::size_t(1) << (a.bits + b.bits);
  t.products.assign(n, 0);
  t.valid.assign(n, 0);
  for (int ca = 0; ca < a.code_count(); ++ca) {
    for (int cb = 0; cb < b.code_count(); ++cb) {
      const double va = a.decode(std::uint8_t(ca)), vb = b.decode(std::uint8_t(cb));
      if (!std::isfinite(va) || !std::isfinite(vb)) continue;
      const double scaled = std::ldexp(va * vb, t.frac_bits);  // exact: both have <= 10 significant bits
      if (std::fabs(scaled) >= 0x1p31 || scaled != std::trunc(scaled))
        throw std::invalid_argument(fmt::format("{} x {}: product of codes {} and {} is not a 32-bit integer in 2^-{}",
                                                a.name, b.name, ca, cb, t.frac_bits));
      const auto p = static_cast<std::int32_t>(scaled);
      const std::size_t i = (std::size_t(ca) << b.bits) | std::size_t(cb);
      t.products[i] = p;
      t.valid[i] = 1;
      t.min_product = std::min(t.min_product, p);
      t.max_product = std::max(t.max_product, p);
    }
  }
  // Two's-complement width: the smallest w with -2^(w-1) <= min and max <= 2^(w-1) - 1.
  t.width_bits = 1;
  while (t.max_product > (std::int64_t(1) << (t.width_bits - 1)) - 1 ||
         t.min_product < -(std::int64_t(1) << (t.width_bits - 1)))
    ++t.width_bits;
  return t;
}

int lut6_cost_of_bit(const ProductTable& t, int bit) {
  const int n = t.input_bits();
  Truth truth(std::size_t(1) << n);
  for (std::size_t i = 0; i < truth.size(); ++i)
    truth[i] = t.valid[i] && ((static_cast<std::uint32_t>(t.products[i]) >> bit) & 1u);
  std::vector<int> inputs(static_cast<std::size_t>(n));
  for (int k = 0; k < n; ++k) inputs[static_cast<std::size_t>(k)] = k;
  std::set<Node> built;
  return cost({std::move(truth), std::move(inputs)}, built);
}

std::vector<int> lut6_costs(const ProductTable& t) {
  std::vector<int> costs;
  for (int bit = 0; bit < t.width_bits; ++bit) costs.push_back(lut6_cost_of_bit(t, bit));
  return costs;
}

}  // namespace fpqvar::quant
