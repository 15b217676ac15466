#include "bench/detect_workload.h"

#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <numbers>

#include <time.h>

#include <fmt/format.h>

#include "cairn/base/hash.h"
#include "cairn/base/random.h"
#include "cairn/detect/cardinality.h"
#include "cairn/detect/drift.h"
#include "cairn/detect/heavy_hitters.h"
#include "cairn/detect/novelty.h"
#include "cairn/detect/series.h"

namespace cairn::bench {
namespace {

using Clock = std::chrono::steady_clock;
using detect::EventTime;

constexpr double kAlarm = 0.999;
constexpr double kSketchTarget = 40e6;
constexpr double kSeriesTarget = 2e6;

// Keeps results alive so the optimizer cannot drop the measured work.
volatile uint64_t g_sink;

// The parts of the stream every detector shares.
struct Common {
  std::vector<uint32_t> key;
  std::vector<EventTime> time;
};

Common MakeCommon(const DetectBenchOptions& o) {
  Common c;
  SplitMix64 rng(o.seed);
  c.key.resize(o.records);
  c.time.resize(o.records);
  for (uint64_t i = 0; i < o.records; ++i) {
    c.key[i] = static_cast<uint32_t>(rng.Next() % o.keys);
    c.time[i] = static_cast<EventTime>(i / 100);  // 100,000 records per second of event time
  }
  return c;
}

// Roughly standard normal noise, cheaply (a sum of four uniforms).
double Noise(SplitMix64& rng) {
  return (rng.NextDouble() + rng.NextDouble() + rng.NextDouble() + rng.NextDouble() - 2.0) * 1.7320508;
}

bool Wanted(const DetectBenchOptions& o, const std::string& name) {
  return o.only.empty() || std::find(o.only.begin(), o.only.end(), name) != o.only.end();
}

void Progress(const char* what) { fmt::print(stderr, "  measuring {}...\n", what); }

// CPU time of the calling thread, s: a machine shared with other work slows the
// wall clock of a run but not the CPU time it takes.
double ThreadSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

// Runs `repeats` times: make() builds fresh states (not timed), run(states)
// processes the stream and returns the number of alarms; after the last run,
// bytes(states) is the memory held. Fills the row's speed (per CPU second and
// per wall second), memory and alarms.
template <typename Make, typename Run, typename Bytes>
void Measure(const DetectBenchOptions& o, Make make, Run run, Bytes bytes, DetectBenchRow* row) {
  std::vector<double> rates, wall_rates;
  for (int r = 0; r < o.repeats; ++r) {
    auto states = make();
    const auto t0 = Clock::now();
    const double c0 = ThreadSeconds();
    const uint64_t alarms = run(states);
    const double cpu = ThreadSeconds() - c0;
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    rates.push_back(static_cast<double>(o.records) / std::max(cpu, 1e-9));
    wall_rates.push_back(static_cast<double>(o.records) / std::max(s, 1e-9));
    g_sink = alarms;
    if (r + 1 == o.repeats) {
      row->bytes_total = static_cast<double>(bytes(states));
      row->bytes_per_key = row->bytes_total / static_cast<double>(row->keys);
      row->alarm_share = static_cast<double>(alarms) / static_cast<double>(o.records);
    }
  }
  std::sort(rates.begin(), rates.end());
  std::sort(wall_rates.begin(), wall_rates.end());
  row->records_per_sec = rates[rates.size() / 2];
  row->wall_records_per_sec = wall_rates[wall_rates.size() / 2];
}

// Per-key states of 100 K keys span hundreds of megabytes: on 4 KiB pages every
// record misses the TLB as well as the cache. A state table asks for huge pages
// (transparent, where the kernel allows), as a keyed-state arena would.
template <typename T>
struct HugePageAllocator {
  using value_type = T;
  HugePageAllocator() = default;
  template <typename U>
  HugePageAllocator(const HugePageAllocator<U>&) {}
  T* allocate(size_t n) {
    constexpr size_t kHuge = size_t{2} << 20;
    const size_t bytes = (n * sizeof(T) + kHuge - 1) / kHuge * kHuge;
    void* p = std::aligned_alloc(kHuge, bytes);
    if (p == nullptr) throw std::bad_alloc();
#if defined(MADV_HUGEPAGE)
    madvise(p, bytes, MADV_HUGEPAGE);
#endif
    return static_cast<T*>(p);
  }
  void deallocate(T* p, size_t) { std::free(p); }
  template <typename U>
  bool operator==(const HugePageAllocator<U>&) const { return true; }
};

template <typename Vec>
size_t SumBytes(const Vec& states) {
  size_t total = 0;
  for (const auto& s : states) total += s.MemoryBytes();
  return total;
}

void BenchSeries(const DetectBenchOptions& o, const Common& c, std::vector<DetectBenchRow>* rows) {
  Progress("series");
  SplitMix64 rng(o.seed + 1);
  std::vector<double> phase(o.keys);
  for (double& p : phase) p = rng.NextDouble() * 2 * std::numbers::pi;
  std::vector<double> value(o.records);
  for (uint64_t i = 0; i < o.records; ++i) {
    value[i] = 20.0 + 5.0 * std::sin(static_cast<double>(c.time[i]) * 1e-5 + phase[c.key[i]]) + Noise(rng);
  }
  const auto d = *detect::SeriesDetector::Create({});
  DetectBenchRow row{"series", "SeriesDetector defaults", o.keys, 0, 0, 0, 0, 0, kSeriesTarget};
  Measure(
      o, [&] { return std::vector<detect::SeriesState, HugePageAllocator<detect::SeriesState>>(o.keys); },
      [&](auto& st) {
        uint64_t alarms = 0;
        // States of records a few ahead are fetched while this one is scored: with
        // 100 K keys every state is a cache miss, and a stream operator fed in
        // batches can do the same.
        constexpr uint64_t kAhead = 4;
        for (uint64_t i = 0; i < o.records; ++i) {
          if (i + kAhead < o.records) {
            detect::SeriesDetector::Prefetch(st[c.key[i + kAhead]], c.time[i + kAhead]);
          }
          alarms += d.Update(st[c.key[i]], {.value = value[i], .time = c.time[i]}).score >= kAlarm;
        }
        return alarms;
      },
      [](const auto& st) { return SumBytes(st); }, &row);
  rows->push_back(row);
}

void BenchCardinality(const DetectBenchOptions& o, const Common& c, std::vector<DetectBenchRow>* rows) {
  Progress("cardinality");
  const auto d = *detect::CardinalityDetector::Create({});
  SplitMix64 rng(o.seed + 2);
  std::vector<uint64_t> item(o.records);
  for (uint64_t i = 0; i < o.records; ++i) {
    item[i] = rng.NextDouble() < 0.02 ? rng.Next() : Hash64(uint64_t{c.key[i]} * 64 + rng.Next() % 64, 7);
  }
  const auto& cfg = d.config();
  DetectBenchRow row{"cardinality",
                     fmt::format("{} s window, {} sub-windows, precision {}", cfg.window_ms / 1000, cfg.buckets,
                                 cfg.precision),
                     o.keys, 0, 0, 0, 0, 0, kSketchTarget};
  Measure(
      o, [&] { return std::vector<detect::CardinalityState, HugePageAllocator<detect::CardinalityState>>(o.keys); },
      [&](auto& st) {
        uint64_t alarms = 0;
        // Blocks of records through UpdateBatch, as a batching operator would
        // call it: the states' lines are requested records ahead of their use.
        constexpr size_t kBlock = 1024;
        std::vector<detect::CardinalityState*> ptr(kBlock);
        std::vector<detect::Scored> out(kBlock);
        for (uint64_t i = 0; i < o.records; i += kBlock) {
          const size_t n = static_cast<size_t>(std::min<uint64_t>(kBlock, o.records - i));
          for (size_t k = 0; k < n; ++k) ptr[k] = &st[c.key[i + k]];
          d.UpdateBatch({ptr.data(), n}, {item.data() + i, n}, {c.time.data() + i, n}, {out.data(), n});
          for (size_t k = 0; k < n; ++k) alarms += out[k].score >= kAlarm;
        }
        return alarms;
      },
      [](const auto& st) { return SumBytes(st); }, &row);
  rows->push_back(row);
}

void BenchDrift(const DetectBenchOptions& o, const Common& c, std::vector<DetectBenchRow>* rows) {
  Progress("drift");
  const auto d = *detect::DriftDetector::Create({.window_ms = 60'000});
  SplitMix64 rng(o.seed + 3);
  std::vector<double> value(o.records);
  for (uint64_t i = 0; i < o.records; ++i) value[i] = static_cast<double>(c.key[i] % 100) + Noise(rng);
  const auto& cfg = d.config();
  DetectBenchRow row{"drift", fmt::format("{} s windows, k {}, grid {}", cfg.window_ms / 1000, cfg.k, cfg.grid),
                     o.keys, 0, 0, 0, 0, 0, kSketchTarget};
  Measure(
      o, [&] { return std::vector<detect::DriftState>(o.keys); },
      [&](std::vector<detect::DriftState>& st) {
        uint64_t alarms = 0;
        for (uint64_t i = 0; i < o.records; ++i) {
          alarms += d.Update(st[c.key[i]], {.value = value[i], .time = c.time[i]}).score >= kAlarm;
        }
        return alarms;
      },
      [](const auto& st) { return SumBytes(st); }, &row);
  rows->push_back(row);
}

void BenchNovelty(const DetectBenchOptions& o, const Common& c, std::vector<DetectBenchRow>* rows) {
  Progress("novelty");
  ZipfGenerator zipf(10'000'000, 1.1, o.seed + 4);
  std::vector<uint64_t> item(o.records);
  for (uint64_t& h : item) h = Hash64(zipf.Next(), sketch::BloomFilter::kSeed);
  const uint64_t expected = std::max<uint64_t>(o.records, 1000);
  const auto d = *detect::NoveltyDetector::Create({.expected_items = expected});
  DetectBenchRow row{"novelty", fmt::format("Zipf(1.1) items, filter for {} items at 1%", expected), 1, 0, 0, 0, 0, 0,
                     kSketchTarget};
  Measure(
      o, [] { return detect::NoveltyState{}; },
      [&](detect::NoveltyState& st) {
        uint64_t alarms = 0;
        for (uint64_t i = 0; i < o.records; ++i) alarms += d.UpdateHash(st, item[i]).score >= kAlarm;
        return alarms;
      },
      [](const auto& st) { return st.MemoryBytes(); }, &row);
  (void)c;
  rows->push_back(row);
}

void BenchHeavyHitters(const DetectBenchOptions& o, const Common& c, std::vector<DetectBenchRow>* rows) {
  Progress("heavy_hitters");
  ZipfGenerator zipf(1'000'000, 1.1, o.seed + 5);
  std::vector<uint64_t> item(o.records);
  for (uint64_t& h : item) h = Hash64(zipf.Next(), 11);
  const auto d = *detect::HeavyHitterDetector::Create({.window_ms = 10'000});
  const auto& cfg = d.config();
  DetectBenchRow row{"heavy_hitters",
                     fmt::format("Zipf(1.1) items, {} s windows, top {}, capacity {}", cfg.window_ms / 1000,
                                 cfg.top_k, cfg.capacity),
                     1, 0, 0, 0, 0, 0, kSketchTarget};
  Measure(
      o, [] { return detect::HeavyHitterState{}; },
      [&](detect::HeavyHitterState& st) {
        uint64_t alarms = 0;
        for (uint64_t i = 0; i < o.records; ++i) alarms += d.UpdateHash(st, item[i], c.time[i]).score >= kAlarm;
        return alarms;
      },
      [](const auto& st) { return st.MemoryBytes(); }, &row);
  rows->push_back(row);
}

std::string Bytes(double b) {
  if (b >= 1e9) return fmt::format("{:.2f} GB", b / 1e9);
  if (b >= 1e6) return fmt::format("{:.1f} MB", b / 1e6);
  if (b >= 1e4) return fmt::format("{:.0f} KB", b / 1e3);
  return fmt::format("{:.0f} B", b);
}

}  // namespace

std::vector<DetectBenchRow> RunDetectBench(const DetectBenchOptions& o) {
  fmt::print(stderr, "generating {} records over {} keys...\n", o.records, o.keys);
  const Common c = MakeCommon(o);
  std::vector<DetectBenchRow> rows;
  if (Wanted(o, "series")) BenchSeries(o, c, &rows);
  if (Wanted(o, "cardinality")) BenchCardinality(o, c, &rows);
  if (Wanted(o, "drift")) BenchDrift(o, c, &rows);
  if (Wanted(o, "novelty")) BenchNovelty(o, c, &rows);
  if (Wanted(o, "heavy_hitters")) BenchHeavyHitters(o, c, &rows);
  return rows;
}

std::string FormatDetectBench(const DetectBenchOptions& o, const std::vector<DetectBenchRow>& rows) {
  std::string out = fmt::format("{:<14} {:>8} {:>13} {:>10} {:>11} {:>11} {:>9} {:>10} {:>12}  {}\n", "detector",
                                "keys", "records/s/core", "ns/record", "wall rec/s", "memory", "per key", ">=0.999",
                                "target", "params");
  for (const auto& r : rows) {
    const bool met = r.records_per_sec >= r.target_records_per_sec;
    out += fmt::format("{:<14} {:>8} {:>11.1f} M {:>10.1f} {:>9.1f} M {:>11} {:>9} {:>9.4f}% {:>5.0f} M {:<6}  {}\n",
                       r.detector, r.keys, r.records_per_sec / 1e6, 1e9 / r.records_per_sec,
                       r.wall_records_per_sec / 1e6, Bytes(r.bytes_total), Bytes(r.bytes_per_key), 100 * r.alarm_share,
                       r.target_records_per_sec / 1e6, met ? "met" : "MISSED", r.params);
  }
  out += fmt::format(
      "\n{} records, one thread, median of {} runs, each from fresh state; records/s/core = records over\n"
      "the thread's CPU time; inputs pre-generated and pre-hashed, states indexed by key number.\n"
      "Targets: sketch detectors 40 M records/s per core, series 2 M records/s per core with 100 K keys.\n",
      o.records, o.repeats);
  return out;
}

nlohmann::json DetectBenchToJson(const DetectBenchOptions& o, const std::vector<DetectBenchRow>& rows) {
  nlohmann::json j;
  j["benchmark"] = "detect";
  j["records"] = o.records;
  j["keys"] = o.keys;
  j["repeats"] = o.repeats;
  j["seed"] = o.seed;
  j["rows"] = nlohmann::json::array();
  for (const auto& r : rows) {
    j["rows"].push_back({{"detector", r.detector},
                         {"params", r.params},
                         {"keys", r.keys},
                         {"records_per_sec", r.records_per_sec},
                         {"wall_records_per_sec", r.wall_records_per_sec},
                         {"bytes_total", r.bytes_total},
                         {"bytes_per_key", r.bytes_per_key},
                         {"alarm_share", r.alarm_share},
                         {"target_records_per_sec", r.target_records_per_sec}});
  }
  return j;
}

}  // namespace cairn::bench
