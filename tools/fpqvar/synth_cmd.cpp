// `fpqvar synth UNIT`: synthesize one RTL unit of rtl/ with yosys' synth_xilinx and report its FPGA resources
// (LUTs, flip-flops, carry chains, DSP slices, block RAMs) as a table and as JSON. These counts are what the cost
// model in sim/ and the README's "LUTs per MAC" table use (docs/synthesis.md).
//
// The units (top module, sources, parameters), the yosys script, the counting rules and the JSON document are
// rtl/synthesis.hpp's (library fpqvar::rtl_cost, which sim/ links too); this command runs yosys and writes files.
// The flow is out of context: -noiopad -noclkbuf, -flatten, so the counts are the unit's logic alone.
// `--macs --json FILE` writes every MAC datapath unit (multipliers, MACs, PEs) with its per-MAC figures
// (lut_per_mac, ff_per_mac, ...): docs/synthesis.json, which sim/'s cost model reads, is that document.
// `--check FILE` re-synthesizes the chosen units and compares their counts with FILE's: the synthesis regression
// test (tests/rtl/CMakeLists.txt) runs it on the small units against docs/synthesis.json.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include "rtl/synthesis.hpp"
#include "tools/fpqvar/cli_util.hpp"
#include "tools/fpqvar/commands.hpp"

namespace fpqvar::cli {
namespace {

namespace fs = std::filesystem;
using rtl::SynthUnit;
using rtl::UnitCost;

// ---- locating the sources and the tools ----

// The RTL tree and the generated tables, as the build configured them; overridable for an installed binary.
fs::path default_rtl_dir() {
  if (const char* env = std::getenv("FPQVAR_RTL_DIR")) return env;
#ifdef FPQVAR_RTL_DIR
  return FPQVAR_RTL_DIR;
#else
  return "rtl";
#endif
}
fs::path default_generated_dir() {
  if (const char* env = std::getenv("FPQVAR_RTL_GENERATED_DIR")) return env;
#ifdef FPQVAR_RTL_GENERATED_DIR
  return FPQVAR_RTL_GENERATED_DIR;
#else
  return "rtl/generated";
#endif
}

// Runs argv (no shell), stdout and stderr into `log`. Returns the exit status; 127 when the program was not found.
int run_program(const std::vector<std::string>& argv, const fs::path& log) {
  const pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    const std::string log_path = log.string();
    if (std::freopen(log_path.c_str(), "w", stdout) == nullptr) _exit(126);
    dup2(fileno(stdout), fileno(stderr));
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execvp(args[0], args.data());
    _exit(127);
  }
  int status = 0;
  if (waitpid(pid, &status, 0) < 0) throw std::runtime_error("waitpid failed");
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

std::string read_text(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string tail_lines(std::string text, int n) {
  while (!text.empty() && text.back() == '\n') text.pop_back();
  std::size_t pos = text.size();
  for (int i = 0; i < n && pos > 0; ++i) pos = text.rfind('\n', pos - 1);
  return pos == std::string::npos || pos == 0 ? text : text.substr(pos + 1);
}

// A temporary directory removed when it goes out of scope (unless kept).
struct TempDir {
  fs::path path;
  bool keep = false;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "fpqvar-synth-XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("cannot create a temporary directory");
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    if (!keep) fs::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
};

struct SynthOptions {
  std::vector<std::string> units;
  bool all = false;
  bool macs = false;  // every unit that counts MACs (multipliers, MACs, PEs): the sim/ cost model's figures
  bool list = false;
  std::vector<std::string> overrides;  // NAME=VALUE
  std::string json_path;
  std::string check_path;  // compare with this document instead of writing one
  std::string family = "xcup";
  std::string yosys = "yosys";
  std::string rtl_dir, generated_dir;
  bool keep = false;
  bool no_bram = false;  // synth_xilinx -nobram: ROM-like tables stay in LUTs instead of block RAM
};

// Parameter overrides: a Verilog identifier and an integer value (nothing else reaches the yosys script).
std::vector<std::pair<std::string, std::string>> apply_overrides(std::vector<std::pair<std::string, std::string>> params,
                                                                 const std::vector<std::string>& overrides) {
  static const std::regex kOverride(R"(^([A-Za-z_][A-Za-z0-9_]*)=(-?[0-9]+)$)");
  for (const auto& o : overrides) {
    std::smatch m;
    if (!std::regex_match(o, m, kOverride))
      throw UserError(fmt::format("-p '{}': expected NAME=INTEGER (a Verilog parameter and its value)", o));
    auto it = std::find_if(params.begin(), params.end(), [&](const auto& p) { return p.first == m[1].str(); });
    if (it != params.end()) it->second = m[2].str();
    else params.emplace_back(m[1].str(), m[2].str());
  }
  return params;
}

std::string yosys_version(const std::string& yosys, const fs::path& dir) {
  const fs::path log = dir / "version.txt";
  const int rc = run_program({yosys, "-V"}, log);
  if (rc == 127)
    throw UserError(fmt::format("yosys not found ('{}'): install it (apt-get install yosys) or pass --yosys PATH", yosys));
  if (rc != 0) throw UserError(fmt::format("'{} -V' failed with exit status {}", yosys, rc));
  std::string v = read_text(log);
  while (!v.empty() && std::isspace(static_cast<unsigned char>(v.back()))) v.pop_back();
  return v;
}

UnitCost synth_one(const SynthUnit& unit, const SynthOptions& o, const std::string& version) {
  const fs::path rtl = o.rtl_dir.empty() ? default_rtl_dir() : fs::path(o.rtl_dir);
  const fs::path gen = o.generated_dir.empty() ? default_generated_dir() : fs::path(o.generated_dir);
  TempDir tmp;
  tmp.keep = o.keep;

  for (const auto& s : unit.sources) {
    const fs::path p = rtl / s;
    if (!fs::is_regular_file(p))
      throw UserError(fmt::format("unit {}: source {} not found (pass --rtl-dir, the repository's rtl/)", unit.name,
                                  p.string()));
  }
  if (unit.needs_tables && !fs::is_regular_file(gen / "fp_mul_tables.svh"))
    throw UserError(fmt::format(
        "unit {}: generated tables not found in {} (build the fpqvar_rtl_tables target, or pass --generated-dir)",
        unit.name, gen.string()));
  if (!unit.wrapper.empty()) std::ofstream(tmp.path / (unit.top + ".v")) << unit.wrapper;

  UnitCost r;
  r.unit = unit.name;
  r.block = unit.block;
  r.top = unit.top;
  r.family = o.family;
  r.nodsp = unit.nodsp;
  r.params = apply_overrides(unit.params, o.overrides);
  r.yosys = version;
  r.macs = rtl::macs_of(unit, r.params);
  r.script = rtl::synth_script(unit, r.params, o.family, o.no_bram);
  std::sort(r.params.begin(), r.params.end());
  const std::string script = rtl::expand_script(r.script, rtl, gen, tmp.path);
  // With --json - the JSON document alone goes to stdout (where the log goes too): log the script at debug level.
  spdlog::log(o.json_path == "-" ? spdlog::level::debug : spdlog::level::info, "synth {}: yosys -p \"{}\"", unit.name,
              script);

  const fs::path log = tmp.path / "yosys.log";
  const int rc = run_program({o.yosys, "-q", "-p", script}, log);
  if (rc == 127) throw UserError(fmt::format("yosys not found ('{}')", o.yosys));
  if (rc != 0) {
    tmp.keep = true;
    throw UserError(fmt::format("yosys failed on unit {} (exit status {}); log {}:\n{}", unit.name, rc, log.string(),
                                tail_lines(read_text(log), 15)));
  }
  const fs::path stat = tmp.path / "stat.txt";
  if (!fs::is_regular_file(stat))
    throw std::runtime_error(fmt::format("yosys wrote no statistics ({})", stat.string()));
  r.cells = rtl::parse_yosys_stat(read_text(stat), stat.string());
  rtl::count_cells(r);
  if (o.keep) spdlog::info("kept {}", tmp.path.string());
  return r;
}

// The counts --check compares: every resource count (the cells they come from may be named differently by another
// yosys, which the version check below catches first).
std::vector<std::string> differences(const UnitCost& want, const UnitCost& got) {
  std::vector<std::string> d;
  const std::pair<const char*, long UnitCost::*> kFields[] = {
      {"LUT", &UnitCost::lut}, {"MUXF", &UnitCost::muxf}, {"FF", &UnitCost::ff}, {"CARRY", &UnitCost::carry},
      {"DSP", &UnitCost::dsp}, {"BRAM", &UnitCost::bram}, {"URAM", &UnitCost::uram},
      {"LUTRAM", &UnitCost::lutram}, {"SRL", &UnitCost::srl}, {"MACs", &UnitCost::macs}};
  for (const auto& [name, member] : kFields)
    if (want.*member != got.*member) d.push_back(fmt::format("{} {} -> {}", name, want.*member, got.*member));
  if (want.params != got.params) d.push_back("parameters differ");
  if (want.script != got.script) d.push_back(fmt::format("script differs (recorded: {})", want.script));
  return d;
}

void cmd_synth(const SynthOptions& o) {
  const auto& units = rtl::synth_units();
  if (o.list) {
    for (const auto& u : units) fmt::print("{:<24} {:<10} {}\n", u.name, rtl::block_name(u.block), u.description);
    return;
  }
  std::vector<const SynthUnit*> chosen;
  if (o.all || o.macs) {
    if (!o.units.empty()) throw UserError("name units, or pass --all or --macs, not both");
    for (const auto& u : units)
      if (o.all || u.counts_macs) chosen.push_back(&u);
  } else {
    if (o.units.empty()) throw UserError("name a unit (fpqvar synth --list shows them), or pass --all or --macs");
    for (const auto& name : o.units) {
      const SynthUnit* u = rtl::find_synth_unit(name);
      if (u == nullptr) {
        std::vector<std::string> names;
        for (const auto& v : units) names.push_back(v.name);
        throw UserError(fmt::format("unknown unit '{}' (known: {})", name, fmt::join(names, ", ")));
      }
      chosen.push_back(u);
    }
  }
  if (!o.overrides.empty() && chosen.size() > 1) throw UserError("-p applies to a single unit; name one");
  if (!o.check_path.empty() && (!o.json_path.empty() || !o.overrides.empty()))
    throw UserError("--check compares with a document: no --json, no -p");

  std::optional<rtl::SynthesisDoc> reference;
  if (!o.check_path.empty()) {
    try {
      reference = rtl::read_synthesis_json(o.check_path);
    } catch (const rtl::SynthesisFileError& e) {
      throw UserError(e.what());
    }
    for (const auto* u : chosen)
      if (reference->find(u->name) == nullptr)
        throw UserError(fmt::format("{}: holds no unit '{}'", o.check_path, u->name));
  }

  TempDir vdir;
  const std::string version = yosys_version(o.yosys, vdir.path);
  if (reference && reference->yosys != version)
    throw CheckFailed(fmt::format("{} was made with {}, this is {}: the counts are only comparable with the same yosys",
                                  o.check_path, reference->yosys, version));
  if (reference && (reference->family != o.family || reference->nobram != o.no_bram))
    throw UserError(fmt::format("{} is for -family {}{}; pass the same options", o.check_path, reference->family,
                                reference->nobram ? " -nobram" : ""));
  rtl::SynthesisDoc doc{version, o.family, o.no_bram, {}};
  const bool table = o.json_path != "-";
  if (table) {
    fmt::print("{} (synth_xilinx -family {}{}, out of context)\n", version, o.family, o.no_bram ? " -nobram" : "");
    fmt::print("{:<24} {:>6} {:>6} {:>6} {:>6} {:>4} {:>5}  {}\n", "unit", "LUT", "MUXF", "FF", "CARRY", "DSP", "BRAM",
               reference ? "against " + o.check_path : std::string("params"));
  }
  // One row per unit as soon as it is done (a long --macs run shows its progress, and a unit that fails late does
  // not lose the rows before it).
  std::vector<std::string> mismatches;
  for (const auto* u : chosen) {
    doc.units.push_back(synth_one(*u, o, version));
    if (!table) continue;
    const UnitCost& r = doc.units.back();
    std::string note;
    if (reference) {
      const auto d = differences(reference->at(r.unit), r);
      note = d.empty() ? "same" : fmt::format("DIFFERS: {}", fmt::join(d, "; "));
      if (!d.empty()) mismatches.push_back(fmt::format("{}: {}", r.unit, fmt::join(d, "; ")));
    } else {
      std::vector<std::string> ps;
      for (const auto& [k, v] : r.params) ps.push_back(k + "=" + v);
      note = fmt::format("{}{}", fmt::join(ps, " "), r.nodsp ? " (-nodsp)" : "");
    }
    fmt::print("{:<24} {:>6} {:>6} {:>6} {:>6} {:>4} {:>5}  {}\n", r.unit, r.lut, r.muxf, r.ff, r.carry, r.dsp, r.bram,
               note);
    std::fflush(stdout);
  }
  if (!mismatches.empty())
    throw CheckFailed(fmt::format("{} unit(s) differ from {}: {}", mismatches.size(), o.check_path,
                                  fmt::join(mismatches, " | ")));

  // The JSON document (docs/synthesis.json is one, read by sim/'s cost model through rtl/synthesis.hpp).
  const std::string text = rtl::synthesis_json_text(doc);
  if (o.json_path == "-") {
    fmt::print("{}", text);
    return;
  }
  if (!o.json_path.empty()) write_text_file(o.json_path, text);
}

void register_synth(CLI::App& app) {
  auto o = std::make_shared<SynthOptions>();
  auto* cmd = app.add_subcommand("synth", "Synthesize an RTL unit with yosys synth_xilinx: LUT, FF, CARRY, DSP, BRAM");
  cmd->add_option("unit", o->units, "Unit name(s); --list shows them");
  cmd->add_flag("--list", o->list, "List the units");
  cmd->add_flag("--all", o->all, "Synthesize every unit");
  cmd->add_flag("--macs", o->macs,
                "Synthesize every MAC datapath unit (multipliers, MACs, PEs; docs/synthesis.json is this with --json)");
  cmd->add_option("-p,--param", o->overrides, "Override a Verilog parameter of the unit: NAME=INTEGER (repeatable)");
  cmd->add_option("--json", o->json_path, "Write the result as JSON to FILE ('-': print JSON instead of the table)");
  cmd->add_option("--check", o->check_path,
                  "Compare the units' counts with those of a synthesis document (exit status 3 when any differs)");
  cmd->add_option("--family", o->family, "synth_xilinx -family (xcup: UltraScale+, CARRY8/DSP48E2; xc7: CARRY4/DSP48E1)")
      ->check(CLI::IsMember({"xcup", "xcu", "xc7", "xc6s"}));
  cmd->add_option("--yosys", o->yosys, "The yosys executable");
  cmd->add_option("--rtl-dir", o->rtl_dir, "The repository's rtl/ folder (default: the one this binary was built from)");
  cmd->add_option("--generated-dir", o->generated_dir,
                  "Folder of the generated fp_mul_tables.svh and fpqvar_pairs.svh");
  cmd->add_flag("--no-bram", o->no_bram, "Keep table-like logic out of block RAM (synth_xilinx -nobram)");
  cmd->add_flag("--keep", o->keep, "Keep the temporary folder with the yosys script's inputs and log");
  cmd->callback([o] { cmd_synth(*o); });
}

}  // namespace

static const Registrar kRegisterSynth{"synth", 60, &register_synth};

}  // namespace fpqvar::cli
