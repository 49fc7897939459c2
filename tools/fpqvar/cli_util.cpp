#include "tools/fpqvar/cli_util.hpp"

#include <unistd.h>

#include <bit>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <system_error>

#include <fmt/format.h>

namespace fpqvar::cli {

static_assert(std::endian::native == std::endian::little, "raw float32 files are little-endian; port the readers");

std::vector<float> read_f32_file(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    throw UserError(fmt::format("{}: no such file", path.string()));
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) throw UserError(fmt::format("{}: cannot read its size: {}", path.string(), ec.message()));
  if (size % 4 != 0)
    throw UserError(fmt::format("{}: {} bytes is not a whole number of float32 values (not a multiple of 4)",
                                path.string(), size));
  std::vector<float> values(size / 4);
  std::ifstream in(path, std::ios::binary);
  if (!in) throw UserError(fmt::format("{}: cannot open: {}", path.string(), std::strerror(errno)));
  in.read(reinterpret_cast<char*>(values.data()), static_cast<std::streamsize>(size));
  if (in.gcount() != static_cast<std::streamsize>(size))
    throw UserError(fmt::format("{}: read {} of {} bytes (file changed while reading?)", path.string(), in.gcount(), size));
  return values;
}

void write_file_atomic(const std::filesystem::path& path, std::span<const std::uint8_t> bytes) {
  const std::filesystem::path tmp = path.string() + fmt::format(".tmp{}", ::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw UserError(fmt::format("{}: cannot create: {}", path.string(), std::strerror(errno)));
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    out.flush();
    if (!out) {
      std::error_code ignored;
      std::filesystem::remove(tmp, ignored);
      throw UserError(fmt::format("{}: write failed: {}", path.string(), std::strerror(errno)));
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::error_code ignored;
    std::filesystem::remove(tmp, ignored);
    throw UserError(fmt::format("{}: cannot move the finished file into place: {}", path.string(), ec.message()));
  }
}

void write_f32_file(const std::filesystem::path& path, std::span<const float> values) {
  write_file_atomic(path, {reinterpret_cast<const std::uint8_t*>(values.data()), values.size() * sizeof(float)});
}

void write_text_file(const std::filesystem::path& path, const std::string& text) {
  write_file_atomic(path, {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()});
}

std::string spec_text(const quant::QuantSpec& s) {
  std::string where;
  switch (s.granularity) {
    case quant::Granularity::kGroup: where = fmt::format("g{}", s.group_size); break;
    case quant::Granularity::kChannel: where = "ch"; break;
    case quant::Granularity::kToken: where = "tok"; break;
    case quant::Granularity::kTensor: where = "tensor"; break;
    case quant::Granularity::kColumn: where = "col"; break;
  }
  return fmt::format("{} {} {}", s.format.name, where, quant::to_string(s.scale_type));
}

bool interactive() {
  const char* ci = std::getenv("CI");
  return ::isatty(STDERR_FILENO) && !(ci && *ci && std::strcmp(ci, "false") != 0);
}

}  // namespace fpqvar::cli

// ---- subcommand registry (commands.hpp) ----
#include <algorithm>
#include <tuple>

#include "tools/fpqvar/commands.hpp"

namespace fpqvar::cli {
namespace {
struct Entry {
  std::string name;
  int order;
  RegisterFn fn;
};
std::vector<Entry>& registry() {
  static std::vector<Entry> entries;  // function-local: safe from static initialisation order
  return entries;
}
}  // namespace

Registrar::Registrar(std::string name, int order, RegisterFn fn) {
  registry().push_back({std::move(name), order, std::move(fn)});
}

void register_all(CLI::App& app) {
  auto entries = registry();
  std::sort(entries.begin(), entries.end(),
            [](const Entry& a, const Entry& b) { return std::tie(a.order, a.name) < std::tie(b.order, b.name); });
  for (const auto& e : entries) e.fn(app);
}

}  // namespace fpqvar::cli
