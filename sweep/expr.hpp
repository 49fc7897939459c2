// Arithmetic expressions of a sweep's "derived" parameters: a design parameter computed from others at each point,
// e.g. the accumulate unit sized to the PE array's drain:
//   "max(8, ceil(pe_array.rows * pe_array.cols * pe_array.lanes / recipe.group))"
// Grammar: numbers (decimal, optional fraction and exponent), names ([A-Za-z_][A-Za-z0-9_.]*: design parameters
// "section.key", and recipe.group, batch), + - * / with the usual precedence, unary minus, parentheses, and the
// functions min(a, b, ...), max(a, b, ...), ceil(x), floor(x), round(x) (half away from zero), log2(x).
// Evaluated in double; a division by zero or a non-finite result is an error. Nesting is limited to 32 levels and
// the text to 1000 characters, so hostile text cannot recurse deeply.
#pragma once

#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace fpqvar::sweep {

class ExprError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

using VariableLookup = std::function<std::optional<double>(std::string_view name)>;

// The variable names an expression reads, in order of first use. Throws ExprError for a syntax fault.
[[nodiscard]] std::vector<std::string> expression_variables(std::string_view text);
// Evaluates `text`; throws ExprError for a syntax fault, an unknown variable (lookup returns nullopt), a division by
// zero or a non-finite result.
[[nodiscard]] double evaluate_expression(std::string_view text, const VariableLookup& lookup);

}  // namespace fpqvar::sweep
