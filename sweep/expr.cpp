#include "sweep/expr.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>

#include <fmt/format.h>

#include "quant/printable.hpp"

namespace fpqvar::sweep {
namespace {

constexpr std::size_t kMaxText = 1000;
constexpr int kMaxDepth = 32;

// Recursive descent over the text; with `lookup` empty it only collects variable names (values read as 1).
class Parser {
 public:
  Parser(std::string_view text, const VariableLookup* lookup, std::vector<std::string>* names)
      : m_text(text), m_lookup(lookup), m_names(names) {}

  double parse() {
    if (m_text.size() > kMaxText) throw ExprError(fmt::format("expression longer than {} characters", kMaxText));
    const double v = expr(0);
    skip_space();
    if (m_pos != m_text.size()) fail("unexpected text");
    if (m_lookup && !std::isfinite(v)) throw ExprError("the result is not a finite number");
    return v;
  }

 private:
  [[noreturn]] void fail(std::string_view what) const {
    // The text comes from a spec file: quoted through quant::printable (control characters, invalid UTF-8 escaped).
    throw ExprError(fmt::format("{} at offset {} of '{}'", what, m_pos, quant::printable(m_text, 200)));
  }
  void skip_space() {
    while (m_pos < m_text.size() && std::isspace(static_cast<unsigned char>(m_text[m_pos]))) ++m_pos;
  }
  bool eat(char c) {
    skip_space();
    if (m_pos < m_text.size() && m_text[m_pos] == c) {
      ++m_pos;
      return true;
    }
    return false;
  }

  double expr(int depth) {
    if (depth > kMaxDepth) fail(fmt::format("nesting deeper than {} levels", kMaxDepth));
    double v = term(depth);
    for (;;) {
      if (eat('+')) v += term(depth);
      else if (eat('-')) v -= term(depth);
      else return v;
    }
  }
  double term(int depth) {
    double v = unary(depth);
    for (;;) {
      if (eat('*')) {
        v *= unary(depth);
      } else if (eat('/')) {
        const double d = unary(depth);
        if (m_lookup && d == 0) fail("division by zero");
        v = m_lookup ? v / d : v;
      } else {
        return v;
      }
    }
  }
  double unary(int depth) {
    if (eat('-')) {
      if (depth + 1 > kMaxDepth) fail(fmt::format("nesting deeper than {} levels", kMaxDepth));
      return -unary(depth + 1);
    }
    if (eat('+')) return unary(depth + 1);
    return primary(depth);
  }
  double primary(int depth) {
    skip_space();
    if (m_pos >= m_text.size()) fail("expected a number, a name or '('");
    const char c = m_text[m_pos];
    if (c == '(') {
      ++m_pos;
      const double v = expr(depth + 1);
      if (!eat(')')) fail("expected ')'");
      return v;
    }
    if (std::isdigit(static_cast<unsigned char>(c)) || c == '.') {
      double v = 0;
      const auto [p, ec] = std::from_chars(m_text.data() + m_pos, m_text.data() + m_text.size(), v);
      if (ec != std::errc()) fail("bad number");
      m_pos = static_cast<std::size_t>(p - m_text.data());
      return v;
    }
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      const std::size_t start = m_pos;
      while (m_pos < m_text.size() && (std::isalnum(static_cast<unsigned char>(m_text[m_pos])) ||
                                       m_text[m_pos] == '_' || m_text[m_pos] == '.'))
        ++m_pos;
      const std::string name(m_text.substr(start, m_pos - start));
      if (eat('(')) return call(name, depth);
      if (m_names && std::find(m_names->begin(), m_names->end(), name) == m_names->end()) m_names->push_back(name);
      if (!m_lookup) return 1.0;
      const std::optional<double> v = (*m_lookup)(name);
      if (!v) throw ExprError(fmt::format("unknown name '{}' in '{}'", name, quant::printable(m_text, 200)));
      return *v;
    }
    fail(fmt::format("unexpected '{}'", quant::printable(std::string_view(&c, 1))));
  }
  double call(const std::string& name, int depth) {
    std::vector<double> args;
    if (!eat(')')) {
      do {
        args.push_back(expr(depth + 1));
      } while (eat(','));
      if (!eat(')')) fail("expected ')' or ','");
    }
    auto need = [&](std::size_t lo, std::size_t hi) {
      if (args.size() < lo || args.size() > hi)
        fail(fmt::format("{}() takes {} argument{}", name, lo == hi ? fmt::format("{}", lo) : fmt::format("{} or more", lo),
                         lo == 1 && hi == 1 ? "" : "s"));
    };
    if (name == "min" || name == "max") {
      need(2, 64);
      return name == "min" ? *std::min_element(args.begin(), args.end()) : *std::max_element(args.begin(), args.end());
    }
    need(1, 1);
    const double x = args[0];
    if (name == "ceil") return std::ceil(x);
    if (name == "floor") return std::floor(x);
    if (name == "round") return std::round(x);
    if (name == "log2") {
      if (m_lookup && !(x > 0)) fail("log2 of a number <= 0");
      return m_lookup ? std::log2(x) : 0.0;
    }
    fail(fmt::format("unknown function '{}' (known: min, max, ceil, floor, round, log2)", name));
  }

  std::string_view m_text;
  std::size_t m_pos = 0;
  const VariableLookup* m_lookup;
  std::vector<std::string>* m_names;
};

}  // namespace

std::vector<std::string> expression_variables(std::string_view text) {
  std::vector<std::string> names;
  Parser(text, nullptr, &names).parse();
  return names;
}

double evaluate_expression(std::string_view text, const VariableLookup& lookup) {
  return Parser(text, &lookup, nullptr).parse();
}

}  // namespace fpqvar::sweep
