#include "bench/nexmark_workload.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <mutex>

#include "bench/nexmark/queries.h"
#include "bench/nexmark/source.h"
#include "cairn/sketch/kll.h"
#include "fmt/format.h"

namespace cairn::bench {
namespace {

using nexmark::Event;
using stream::EventTime;

double CpuSeconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

// What every sink subtask of a run reports into.
struct Measure {
  std::mutex mu;
  uint64_t rows = 0;
  bool latency = false;
  std::chrono::steady_clock::time_point w0;
  bool w0_set = false;
  EventTime t0 = 0;
  sketch::KllSketch<double> kll = *sketch::KllSketch<double>::Create(400);
  double max_ms = 0;
};

template <class T>
class MeasuringSink final : public stream::Sink<T> {
 public:
  explicit MeasuringSink(std::shared_ptr<Measure> m) : m_(std::move(m)) {}
  absl::Status Open(const stream::SinkContext&, std::optional<std::string>) override { return absl::OkStatus(); }
  absl::Status Write(std::span<const T> records, std::span<const EventTime> times) override {
    if (!m_->latency) {
      rows_ += records.size();
      return absl::OkStatus();
    }
    auto now = std::chrono::steady_clock::now();
    std::lock_guard<std::mutex> lock(m_->mu);
    double since_start = std::chrono::duration<double, std::milli>(now - m_->w0).count();
    m_->rows += records.size();
    for (EventTime t : times) {
      double lat = since_start - static_cast<double>(t - m_->t0);
      // A result from the future is a window flushed at the end of the input
      // (the final watermark), not one the stream closed: it is not a latency.
      if (lat < -1.0) continue;
      lat = std::max(0.0, lat);
      m_->kll.Update(lat);
      m_->max_ms = std::max(m_->max_ms, lat);
    }
    return absl::OkStatus();
  }
  absl::StatusOr<std::string> PrepareCheckpoint(int64_t) override { return std::string(); }
  absl::Status Close() override {
    std::lock_guard<std::mutex> lock(m_->mu);
    m_->rows += rows_;
    rows_ = 0;
    return absl::OkStatus();
  }
  stream::DeliveryGuarantee guarantee() const override { return stream::DeliveryGuarantee::kAtLeastOnce; }

 private:
  std::shared_ptr<Measure> m_;
  uint64_t rows_ = 0;
};

// The generator, noting when it produced its first events: the W0 of the
// latency formula (the engine's throttle starts its schedule there too).
class TimedSource final : public stream::Source<Event> {
 public:
  TimedSource(nexmark::GeneratorConfig config, std::shared_ptr<Measure> m) : inner_(std::move(config)), m_(std::move(m)) {}
  absl::Status Open(const stream::SourceContext& ctx, std::optional<std::string> restored) override {
    return inner_.Open(ctx, std::move(restored));
  }
  absl::StatusOr<stream::PollStatus> Poll(stream::SourceBatch<Event>& out, size_t max,
                                          std::chrono::milliseconds wait) override {
    if (!started_) {
      started_ = true;
      auto now = std::chrono::steady_clock::now();
      std::lock_guard<std::mutex> lock(m_->mu);
      if (!m_->w0_set || now < m_->w0) m_->w0 = now;
      m_->w0_set = true;
    }
    return inner_.Poll(out, max, wait);
  }
  std::string Position() override { return inner_.Position(); }
  stream::DeliveryGuarantee guarantee() const override { return inner_.guarantee(); }

 private:
  nexmark::NexmarkSource inner_;
  std::shared_ptr<Measure> m_;
  bool started_ = false;
};

template <class T>
void Measured(stream::Stream<T> s, std::shared_ptr<Measure> m) {
  s.AddSink("measure", [m](int) { return std::make_unique<MeasuringSink<T>>(m); });
}

absl::Status AddQuery(const std::string& q, stream::Stream<Event> events, std::shared_ptr<Measure> m) {
  if (q == "q0") {
    Measured(nexmark::AddQ0(events), m);
  } else if (q == "q1") {
    CAIRN_ASSIGN_OR_RETURN(auto s, nexmark::AddQ1(events));
    Measured(s, m);
  } else if (q == "q2") {
    CAIRN_ASSIGN_OR_RETURN(auto s, nexmark::AddQ2(events));
    Measured(s, m);
  } else if (q == "q3") {
    CAIRN_ASSIGN_OR_RETURN(auto s, nexmark::AddQ3(events));
    Measured(s, m);
  } else if (q == "q4") {
    CAIRN_ASSIGN_OR_RETURN(auto s, nexmark::AddQ4(events));
    Measured(s, m);
  } else if (q == "q5") {
    CAIRN_ASSIGN_OR_RETURN(auto s, nexmark::AddQ5(events));
    Measured(s, m);
  } else if (q == "q6") {
    CAIRN_ASSIGN_OR_RETURN(auto s, nexmark::AddQ6(events));
    Measured(s, m);
  } else if (q == "q7") {
    CAIRN_ASSIGN_OR_RETURN(auto s, nexmark::AddQ7(events));
    Measured(s, m);
  } else if (q == "q8") {
    CAIRN_ASSIGN_OR_RETURN(auto s, nexmark::AddQ8(events));
    Measured(s, m);
  } else {
    return absl::InvalidArgumentError(fmt::format("unknown query '{}' (q0..q8)", q));
  }
  return absl::OkStatus();
}

struct RunOutcome {
  double seconds = 0, cpu = 0;
  int64_t checkpoints = 0;
  std::shared_ptr<Measure> measure;
};

absl::StatusOr<RunOutcome> RunOnce(const NexmarkOptions& o, const std::string& q, uint64_t events,
                                   uint64_t event_rate, double throttle) {
  std::string dir = (std::filesystem::temp_directory_path() / fmt::format("cairn-nexmark-{}-{}", q, ::getpid())).string();
  std::filesystem::remove_all(dir);
  stream::PipelineOptions po;
  po.name = "nexmark-" + q;
  po.default_parallelism = o.parallelism;
  if (o.checkpoint_interval_ms > 0) {
    po.checkpoint_dir = dir;
    po.checkpoint_interval = stream::Millis(o.checkpoint_interval_ms);
    po.restore = false;
  }
  if (throttle > 0) {
    // Latency runs: batches of about half a millisecond of input, as a
    // latency-tuned deployment would use.
    po.batch_size = static_cast<size_t>(std::clamp(throttle / o.parallelism / 2000.0, 64.0, 1024.0));
    po.poll_wait = stream::Millis(1);
  }
  stream::Pipeline p(po);
  nexmark::GeneratorConfig g;
  g.seed = o.seed;
  g.events = events;
  g.rate = event_rate;
  auto m = std::make_shared<Measure>();
  m->latency = throttle > 0;
  m->t0 = g.base_time_ms;
  auto watermarks = stream::WatermarkStrategy<Event>::BoundedOutOfOrder(stream::Millis(g.max_out_of_order_ms));
  watermarks.max_records_per_second = throttle / o.parallelism;
  auto source = p.AddSource<Event>(
      "nexmark", [g, m](int) { return std::make_unique<TimedSource>(g, m); }, watermarks);
  CAIRN_RETURN_IF_ERROR(AddQuery(q, source, m));
  double cpu0 = CpuSeconds();
  auto start = std::chrono::steady_clock::now();
  CAIRN_RETURN_IF_ERROR(p.Run());
  RunOutcome out;
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  out.cpu = CpuSeconds() - cpu0;
  out.checkpoints = p.Stats().checkpoints_completed;
  out.measure = m;
  std::filesystem::remove_all(dir);
  return out;
}

}  // namespace

absl::StatusOr<std::vector<NexmarkResult>> RunNexmarkBench(const NexmarkOptions& o) {
  if (o.events == 0) return absl::InvalidArgumentError("--events must be positive");
  if (o.parallelism < 1) return absl::InvalidArgumentError("--parallelism must be at least 1");
  std::vector<NexmarkResult> results;
  for (const std::string& q : o.queries) {
    fmt::print(stderr, "nexmark {}: {} events, parallelism {}, checkpoints {}...\n", q, o.events, o.parallelism,
               o.checkpoint_interval_ms > 0 ? fmt::format("every {} ms", o.checkpoint_interval_ms) : "off");
    CAIRN_ASSIGN_OR_RETURN(RunOutcome run, RunOnce(o, q, o.events, o.event_rate, 0));
    NexmarkResult r;
    r.query = q;
    r.events = o.events;
    r.output_rows = run.measure->rows;
    r.seconds = run.seconds;
    r.cpu_seconds = run.cpu;
    r.events_per_second = static_cast<double>(o.events) / run.seconds;
    r.events_per_core_second = static_cast<double>(o.events) / std::max(run.cpu, 1e-9);
    r.checkpoints = run.checkpoints;
    if (o.latency) {
      double rate = o.latency_rate > 0 ? o.latency_rate : r.events_per_second / 2;
      // `latency_seconds` of input at that rate: windows of 10 s need several to close.
      uint64_t n = std::max<uint64_t>(static_cast<uint64_t>(rate * o.latency_seconds), 1000);
      fmt::print(stderr, "nexmark {}: latency at {:.0f} events/s ({} events)...\n", q, rate, n);
      CAIRN_ASSIGN_OR_RETURN(RunOutcome lat, RunOnce(o, q, n, static_cast<uint64_t>(std::max(1.0, rate)), rate));
      r.latency_rate = rate;
      r.latency_events = n;
      if (lat.measure->kll.n() > 0) {
        r.latency_p50_ms = lat.measure->kll.Quantile(0.5);
        r.latency_p99_ms = lat.measure->kll.Quantile(0.99);
        r.latency_max_ms = lat.measure->max_ms;
      }
    }
    results.push_back(r);
  }
  return results;
}

std::string FormatNexmarkBench(const NexmarkOptions& o, const std::vector<NexmarkResult>& results) {
  std::string out = fmt::format("{:<5} {:>12} {:>11} {:>14} {:>14} {:>11} {:>6} {:>13} {:>9} {:>9}\n", "query", "events",
                                "seconds", "events/s", "events/s/core", "rows out", "ckpts", "latency at/s",
                                "p50 ms", "p99 ms");
  for (const auto& r : results) {
    out += fmt::format("{:<5} {:>12} {:>11.3f} {:>14.0f} {:>14.0f} {:>11} {:>6} ", r.query, r.events, r.seconds,
                       r.events_per_second, r.events_per_core_second, r.output_rows, r.checkpoints);
    if (r.latency_p50_ms >= 0)
      out += fmt::format("{:>13.0f} {:>9.2f} {:>9.2f}\n", r.latency_rate, r.latency_p50_ms, r.latency_p99_ms);
    else
      out += fmt::format("{:>13} {:>9} {:>9}\n", "-", "-", "-");
  }
  out += fmt::format("parallelism {}, checkpoints {}, event time {} events/s\n", o.parallelism,
                     o.checkpoint_interval_ms > 0 ? fmt::format("every {} ms", o.checkpoint_interval_ms) : "off",
                     o.event_rate);
  return out;
}

nlohmann::json NexmarkBenchToJson(const NexmarkOptions& o, const std::vector<NexmarkResult>& results) {
  nlohmann::json j;
  j["benchmark"] = "nexmark";
  j["events"] = o.events;
  j["parallelism"] = o.parallelism;
  j["checkpoint_interval_ms"] = o.checkpoint_interval_ms;
  j["event_rate"] = o.event_rate;
  j["cpus_online"] = sysconf(_SC_NPROCESSORS_ONLN);
  for (const auto& r : results) {
    nlohmann::json q = {{"query", r.query},
                        {"events", r.events},
                        {"output_rows", r.output_rows},
                        {"seconds", r.seconds},
                        {"cpu_seconds", r.cpu_seconds},
                        {"events_per_second", r.events_per_second},
                        {"events_per_core_second", r.events_per_core_second},
                        {"checkpoints", r.checkpoints}};
    if (r.latency_p50_ms >= 0) {
      q["latency_rate"] = r.latency_rate;
      q["latency_events"] = r.latency_events;
      q["latency_p50_ms"] = r.latency_p50_ms;
      q["latency_p99_ms"] = r.latency_p99_ms;
      q["latency_max_ms"] = r.latency_max_ms;
    }
    j["results"].push_back(q);
  }
  return j;
}

}  // namespace cairn::bench
