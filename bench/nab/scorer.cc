// NAB's scorer: sweep scores, the corpus-wide threshold sweep, per-file scores
// and the normalization against the null detector.
#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

#include <fmt/format.h>

#include "bench/nab/nab.h"

namespace cairn::nab {
namespace {

// NAB's probationPercent.
constexpr double kProbationFraction = 0.15;
// calcScoreByThreshold starts above every anomaly score: no detection.
constexpr double kStartThreshold = 1.1;

const Profile kProfiles[] = {
    {"standard", 1.0, 0.11, 1.0},
    {"reward_low_FP_rate", 1.0, 0.22, 1.0},
    {"reward_low_FN_rate", 1.0, 0.11, 2.0},
};

// A row's unweighted sweep value and the window (index in its file) it lies in, or -1.
struct RowSweep {
  double sig = 0.0;
  int32_t window = -1;
};

// Follows calcSweepScore: positions inside a window count from its right edge
// (the "+ 1" keeps even the last row of a window a small reward); rows after a
// window are measured in widths of that window (minus one); rows before any
// window are plain false positives.
std::vector<RowSweep> SweepRows(const DataFile& file) {
  const int64_t n = file.rows();
  std::vector<RowSweep> out(static_cast<size_t>(n));
  size_t next = 0;       // the next window to enter
  int32_t cur = -1;      // the window we are in
  int64_t prev_right = -1;
  double prev_width = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    if (cur < 0 && next < file.windows.size() && i == file.windows[next].first) cur = static_cast<int32_t>(next++);
    RowSweep& r = out[static_cast<size_t>(i)];
    if (cur >= 0) {
      const Window& w = file.windows[static_cast<size_t>(cur)];
      const double width = static_cast<double>(w.width());
      r.sig = ScaledSigmoid(-static_cast<double>(w.last - i + 1) / width);
      r.window = cur;
      if (i == w.last) {
        prev_right = i;
        prev_width = width;
        cur = -1;
      }
    } else if (prev_right < 0) {
      r.sig = -1.0;
    } else if (prev_width <= 1.0) {
      // NAB divides by (width - 1) and fails on a one-row window; read it as "far away".
      r.sig = -1.0;
    } else {
      r.sig = ScaledSigmoid(static_cast<double>(std::abs(prev_right - i)) / (prev_width - 1.0));
    }
  }
  return out;
}

// The profile's weight applied as NAB does: tp-side values are divided by the
// best possible one, so a detection on a window's first row earns exactly tp_weight.
double Weighted(const RowSweep& r, const Profile& p) {
  static const double kMaxTp = ScaledSigmoid(-1.0);
  return r.window >= 0 ? r.sig * p.tp_weight / kMaxTp : r.sig * p.fp_weight;
}

// Index of the first scored row.
int64_t FirstScoredRow(int64_t rows) { return static_cast<int64_t>(std::ceil(ProbationaryLength(rows))); }

// Compensated (Neumaier) sum: the sweep adds hundreds of thousands of terms and
// ties between thresholds should not depend on the order of additions.
class Sum {
 public:
  void Add(double x) {
    const double t = sum_ + x;
    comp_ += std::fabs(sum_) >= std::fabs(x) ? (sum_ - t) + x : (x - t) + sum_;
    sum_ = t;
  }
  double value() const { return sum_ + comp_; }

 private:
  double sum_ = 0.0;
  double comp_ = 0.0;
};

absl::Status CheckScores(const Corpus& corpus, const CorpusScores& scores) {
  if (scores.size() != corpus.files.size()) {
    return absl::InvalidArgumentError(
        fmt::format("{} score lists for {} corpus files", scores.size(), corpus.files.size()));
  }
  for (size_t f = 0; f < scores.size(); ++f) {
    const DataFile& file = corpus.files[f];
    if (static_cast<int64_t>(scores[f].size()) != file.rows()) {
      return absl::InvalidArgumentError(
          fmt::format("{}: {} anomaly scores for {} rows", file.name, scores[f].size(), file.rows()));
    }
    for (size_t i = 0; i < scores[f].size(); ++i) {
      const double s = scores[f][i];
      if (!(s >= 0.0 && s <= 1.0)) {  // NaN fails too
        return absl::InvalidArgumentError(
            fmt::format("{}: row {} ({}): anomaly score {} is not in [0, 1]", file.name, i, file.timestamps[i], s));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

Counts& Counts::operator+=(const Counts& o) {
  tp += o.tp;
  tn += o.tn;
  fp += o.fp;
  fn += o.fn;
  return *this;
}

std::span<const Profile> NabProfiles() { return kProfiles; }

const Profile* FindProfile(std::string_view name) {
  for (const Profile& p : kProfiles) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

double ScaledSigmoid(double position) {
  if (position > 3.0) return -1.0;
  return 2.0 * (1.0 / (1.0 + std::exp(5.0 * position))) - 1.0;
}

double ProbationaryLength(int64_t rows) {
  return std::min(std::floor(kProbationFraction * static_cast<double>(rows)), kProbationFraction * 5000);
}

std::vector<double> SweepScores(const DataFile& file, const Profile& profile) {
  std::vector<RowSweep> rows = SweepRows(file);
  std::vector<double> out(rows.size());
  for (size_t i = 0; i < rows.size(); ++i) out[i] = Weighted(rows[i], profile);
  return out;
}

FileScore ScoreFile(const DataFile& file, std::span<const double> scores, const Profile& profile, double threshold) {
  const std::vector<RowSweep> rows = SweepRows(file);
  const int64_t first = FirstScoredRow(file.rows());
  FileScore out;
  // Per window: the best detection so far, -fn_weight while there is none; NaN
  // for windows wholly inside probation, which NAB does not score.
  std::vector<double> parts(file.windows.size(), std::numeric_limits<double>::quiet_NaN());
  for (size_t w = 0; w < file.windows.size(); ++w) {
    if (file.windows[w].last >= first) {
      parts[w] = -profile.fn_weight;
      ++out.windows_scored;
    }
  }
  Sum fp;
  for (int64_t i = first; i < file.rows(); ++i) {
    const RowSweep& r = rows[static_cast<size_t>(i)];
    const bool detected = scores[static_cast<size_t>(i)] >= threshold;
    if (r.window >= 0) {
      if (!detected) {
        ++out.counts.fn;
        continue;
      }
      ++out.counts.tp;
      double& part = parts[static_cast<size_t>(r.window)];
      part = std::max(part, Weighted(r, profile));
    } else if (detected) {
      ++out.counts.fp;
      fp.Add(Weighted(r, profile));
    } else {
      ++out.counts.tn;
    }
  }
  Sum total = fp;
  for (size_t w = 0; w < parts.size(); ++w) {
    if (std::isnan(parts[w])) continue;
    total.Add(parts[w]);
    if (parts[w] > -profile.fn_weight) ++out.windows_detected;
  }
  out.score = total.value();
  return out;
}

std::vector<ThresholdScore> SweepThresholds(const Corpus& corpus, const CorpusScores& scores, const Profile& profile,
                                            std::span<const size_t> files) {
  std::vector<size_t> all;
  if (files.empty()) {
    for (size_t f = 0; f < corpus.files.size(); ++f) all.push_back(f);
    files = all;
  }
  struct Point {
    double score;
    double weighted;
    int64_t window;  // index into `parts`, or -1
  };
  std::vector<Point> points;
  std::vector<double> parts;
  for (size_t f : files) {
    const DataFile& file = corpus.files[f];
    const std::vector<RowSweep> rows = SweepRows(file);
    const int64_t first = FirstScoredRow(file.rows());
    const int64_t base = static_cast<int64_t>(parts.size());
    parts.resize(parts.size() + file.windows.size(), -profile.fn_weight);
    for (int64_t i = first; i < file.rows(); ++i) {
      const RowSweep& r = rows[static_cast<size_t>(i)];
      points.push_back({scores[f][static_cast<size_t>(i)], Weighted(r, profile), r.window >= 0 ? base + r.window : -1});
    }
    // Windows wholly inside probation get no points and must not count as missed.
    for (size_t w = 0; w < file.windows.size(); ++w) {
      if (file.windows[w].last < first) parts[static_cast<size_t>(base) + w] = 0.0;
    }
  }
  std::sort(points.begin(), points.end(), [](const Point& a, const Point& b) { return a.score > b.score; });

  Sum total;
  for (double p : parts) total.Add(p);
  std::vector<ThresholdScore> out;
  double cur = kStartThreshold;
  for (const Point& p : points) {
    // All rows scoring >= cur are in; record before taking a lower one.
    if (p.score != cur) {
      out.push_back({cur, total.value()});
      cur = p.score;
    }
    if (p.window < 0) {
      total.Add(p.weighted);
    } else if (double& part = parts[static_cast<size_t>(p.window)]; p.weighted > part) {
      total.Add(-part);
      total.Add(p.weighted);
      part = p.weighted;
    }
  }
  out.push_back({cur, total.value()});
  return out;
}

ThresholdScore OptimizeThreshold(const Corpus& corpus, const CorpusScores& scores, const Profile& profile,
                                 std::span<const size_t> files) {
  std::vector<ThresholdScore> sweep = SweepThresholds(corpus, scores, profile, files);
  ThresholdScore best = sweep.front();
  for (const ThresholdScore& t : sweep) {
    if (t.score > best.score) best = t;  // strict: NAB's stable sort keeps the highest threshold among ties
  }
  return best;
}

CorpusScores NullScores(const Corpus& corpus) {
  CorpusScores out;
  for (const DataFile& f : corpus.files) out.emplace_back(static_cast<size_t>(f.rows()), 0.5);
  return out;
}

absl::StatusOr<std::vector<ProfileReport>> Evaluate(const Corpus& corpus, const CorpusScores& scores,
                                                    std::span<const Profile> profiles,
                                                    std::optional<double> threshold) {
  if (absl::Status s = CheckScores(corpus, scores); !s.ok()) return s;
  if (threshold && !std::isfinite(*threshold)) return absl::InvalidArgumentError("the threshold must be a number");
  const CorpusScores null_scores = NullScores(corpus);
  const std::vector<std::string> categories = corpus.Categories();

  std::vector<ProfileReport> reports;
  for (const Profile& profile : profiles) {
    ProfileReport rep;
    rep.profile = profile;
    rep.threshold = threshold ? *threshold : OptimizeThreshold(corpus, scores, profile).threshold;
    rep.null_threshold = OptimizeThreshold(corpus, null_scores, profile).threshold;

    std::map<std::string, Summary> by_category;
    for (const std::string& c : categories) by_category[c].name = c;
    rep.overall.name = "all";
    std::map<std::string, Sum> raw, null;
    Sum raw_all, null_all;
    for (size_t f = 0; f < corpus.files.size(); ++f) {
      const DataFile& file = corpus.files[f];
      FileScore fs = ScoreFile(file, scores[f], profile, rep.threshold);
      FileScore ns = ScoreFile(file, null_scores[f], profile, rep.null_threshold);
      for (Summary* s : {&by_category[file.category], &rep.overall}) {
        s->files += 1;
        s->windows += static_cast<int64_t>(file.windows.size());
        s->counts += fs.counts;
        s->windows_detected += fs.windows_detected;
      }
      raw[file.category].Add(fs.score);
      null[file.category].Add(ns.score);
      raw_all.Add(fs.score);
      null_all.Add(ns.score);
      rep.files.push_back(fs);
    }
    auto finish = [&](Summary& s, double r, double n) {
      s.raw = r;
      s.null = n;
      s.perfect = static_cast<double>(s.windows) * profile.tp_weight;
      s.normalized = s.perfect == s.null ? std::numeric_limits<double>::quiet_NaN()
                                         : 100.0 * (s.raw - s.null) / (s.perfect - s.null);
    };
    finish(rep.overall, raw_all.value(), null_all.value());
    for (auto& [name, s] : by_category) {
      finish(s, raw[name].value(), null[name].value());
      rep.categories.push_back(s);
    }
    reports.push_back(std::move(rep));
  }
  return reports;
}

std::string ScoresCsv(const Corpus& corpus, const ProfileReport& report, const std::string& detector) {
  std::string out = "Detector,Profile,File,Threshold,Score,TP,TN,FP,FN,Total_Count\n";
  auto row = [&](std::string_view det, std::string_view profile, std::string_view file, std::string threshold,
                 double score, const Counts& c) {
    fmt::format_to(std::back_inserter(out), "{},{},{},{},{},{},{},{},{},{}\n", det, profile, file, threshold, score,
                   c.tp, c.tn, c.fp, c.fn, c.tp + c.tn + c.fp + c.fn);
  };
  for (size_t f = 0; f < corpus.files.size() && f < report.files.size(); ++f) {
    row(detector, report.profile.name, corpus.files[f].name, fmt::format("{}", report.threshold),
        report.files[f].score, report.files[f].counts);
  }
  row("Totals", "", "", "", report.overall.raw, report.overall.counts);
  return out;
}

}  // namespace cairn::nab
