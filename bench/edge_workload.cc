#include "bench/edge_workload.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <limits>
#include <numeric>
#include <string_view>

#include <fmt/format.h>

#include "cairn/base/hash.h"
#include "cairn/base/random.h"
#include "cairn/detect/edges.h"

namespace cairn::bench {
namespace {

using Clock = std::chrono::steady_clock;
constexpr int kFanout = 16;
constexpr int64_t kTickMs = 1000;

volatile double g_sink;

struct Burst {
  EdgeKind kind;
  int ticks_left;
  uint32_t per_tick;
  uint32_t src;
  uint32_t dst;
};

uint32_t Below(SplitMix64& rng, uint64_t n) { return static_cast<uint32_t>((rng.Next() >> 32) * n >> 32); }

// MIDAS-R and MIDAS-F as the papers and their public code define them (2 x
// 1024 Count-Min sketches of floats, decay 0.5, log(1 + max of three
// chi-square scores), MIDAS-F's threshold 1e3), re-implemented here so that
// both run on the same stream and machine as cairn's detector.
class ReferenceMidas {
 public:
  static constexpr int kRows = 2;
  static constexpr uint32_t kBuckets = 1024;

  explicit ReferenceMidas(bool filtering) : filtering_(filtering) {
    for (auto* v : {&cur_, &total_, &score_}) v->assign(3 * kRows * kBuckets, 0.0f);
  }

  double operator()(uint64_t src_hash, uint64_t dst_hash, int64_t tick) {
    if (tick > tick_) {
      if (filtering_) {
        for (size_t i = 0; i < cur_.size(); ++i) {
          total_[i] += score_[i] < kThreshold ? cur_[i] : tick_ > 1 ? total_[i] / static_cast<float>(tick_ - 1) : 0;
        }
      }
      for (float& c : cur_) c *= 0.5f;
      if (!filtering_) std::fill(score_.begin(), score_.end(), 0.0f);
      tick_ = tick;
    }
    const uint64_t keys[3] = {Mix64(src_hash ^ (dst_hash * 0x9e3779b97f4a7c15ULL)), src_hash, dst_hash};
    const float t = static_cast<float>(tick);
    float best = 0;
    for (int s = 0; s < 3; ++s) {
      size_t idx[kRows];
      float a = std::numeric_limits<float>::max(), tot = a;
      for (int r = 0; r < kRows; ++r) {
        idx[r] = (s * kRows + r) * kBuckets + Mix64(keys[s] + r) % kBuckets;
        cur_[idx[r]] += 1;
        if (!filtering_) total_[idx[r]] += 1;
        a = std::min(a, cur_[idx[r]]);
        tot = std::min(tot, total_[idx[r]]);
      }
      const float score = tot == 0 || t <= 1 ? 0 : std::pow(a + tot - a * t, 2.0f) / (tot * (t - 1));
      if (filtering_) for (int r = 0; r < kRows; ++r) score_[idx[r]] = score;
      best = std::max(best, score);
    }
    return std::log1p(best);
  }

 private:
  static constexpr float kThreshold = 1e3f;
  bool filtering_;
  int64_t tick_ = 1;
  std::vector<float> cur_, total_, score_;
};

// CPU time of this thread: records per second of one core, also on a machine
// whose cores are shared with other work.
double ThreadSeconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

template <typename Fn>
double Rate(uint64_t items, Fn fn) {
  const double t0 = ThreadSeconds();
  fn();
  return static_cast<double>(items) / std::max(ThreadSeconds() - t0, 1e-9);
}

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

std::vector<EdgeRecord> GenerateEdgeStream(const EdgeStreamOptions& o) {
  SplitMix64 rng(o.seed);
  const uint32_t n = std::max<uint32_t>(o.nodes, 2);
  // Popularity ranks map to node ids through two permutations: busy sources
  // and busy destinations are different nodes.
  std::vector<uint32_t> src_of_rank(n), dst_of_rank(n);
  std::iota(src_of_rank.begin(), src_of_rank.end(), 1u);
  std::iota(dst_of_rank.begin(), dst_of_rank.end(), 1u);
  for (auto* perm : {&src_of_rank, &dst_of_rank}) {
    for (uint32_t i = n - 1; i > 0; --i) std::swap((*perm)[i], (*perm)[Below(rng, i + 1)]);
  }
  ZipfGenerator src_zipf(n, 1.0, o.seed ^ 0x1111), dst_zipf(n, 1.0, o.seed ^ 0x2222);
  ZipfGenerator fan_zipf(kFanout, 1.0, o.seed ^ 0x3333);
  std::vector<uint32_t> neighbours(static_cast<size_t>(n) * kFanout);
  for (uint32_t& d : neighbours) d = dst_of_rank[dst_zipf.Next() - 1];

  auto pick_node = [&](bool as_source) {
    if (rng.NextDouble() < 0.8) return 1 + Below(rng, n);
    return as_source ? src_of_rank[src_zipf.Next() - 1] : dst_of_rank[dst_zipf.Next() - 1];
  };

  // Short streams keep most of their length for bursts.
  const int64_t quiet = std::min<int64_t>(o.quiet_ticks, std::max<int64_t>(3, o.edges / std::max(o.rate, 1u) / 4));
  std::vector<EdgeRecord> out;
  out.reserve(o.edges + o.edges / 8);
  std::vector<Burst> bursts;
  std::vector<std::pair<uint32_t, EdgeRecord>> batch;  // (offset in the tick, record)
  for (int64_t tick = 0; out.size() < o.edges; ++tick) {
    batch.clear();
    const uint32_t normal = static_cast<uint32_t>(o.rate * (0.95 + 0.1 * rng.NextDouble()));
    for (uint32_t i = 0; i < normal; ++i) {
      const uint32_t rank = static_cast<uint32_t>(src_zipf.Next() - 1);
      const uint32_t dst = rng.NextDouble() < 0.02 ? 1 + Below(rng, n)
                                                    : neighbours[size_t{rank} * kFanout + fan_zipf.Next() - 1];
      batch.push_back({0, {src_of_rank[rank], dst, 0, EdgeKind::kNormal}});
    }
    if (tick >= quiet && rng.NextDouble() < o.burst_probability) {
      Burst b;
      b.kind = static_cast<EdgeKind>(1 + Below(rng, 3));
      b.ticks_left = 1 + static_cast<int>(Below(rng, 4));
      b.per_tick = static_cast<uint32_t>(std::exp(std::log(50.0) + rng.NextDouble() * std::log(20.0)));
      b.src = pick_node(true);
      b.dst = pick_node(false);
      if (b.kind == EdgeKind::kEdgeBurst && rng.NextDouble() < 0.5) {
        // A pair that also talks normally: its usual rate is what the burst exceeds.
        const uint32_t rank = static_cast<uint32_t>(src_zipf.Next() - 1);
        b.src = src_of_rank[rank];
        b.dst = neighbours[size_t{rank} * kFanout + Below(rng, kFanout)];
      }
      bursts.push_back(b);
    }
    for (Burst& b : bursts) {
      for (uint32_t i = 0; i < b.per_tick; ++i) {
        EdgeRecord r{b.src, b.dst, 0, b.kind};
        if (b.kind == EdgeKind::kFanOut) r.dst = 1 + Below(rng, n);
        if (b.kind == EdgeKind::kFanIn) r.src = 1 + Below(rng, n);
        batch.push_back({0, r});
      }
      --b.ticks_left;
    }
    std::erase_if(bursts, [](const Burst& b) { return b.ticks_left <= 0; });
    for (auto& [offset, r] : batch) offset = Below(rng, kTickMs);
    std::stable_sort(batch.begin(), batch.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    for (auto& [offset, r] : batch) {
      r.time_ms = o.start_ms + tick * kTickMs + offset;
      out.push_back(r);
    }
  }
  return out;
}

absl::Status WriteEdgeCsv(const std::vector<EdgeRecord>& records, const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return absl::NotFoundError(fmt::format("cannot write '{}'", path));
  std::string buf = "src,dst,time,label\n";
  for (const EdgeRecord& r : records) {
    fmt::format_to(std::back_inserter(buf), "{},{},{},{}\n", r.src, r.dst, r.time_ms, r.anomalous() ? 1 : 0);
    if (buf.size() > (1 << 20)) {
      std::fwrite(buf.data(), 1, buf.size(), f);
      buf.clear();
    }
  }
  std::fwrite(buf.data(), 1, buf.size(), f);
  const bool ok = std::ferror(f) == 0;
  if (std::fclose(f) != 0 || !ok) return absl::InternalError(fmt::format("error writing '{}'", path));
  return absl::OkStatus();
}

double RocAuc(std::span<const double> scores, std::span<const uint8_t> labels) {
  const size_t n = std::min(scores.size(), labels.size());
  std::vector<uint32_t> order(n);
  std::iota(order.begin(), order.end(), 0u);
  // NaN scores rank lowest, so the order is strict weak.
  auto key = [&](uint32_t i) { return std::isnan(scores[i]) ? -HUGE_VAL : scores[i]; };
  std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) { return key(a) < key(b); });
  double rank_sum = 0;  // of the positives, ranks from 1, ties averaged
  uint64_t pos = 0;
  for (size_t i = 0; i < n;) {
    size_t j = i;
    uint64_t group_pos = 0;
    while (j < n && key(order[j]) == key(order[i])) group_pos += labels[order[j++]] != 0;
    rank_sum += static_cast<double>(group_pos) * (static_cast<double>(i + 1 + j) / 2.0);
    pos += group_pos;
    i = j;
  }
  const uint64_t neg = n - pos;
  if (pos == 0 || neg == 0) return std::numeric_limits<double>::quiet_NaN();
  const double p = static_cast<double>(pos);
  return (rank_sum - p * (p + 1) / 2) / (p * static_cast<double>(neg));
}

absl::StatusOr<EdgeBenchReport> RunEdgeBench(const EdgeBenchOptions& o) {
  EdgeBenchReport rep;
  auto t0 = Clock::now();
  const std::vector<EdgeRecord> recs = GenerateEdgeStream(o.stream);
  rep.generate_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  rep.records = recs.size();
  for (const EdgeRecord& r : recs) rep.anomalous += r.anomalous();
  rep.ticks = recs.empty() ? 0 : static_cast<uint64_t>((recs.back().time_ms - recs.front().time_ms) / kTickMs + 1);
  if (!o.write_path.empty()) {
    fmt::print(stderr, "writing {} records to {}\n", recs.size(), o.write_path);
    absl::Status s = WriteEdgeCsv(recs, o.write_path);
    if (!s.ok()) return s;
  }

  auto created = detect::EdgeDetector::Create(o.config);
  if (!created.ok()) return created.status();
  const detect::EdgeDetector& det = *created;
  const size_t n = recs.size();
  std::vector<uint64_t> hs(n), hd(n);
  std::vector<int64_t> times(n);
  std::vector<uint8_t> labels(n);
  for (size_t i = 0; i < n; ++i) {
    hs[i] = det.HashNode(uint64_t{recs[i].src});
    hd[i] = det.HashNode(uint64_t{recs[i].dst});
    times[i] = recs[i].time_ms;
    labels[i] = recs[i].anomalous();
  }
  std::vector<double> scores(n), raws(n);
  const int64_t start_tick = recs.empty() ? 0 : recs.front().time_ms / kTickMs;

  // Per-kind AUC: the records of one burst kind against all normal ones.
  auto fill_kinds = [&](EdgeBenchResult& res) {
    std::vector<double> sub;
    std::vector<uint8_t> lab;
    for (int k = 1; k <= 3; ++k) {
      sub.clear();
      lab.clear();
      for (size_t i = 0; i < n; ++i) {
        if (recs[i].kind == EdgeKind::kNormal || static_cast<int>(recs[i].kind) == k) {
          sub.push_back(scores[i]);
          lab.push_back(labels[i]);
        }
      }
      res.auc_kind[k - 1] = RocAuc(sub, lab);
    }
  };

  {
    fmt::print(stderr, "cairn edges: accuracy pass over {} records\n", n);
    EdgeBenchResult res;
    res.name = "cairn edges";
    detect::EdgeState st;
    for (size_t i = 0; i < n; ++i) {
      const detect::Scored s = det.UpdateHashed(st, hs[i], hd[i], times[i]);
      scores[i] = s.score;
      raws[i] = s.raw;
    }
    res.bytes = static_cast<double>(st.MemoryBytes());
    res.auc = RocAuc(scores, labels);
    res.auc_raw = RocAuc(raws, labels);
    fill_kinds(res);
    // Calibration on normal traffic, after the warm-up ticks.
    const int64_t after = recs.empty() ? 0 : recs.front().time_ms + det.config().warmup_ticks * kTickMs;
    const double fs[3] = {1e-2, 1e-3, 1e-4};
    uint64_t normal = 0, over[3] = {};
    for (size_t i = 0; i < n; ++i) {
      if (labels[i] || times[i] < after) continue;
      ++normal;
      for (int k = 0; k < 3; ++k) over[k] += scores[i] >= detect::ThresholdFor(fs[k]);
    }
    for (int k = 0; k < 3; ++k) res.false_alarms[k] = normal ? static_cast<double>(over[k]) / normal : 0;

    rep.results.push_back(res);
  }

  if (o.baselines) {
    for (bool filtering : {false, true}) {
      EdgeBenchResult res;
      res.name = filtering ? "MIDAS-F (reference)" : "MIDAS-R (reference)";
      fmt::print(stderr, "{}: accuracy pass\n", res.name);
      ReferenceMidas m(filtering);
      for (size_t i = 0; i < n; ++i) scores[i] = m(hs[i], hd[i], times[i] / kTickMs - start_tick + 1);
      res.auc = RocAuc(scores, labels);
      res.auc_raw = res.auc;
      fill_kinds(res);
      res.bytes = 3.0 * 3 * ReferenceMidas::kRows * ReferenceMidas::kBuckets * sizeof(float);
      rep.results.push_back(res);
    }
  }
  if (!o.speed) return rep;

  // Throughput: the runs of all detectors interleaved, so that a machine whose
  // load changes affects them alike; the median of each.
  std::string arena;  // string node names, hashed inside Update
  std::vector<uint32_t> offs;
  const size_t ns = std::min<size_t>(n, 4'000'000);
  for (size_t i = 0; i < ns; ++i) {
    for (uint32_t node : {recs[i].src, recs[i].dst}) {
      offs.push_back(static_cast<uint32_t>(arena.size()));
      fmt::format_to(std::back_inserter(arena), "10.{}.{}.{}", node >> 16, (node >> 8) & 255, node & 255);
    }
  }
  offs.push_back(static_cast<uint32_t>(arena.size()));
  std::vector<std::vector<double>> rates(5);
  fmt::print(stderr, "throughput: {} rounds\n", o.repeats);
  for (int r = 0; r < o.repeats; ++r) {
    rates[0].push_back(Rate(n, [&] {
      detect::EdgeState s2;
      double sink = 0;
      for (size_t i = 0; i < n; ++i) sink += det.UpdateHashed(s2, hs[i], hd[i], times[i]).score;
      g_sink = sink;
    }));
    rates[1].push_back(Rate(ns, [&] {
      detect::EdgeState s2;
      double sink = 0;
      for (size_t i = 0; i < ns; ++i) {
        const std::string_view a(arena.data() + offs[2 * i], offs[2 * i + 1] - offs[2 * i]);
        const std::string_view b(arena.data() + offs[2 * i + 1], offs[2 * i + 2] - offs[2 * i + 1]);
        sink += det.Update(s2, {.key = a, .item = b, .time = times[i]}).score;
      }
      g_sink = sink;
    }));
    rates[4].push_back(Rate(n, [&] {
      detect::EdgeState s2;
      std::vector<detect::Scored> out(4096);  // blocks of records, as a stream operator would pass them
      double sink = 0;
      for (size_t i = 0; i < n; i += out.size()) {
        const size_t m = std::min(out.size(), n - i);
        det.UpdateBatch(s2, std::span(hs).subspan(i, m), std::span(hd).subspan(i, m), std::span(times).subspan(i, m),
                        std::span(out).first(m));
        for (size_t k = 0; k < m; ++k) sink += out[k].score;
      }
      g_sink = sink;
    }));
    if (!o.baselines) continue;
    for (int f = 0; f < 2; ++f) {
      rates[2 + f].push_back(Rate(n, [&] {
        ReferenceMidas m(f == 1);
        double sink = 0;
        for (size_t i = 0; i < n; ++i) sink += m(hs[i], hd[i], times[i] / kTickMs - start_tick + 1);
        g_sink = sink;
      }));
    }
  }
  rep.results[0].records_per_sec = Median(rates[0]);
  rep.results[0].records_per_sec_strings = Median(rates[1]);
  rep.results[0].records_per_sec_batch = Median(rates[4]);
  if (o.baselines) {
    rep.results[1].records_per_sec = Median(rates[2]);
    rep.results[2].records_per_sec = Median(rates[3]);
  }
  return rep;
}

std::string FormatEdgeBench(const EdgeBenchReport& r) {
  std::string out = fmt::format(
      "edge stream: {} records ({} anomalous, {:.2f}%), {} ticks of 1 s; generated in {:.2f} s\n\n", r.records,
      r.anomalous, r.records ? 100.0 * r.anomalous / r.records : 0, r.ticks, r.generate_seconds);
  out += fmt::format("{:<22}{:>9}{:>9}{:>9}{:>9}{:>9}{:>14}{:>10}{:>14}{:>11}\n", "detector", "ROC-AUC", "raw", "edge",
                     "fan-out", "fan-in", "M rec/s/core", "(batch)", "(str keys)", "memory");
  for (const EdgeBenchResult& x : r.results) {
    out += fmt::format("{:<22}{:>9.4f}{:>9.4f}{:>9.4f}{:>9.4f}{:>9.4f}{:>14.1f}{:>10}{:>14}{:>11}\n", x.name, x.auc,
                       x.auc_raw, x.auc_kind[0], x.auc_kind[1], x.auc_kind[2], x.records_per_sec / 1e6,
                       x.records_per_sec_batch > 0 ? fmt::format("{:.1f}", x.records_per_sec_batch / 1e6) : "-",
                       x.records_per_sec_strings > 0 ? fmt::format("{:.1f}", x.records_per_sec_strings / 1e6) : "-",
                       fmt::format("{:.0f} KiB", x.bytes / 1024));
  }
  if (!r.results.empty()) {
    const EdgeBenchResult& c = r.results.front();
    out += fmt::format(
        "\ncalibration ({}), normal records at or above ThresholdFor(f): f=1e-2: {:.2e}, f=1e-3: {:.2e}, "
        "f=1e-4: {:.2e}\n",
        c.name, c.false_alarms[0], c.false_alarms[1], c.false_alarms[2]);
  }
  out += "targets: ROC-AUC >= 0.95; >= 40 M records/s per core (pre-hashed ids, parsing excluded)\n"
         "(batch): the same records through EdgeDetector::UpdateBatch, 4096 at a time\n";
  return out;
}

nlohmann::json EdgeBenchToJson(const EdgeBenchOptions& o, const EdgeBenchReport& r) {
  nlohmann::json j;
  j["workload"] = "edges";
  j["options"] = {{"edges", o.stream.edges}, {"seed", o.stream.seed}, {"nodes", o.stream.nodes},
                  {"rate", o.stream.rate}, {"repeats", o.repeats}};
  j["records"] = r.records;
  j["anomalous"] = r.anomalous;
  j["ticks"] = r.ticks;
  for (const EdgeBenchResult& x : r.results) {
    j["detectors"].push_back({{"name", x.name},
                              {"roc_auc", x.auc},
                              {"roc_auc_raw", x.auc_raw},
                              {"roc_auc_edge_burst", x.auc_kind[0]},
                              {"roc_auc_fan_out", x.auc_kind[1]},
                              {"roc_auc_fan_in", x.auc_kind[2]},
                              {"records_per_sec", x.records_per_sec},
                              {"records_per_sec_string_keys", x.records_per_sec_strings},
                              {"records_per_sec_batch", x.records_per_sec_batch},
                              {"memory_bytes", x.bytes},
                              {"false_alarms_at_1e-2", x.false_alarms[0]},
                              {"false_alarms_at_1e-3", x.false_alarms[1]},
                              {"false_alarms_at_1e-4", x.false_alarms[2]}});
  }
  return j;
}

}  // namespace cairn::bench
