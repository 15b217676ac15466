#include "cairn/cli/nab_scene.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <set>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cairn/cli/input.h"

namespace cairn::cli {

int LabelledSeries::WindowOf(EventMs t) const {
  for (size_t i = 0; i < windows.size(); ++i)
    if (t >= windows[i].first && t <= windows[i].second) return static_cast<int>(i);
  return -1;
}

absl::StatusOr<EventMs> ParseUtc(std::string_view text) {
  std::string s(text);
  int y = 0, mo = 0, d = 0, h = 0, mi = 0;
  double sec = 0;
  char sep = 0;
  if (std::sscanf(s.c_str(), "%d-%d-%d%c%d:%d:%lf", &y, &mo, &d, &sep, &h, &mi, &sec) != 7 ||
      (sep != ' ' && sep != 'T'))
    return absl::InvalidArgumentError(fmt::format("\"{}\" is not a time like 2013-12-02 21:15:00", text));
  using namespace std::chrono;
  year_month_day ymd{year(y), month(static_cast<unsigned>(mo)), day(static_cast<unsigned>(d))};
  if (!ymd.ok() || h < 0 || h > 23 || mi < 0 || mi > 59 || sec < 0 || sec >= 61)
    return absl::InvalidArgumentError(fmt::format("\"{}\" is not a valid date and time", text));
  int64_t days = sys_days(ymd).time_since_epoch().count();
  return days * 86'400'000 + (h * 3600 + mi * 60) * int64_t{1000} + static_cast<int64_t>(sec * 1000 + 0.5);
}

std::string FormatUtcMinute(EventMs t) {
  using namespace std::chrono;
  sys_days day_start = floor<days>(sys_time<milliseconds>(milliseconds(t)));
  year_month_day ymd(day_start);
  int64_t ms_of_day = t - day_start.time_since_epoch().count() * int64_t{86'400'000};
  int minutes = static_cast<int>(ms_of_day / 60'000);
  return fmt::format("{:04}-{:02}-{:02} {:02}:{:02}", static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()),
                     static_cast<unsigned>(ymd.day()), minutes / 60, minutes % 60);
}

absl::StatusOr<LabelledSeries> LoadNabSeries(const std::string& dir, const std::string& category,
                                             const std::string& file, const std::string& windows_json,
                                             std::string name) {
  LabelledSeries s;
  s.name = std::move(name);
  const std::string path = fmt::format("{}/{}.csv", dir, file);
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(fmt::format("cannot open {}", path));
  std::string line;
  int line_no = 0;
  while (std::getline(in, line)) {
    if (++line_no == 1) continue;  // header: timestamp,value
    if (line.empty()) continue;
    size_t comma = line.find(',');
    if (comma == std::string::npos) return absl::InvalidArgumentError(fmt::format("{}:{}: no comma", path, line_no));
    auto t = ParseUtc(std::string_view(line).substr(0, comma));
    auto v = ParseNumber(std::string_view(line).substr(comma + 1));
    if (!t.ok() || !v)
      return absl::InvalidArgumentError(
          fmt::format("{}:{}: expected timestamp,value, got \"{}\"", path, line_no, line));
    s.times.push_back(*t);
    s.values.push_back(*v);
  }
  if (s.times.empty()) return absl::InvalidArgumentError(fmt::format("{}: no readings", path));

  std::ifstream win(windows_json);
  if (!win) return absl::NotFoundError(fmt::format("cannot open {}", windows_json));
  nlohmann::json j = nlohmann::json::parse(win, nullptr, /*allow_exceptions=*/false);
  const std::string key = fmt::format("{}/{}.csv", category, file);
  if (j.is_discarded() || !j.is_object())
    return absl::InvalidArgumentError(fmt::format("{}: not a JSON object", windows_json));
  if (!j.contains(key)) return absl::NotFoundError(fmt::format("{}: no windows for \"{}\"", windows_json, key));
  for (const auto& w : j[key]) {
    if (!w.is_array() || w.size() != 2 || !w[0].is_string() || !w[1].is_string())
      return absl::InvalidArgumentError(fmt::format("{}: \"{}\": a window is [start, end]", windows_json, key));
    auto a = ParseUtc(w[0].get<std::string>());
    auto b = ParseUtc(w[1].get<std::string>());
    if (!a.ok() || !b.ok() || *b < *a)
      return absl::InvalidArgumentError(fmt::format("{}: \"{}\": bad window {}", windows_json, key, w.dump()));
    s.windows.emplace_back(*a, *b);
  }
  std::sort(s.windows.begin(), s.windows.end());
  return s;
}

std::vector<Scheduled> ReplaySchedule(const std::vector<LabelledSeries>& series, double seconds) {
  std::vector<Scheduled> out;
  for (size_t i = 0; i < series.size(); ++i) {
    const auto& t = series[i].times;
    const double span = static_cast<double>(t.back() - t.front());
    for (size_t r = 0; r < t.size(); ++r) {
      double at = span > 0 ? seconds * static_cast<double>(t[r] - t.front()) / span : 0;
      out.push_back({static_cast<int>(i), static_cast<int>(r), at});
    }
  }
  std::stable_sort(out.begin(), out.end(), [](const Scheduled& a, const Scheduled& b) { return a.at < b.at; });
  return out;
}

double SeriesScore::precision() const {
  return detected + false_alarms() > 0 ? static_cast<double>(detected) / (detected + false_alarms()) : std::nan("");
}

double SeriesScore::recall() const {
  return windows > 0 ? static_cast<double>(detected) / windows : std::nan("");
}

SeriesScore ScoreAlarms(const LabelledSeries& s, const std::vector<EventMs>& alarms) {
  SeriesScore score;
  score.windows = static_cast<int>(s.windows.size());
  std::set<int> hit;
  for (EventMs t : alarms) {
    ++score.alarms;
    int w = s.WindowOf(t);
    if (w >= 0) {
      ++score.true_alarms;
      hit.insert(w);
    }
  }
  score.detected = static_cast<int>(hit.size());
  return score;
}

}  // namespace cairn::cli
