// Loading a corpus in NAB's layout: data CSVs and the combined windows file.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <unordered_map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "bench/nab/nab.h"
#include "cairn/base/status.h"

namespace cairn::nab {
namespace {

namespace fs = std::filesystem;

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

// Reads `n` decimal digits at s[*pos]; false if they are not all digits.
bool Digits(std::string_view s, size_t* pos, int n, int* out) {
  if (*pos + n > s.size()) return false;
  int v = 0;
  for (int i = 0; i < n; ++i) {
    char c = s[*pos + i];
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  *pos += n;
  *out = v;
  return true;
}

bool Expect(std::string_view s, size_t* pos, char c) {
  if (*pos >= s.size() || s[*pos] != c) return false;
  ++*pos;
  return true;
}

// Days since 1970-01-01 of a proleptic Gregorian date (era arithmetic).
int64_t DaysFromCivil(int64_t y, int m, int d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

int DaysInMonth(int y, int m) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return m == 2 && leap ? 29 : kDays[m - 1];
}

std::optional<double> ParseDouble(std::string_view text) {
  text = Trim(text);
  if (!text.empty() && text.front() == '+') text.remove_prefix(1);
  double v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty() || !std::isfinite(v)) return std::nullopt;
  return v;
}

std::vector<std::string_view> SplitCsv(std::string_view line) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    size_t comma = line.find(',', start);
    if (comma == std::string_view::npos) {
      out.push_back(Trim(line.substr(start)));
      return out;
    }
    out.push_back(Trim(line.substr(start, comma - start)));
    start = comma + 1;
  }
}

absl::StatusOr<std::string> ReadWholeFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(fmt::format("cannot open '{}'", path.string()));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return absl::DataLossError(fmt::format("cannot read '{}'", path.string()));
  return ss.str();
}

}  // namespace

absl::StatusOr<Micros> ParseTimestamp(std::string_view text) {
  auto bad = [&](std::string_view why) {
    return absl::InvalidArgumentError(
        fmt::format("'{}' is not a timestamp YYYY-MM-DD HH:MM:SS ({})", std::string(text), std::string(why)));
  };
  size_t p = 0;
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0;
  if (!Digits(text, &p, 4, &y) || !Expect(text, &p, '-') || !Digits(text, &p, 2, &mo) || !Expect(text, &p, '-') ||
      !Digits(text, &p, 2, &d)) {
    return bad("date");
  }
  if (p >= text.size() || (text[p] != ' ' && text[p] != 'T')) return bad("no time");
  ++p;
  if (!Digits(text, &p, 2, &h) || !Expect(text, &p, ':') || !Digits(text, &p, 2, &mi) || !Expect(text, &p, ':') ||
      !Digits(text, &p, 2, &s)) {
    return bad("time");
  }
  int64_t micros = 0;
  if (p < text.size() && text[p] == '.') {
    ++p;
    int digits = 0;
    while (p < text.size() && text[p] >= '0' && text[p] <= '9') {
      if (digits < 6) micros = micros * 10 + (text[p] - '0');
      ++digits;
      ++p;
    }
    if (digits == 0) return bad("empty fraction");
    for (int i = digits; i < 6; ++i) micros *= 10;
  }
  if (p != text.size()) return bad("trailing text");
  if (mo < 1 || mo > 12 || d < 1 || d > DaysInMonth(y, mo)) return bad("no such date");
  if (h > 23 || mi > 59 || s > 59) return bad("no such time");
  const int64_t secs = DaysFromCivil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s;
  return secs * 1'000'000 + micros;
}

int64_t Corpus::NumWindows() const {
  int64_t n = 0;
  for (const DataFile& f : files) n += static_cast<int64_t>(f.windows.size());
  return n;
}

int64_t Corpus::NumRows() const {
  int64_t n = 0;
  for (const DataFile& f : files) n += f.rows();
  return n;
}

std::vector<std::string> Corpus::Categories() const {
  std::set<std::string> s;
  for (const DataFile& f : files) s.insert(f.category);
  return {s.begin(), s.end()};
}

absl::StatusOr<DataFile> ParseDataFile(std::string_view text, const std::string& name, std::string_view source) {
  DataFile file;
  file.name = name;
  size_t slash = name.find('/');
  file.category = slash == std::string::npos ? std::string() : name.substr(0, slash);
  const std::string src(source);

  int64_t line_no = 0;
  int ts_col = -1, value_col = -1;
  size_t columns = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    std::string_view line = text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    pos = nl == std::string_view::npos ? text.size() : nl + 1;
    ++line_no;
    if (Trim(line).empty()) continue;
    std::vector<std::string_view> fields = SplitCsv(line);
    if (ts_col < 0) {  // the header
      for (size_t i = 0; i < fields.size(); ++i) {
        if (fields[i] == "timestamp") ts_col = static_cast<int>(i);
        if (fields[i] == "value") value_col = static_cast<int>(i);
      }
      if (ts_col < 0 || value_col < 0) {
        return absl::InvalidArgumentError(fmt::format(
            "{}:{}: the header must name the columns 'timestamp' and 'value' (found '{}')", src, line_no,
            std::string(Trim(line))));
      }
      columns = fields.size();
      continue;
    }
    if (fields.size() != columns) {
      return absl::InvalidArgumentError(
          fmt::format("{}:{}: {} fields, the header has {}", src, line_no, fields.size(), columns));
    }
    auto t = ParseTimestamp(fields[ts_col]);
    if (!t.ok()) return absl::InvalidArgumentError(fmt::format("{}:{}: {}", src, line_no, std::string(t.status().message())));
    auto v = ParseDouble(fields[value_col]);
    if (!v) {
      return absl::InvalidArgumentError(
          fmt::format("{}:{}: value '{}' is not a finite number", src, line_no, std::string(fields[value_col])));
    }
    file.timestamps.emplace_back(fields[ts_col]);
    file.times.push_back(*t);
    file.values.push_back(*v);
  }
  if (ts_col < 0) return absl::InvalidArgumentError(fmt::format("{}: empty file (no header)", src));
  if (file.values.empty()) return absl::InvalidArgumentError(fmt::format("{}: no data rows", src));
  return file;
}

absl::StatusOr<std::map<std::string, WindowLimits>> ParseWindowsJson(std::string_view text, std::string_view source) {
  const std::string src(source);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text.begin(), text.end());
  } catch (const nlohmann::json::parse_error& e) {
    return absl::InvalidArgumentError(fmt::format("{}: {}", src, e.what()));
  }
  if (!j.is_object()) {
    return absl::InvalidArgumentError(fmt::format("{}: expected an object mapping \"category/file.csv\" to windows", src));
  }
  std::map<std::string, WindowLimits> out;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& key = it.key();
    if (!it.value().is_array()) {
      return absl::InvalidArgumentError(fmt::format("{}: \"{}\": expected a list of [start, end] windows", src, key));
    }
    WindowLimits limits;
    size_t i = 0;
    for (const auto& w : it.value()) {
      ++i;
      if (!w.is_array() || w.size() != 2 || !w[0].is_string() || !w[1].is_string()) {
        return absl::InvalidArgumentError(
            fmt::format("{}: \"{}\" window {}: expected [start, end] timestamp strings, got {}", src, key, i, w.dump()));
      }
      limits.emplace_back(w[0].get<std::string>(), w[1].get<std::string>());
    }
    out.emplace(key, std::move(limits));
  }
  return out;
}

absl::Status AttachWindows(DataFile& file, const WindowLimits& limits, std::string_view source) {
  const std::string src(source);
  // The first row of each timestamp: NAB's sweeper finds window edges with list.index().
  std::unordered_map<Micros, int64_t> first_row;
  first_row.reserve(file.times.size());
  for (size_t i = 0; i < file.times.size(); ++i) first_row.emplace(file.times[i], static_cast<int64_t>(i));

  std::vector<Window> windows;
  for (size_t w = 0; w < limits.size(); ++w) {
    Window win;
    for (int edge = 0; edge < 2; ++edge) {
      const std::string& text = edge == 0 ? limits[w].first : limits[w].second;
      auto t = ParseTimestamp(text);
      if (!t.ok()) {
        return absl::InvalidArgumentError(
            fmt::format("{}: \"{}\" window {}: {}", src, file.name, w + 1, std::string(t.status().message())));
      }
      auto row = first_row.find(*t);
      if (row == first_row.end()) {
        return absl::InvalidArgumentError(
            fmt::format("{}: \"{}\" window {}: its {} {} is not a timestamp of the data file", src, file.name, w + 1,
                        edge == 0 ? "start" : "end", text));
      }
      (edge == 0 ? win.first : win.last) = row->second;
    }
    if (win.last < win.first) {
      return absl::InvalidArgumentError(fmt::format("{}: \"{}\" window {}: ends (data row {}) before it starts (data row {})",
                                                    src, file.name, w + 1, win.last, win.first));
    }
    windows.push_back(win);
  }
  std::sort(windows.begin(), windows.end(), [](const Window& a, const Window& b) { return a.first < b.first; });
  for (size_t w = 1; w < windows.size(); ++w) {
    if (windows[w].first <= windows[w - 1].last) {
      return absl::InvalidArgumentError(fmt::format("{}: \"{}\": windows overlap (data rows {}-{} and {}-{})", src,
                                                    file.name, windows[w - 1].first, windows[w - 1].last,
                                                    windows[w].first, windows[w].last));
    }
  }
  file.windows = std::move(windows);
  return absl::OkStatus();
}

absl::StatusOr<Corpus> LoadCorpus(const std::string& dir) {
  const fs::path root(dir);
  const fs::path data = root / "data";
  const fs::path windows_path = root / "combined_windows.json";
  std::error_code ec;
  if (!fs::is_directory(root, ec)) return absl::NotFoundError(fmt::format("no corpus directory '{}'", dir));
  if (!fs::is_directory(data, ec)) {
    return absl::NotFoundError(fmt::format("'{}' has no data/ directory (NAB layout: DIR/data/<category>/*.csv)", dir));
  }
  CAIRN_ASSIGN_OR_RETURN(std::string windows_text, ReadWholeFile(windows_path));
  CAIRN_ASSIGN_OR_RETURN(auto limits, ParseWindowsJson(windows_text, windows_path.string()));

  Corpus corpus;
  corpus.dir = dir;
  std::vector<std::pair<std::string, fs::path>> found;  // name, path
  for (const auto& cat : fs::directory_iterator(data, ec)) {
    if (!cat.is_directory()) {
      if (cat.path().extension() == ".csv") {
        corpus.problems.push_back(fmt::format("{} is not in a category folder (data/<category>/): not scored",
                                              cat.path().string()));
      }
      continue;
    }
    for (const auto& f : fs::directory_iterator(cat.path(), ec)) {
      if (!f.is_regular_file() || f.path().extension() != ".csv") continue;
      found.emplace_back(cat.path().filename().string() + "/" + f.path().filename().string(), f.path());
    }
  }
  if (ec) return absl::InternalError(fmt::format("cannot list '{}': {}", data.string(), ec.message()));
  std::sort(found.begin(), found.end());

  std::set<std::string> names;
  for (const auto& [name, path] : found) {
    names.insert(name);
    auto lim = limits.find(name);
    if (lim == limits.end()) {
      corpus.problems.push_back(fmt::format("{} has no entry in {}: not scored", path.string(), windows_path.string()));
      continue;
    }
    CAIRN_ASSIGN_OR_RETURN(std::string text, ReadWholeFile(path));
    CAIRN_ASSIGN_OR_RETURN(DataFile file, ParseDataFile(text, name, path.string()));
    CAIRN_RETURN_IF_ERROR(AttachWindows(file, lim->second, windows_path.string()));
    corpus.files.push_back(std::move(file));
  }
  for (const auto& [name, lim] : limits) {
    if (!names.count(name)) {
      corpus.problems.push_back(fmt::format("{} lists \"{}\" ({} windows) but {} has no such file: not scored",
                                            windows_path.string(), name, lim.size(), data.string()));
    }
  }
  if (corpus.files.empty()) {
    return absl::NotFoundError(fmt::format("no data file of '{}' has windows in {}", data.string(), windows_path.string()));
  }
  return corpus;
}

}  // namespace cairn::nab
