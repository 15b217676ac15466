// cairn/cli/nab_scene.h — the data side of `cairn demo`: labelled NAB sensor
// series, the replay schedule that compresses them into seconds of wall time,
// and the scoring of alarms against the labelled windows.
//
// Scoring (the demo's summary, simpler than NAB's own scoring): an alarm whose
// event time lies inside a labelled window [start, end] detects that window;
// a window detected is one true positive however many alarms fell in it; an
// alarm outside every window is a false positive. precision = windows detected
// / (windows detected + false alarms); recall = windows detected / windows.
//
// Plain values; no shared state.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace cairn::cli {

using EventMs = int64_t;  // milliseconds since the Unix epoch

struct LabelledSeries {
  std::string name;  // the sensor's name, e.g. "machine_temperature"
  std::vector<EventMs> times;
  std::vector<double> values;
  std::vector<std::pair<EventMs, EventMs>> windows;  // labelled anomalies, [start, end], sorted

  // The index of the window holding `t`, or -1.
  int WindowOf(EventMs t) const;
};

// "2013-12-02 21:15:00" or "2013-12-02T21:15:00.000000" (UTC) -> ms.
absl::StatusOr<EventMs> ParseUtc(std::string_view text);
// ms -> "2013-12-02 21:15" (UTC, minutes).
std::string FormatUtcMinute(EventMs t);

// A NAB series `<dir>/<file>.csv` (timestamp,value) with its windows from
// `windows_json` (NAB's combined_windows.json format, keyed by
// "<category>/<file>.csv"); `name` is what the demo calls the sensor.
absl::StatusOr<LabelledSeries> LoadNabSeries(const std::string& dir, const std::string& category,
                                             const std::string& file, const std::string& windows_json,
                                             std::string name);

// One reading of the replay: which series, which row, and when to send it
// (seconds after the replay starts).
struct Scheduled {
  int series = 0;
  int row = 0;
  double at = 0;
};
// Every series' span of event time is mapped onto [0, seconds] of wall time,
// so all sensors play side by side and end together; sorted by `at`.
std::vector<Scheduled> ReplaySchedule(const std::vector<LabelledSeries>& series, double seconds);

struct SeriesScore {
  int windows = 0;
  int detected = 0;      // windows with at least one alarm inside
  int alarms = 0;
  int true_alarms = 0;   // alarms inside a window
  int false_alarms() const { return alarms - true_alarms; }
  double precision() const;  // NaN without alarms
  double recall() const;     // NaN without windows
};
// `alarms` are event times of the alarms on `s`.
SeriesScore ScoreAlarms(const LabelledSeries& s, const std::vector<EventMs>& alarms);

}  // namespace cairn::cli
