// `cairn sketch …`: one-pass, constant-memory summaries of lines or a CSV column.
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cairn/cli/commands.h"
#include "cairn/cli/format.h"
#include "cairn/cli/input.h"
#include "cairn/sketch/bloom_filter.h"
#include "cairn/sketch/hyperloglog.h"
#include "cairn/sketch/kll.h"
#include "cairn/sketch/top_k.h"

namespace cairn::cli {
namespace {

struct InputFlags {
  std::string path = "-";
  int column = 0;
  std::string delimiter = ",";
  bool header = false;
  bool no_progress = false;
  bool strict = false;
  int max_warnings = 10;
  bool json = false;
};

void AddInputFlags(CLI::App* cmd, InputFlags* f, bool with_path = true) {
  if (with_path) {
    cmd->add_option("input", f->path, "Input file, or - for stdin")->capture_default_str();
  }
  cmd->add_option("-c,--column", f->column,
                  "Use the Nth field (1-based) of each CSV line; 0 = the whole line")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("-d,--delimiter", f->delimiter, "CSV field delimiter (one character)")
      ->capture_default_str();
  cmd->add_flag("--header", f->header, "Skip the first line");
  cmd->add_flag("--no-progress", f->no_progress, "Never show progress on stderr");
  cmd->add_flag("--strict", f->strict, "Stop at the first bad input line instead of skipping it");
  cmd->add_option("--max-warnings", f->max_warnings, "Bad-input lines reported individually")
      ->capture_default_str();
  cmd->add_flag("--json", f->json, "Print one JSON object instead of a table");
}

// Reads fields, reporting bad lines with their number. The callback returns
// false when a field is bad input; `what` describes the problem.
class FieldLoop {
 public:
  explicit FieldLoop(const InputFlags& f) : flags_(f) {}

  template <typename OnField>
  int Run(const std::string& path, const std::string& label, OnField on_field) {
    if (flags_.delimiter.size() != 1) {
      fmt::print(stderr, "cairn sketch: --delimiter must be one character (got '{}')\n",
                 flags_.delimiter);
      return 2;
    }
    FieldReaderOptions opt;
    opt.path = path;
    opt.column = flags_.column;
    opt.delimiter = flags_.delimiter[0];
    opt.skip_header = flags_.header;
    opt.progress = !flags_.no_progress;
    opt.label = label;
    auto reader = FieldReader::Open(opt);
    if (!reader.ok()) {
      fmt::print(stderr, "cairn sketch: {}\n", std::string(reader.status().message()));
      return 1;
    }
    std::string_view field;
    for (;;) {
      auto result = (*reader)->Next(&field);
      if (result == FieldReader::Result::kEnd) break;
      if (result == FieldReader::Result::kError) {
        (*reader)->FinishProgress();
        fmt::print(stderr, "cairn sketch: {}\n", (*reader)->error());
        return 1;
      }
      std::string problem;
      if (result == FieldReader::Result::kMissingColumn) {
        problem = fmt::format("has no column {}", flags_.column);
      } else if (on_field(field, &problem)) {
        ++used_;
        continue;
      }
      ++bad_;
      if (bad_ <= static_cast<uint64_t>(flags_.max_warnings) || flags_.strict) {
        (*reader)->FinishProgress();
        fmt::print(stderr, "{}:{}: {}{}\n", DisplayName(path), (*reader)->line_number(), problem,
                   flags_.strict ? "" : " (skipped)");
      }
      if (flags_.strict) {
        fmt::print(stderr, "cairn sketch: stopped at the first bad line (--strict)\n");
        return 1;
      }
    }
    (*reader)->FinishProgress();
    lines_ += (*reader)->line_number();
    if (bad_ > static_cast<uint64_t>(flags_.max_warnings)) {
      fmt::print(stderr, "{}: {} more bad lines skipped ({} in all)\n", DisplayName(path),
                 Thousands(bad_ - flags_.max_warnings), Thousands(bad_));
    }
    return 0;
  }

  uint64_t used() const { return used_; }
  uint64_t bad() const { return bad_; }
  uint64_t lines() const { return lines_; }

 private:
  static std::string DisplayName(const std::string& path) { return path == "-" ? "<stdin>" : path; }
  const InputFlags& flags_;
  uint64_t used_ = 0, bad_ = 0, lines_ = 0;
};

void PrintJson(const nlohmann::json& j) { fmt::print("{}\n", j.dump(2)); }

int Fail(const absl::Status& s) {
  fmt::print(stderr, "cairn sketch: {}\n", std::string(s.message()));
  return 1;
}

// --- distinct -------------------------------------------------------------

int RunDistinct(const InputFlags& f, int precision) {
  auto hll = sketch::HyperLogLog::Create(precision);
  if (!hll.ok()) return Fail(hll.status());
  FieldLoop loop(f);
  int rc = loop.Run(f.path, "distinct", [&](std::string_view v, std::string*) {
    hll->Add(v);
    return true;
  });
  if (rc != 0) return rc;
  const double est = hll->Estimate();
  const double rse = hll->RelativeStandardError();
  if (f.json) {
    PrintJson({{"distinct", std::llround(est)},
               {"relative_standard_error", rse},
               {"interval_95", {std::llround(est * (1 - 1.96 * rse)), std::llround(est * (1 + 1.96 * rse))}},
               {"values", loop.used()},
               {"bad_lines", loop.bad()},
               {"sketch", "hyperloglog"},
               {"precision", precision},
               {"sketch_bytes", hll->MemoryBytes()}});
    return 0;
  }
  fmt::print("distinct values  ~{}  (±{:.2f}% at one standard error; 95%: {} .. {})\n",
             Thousands(std::llround(est)), 100 * rse,
             Thousands(std::llround(std::max(0.0, est * (1 - 1.96 * rse)))),
             Thousands(std::llround(est * (1 + 1.96 * rse))));
  fmt::print("values read      {}{}\n", Thousands(loop.used()),
             loop.bad() ? fmt::format(" ({} bad lines skipped)", Thousands(loop.bad())) : "");
  fmt::print("sketch           HyperLogLog, precision {}, {}\n", precision,
             HumanBytes(hll->MemoryBytes()));
  return 0;
}

// --- top K ----------------------------------------------------------------

int RunTop(const InputFlags& f, int k, int capacity) {
  if (k < 1) {
    fmt::print(stderr, "cairn sketch top: K must be at least 1 (got {})\n", k);
    return 2;
  }
  if (capacity == 0) capacity = std::max(1000, 10 * k);
  if (capacity < k) {
    fmt::print(stderr, "cairn sketch top: --capacity {} is smaller than K {}\n", capacity, k);
    return 2;
  }
  auto top = sketch::TopK<std::string>::Create(capacity);
  if (!top.ok()) return Fail(top.status());
  FieldLoop loop(f);
  int rc = loop.Run(f.path, "top", [&](std::string_view v, std::string*) {
    top->Add(v);
    return true;
  });
  if (rc != 0) return rc;
  auto items = top->Top(k);
  const double n = static_cast<double>(top->TotalCount());
  if (f.json) {
    nlohmann::json rows = nlohmann::json::array();
    for (const auto& it : items) {
      rows.push_back({{"value", it.key}, {"count", it.count}, {"error", it.error},
                      {"count_lower_bound", it.count - it.error}});
    }
    PrintJson({{"top", rows}, {"values", loop.used()}, {"bad_lines", loop.bad()},
               {"sketch", "top_k"}, {"capacity", capacity}, {"sketch_bytes", top->MemoryBytes()}});
    return 0;
  }
  fmt::print("{:>4}  {:>14}  {:>12}  {:>7}  {}\n", "rank", "count", "± error", "share", "value");
  int rank = 0;
  for (const auto& it : items) {
    fmt::print("{:>4}  {:>14}  {:>12}  {:>6.2f}%  {}\n", ++rank, Thousands(it.count),
               it.error ? Thousands(it.error) : "exact", n > 0 ? 100.0 * it.count / n : 0.0,
               it.key);
  }
  fmt::print("\n{} values read{}; counts are upper bounds, count - error lower bounds\n",
             Thousands(loop.used()),
             loop.bad() ? fmt::format(" ({} bad lines skipped)", Thousands(loop.bad())) : "");
  fmt::print("sketch: SpaceSaving top-k, capacity {}, {}\n", capacity, HumanBytes(top->MemoryBytes()));
  bool uncertain = false;
  for (const auto& it : items) uncertain = uncertain || it.error * 2 > it.count;
  if (uncertain) {
    fmt::print("note: some counts are mostly error: no value stands out at this capacity; "
               "raise --capacity (error <= N/capacity = {})\n",
               Thousands(top->TotalCount() / static_cast<uint64_t>(capacity)));
  }
  return 0;
}

// --- quantiles ------------------------------------------------------------

int RunQuantiles(const InputFlags& f, std::vector<double> qs, int k) {
  for (double q : qs) {
    if (!(q >= 0 && q <= 1)) {
      fmt::print(stderr, "cairn sketch quantiles: quantile {} is outside [0, 1]\n", q);
      return 2;
    }
  }
  if (k < 8 || k > 65535) {
    fmt::print(stderr, "cairn sketch quantiles: --k must be in 8..65535 (got {})\n", k);
    return 2;
  }
  auto kll = sketch::KllSketch<double>::Create(static_cast<uint16_t>(k));
  if (!kll.ok()) return Fail(kll.status());
  FieldLoop loop(f);
  int rc = loop.Run(f.path, "quantiles", [&](std::string_view v, std::string* problem) {
    auto x = ParseNumber(v);
    if (!x) {
      *problem = fmt::format("'{}' is not a number", v.size() > 40 ? std::string(v.substr(0, 40)) + "…" : std::string(v));
      return false;
    }
    kll->Update(*x);
    return true;
  });
  if (rc != 0) return rc;
  const double eps = sketch::KllSketch<double>::NormalizedRankError(static_cast<uint16_t>(k));
  if (kll->empty()) {
    fmt::print(stderr, "cairn sketch quantiles: no numeric values in the input\n");
    return 1;
  }
  if (f.json) {
    nlohmann::json qj = nlohmann::json::object();
    for (double q : qs) qj[fmt::format("{}", q)] = kll->Quantile(q);
    PrintJson({{"quantiles", qj}, {"min", kll->min()}, {"max", kll->max()}, {"n", kll->n()},
               {"bad_lines", loop.bad()}, {"normalized_rank_error", eps}, {"sketch", "kll"},
               {"k", k}, {"sketch_bytes", kll->MemoryBytes()}});
    return 0;
  }
  fmt::print("{:>8}  {}\n", "min", kll->min());
  for (double q : qs) {
    std::string name = fmt::format("p{}", q * 100);
    fmt::print("{:>8}  {}\n", name, kll->Quantile(q));
  }
  fmt::print("{:>8}  {}\n", "max", kll->max());
  fmt::print("\n{} values{}; ranks within ±{:.2f}% (99% confidence)\n", Thousands(kll->n()),
             loop.bad() ? fmt::format(" ({} bad lines skipped)", Thousands(loop.bad())) : "",
             100 * eps);
  fmt::print("sketch: KLL k={}, {} retained, {}\n", k, Thousands(kll->num_retained()),
             HumanBytes(kll->MemoryBytes()));
  return 0;
}

// --- contains -------------------------------------------------------------

struct BuildFlags {
  std::string path;
  int column = -1;  // -1: the same as --column
  bool header = false;
};

int RunContains(const InputFlags& f, const BuildFlags& b, double fpr, uint64_t expected,
                bool invert, bool count_only) {
  const std::string& build = b.path;
  InputFlags build_flags = f;
  build_flags.column = b.column >= 0 ? b.column : f.column;
  build_flags.header = b.header;
  build_flags.max_warnings = 0;
  if (!(fpr > 0 && fpr < 1)) {
    fmt::print(stderr, "cairn sketch contains: --fpr must be in (0, 1) (got {})\n", fpr);
    return 2;
  }
  if (build == "-" && f.path == "-") {
    fmt::print(stderr, "cairn sketch contains: --build and the query input cannot both be stdin\n");
    return 2;
  }
  if (expected == 0) {
    // Count the build file's values first so the filter is sized for them.
    if (build == "-") {
      fmt::print(stderr, "cairn sketch contains: give --expected N when building from stdin\n");
      return 2;
    }
    FieldLoop counter(build_flags);
    int rc = counter.Run(build, "counting", [](std::string_view, std::string*) { return true; });
    if (rc != 0) return rc;
    expected = std::max<uint64_t>(counter.used(), 1);
  }
  auto bloom = sketch::BloomFilter::Create(expected, fpr);
  if (!bloom.ok()) return Fail(bloom.status());
  FieldLoop builder(build_flags);
  int rc = builder.Run(build, "building", [&](std::string_view v, std::string*) {
    bloom->Insert(v);
    return true;
  });
  if (rc != 0) return rc;
  uint64_t hits = 0, misses = 0;
  FieldLoop tester(f);
  rc = tester.Run(f.path, "testing", [&](std::string_view v, std::string*) {
    bool in = bloom->Contains(v);
    (in ? hits : misses)++;
    if (!count_only && in != invert) fmt::print("{}\n", v);
    return true;
  });
  if (rc != 0) return rc;
  const double est_fpr = bloom->EstimatedFalsePositiveRate(builder.used());
  if (f.json && count_only) {
    PrintJson({{"tested", hits + misses}, {"possibly_present", hits}, {"absent", misses},
               {"built_from", builder.used()}, {"estimated_false_positive_rate", est_fpr},
               {"sketch", "bloom"}, {"sketch_bytes", bloom->MemoryBytes()}});
    return 0;
  }
  std::fflush(stdout);
  fmt::print(count_only ? stdout : stderr,
             "{} tested: {} possibly present, {} absent (Bloom filter of {} values, {}, "
             "false-positive rate ~{:.3g}%)\n",
             Thousands(hits + misses), Thousands(hits), Thousands(misses),
             Thousands(builder.used()), HumanBytes(bloom->MemoryBytes()), 100 * est_fpr);
  return 0;
}

}  // namespace

void RegisterSketch(CLI::App& app, Runner* run) {
  CLI::App* sketch = app.add_subcommand(
      "sketch", "One-pass, constant-memory summaries of lines or a CSV column (file or stdin)");
  sketch->require_subcommand(1);

  {
    auto f = std::make_shared<InputFlags>();
    auto precision = std::make_shared<int>(14);
    CLI::App* cmd = sketch->add_subcommand("distinct", "Count distinct values (HyperLogLog)");
    AddInputFlags(cmd, f.get());
    cmd->add_option("-p,--precision", *precision, "HyperLogLog precision 4..18 (error 1.04/sqrt(2^p))")
        ->capture_default_str()
        ->check(CLI::Range(4, 18));
    cmd->callback([=] { *run = [=] { return RunDistinct(*f, *precision); }; });
  }
  {
    auto f = std::make_shared<InputFlags>();
    auto k = std::make_shared<int>(10);
    auto capacity = std::make_shared<int>(0);
    CLI::App* cmd = sketch->add_subcommand("top", "Most frequent values with counts and error bounds");
    cmd->add_option("K", *k, "How many values to report")->required();
    AddInputFlags(cmd, f.get());
    cmd->add_option("--capacity", *capacity,
                    "Counters kept (default max(1000, 10*K)); error <= N/capacity")
        ->check(CLI::NonNegativeNumber);
    cmd->callback([=] { *run = [=] { return RunTop(*f, *k, *capacity); }; });
  }
  {
    auto f = std::make_shared<InputFlags>();
    auto qs = std::make_shared<std::vector<double>>(std::vector<double>{0.5, 0.9, 0.99, 0.999});
    auto k = std::make_shared<int>(200);
    CLI::App* cmd = sketch->add_subcommand("quantiles", "Quantiles of a numeric column (KLL)");
    AddInputFlags(cmd, f.get());
    cmd->add_option("-q,--quantiles", *qs, "Quantiles to report, in [0, 1]")
        ->delimiter(',')
        ->allow_extra_args(false)
        ->capture_default_str();
    cmd->add_option("-k,--k", *k, "KLL accuracy parameter (k=200: ±1.33% rank error)")
        ->capture_default_str();
    cmd->callback([=] { *run = [=] { return RunQuantiles(*f, *qs, *k); }; });
  }
  {
    auto f = std::make_shared<InputFlags>();
    auto build = std::make_shared<BuildFlags>();
    auto fpr = std::make_shared<double>(0.01);
    auto expected = std::make_shared<uint64_t>(0);
    auto invert = std::make_shared<bool>(false);
    auto count = std::make_shared<bool>(false);
    CLI::App* cmd = sketch->add_subcommand(
        "contains",
        "Build a Bloom filter from one file, then print the lines of another that it (probably) "
        "contains");
    cmd->add_option("--build", build->path, "File whose values fill the filter")->required();
    cmd->add_option("--build-column", build->column,
                    "Field of the --build file to use (default: the same as --column)")
        ->check(CLI::NonNegativeNumber);
    cmd->add_flag("--build-header", build->header, "Skip the first line of the --build file");
    AddInputFlags(cmd, f.get());
    cmd->add_option("--fpr", *fpr, "Target false-positive rate")->capture_default_str();
    cmd->add_option("--expected", *expected,
                    "Values the filter is sized for (default: count the --build file first)");
    cmd->add_flag("-v,--invert", *invert, "Print the lines that are NOT contained");
    cmd->add_flag("--count", *count, "Print only the summary");
    cmd->callback([=] {
      *run = [=] { return RunContains(*f, *build, *fpr, *expected, *invert, *count); };
    });
  }
}

}  // namespace cairn::cli
