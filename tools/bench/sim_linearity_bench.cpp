// sim_linearity_bench: does the simulator's time grow linearly with the workload (issue 13 section 7)? Runs
// simulate() at timing fidelity on VAR-d16, d20, d24, d30, d36 (batch 1) and on one model at batch 1, 2, 4, 8, 16,
// and prints per point the workload (ops, GMAC, tile transactions) and simulate()'s best wall and CPU time over
// --repeats, with the time per transaction and per GMAC. Then a least-squares fit of CPU time against transactions,
// t = a + b * transactions, over all points: the slope b (us per transaction), the intercept a, R^2 and the largest
// relative residual. Linear means the per-transaction time stays flat from the smallest point to the largest (the
// baseline of the ratio column is the first point, measured in the same run).
//   ./sim_linearity_bench                         depths 16..36, batches 1..16 on var-d16, 3 repeats
//   ./sim_linearity_bench --batch-model var-d30 --config vck190-int8 --repeats 5
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "tools/bench/sim_bench_util.hpp"

// libsystemc's main() refers to sc_main; this program has its own main (simulate() elaborates and runs the model).
extern "C" int sc_main(int, char**) { return 0; }

namespace {

using namespace fpqvar;

struct Row {
  std::string label;
  std::int64_t ops = 0, macs = 0, transactions = 0, cycles = 0;
  bench::Stage best;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"sim_linearity_bench: simulator time against workload size"};
  std::string config = "vck190-fpqvar-w4a4", batch_model = "var-d16";
  std::vector<std::string> models = {"var-d16", "var-d20", "var-d24", "var-d30", "var-d36"};
  std::vector<int> batches = {1, 2, 4, 8, 16};
  int repeats = 3;
  app.add_option("--config", config, "Design")->capture_default_str();
  app.add_option("--models", models, "Models at batch 1")->capture_default_str();
  app.add_option("--batch-model", batch_model, "Model of the batch series")->capture_default_str();
  app.add_option("--batches", batches, "Batches of the batch series")->capture_default_str();
  app.add_option("--repeats", repeats, "Runs per point (best is kept)")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  repeats = std::max(repeats, 1);

  auto measure = [&](const std::string& model, int batch) {
    bench::PointSpec s;
    s.model = model;
    s.config = config;
    s.batch = batch;
    s.json = false;
    (void)bench::run_point(s);  // warm-up
    std::vector<bench::Stage> v;
    bench::PointResult p;
    for (int r = 0; r < repeats; ++r) {
      p = bench::run_point(s);
      v.push_back(p.simulate);
    }
    return Row{fmt::format("{} b{}", model, batch), p.ops, p.macs, p.transactions, p.cycles, bench::best(v)};
  };

  fmt::print("sim_linearity_bench: simulate() on {}, timing fidelity, best of {}\n", config, repeats);
  std::vector<Row> rows;
  for (const auto& m : models) rows.push_back(measure(m, 1));
  for (int b : batches)
    if (b != 1 || std::find(models.begin(), models.end(), batch_model) == models.end())
      rows.push_back(measure(batch_model, b));

  fmt::print("\n{:<14} {:>6} {:>9} {:>12} {:>14} {:>9} {:>9} {:>10} {:>8} {:>10}\n", "point", "ops", "GMAC",
             "transactions", "sim. cycles", "wall s", "CPU s", "CPU us/tr", "x first", "CPU s/TMAC");
  const double base = rows.front().best.cpu / static_cast<double>(rows.front().transactions);
  for (const Row& r : rows) {
    const double per_tr = r.best.cpu / static_cast<double>(r.transactions);
    fmt::print("{:<14} {:>6} {:>9.1f} {:>12} {:>14} {:>9.4f} {:>9.4f} {:>10.3f} {:>7.2f}x {:>10.4f}\n", r.label, r.ops,
               static_cast<double>(r.macs) * 1e-9, r.transactions, r.cycles, r.best.wall, r.best.cpu, 1e6 * per_tr,
               per_tr / base, r.best.cpu / (static_cast<double>(r.macs) * 1e-12));
  }

  // Least squares t = a + b x over the points, x = transactions, t = CPU seconds (and the same for wall).
  auto fit = [&](auto time_of, std::string_view what) {
    double sx = 0, sy = 0, sxx = 0, sxy = 0;
    const double n = static_cast<double>(rows.size());
    for (const Row& r : rows) {
      const double x = static_cast<double>(r.transactions), y = time_of(r);
      sx += x;
      sy += y;
      sxx += x * x;
      sxy += x * y;
    }
    const double b = (n * sxy - sx * sy) / (n * sxx - sx * sx), a = (sy - b * sx) / n;
    double ss_res = 0, ss_tot = 0, worst = 0;
    for (const Row& r : rows) {
      const double x = static_cast<double>(r.transactions), y = time_of(r), e = y - (a + b * x);
      ss_res += e * e;
      ss_tot += (y - sy / n) * (y - sy / n);
      worst = std::max(worst, std::abs(e) / y);
    }
    fmt::print("{:<5} = {:.4f} s + {:.4f} us x transactions: R^2 {:.5f}, largest residual {:.1f} % of its point\n", what,
               a, 1e6 * b, 1.0 - ss_res / ss_tot, 100 * worst);
  };
  fmt::print("\nleast-squares fit over the {} points:\n", rows.size());
  fit([](const Row& r) { return r.best.cpu; }, "CPU");
  fit([](const Row& r) { return r.best.wall; }, "wall");
  return 0;
}
