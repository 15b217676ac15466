// Running the series detector over a corpus, and anomaly scores in NAB's results layout.
#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include <fmt/format.h>

#include "bench/nab/nab.h"
#include "cairn/base/status.h"

namespace cairn::nab {
namespace {

namespace fs = std::filesystem;

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '"')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '"')) s.remove_suffix(1);
  return s;
}

std::vector<std::string_view> Split(std::string_view line) {
  std::vector<std::string_view> out;
  size_t start = 0;
  for (size_t comma; (comma = line.find(',', start)) != std::string_view::npos; start = comma + 1) {
    out.push_back(Trim(line.substr(start, comma - start)));
  }
  out.push_back(Trim(line.substr(start)));
  return out;
}

std::string Basename(const std::string& name) {
  size_t slash = name.rfind('/');
  return slash == std::string::npos ? name : name.substr(slash + 1);
}

// DIR/<category>/<file> or the one DIR/<category>/<detector>_<file>.
absl::StatusOr<fs::path> FindResultsFile(const fs::path& dir, const DataFile& file) {
  const fs::path cat_dir = dir / file.category;
  const std::string base = Basename(file.name);
  std::error_code ec;
  if (fs::is_regular_file(cat_dir / base, ec)) return cat_dir / base;
  std::vector<fs::path> found;
  const std::string suffix = "_" + base;
  for (const auto& e : fs::directory_iterator(cat_dir, ec)) {
    const std::string n = e.path().filename().string();
    if (e.is_regular_file() && n.size() > suffix.size() && n.compare(n.size() - suffix.size(), suffix.size(), suffix) == 0) {
      found.push_back(e.path());
    }
  }
  if (found.size() == 1) return found[0];
  if (found.empty()) {
    return absl::NotFoundError(fmt::format("no results for {}: expected {} or {}", file.name, (cat_dir / base).string(),
                                           (cat_dir / ("<detector>" + suffix)).string()));
  }
  std::sort(found.begin(), found.end());
  std::string list;
  for (const fs::path& p : found) list += (list.empty() ? "" : ", ") + p.filename().string();
  return absl::InvalidArgumentError(
      fmt::format("several results files for {} in {}: {}", file.name, cat_dir.string(), list));
}

absl::StatusOr<std::vector<double>> ReadResultsFile(const fs::path& path, const DataFile& file) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(fmt::format("cannot open '{}'", path.string()));
  const std::string src = path.string();
  std::vector<double> out;
  out.reserve(static_cast<size_t>(file.rows()));
  std::string line;
  int64_t line_no = 0;
  int ts_col = -1, score_col = -1;
  size_t columns = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (Trim(line).empty()) continue;
    std::vector<std::string_view> fields = Split(line);
    if (ts_col < 0) {
      for (size_t i = 0; i < fields.size(); ++i) {
        if (fields[i] == "timestamp") ts_col = static_cast<int>(i);
        if (fields[i] == "anomaly_score") score_col = static_cast<int>(i);
      }
      if (ts_col < 0 || score_col < 0) {
        return absl::InvalidArgumentError(
            fmt::format("{}:{}: the header must name the columns 'timestamp' and 'anomaly_score'", src, line_no));
      }
      columns = fields.size();
      continue;
    }
    if (fields.size() != columns) {
      return absl::InvalidArgumentError(
          fmt::format("{}:{}: {} fields, the header has {}", src, line_no, fields.size(), columns));
    }
    const size_t row = out.size();
    if (static_cast<int64_t>(row) >= file.rows()) {
      return absl::InvalidArgumentError(fmt::format("{}:{}: more rows than the {} of {}", src, line_no, file.rows(), file.name));
    }
    auto t = ParseTimestamp(fields[ts_col]);
    if (!t.ok()) return absl::InvalidArgumentError(fmt::format("{}:{}: {}", src, line_no, std::string(t.status().message())));
    if (*t != file.times[row]) {
      return absl::InvalidArgumentError(fmt::format("{}:{}: timestamp {} but row {} of {} is {}", src, line_no,
                                                    std::string(fields[ts_col]), row, file.name, file.timestamps[row]));
    }
    std::string text(fields[score_col]);
    char* end = nullptr;
    const double s = std::strtod(text.c_str(), &end);
    if (text.empty() || end != text.c_str() + text.size() || !(s >= 0.0 && s <= 1.0)) {
      return absl::InvalidArgumentError(
          fmt::format("{}:{}: anomaly_score '{}' is not a number in [0, 1]", src, line_no, text));
    }
    out.push_back(s);
  }
  if (in.bad()) return absl::DataLossError(fmt::format("cannot read '{}'", src));
  if (static_cast<int64_t>(out.size()) != file.rows()) {
    return absl::InvalidArgumentError(
        fmt::format("{}: {} rows, but {} has {}", src, out.size(), file.name, file.rows()));
  }
  return out;
}

}  // namespace

CorpusScores RunSeriesDetector(const Corpus& corpus, const detect::SeriesDetector& detector, int threads,
                               const std::function<void(size_t)>& progress) {
  CorpusScores out(corpus.files.size());
  std::atomic<size_t> next{0};
  std::mutex mu;
  size_t done = 0;
  auto work = [&] {
    for (size_t f; (f = next.fetch_add(1)) < corpus.files.size();) {
      const DataFile& file = corpus.files[f];
      std::vector<stream::EventTime> times(file.times.size());
      for (size_t i = 0; i < times.size(); ++i) times[i] = file.times[i] / 1000;  // micros -> ms
      std::vector<detect::Scored> scored = detect::ScoreSeries(detector, times, file.values);
      std::vector<double>& s = out[f];
      s.resize(scored.size());
      for (size_t i = 0; i < scored.size(); ++i) s[i] = scored[i].score;
      std::lock_guard<std::mutex> lock(mu);
      ++done;
      if (progress) progress(done);
    }
  };
  const int n = std::max(1, std::min<int>(threads, static_cast<int>(corpus.files.size())));
  std::vector<std::thread> pool;
  for (int i = 1; i < n; ++i) pool.emplace_back(work);
  work();
  for (std::thread& t : pool) t.join();
  return out;
}

absl::Status WriteResults(const Corpus& corpus, const CorpusScores& scores, const std::string& dir,
                          const std::string& detector) {
  if (scores.size() != corpus.files.size()) return absl::InvalidArgumentError("scores do not match the corpus");
  for (size_t f = 0; f < corpus.files.size(); ++f) {
    const DataFile& file = corpus.files[f];
    const fs::path cat_dir = fs::path(dir) / file.category;
    std::error_code ec;
    fs::create_directories(cat_dir, ec);
    if (ec) return absl::InternalError(fmt::format("cannot create '{}': {}", cat_dir.string(), ec.message()));
    const fs::path path = cat_dir / (detector + "_" + Basename(file.name));
    std::ofstream out(path, std::ios::binary);
    if (!out) return absl::InternalError(fmt::format("cannot write '{}'", path.string()));
    std::string buf = "timestamp,value,anomaly_score,label\n";
    size_t w = 0;
    for (int64_t i = 0; i < file.rows(); ++i) {
      while (w < file.windows.size() && file.windows[w].last < i) ++w;
      const bool label = w < file.windows.size() && file.windows[w].first <= i;
      fmt::format_to(std::back_inserter(buf), "{},{},{},{}\n", file.timestamps[static_cast<size_t>(i)],
                     file.values[static_cast<size_t>(i)], scores[f][static_cast<size_t>(i)], label ? 1 : 0);
    }
    out << buf;
    out.close();
    if (!out) return absl::InternalError(fmt::format("cannot write '{}'", path.string()));
  }
  return absl::OkStatus();
}

absl::StatusOr<CorpusScores> ReadResults(const Corpus& corpus, const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return absl::NotFoundError(fmt::format("no results directory '{}'", dir));
  CorpusScores out;
  for (const DataFile& file : corpus.files) {
    CAIRN_ASSIGN_OR_RETURN(fs::path path, FindResultsFile(dir, file));
    CAIRN_ASSIGN_OR_RETURN(std::vector<double> s, ReadResultsFile(path, file));
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace cairn::nab
