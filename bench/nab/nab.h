// bench/nab — the Numenta Anomaly Benchmark (NAB v1.x): its corpus layout, its
// scorer, and running cairn's series detector over it.
//
// Corpus layout (as in the NAB repository):
//   DIR/data/<category>/<file>.csv     columns timestamp,value; "YYYY-MM-DD HH:MM:SS"
//   DIR/combined_windows.json          {"<category>/<file>.csv": [[start, end], ...]}
// A window is the rows from the first row stamped `start` to the first row stamped
// `end` (inclusive), as NAB's sweeper finds them.
//
// Scoring (nab/sweeper.py, optimizer.py, scorer.py and runner.normalize of NAB):
//  * The first ProbationaryLength(n) rows of a file are ignored.
//  * Every later row gets a sweep score: inside a window, the scaled sigmoid of
//    its position relative to the right edge (an early detection earns up to
//    tp_weight); outside, a penalty up to fp_weight that shrinks right after
//    a window and is full before the first one.
//  * At threshold t the rows with anomaly score >= t are detections. A file
//    scores the sum of its false positives' sweep scores plus, per window, the
//    best sweep score of a detection inside it, or -fn_weight when there is none.
//  * The threshold is the one value (among all anomaly scores of the corpus, and
//    1.1 = no detection) that maximizes the corpus total; ties go to the highest.
//  * Normalized score = 100 (raw - null) / (perfect - null), where null is the
//    same procedure applied to a detector that always says 0.5 and perfect =
//    windows x tp_weight.
// See docs/detect.md ("Scoring detectors on NAB") for the details and NAB's quirks kept here.
//
// Thread-safety: everything is a plain function of its arguments; a Corpus is
// read-only once loaded and may be shared between threads.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "cairn/detect/series.h"

namespace cairn::nab {

// Microseconds since the Unix epoch; NAB's timestamps carry no zone and are read as UTC.
using Micros = int64_t;

// "YYYY-MM-DD HH:MM:SS" with an optional fraction (".000000"); 'T' may separate
// date and time. Whole text, nothing else.
absl::StatusOr<Micros> ParseTimestamp(std::string_view text);

// Rows first..last (inclusive, 0-based) of one file.
struct Window {
  int64_t first = 0;
  int64_t last = 0;
  int64_t width() const { return last - first + 1; }
};

struct DataFile {
  std::string name;                     // "realKnownCause/nyc_taxi.csv", its key in the windows file
  std::string category;                 // "realKnownCause"
  std::vector<std::string> timestamps;  // as written in the file
  std::vector<Micros> times;
  std::vector<double> values;
  std::vector<Window> windows;  // sorted, disjoint

  int64_t rows() const { return static_cast<int64_t>(values.size()); }
};

struct Corpus {
  std::string dir;
  std::vector<DataFile> files;        // sorted by name
  std::vector<std::string> problems;  // files left out: data without windows entry, windows without data

  int64_t NumWindows() const;
  int64_t NumRows() const;
  std::vector<std::string> Categories() const;  // sorted, distinct
};

// Loads DIR/data/*/*.csv and DIR/combined_windows.json. Malformed input is an
// error naming the file and line; data files and window entries that do not
// pair up are left out and listed in `problems`.
absl::StatusOr<Corpus> LoadCorpus(const std::string& dir);

// The pieces of LoadCorpus. `source` names the text in error messages.
absl::StatusOr<DataFile> ParseDataFile(std::string_view text, const std::string& name, std::string_view source);
using WindowLimits = std::vector<std::pair<std::string, std::string>>;  // [start, end] timestamps
absl::StatusOr<std::map<std::string, WindowLimits>> ParseWindowsJson(std::string_view text, std::string_view source);
// Maps the limits to row indices of `file` (fills file.windows).
absl::Status AttachWindows(DataFile& file, const WindowLimits& limits, std::string_view source);

// ---- Scoring ----------------------------------------------------------------

// A cost matrix of config/profiles.json.
struct Profile {
  std::string name;
  double tp_weight = 1.0;
  double fp_weight = 0.11;
  double fn_weight = 1.0;
};
// standard, reward_low_FP_rate, reward_low_FN_rate.
std::span<const Profile> NabProfiles();
const Profile* FindProfile(std::string_view name);

// NAB's scaled sigmoid: -1 for positions x > 3, else 2 / (1 + e^(5x)) - 1.
double ScaledSigmoid(double position);
// min(floor(0.15 n), 0.15 * 5000): rows before it are not scored.
double ProbationaryLength(int64_t rows);
// The weighted sweep score of every row of `file` (NAB's S(t) column), probation included.
std::vector<double> SweepScores(const DataFile& file, const Profile& profile);

// A detector's anomaly scores: scores[f][i] for row i of corpus.files[f].
using CorpusScores = std::vector<std::vector<double>>;

// Rows after probation, as NAB counts them.
struct Counts {
  int64_t tp = 0, tn = 0, fp = 0, fn = 0;
  Counts& operator+=(const Counts& o);
};

struct FileScore {
  double score = 0.0;
  Counts counts;
  int64_t windows_scored = 0;    // windows with a row after probation
  int64_t windows_detected = 0;  // of those, windows with a detection
};

// Scores one file at `threshold` (detections: anomaly score >= threshold).
FileScore ScoreFile(const DataFile& file, std::span<const double> scores, const Profile& profile, double threshold);

struct ThresholdScore {
  double threshold = 0.0;
  double score = 0.0;
};
// The corpus total at every candidate threshold, from 1.1 (no detection) down to
// the lowest anomaly score. `files` selects corpus files (all when empty).
std::vector<ThresholdScore> SweepThresholds(const Corpus& corpus, const CorpusScores& scores, const Profile& profile,
                                            std::span<const size_t> files = {});
// The best of SweepThresholds (the highest threshold among equal totals).
ThresholdScore OptimizeThreshold(const Corpus& corpus, const CorpusScores& scores, const Profile& profile,
                                 std::span<const size_t> files = {});

// The null detector: 0.5 for every row.
CorpusScores NullScores(const Corpus& corpus);

// A set of files: one category, or the whole corpus ("all"). Both thresholds are
// the corpus-wide ones, so a category's raw and null add up to the corpus's.
struct Summary {
  std::string name;
  int64_t files = 0;
  int64_t windows = 0;
  double raw = 0.0;         // sum of the files' scores at the detector's threshold
  double null = 0.0;        // the same for the null detector at its own optimal threshold
  double perfect = 0.0;     // windows x tp_weight
  double normalized = 0.0;  // 100 (raw - null) / (perfect - null); NaN when perfect == null
  Counts counts;
  int64_t windows_detected = 0;
};

struct ProfileReport {
  Profile profile;
  double threshold = 0.0;       // the detector's (optimized, or given)
  double null_threshold = 0.0;  // the null detector's
  Summary overall;
  std::vector<Summary> categories;  // sorted by name
  std::vector<FileScore> files;     // parallel to corpus.files
};

// Optimizes the threshold over the corpus (unless `threshold` is given), scores
// every file, and normalizes the totals (overall and per category) against the
// null detector.
absl::StatusOr<std::vector<ProfileReport>> Evaluate(const Corpus& corpus, const CorpusScores& scores,
                                                    std::span<const Profile> profiles,
                                                    std::optional<double> threshold = std::nullopt);

// NAB's <detector>_<profile>_scores.csv for a report: a header, one row per file
// (Detector,Profile,File,Threshold,Score,TP,TN,FP,FN,Total_Count; counts are rows
// after probation, Total_Count their sum, as in NAB v1.1) and a Totals row.
std::string ScoresCsv(const Corpus& corpus, const ProfileReport& report, const std::string& detector);

// ---- Detectors and results files -------------------------------------------

// Runs `detector` over every file with a fresh state (files in parallel on
// `threads` threads; the result does not depend on it). `progress(done)` is
// called, serialized, after each file.
CorpusScores RunSeriesDetector(const Corpus& corpus, const detect::SeriesDetector& detector, int threads,
                               const std::function<void(size_t files_done)>& progress = {});

// Writes DIR/<category>/<detector>_<file>.csv (timestamp,value,anomaly_score,label), NAB's results layout.
absl::Status WriteResults(const Corpus& corpus, const CorpusScores& scores, const std::string& dir,
                          const std::string& detector);
// Reads precomputed anomaly scores in NAB's results layout: for each corpus file,
// DIR/<category>/<file>.csv or the single DIR/<category>/<anything>_<file>.csv,
// with a header naming `timestamp` and `anomaly_score`; its timestamps must be
// the data file's.
absl::StatusOr<CorpusScores> ReadResults(const Corpus& corpus, const std::string& dir);

}  // namespace cairn::nab
