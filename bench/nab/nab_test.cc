#include "bench/nab/nab.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>

#include <unistd.h>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace cairn::nab {
namespace {

using ::testing::HasSubstr;

// Values used in the hand computations below. With S(x) = 2/(1+e^(5x)) - 1:
//   S(-1)   = 0.98661429815143  (a detection on a window's first row; tp rewards are divided by it)
//   S(-0.5) = 0.84828363995751  -> 0.84828363995751 / 0.98661429815143 = 0.85979256690978
//   S(-0.9) -> / S(-1) = 0.99129529804230
//   S(-0.1) -> / S(-1) = 0.24824154977543
//   S(1/9)  = -0.27084711851672
constexpr double kMid = 0.85979256690978;
constexpr double kNearLeft = 0.99129529804230;
constexpr double kRightEdge = 0.24824154977543;
constexpr double kOneNinth = -0.27084711851672;
constexpr double kEps = 1e-12;

const Profile& Standard() { return *FindProfile("standard"); }
const Profile& LowFp() { return *FindProfile("reward_low_FP_rate"); }
const Profile& LowFn() { return *FindProfile("reward_low_FN_rate"); }

// A file of `rows` rows one minute apart from 2020-01-01 00:00:00, values 0.
DataFile MakeFile(const std::string& name, int64_t rows, std::vector<Window> windows) {
  DataFile f;
  f.name = name;
  f.category = name.substr(0, name.find('/'));
  const Micros base = *ParseTimestamp("2020-01-01 00:00:00");
  for (int64_t i = 0; i < rows; ++i) {
    f.timestamps.push_back(fmt::format("2020-01-{:02} {:02}:{:02}:00", 1 + i / 1440, i / 60 % 24, i % 60));
    f.times.push_back(base + i * 60'000'000);
    f.values.push_back(0.0);
  }
  f.windows = std::move(windows);
  return f;
}

// Anomaly scores: 0 everywhere but at the given rows.
std::vector<double> ScoresAt(int64_t rows, const std::map<int64_t, double>& at) {
  std::vector<double> s(static_cast<size_t>(rows), 0.0);
  for (auto [i, v] : at) s[static_cast<size_t>(i)] = v;
  return s;
}

// The file most cases use: 100 rows, probation = floor(0.15 * 100) = 15 rows
// (0..14 ignored), one window on rows 40..49 (width 10).
DataFile OneWindow() { return MakeFile("cat/one.csv", 100, {{40, 49}}); }

double ScoreOne(const std::map<int64_t, double>& at, const Profile& p = Standard(), double threshold = 0.5) {
  DataFile f = OneWindow();
  return ScoreFile(f, ScoresAt(f.rows(), at), p, threshold).score;
}

TEST(NabSigmoid, MatchesNabDefinition) {
  EXPECT_NEAR(ScaledSigmoid(-1.0), 0.98661429815143, kEps);
  EXPECT_NEAR(ScaledSigmoid(0.0), 0.0, kEps);
  EXPECT_NEAR(ScaledSigmoid(-0.5), 0.84828363995751, kEps);
  EXPECT_NEAR(ScaledSigmoid(1.0 / 9), kOneNinth, kEps);
  // NAB v1.1's sweeper: only positions strictly past 3 are clamped to -1.
  EXPECT_NEAR(ScaledSigmoid(3.0), -0.99999938819555, kEps);
  EXPECT_EQ(ScaledSigmoid(3.0000001), -1.0);
  EXPECT_EQ(ScaledSigmoid(100.0), -1.0);
}

TEST(NabProbation, FifteenPercentCappedAt750) {
  EXPECT_EQ(ProbationaryLength(100), 15.0);
  EXPECT_EQ(ProbationaryLength(4032), 604.0);  // floor(604.8)
  EXPECT_EQ(ProbationaryLength(5000), 750.0);
  EXPECT_EQ(ProbationaryLength(22695), 750.0);
  EXPECT_EQ(ProbationaryLength(3), 0.0);
}

TEST(NabProfiles, AreNabsCostMatrices) {
  ASSERT_EQ(NabProfiles().size(), 3u);
  EXPECT_EQ(Standard().tp_weight, 1.0);
  EXPECT_EQ(Standard().fp_weight, 0.11);
  EXPECT_EQ(Standard().fn_weight, 1.0);
  EXPECT_EQ(LowFp().tp_weight, 1.0);
  EXPECT_EQ(LowFp().fp_weight, 0.22);
  EXPECT_EQ(LowFp().fn_weight, 1.0);
  EXPECT_EQ(LowFn().tp_weight, 1.0);
  EXPECT_EQ(LowFn().fp_weight, 0.11);
  EXPECT_EQ(LowFn().fn_weight, 2.0);
  EXPECT_EQ(FindProfile("nope"), nullptr);
}

TEST(NabScoreFile, NoDetectionIsOneMissedWindow) {
  // The window is missed: -fn_weight. Nothing else counts.
  EXPECT_NEAR(ScoreOne({}), -1.0, kEps);
  EXPECT_NEAR(ScoreOne({}, LowFn()), -2.0, kEps);
}

TEST(NabScoreFile, DetectionAtLeftEdgeEarnsFullTpWeight) {
  // Row 40: position -(49 - 40 + 1) / 10 = -1 -> S(-1) * 1 / S(-1) = 1 exactly.
  EXPECT_EQ(ScoreOne({{40, 0.9}}), 1.0);
}

TEST(NabScoreFile, DetectionInTheMiddle) {
  // Row 45: position -(49 - 45 + 1) / 10 = -0.5 -> S(-0.5) / S(-1) = 0.85979.
  EXPECT_NEAR(ScoreOne({{45, 0.9}}), kMid, kEps);
}

TEST(NabScoreFile, DetectionOnLastRowOfWindowStillEarns) {
  // Row 49: position -(49 - 49 + 1) / 10 = -0.1 (NAB's "+ 1") -> 0.24824.
  EXPECT_NEAR(ScoreOne({{49, 0.9}}), kRightEdge, kEps);
}

TEST(NabScoreFile, OnlyTheBestDetectionOfAWindowCounts) {
  // Rows 45 and 49 both detect: the window is worth max(0.85979, 0.24824).
  EXPECT_NEAR(ScoreOne({{45, 0.9}, {49, 0.9}}), kMid, kEps);
  DataFile f = OneWindow();
  FileScore s = ScoreFile(f, ScoresAt(100, {{45, 0.9}, {49, 0.9}}), Standard(), 0.5);
  EXPECT_EQ(s.counts.tp, 2);  // NAB counts rows, not windows
  EXPECT_EQ(s.windows_detected, 1);
}

TEST(NabScoreFile, DetectionJustAfterTheWindow) {
  // Row 50 is outside: position |49 - 50| / (10 - 1) = 1/9 -> 0.11 * S(1/9) = -0.02979,
  // and the window is missed: -1 - 0.02979 = -1.02979.
  EXPECT_NEAR(ScoreOne({{50, 0.9}}), -1.0 + 0.11 * kOneNinth, kEps);
  // With the low-FP profile the penalty doubles: -1 + 0.22 * S(1/9).
  EXPECT_NEAR(ScoreOne({{50, 0.9}}, LowFp()), -1.0 + 0.22 * kOneNinth, kEps);
}

TEST(NabScoreFile, FarFalsePositivesCostFullFpWeight) {
  // Row 90: |49 - 90| / 9 = 4.56 > 3 -> S = -1 -> -0.11. Plus the missed window.
  EXPECT_NEAR(ScoreOne({{90, 0.9}}), -1.11, kEps);
  // Row 20 is before any window: -1 * 0.11 as well.
  EXPECT_NEAR(ScoreOne({{20, 0.9}}), -1.11, kEps);
  // Row 76: |49 - 76| / 9 = 3 exactly -> S(3) = -0.99999939 (not clamped).
  EXPECT_NEAR(ScoreOne({{76, 0.9}}), -1.0 + 0.11 * -0.99999938819555, kEps);
}

TEST(NabScoreFile, ProbationRowsAreIgnored) {
  // Row 10 < 15: neither a false positive nor counted at all.
  EXPECT_NEAR(ScoreOne({{10, 1.0}}), -1.0, kEps);
  DataFile f = OneWindow();
  FileScore s = ScoreFile(f, ScoresAt(100, {{10, 1.0}, {14, 1.0}, {15, 1.0}}), Standard(), 0.5);
  // Row 15 is the first scored row: one FP before any window.
  EXPECT_NEAR(s.score, -1.11, kEps);
  EXPECT_EQ(s.counts.fp, 1);
  EXPECT_EQ(s.counts.tp + s.counts.tn + s.counts.fp + s.counts.fn, 85);  // rows 15..99
  EXPECT_EQ(s.counts.fn, 10);
}

TEST(NabScoreFile, ThresholdIsInclusive) {
  EXPECT_EQ(ScoreOne({{40, 0.7}}, Standard(), 0.7), 1.0);
  EXPECT_NEAR(ScoreOne({{40, 0.7}}, Standard(), 0.70001), -1.0, kEps);
}

TEST(NabScoreFile, WindowInsideProbationIsNotScored) {
  // Window rows 2..5 lie in the probation (15 rows): no FN penalty, no credit;
  // rows after it are measured from it: row 20 is |5 - 20| / 3 = 5 > 3 -> -0.11.
  DataFile f = MakeFile("cat/early.csv", 100, {{2, 5}});
  FileScore s = ScoreFile(f, ScoresAt(100, {{3, 1.0}, {20, 1.0}}), Standard(), 0.5);
  EXPECT_NEAR(s.score, -0.11, kEps);
  EXPECT_EQ(s.windows_scored, 0);
  DataFile g = MakeFile("cat/early.csv", 100, {{2, 13}});  // width 12
  // Row 16: |13 - 16| / 11 = 0.2727 -> 0.11 * S(0.2727).
  EXPECT_NEAR(ScoreFile(g, ScoresAt(100, {{16, 1.0}}), Standard(), 0.5).score, 0.11 * ScaledSigmoid(3.0 / 11), kEps);
}

TEST(NabScoreFile, WindowStraddlingProbationKeepsItsFullWidth) {
  // Window rows 10..19 (width 10), probation 15: rows 15..19 are scored with
  // positions of the whole window: row 15 -> -(19 - 15 + 1) / 10 = -0.5.
  DataFile f = MakeFile("cat/straddle.csv", 100, {{10, 19}});
  EXPECT_NEAR(ScoreFile(f, ScoresAt(100, {{12, 1.0}, {15, 1.0}}), Standard(), 0.5).score, kMid, kEps);
  EXPECT_NEAR(ScoreFile(f, ScoresAt(100, {{12, 1.0}}), Standard(), 0.5).score, -1.0, kEps);
}

TEST(NabScoreFile, FalsePositivesAreMeasuredFromThePreviousWindow) {
  // Windows 30..39 and 60..69. Row 41 follows the first: |39 - 41| / 9 = 2/9.
  // Row 71 follows the second: |69 - 71| / 9. Row 55 is 16/9 past the first.
  DataFile f = MakeFile("cat/two.csv", 100, {{30, 39}, {60, 69}});
  const double expected = -2.0 + 0.11 * (2 * ScaledSigmoid(2.0 / 9) + ScaledSigmoid(16.0 / 9));
  EXPECT_NEAR(ScoreFile(f, ScoresAt(100, {{41, 1.0}, {71, 1.0}, {55, 1.0}}), Standard(), 0.5).score, expected, kEps);
}

TEST(NabScoreFile, OneRowWindowFollowedByFalsePositive) {
  // NAB divides by (width - 1) = 0 here and fails; a row after a one-row window
  // counts as a far false positive.
  DataFile f = MakeFile("cat/tiny.csv", 100, {{40, 40}});
  EXPECT_NEAR(ScoreFile(f, ScoresAt(100, {{40, 1.0}, {41, 1.0}}), Standard(), 0.5).score, 1.0 - 0.11, kEps);
}

TEST(NabSweepScores, AreNabsPerRowColumn) {
  DataFile f = OneWindow();
  std::vector<double> s = SweepScores(f, Standard());
  EXPECT_NEAR(s[0], -0.11, kEps);  // before any window, probation included
  EXPECT_EQ(s[40], 1.0);
  EXPECT_NEAR(s[45], kMid, kEps);
  EXPECT_NEAR(s[50], 0.11 * kOneNinth, kEps);
  EXPECT_NEAR(s[99], -0.11, kEps);
}

// Two files, one window each (rows 40..49 of 100):
//   a: row 45 scores 0.9 (middle of its window), row 20 scores 0.8 (FP before the window)
//   b: row 41 scores 0.7 (near the left edge),   row 80 scores 0.95 (FP far after it)
// Standard profile, corpus totals by threshold:
//   1.1   no detection                        -2
//   0.95  + b's FP                   -0.11 -> -2.11
//   0.9   + a's window  (-1 -> 0.85979)     -> -0.25021
//   0.8   + a's FP                   -0.11 -> -0.36021
//   0.7   + b's window  (-1 -> 0.99130)     ->  1.63109   <- best
//   0     every row: 2 x 84 more FPs        -> far below
Corpus TwoFiles() {
  Corpus c;
  c.files.push_back(MakeFile("cat/a.csv", 100, {{40, 49}}));
  c.files.push_back(MakeFile("cat/b.csv", 100, {{40, 49}}));
  return c;
}
CorpusScores TwoFileScores() { return {ScoresAt(100, {{45, 0.9}, {20, 0.8}}), ScoresAt(100, {{41, 0.7}, {80, 0.95}})}; }

TEST(NabOptimize, SweepsEveryDistinctScore) {
  Corpus c = TwoFiles();
  std::vector<ThresholdScore> sweep = SweepThresholds(c, TwoFileScores(), Standard());
  ASSERT_EQ(sweep.size(), 6u);
  const double thresholds[] = {1.1, 0.95, 0.9, 0.8, 0.7, 0.0};
  const double totals[] = {-2.0, -2.11, -2.11 + 1 + kMid, -2.22 + 1 + kMid, -2.22 + 2 + kMid + kNearLeft};
  for (size_t i = 0; i < 6; ++i) EXPECT_EQ(sweep[i].threshold, thresholds[i]) << i;
  for (size_t i = 0; i < 5; ++i) EXPECT_NEAR(sweep[i].score, totals[i], kEps) << i;
  EXPECT_LT(sweep[5].score, -10.0);
}

TEST(NabOptimize, PicksTheBestThresholdOverTheCorpus) {
  Corpus c = TwoFiles();
  ThresholdScore best = OptimizeThreshold(c, TwoFileScores(), Standard());
  EXPECT_EQ(best.threshold, 0.7);
  EXPECT_NEAR(best.score, 1.63108786495208, kEps);
  // Each file alone would pick differently: a alone stops at 0.9, b alone at 0.7.
  const size_t only_a[] = {0};
  EXPECT_EQ(OptimizeThreshold(c, TwoFileScores(), Standard(), only_a).threshold, 0.9);
}

TEST(NabOptimize, SweepAgreesWithScoringEachFile) {
  Corpus c = TwoFiles();
  // c's first window lies inside its probation (45 rows): not scored, not missed.
  c.files.push_back(MakeFile("cat/c.csv", 300, {{5, 20}, {100, 119}, {200, 239}}));
  CorpusScores scores = TwoFileScores();
  std::vector<double> s(300);
  for (size_t i = 0; i < s.size(); ++i) s[i] = std::fmod(i * 0.6180339887, 1.0);  // many distinct values
  scores.push_back(s);
  for (const Profile& p : NabProfiles()) {
    for (const ThresholdScore& t : SweepThresholds(c, scores, p)) {
      double sum = 0;
      for (size_t f = 0; f < c.files.size(); ++f) sum += ScoreFile(c.files[f], scores[f], p, t.threshold).score;
      ASSERT_NEAR(t.score, sum, 1e-9) << p.name << " at " << t.threshold;
    }
  }
}

TEST(NabOptimize, TiesGoToTheHighestThreshold) {
  // Row 42 (0.9) detects the window; row 47 (0.8) adds nothing: the totals at
  // 0.9 and 0.8 are equal, and NAB keeps the first, higher one.
  Corpus c;
  c.files.push_back(OneWindow());
  ThresholdScore best = OptimizeThreshold(c, {ScoresAt(100, {{42, 0.9}, {47, 0.8}})}, Standard());
  EXPECT_EQ(best.threshold, 0.9);
}

TEST(NabOptimize, ProfilesWeighFalsePositivesDifferently) {
  // One window; a detection on its last row (0.24824) at 0.6 comes with 15
  // far false positives (rows 20..34, before the window) scoring 0.7:
  //   standard:   1.1 -> -1;  0.6 -> 0.24824 - 15 x 0.11 = -1.40176   -> 1.1
  //   low FP:     1.1 -> -1;  0.6 -> 0.24824 - 15 x 0.22 = -3.05176   -> 1.1
  //   low FN:     1.1 -> -2;  0.6 -> 0.24824 - 15 x 0.11 = -1.40176   -> 0.6
  // With 8 false positives: standard 0.24824 - 0.88 = -0.63176 > -1 -> 0.6,
  // low FP 0.24824 - 1.76 = -1.51176 < -1 -> 1.1.
  auto scores = [](int fps) {
    std::map<int64_t, double> at{{49, 0.6}};
    for (int i = 0; i < fps; ++i) at[20 + i] = 0.7;
    return CorpusScores{ScoresAt(100, at)};
  };
  Corpus c;
  c.files.push_back(OneWindow());
  EXPECT_EQ(OptimizeThreshold(c, scores(15), Standard()).threshold, 1.1);
  EXPECT_EQ(OptimizeThreshold(c, scores(15), LowFp()).threshold, 1.1);
  ThresholdScore fn = OptimizeThreshold(c, scores(15), LowFn());
  EXPECT_EQ(fn.threshold, 0.6);
  EXPECT_NEAR(fn.score, kRightEdge - 1.65, kEps);
  EXPECT_EQ(OptimizeThreshold(c, scores(8), Standard()).threshold, 0.6);
  EXPECT_EQ(OptimizeThreshold(c, scores(8), LowFp()).threshold, 1.1);
}

TEST(NabEvaluate, NullDetectorScoresZeroAndPerfectOneHundred) {
  Corpus c = TwoFiles();
  c.files.push_back(MakeFile("other/c.csv", 300, {{100, 119}, {200, 239}}));
  c.files.push_back(MakeFile("other/quiet.csv", 100, {}));
  auto null_reports = Evaluate(c, NullScores(c), NabProfiles());
  ASSERT_TRUE(null_reports.ok()) << null_reports.status();
  ASSERT_EQ(null_reports->size(), 3u);
  for (const ProfileReport& r : *null_reports) {
    EXPECT_NEAR(r.overall.normalized, 0.0, 1e-9) << r.profile.name;
    // Flagging every row costs far more than missing the 4 windows.
    EXPECT_EQ(r.null_threshold, 1.1);
    EXPECT_NEAR(r.overall.null, -4.0 * r.profile.fn_weight, kEps);
    EXPECT_EQ(r.overall.perfect, 4.0);
  }

  // Perfect: 1 on the first row of every window, 0 elsewhere.
  CorpusScores perfect;
  for (const DataFile& f : c.files) {
    std::map<int64_t, double> at;
    for (const Window& w : f.windows) at[w.first] = 1.0;
    perfect.push_back(ScoresAt(f.rows(), at));
  }
  auto reports = Evaluate(c, perfect, NabProfiles());
  ASSERT_TRUE(reports.ok()) << reports.status();
  for (const ProfileReport& r : *reports) {
    EXPECT_EQ(r.threshold, 1.0);
    EXPECT_NEAR(r.overall.raw, 4.0, kEps);
    EXPECT_NEAR(r.overall.normalized, 100.0, 1e-9) << r.profile.name;
    EXPECT_EQ(r.overall.windows_detected, 4);
    EXPECT_EQ(r.overall.counts.tp, 4);
    EXPECT_EQ(r.overall.counts.fp, 0);
    ASSERT_EQ(r.categories.size(), 2u);
    EXPECT_EQ(r.categories[0].name, "cat");
    EXPECT_NEAR(r.categories[0].normalized, 100.0, 1e-9);
    EXPECT_NEAR(r.categories[1].normalized, 100.0, 1e-9);
  }
}

TEST(NabEvaluate, NormalizesBetweenNullAndPerfect) {
  // The two-file corpus at its optimum 0.7: raw = 1.63109, null = -2, perfect = 2:
  // 100 x (1.63109 + 2) / (2 + 2) = 90.777.
  Corpus c = TwoFiles();
  auto reports = Evaluate(c, TwoFileScores(), std::span<const Profile>(&Standard(), 1));
  ASSERT_TRUE(reports.ok()) << reports.status();
  const ProfileReport& r = (*reports)[0];
  EXPECT_EQ(r.threshold, 0.7);
  EXPECT_NEAR(r.overall.raw, 1.63108786495208, kEps);
  EXPECT_NEAR(r.overall.null, -2.0, kEps);
  EXPECT_NEAR(r.overall.normalized, 100 * (1.63108786495208 + 2) / 4, 1e-9);
  EXPECT_EQ(r.overall.counts.tp, 2);
  EXPECT_EQ(r.overall.counts.fp, 2);
  EXPECT_EQ(r.overall.counts.fn, 18);
  EXPECT_EQ(r.overall.counts.tn, 2 * 85 - 22);
  // A given threshold replaces the optimization.
  auto fixed = Evaluate(c, TwoFileScores(), std::span<const Profile>(&Standard(), 1), 0.9);
  ASSERT_TRUE(fixed.ok());
  EXPECT_NEAR((*fixed)[0].overall.raw, -2.11 + 1 + kMid, kEps);
}

TEST(NabEvaluate, CategoryWithoutWindowsHasNoNormalizedScore) {
  Corpus c = TwoFiles();
  c.files.push_back(MakeFile("quiet/q.csv", 100, {}));
  CorpusScores s = TwoFileScores();
  s.push_back(ScoresAt(100, {{60, 0.95}}));
  auto reports = Evaluate(c, s, NabProfiles());
  ASSERT_TRUE(reports.ok());
  const Summary& quiet = (*reports)[0].categories[1];
  EXPECT_EQ(quiet.name, "quiet");
  EXPECT_NEAR(quiet.raw, -0.11, kEps);
  EXPECT_TRUE(std::isnan(quiet.normalized));
}

TEST(NabEvaluate, RejectsScoresOutsideNabsRange) {
  Corpus c = TwoFiles();
  CorpusScores s = TwoFileScores();
  s[1][7] = 1.5;
  auto r = Evaluate(c, s, NabProfiles());
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("cat/b.csv: row 7"));
  s[1][7] = std::nan("");
  EXPECT_FALSE(Evaluate(c, s, NabProfiles()).ok());
  s.pop_back();
  EXPECT_FALSE(Evaluate(c, s, NabProfiles()).ok());
}

// ---- Parsing ---------------------------------------------------------------

TEST(NabParse, Timestamps) {
  EXPECT_EQ(*ParseTimestamp("1970-01-01 00:00:00"), 0);
  EXPECT_EQ(*ParseTimestamp("2014-02-19 10:50:00"), 1392807000LL * 1'000'000);
  EXPECT_EQ(*ParseTimestamp("2014-02-19 10:50:00.000000"), 1392807000LL * 1'000'000);
  EXPECT_EQ(*ParseTimestamp("2014-02-19T10:50:00.25"), 1392807000LL * 1'000'000 + 250'000);
  EXPECT_EQ(*ParseTimestamp("2016-02-29 00:00:00") - *ParseTimestamp("2016-02-28 00:00:00"), 86400LL * 1'000'000);
  for (const char* bad : {"", "2014-02-19", "2014-02-30 00:00:00", "2014-13-01 00:00:00", "2014-02-19 24:00:00",
                          "2014-02-19 10:50:00x", "2014-02-19 10:50", "2014/02/19 10:50:00", "2014-02-19 10:50:00."}) {
    EXPECT_FALSE(ParseTimestamp(bad).ok()) << bad;
  }
}

TEST(NabParse, DataFile) {
  auto f = ParseDataFile("timestamp,value\n2014-01-01 00:00:00,1.5\r\n2014-01-01 00:05:00,-2\n\n", "c/f.csv", "f.csv");
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->category, "c");
  EXPECT_EQ(f->rows(), 2);
  EXPECT_EQ(f->values[1], -2.0);
  EXPECT_EQ(f->timestamps[0], "2014-01-01 00:00:00");
  // Columns found by name.
  auto g = ParseDataFile("value,timestamp\n3,2014-01-01 00:00:00\n", "c/g.csv", "g.csv");
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(g->values[0], 3.0);
}

TEST(NabParse, DataFileErrorsNameFileAndLine) {
  auto err = [](const char* text) {
    auto f = ParseDataFile(text, "c/f.csv", "data/c/f.csv");
    return f.ok() ? std::string("ok") : std::string(f.status().message());
  };
  EXPECT_THAT(err("time,value\n"), HasSubstr("data/c/f.csv:1: the header must name"));
  EXPECT_THAT(err("timestamp,value\n2014-01-01 00:00:00,1\n2014-01-01 00:05:00,abc\n"),
              HasSubstr("data/c/f.csv:3: value 'abc' is not a finite number"));
  EXPECT_THAT(err("timestamp,value\n2014-01-01 00:00:00,1\n2014-01-01,2\n"), HasSubstr("data/c/f.csv:3: '2014-01-01'"));
  EXPECT_THAT(err("timestamp,value\n2014-01-01 00:00:00,1,7\n"), HasSubstr("data/c/f.csv:2: 3 fields"));
  EXPECT_THAT(err("timestamp,value\n"), HasSubstr("no data rows"));
  EXPECT_THAT(err(""), HasSubstr("empty file"));
  EXPECT_THAT(err("timestamp,value\n2014-01-01 00:00:00,nan\n"), HasSubstr(":2: value 'nan'"));
}

TEST(NabParse, WindowsJson) {
  auto w = ParseWindowsJson(R"({"c/f.csv": [["2014-01-01 00:05:00.000000", "2014-01-01 00:10:00.000000"]],
                                "c/g.csv": []})",
                            "w.json");
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ(w->size(), 2u);
  EXPECT_EQ(w->at("c/f.csv")[0].second, "2014-01-01 00:10:00.000000");
  auto err = [](const char* text) { return std::string(ParseWindowsJson(text, "w.json").status().message()); };
  EXPECT_THAT(err("{\"c/f.csv\": [[\"a\"]]}"), HasSubstr("w.json: \"c/f.csv\" window 1: expected [start, end]"));
  EXPECT_THAT(err("[1]"), HasSubstr("w.json: expected an object"));
  EXPECT_THAT(err("{\"c/f.csv\": 3}"), HasSubstr("expected a list"));
  EXPECT_THAT(err("{\n\"c/f.csv\": [\n"), HasSubstr("w.json: "));
  EXPECT_THAT(err("{\n\"c/f.csv\": [\n"), HasSubstr("line 3"));
}

TEST(NabParse, AttachWindowsUsesFirstRowOfEachTimestamp) {
  // Rows: 00:00, 00:05, 00:05 (a repeated stamp, as in some NAB files), 00:10, 00:15.
  auto f = ParseDataFile(
      "timestamp,value\n2014-01-01 00:00:00,1\n2014-01-01 00:05:00,1\n2014-01-01 00:05:00,1\n"
      "2014-01-01 00:10:00,1\n2014-01-01 00:15:00,1\n",
      "c/f.csv", "f.csv");
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE(AttachWindows(*f, {{"2014-01-01 00:05:00.000000", "2014-01-01 00:10:00.000000"}}, "w.json").ok());
  ASSERT_EQ(f->windows.size(), 1u);
  EXPECT_EQ(f->windows[0].first, 1);
  EXPECT_EQ(f->windows[0].last, 3);

  auto err = [&](WindowLimits limits) { return std::string(AttachWindows(*f, limits, "w.json").message()); };
  EXPECT_THAT(err({{"2014-01-01 00:06:00", "2014-01-01 00:10:00"}}),
              HasSubstr("w.json: \"c/f.csv\" window 1: its start 2014-01-01 00:06:00 is not a timestamp"));
  EXPECT_THAT(err({{"2014-01-01 00:10:00", "2014-01-01 00:05:00"}}), HasSubstr("ends (data row 1) before"));
  EXPECT_THAT(err({{"2014-01-01 00:00:00", "2014-01-01 00:05:00"}, {"2014-01-01 00:05:00", "2014-01-01 00:15:00"}}),
              HasSubstr("windows overlap"));
  EXPECT_THAT(err({{"2014-01-01 00:00:00", "soon"}}), HasSubstr("window 1: 'soon' is not a timestamp"));
}

// ---- Corpus on disk ------------------------------------------------------------

class NabDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           fmt::format("nab_test_{}_{}", ::testing::UnitTest::GetInstance()->current_test_info()->name(), getpid());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_ / "data" / "cat");
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void Write(const std::string& rel, const std::string& text) {
    std::filesystem::create_directories((dir_ / rel).parent_path());
    std::ofstream(dir_ / rel) << text;
  }
  static std::string Rows(int n) {
    std::string s = "timestamp,value\n";
    for (int i = 0; i < n; ++i) s += fmt::format("2014-01-01 {:02}:{:02}:00,{}\n", i / 60, i % 60, i % 7);
    return s;
  }
  std::filesystem::path dir_;
};

TEST_F(NabDirTest, LoadsAndReportsUnpairedFiles) {
  Write("data/cat/b.csv", Rows(100));
  Write("data/cat/a.csv", Rows(100));
  Write("data/cat/extra.csv", Rows(10));
  Write("data/cat/notes.txt", "ignored");
  Write("data/loose.csv", Rows(10));
  Write("combined_windows.json", R"({"cat/a.csv": [["2014-01-01 00:40:00.000000", "2014-01-01 00:49:00.000000"]],
                                     "cat/b.csv": [], "cat/gone.csv": [["2014-01-01 00:40:00", "2014-01-01 00:49:00"]]})");
  auto c = LoadCorpus(dir_.string());
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->files.size(), 2u);
  EXPECT_EQ(c->files[0].name, "cat/a.csv");
  EXPECT_EQ(c->files[0].windows[0].first, 40);
  EXPECT_EQ(c->files[0].windows[0].last, 49);
  EXPECT_EQ(c->NumWindows(), 1);
  EXPECT_EQ(c->NumRows(), 200);
  ASSERT_EQ(c->problems.size(), 3u);
  EXPECT_THAT(c->problems[0], HasSubstr("loose.csv is not in a category folder"));
  EXPECT_THAT(c->problems[1], HasSubstr("extra.csv has no entry in"));
  EXPECT_THAT(c->problems[2], HasSubstr("\"cat/gone.csv\" (1 windows) but"));
}

TEST_F(NabDirTest, ErrorsNameTheFile) {
  Write("data/cat/a.csv", "timestamp,value\n2014-01-01 00:00:00,1\n2014-01-01 00:01:00,x\n");
  Write("combined_windows.json", R"({"cat/a.csv": []})");
  auto c = LoadCorpus(dir_.string());
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(std::string(c.status().message()), HasSubstr("a.csv:3: value 'x'"));
  EXPECT_FALSE(LoadCorpus((dir_ / "nope").string()).ok());
  std::filesystem::remove(dir_ / "combined_windows.json");
  EXPECT_THAT(std::string(LoadCorpus(dir_.string()).status().message()), HasSubstr("combined_windows.json"));
}

TEST_F(NabDirTest, ResultsRoundTripInNabLayout) {
  Write("data/cat/a.csv", Rows(100));
  Write("combined_windows.json", R"({"cat/a.csv": [["2014-01-01 00:40:00", "2014-01-01 00:49:00"]]})");
  auto c = LoadCorpus(dir_.string());
  ASSERT_TRUE(c.ok());
  CorpusScores scores = {ScoresAt(100, {{45, 0.123456789012345}, {90, 1.0}})};
  const std::string out = (dir_ / "results").string();
  ASSERT_TRUE(WriteResults(*c, scores, out, "series").ok());
  std::ifstream in(dir_ / "results" / "cat" / "series_a.csv");
  std::string header, row0;
  std::getline(in, header);
  std::getline(in, row0);
  EXPECT_EQ(header, "timestamp,value,anomaly_score,label");
  EXPECT_EQ(row0, "2014-01-01 00:00:00,0,0,0");
  auto back = ReadResults(*c, out);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, scores);

  // A plain <file>.csv wins; two <detector>_<file>.csv are ambiguous.
  Write("results/cat/other_a.csv", "timestamp,anomaly_score\n");
  EXPECT_THAT(std::string(ReadResults(*c, out).status().message()), HasSubstr("several results files"));
  std::string plain = "timestamp,anomaly_score,label\n";
  for (int i = 0; i < 100; ++i) plain += fmt::format("2014-01-01 {:02}:{:02}:00,{},0\n", i / 60, i % 60, i == 3 ? 0.5 : 0);
  Write("results/cat/a.csv", plain);
  back = ReadResults(*c, out);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ((*back)[0][3], 0.5);
}

TEST_F(NabDirTest, ResultsMustMatchTheDataFile) {
  Write("data/cat/a.csv", Rows(3));
  Write("combined_windows.json", R"({"cat/a.csv": []})");
  auto c = LoadCorpus(dir_.string());
  ASSERT_TRUE(c.ok());
  const std::string out = (dir_ / "results").string();
  auto err = [&](const std::string& text) {
    Write("results/cat/a.csv", text);
    return std::string(ReadResults(*c, out).status().message());
  };
  EXPECT_THAT(err("timestamp,score\n"), HasSubstr("a.csv:1: the header must name"));
  EXPECT_THAT(err("timestamp,anomaly_score\n2014-01-01 00:00:00,0\n2014-01-01 00:02:00,0\n"),
              HasSubstr("a.csv:3: timestamp 2014-01-01 00:02:00 but row 1"));
  EXPECT_THAT(err("timestamp,anomaly_score\n2014-01-01 00:00:00,2\n"), HasSubstr("a.csv:2: anomaly_score '2'"));
  EXPECT_THAT(err("timestamp,anomaly_score\n2014-01-01 00:00:00,0\n"), HasSubstr("1 rows, but cat/a.csv has 3"));
  EXPECT_THAT(std::string(ReadResults(*c, (dir_ / "none").string()).status().message()), HasSubstr("no results"));
}

TEST(NabRun, SeriesDetectorGivesOneScorePerRowWhateverTheThreads) {
  Corpus c = TwoFiles();
  for (DataFile& f : c.files) {
    for (size_t i = 0; i < f.values.size(); ++i) f.values[i] = std::sin(i * 0.3) + (i == 60 ? 8 : 0);
  }
  detect::SeriesDetector d;
  size_t calls = 0;
  CorpusScores one = RunSeriesDetector(c, d, 1, [&](size_t done) { EXPECT_EQ(done, ++calls); });
  EXPECT_EQ(calls, 2u);
  CorpusScores four = RunSeriesDetector(c, d, 4);
  EXPECT_EQ(one, four);
  ASSERT_EQ(one.size(), 2u);
  EXPECT_EQ(one[0].size(), 100u);
  EXPECT_TRUE(Evaluate(c, one, NabProfiles()).ok());
}

}  // namespace
}  // namespace cairn::nab
