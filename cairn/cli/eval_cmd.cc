// `cairn eval nab`: runs a detector over a corpus in NAB's layout and scores it
// exactly as the Numenta Anomaly Benchmark does (bench/nab/nab.h).
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "bench/nab/nab.h"
#include "cairn/cli/commands.h"
#include "cairn/cli/format.h"

namespace cairn::cli {
namespace {

struct EvalNabFlags {
  std::string corpus;
  std::string profile = "all";
  std::string detector = "series";
  std::string scores_dir;
  std::string scores_out;
  double threshold = 0.0;
  bool has_threshold = false;
  int threads = 0;  // 0 = all cores
  std::string json_out;
};

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

std::string Score(double x) { return std::isnan(x) ? "n/a" : fmt::format("{:.2f}", x); }

std::string ProfileTable(const nab::ProfileReport& r) {
  std::string out = fmt::format("{} (tp {:g}, fp {:g}, fn {:g}): threshold {}, null detector's {}\n",
                                r.profile.name, r.profile.tp_weight, r.profile.fp_weight, r.profile.fn_weight,
                                r.threshold, r.null_threshold);
  out += fmt::format("{:<24} {:>5} {:>7} {:>8} {:>8} {:>8} {:>8} {:>9} {:>9} {:>8} {:>7}\n", "category", "files",
                     "windows", "detected", "TP rows", "FP rows", "FN rows", "raw", "null", "perfect", "score");
  auto row = [&](const nab::Summary& s) {
    out += fmt::format("{:<24} {:>5} {:>7} {:>8} {:>8} {:>8} {:>8} {:>9.3f} {:>9.3f} {:>8.2f} {:>7}\n", s.name,
                       s.files, s.windows, s.windows_detected, Thousands(s.counts.tp), Thousands(s.counts.fp),
                       Thousands(s.counts.fn), s.raw, s.null, s.perfect, Score(s.normalized));
  };
  for (const nab::Summary& s : r.categories) row(s);
  row(r.overall);
  return out;
}

std::string SummaryTable(const std::vector<nab::ProfileReport>& reports) {
  std::string out = "NAB score (normalized: 0 = null detector, 100 = perfect; threshold optimized over the corpus)\n";
  out += fmt::format("{:<24}", "category");
  for (const auto& r : reports) out += fmt::format(" {:>19}", r.profile.name);
  out += "\n";
  const size_t n = reports.front().categories.size();
  for (size_t c = 0; c <= n; ++c) {
    out += fmt::format("{:<24}", c < n ? reports.front().categories[c].name : std::string("all"));
    for (const auto& r : reports) out += fmt::format(" {:>19}", Score(c < n ? r.categories[c].normalized : r.overall.normalized));
    out += "\n";
  }
  return out;
}

nlohmann::json SummaryJson(const nab::Summary& s) {
  auto num = [](double x) { return std::isnan(x) ? nlohmann::json(nullptr) : nlohmann::json(x); };
  return {{"name", s.name},          {"files", s.files},   {"windows", s.windows}, {"windows_detected", s.windows_detected},
          {"tp", s.counts.tp},       {"fp", s.counts.fp},  {"fn", s.counts.fn},    {"tn", s.counts.tn},
          {"raw", s.raw},            {"null", s.null},     {"perfect", s.perfect}, {"score", num(s.normalized)}};
}

int RunEvalNab(const EvalNabFlags& f) {
  const auto start = std::chrono::steady_clock::now();
  std::vector<nab::Profile> profiles;
  if (f.profile == "all") {
    profiles.assign(nab::NabProfiles().begin(), nab::NabProfiles().end());
  } else {
    profiles.push_back(*nab::FindProfile(f.profile));
  }

  auto corpus = nab::LoadCorpus(f.corpus);
  if (!corpus.ok()) {
    fmt::print(stderr, "cairn eval nab: {}\n", std::string(corpus.status().message()));
    return 1;
  }
  for (const std::string& p : corpus->problems) fmt::print(stderr, "cairn eval nab: warning: {}\n", p);
  const double load_s = Seconds(start);
  fmt::print("NAB corpus {}: {} files in {} categories, {} rows, {} windows\n", f.corpus, corpus->files.size(),
             corpus->Categories().size(), Thousands(corpus->NumRows()), corpus->NumWindows());

  const auto detect_start = std::chrono::steady_clock::now();
  nab::CorpusScores scores;
  std::string source;
  if (!f.scores_dir.empty()) {
    auto read = nab::ReadResults(*corpus, f.scores_dir);
    if (!read.ok()) {
      fmt::print(stderr, "cairn eval nab: {}\n", std::string(read.status().message()));
      return 1;
    }
    scores = std::move(*read);
    source = fmt::format("anomaly scores from {}", f.scores_dir);
  } else if (f.detector == "null") {
    scores = nab::NullScores(*corpus);
    source = "null detector (0.5 everywhere)";
  } else {
    auto detector = detect::SeriesDetector::Create(detect::SeriesConfig{});
    if (!detector.ok()) {
      fmt::print(stderr, "cairn eval nab: {}\n", std::string(detector.status().message()));
      return 1;
    }
    const int threads = f.threads > 0 ? f.threads : std::max(1u, std::thread::hardware_concurrency());
    const bool tty = isatty(STDERR_FILENO);
    const size_t total = corpus->files.size();
    fmt::print(stderr, "cairn eval nab: series detector over {} files on {} threads\n", total, threads);
    scores = nab::RunSeriesDetector(*corpus, *detector, threads, [&](size_t done) {
      if (tty) fmt::print(stderr, "\r  {}/{} files", done, total);
    });
    if (tty) fmt::print(stderr, "\r{:30}\r", "");
    source = fmt::format("series detector (default configuration), {} threads", threads);
  }
  const double detect_s = Seconds(detect_start);

  if (!f.scores_out.empty()) {
    const std::string name = f.scores_dir.empty() ? f.detector : "scores";
    if (auto s = nab::WriteResults(*corpus, scores, f.scores_out, name); !s.ok()) {
      fmt::print(stderr, "cairn eval nab: {}\n", std::string(s.message()));
      return 1;
    }
    fmt::print(stderr, "cairn eval nab: results written to {}/<category>/{}_<file>.csv and {}_<profile>_scores.csv\n",
               f.scores_out, name, name);
  }

  const auto score_start = std::chrono::steady_clock::now();
  auto reports = nab::Evaluate(*corpus, scores, profiles,
                               f.has_threshold ? std::optional<double>(f.threshold) : std::nullopt);
  if (!reports.ok()) {
    fmt::print(stderr, "cairn eval nab: {}\n", std::string(reports.status().message()));
    return 1;
  }
  const double score_s = Seconds(score_start);
  if (!f.scores_out.empty()) {
    const std::string name = f.scores_dir.empty() ? f.detector : "scores";
    for (const nab::ProfileReport& r : *reports) {
      const std::string path = fmt::format("{}/{}_{}_scores.csv", f.scores_out, name, r.profile.name);
      std::ofstream out(path);
      out << nab::ScoresCsv(*corpus, r, name);
      if (!out) {
        fmt::print(stderr, "cairn eval nab: cannot write '{}'\n", path);
        return 1;
      }
    }
  }
  fmt::print("detector: {}; {:.2f} s ({:.1f} M rows/s), scoring {:.2f} s, loading {:.2f} s\n\n", source, detect_s,
             static_cast<double>(corpus->NumRows()) / std::max(detect_s, 1e-9) / 1e6, score_s, load_s);
  for (const nab::ProfileReport& r : *reports) fmt::print("{}\n", ProfileTable(r));
  fmt::print("{}", SummaryTable(*reports));

  if (!f.json_out.empty()) {
    nlohmann::json j = {{"benchmark", "nab"},
                        {"corpus", f.corpus},
                        {"files", corpus->files.size()},
                        {"rows", corpus->NumRows()},
                        {"windows", corpus->NumWindows()},
                        {"detector", source},
                        {"detect_seconds", detect_s},
                        {"score_seconds", score_s},
                        {"profiles", nlohmann::json::array()}};
    for (const nab::ProfileReport& r : *reports) {
      nlohmann::json p = {{"profile", r.profile.name},
                          {"threshold", r.threshold},
                          {"null_threshold", r.null_threshold},
                          {"overall", SummaryJson(r.overall)},
                          {"categories", nlohmann::json::array()}};
      for (const nab::Summary& s : r.categories) p["categories"].push_back(SummaryJson(s));
      j["profiles"].push_back(p);
    }
    std::ofstream out(f.json_out);
    out << j.dump(2) << "\n";
    if (!out) {
      fmt::print(stderr, "cairn eval nab: cannot write '{}'\n", f.json_out);
      return 1;
    }
  }
  return 0;
}

}  // namespace

void RegisterEval(CLI::App& app, Runner* run) {
  CLI::App* eval = app.add_subcommand("eval", "Score detectors on labelled benchmarks");
  eval->require_subcommand(1);
  auto f = std::make_shared<EvalNabFlags>();
  CLI::App* nab = eval->add_subcommand(
      "nab", "The Numenta Anomaly Benchmark: run a detector over a corpus in NAB's layout and score it as NAB does");
  nab->add_option("--corpus", f->corpus, "Corpus directory: DIR/data/<category>/*.csv and DIR/combined_windows.json")
      ->required();
  nab->add_option("--profile", f->profile, "standard, reward_low_FP_rate, reward_low_FN_rate, or all")
      ->capture_default_str()
      ->check(CLI::IsMember({"standard", "reward_low_FP_rate", "reward_low_FN_rate", "all"}));
  CLI::Option* det = nab->add_option("--detector", f->detector, "series, or null (NAB's baseline: 0.5 everywhere)")
                         ->capture_default_str()
                         ->check(CLI::IsMember({"series", "null"}));
  nab->add_option("--scores", f->scores_dir,
                  "Score precomputed results instead (NAB's results layout: DIR/<category>/[<detector>_]<file>.csv "
                  "with an anomaly_score column)")
      ->excludes(det);
  nab->add_option("--scores-out", f->scores_out,
                  "Write the anomaly scores as NAB results CSVs: DIR/<category>/<detector>_<file>.csv");
  CLI::Option* thr =
      nab->add_option("--threshold", f->threshold, "Use this threshold instead of optimizing it over the corpus")
          ->check(CLI::Range(0.0, 1.1));
  nab->add_option("--threads", f->threads, "Threads running the detector (default: all cores)")
      ->check(CLI::Range(1, 1024));
  nab->add_option("--json-out", f->json_out, "Also write the scores as a JSON object to this file");
  nab->callback([=] {
    f->has_threshold = thr->count() > 0;
    *run = [=] { return RunEvalNab(*f); };
  });
}

}  // namespace cairn::cli
