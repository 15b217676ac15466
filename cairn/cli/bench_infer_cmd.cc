// `cairn bench infer -m FILE`: prompt processing and decoding speed of a GGUF model at
// each thread count (timed as llama-bench times them, cairn/infer/bench_support.h), the
// peak resident memory against the file plus the KV cache, and the memory-bandwidth
// bound of decoding.
//
// The bound: decoding one token reads every weight matrix once (all layers and the
// output projection; of the token embedding only one row), so tokens/s cannot exceed
// read bandwidth / those bytes. The bandwidth is measured here, on this machine, with
// as many threads as the decode run used: each thread streams through its share of a
// buffer much larger than the last-level cache, and the best of several passes counts
// (as STREAM reports its best). When the weights fit in the last-level cache the bound
// does not hold (they are read from cache), which the output says.
//
// Each thread count's bandwidth is measured right after its speed runs: on a shared host
// the bandwidth a guest gets drifts over minutes, and a bound taken minutes away from the
// decode it is compared with moved the ratio by up to 30 points between runs.
//
// Peak memory is VmHWM, read after each thread count's speed runs and before its bandwidth
// buffer is allocated; once the buffer is freed the high-water mark is reset
// (/proc/self/clear_refs), so the peak covers the mapping of the file, the KV cache and
// the scratch, never the buffer. Where the mark cannot be reset, every bandwidth
// measurement waits until all the speed runs are done (the output says which).
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cairn/cli/commands.h"
#include "cairn/cli/format.h"
#include "cairn/infer/bench_support.h"
#include "cairn/infer/model.h"
#include "cairn/infer/model_config.h"
#include "cairn/infer/tensor_type.h"

namespace cairn::cli {
namespace {

struct InferBenchFlags {
  std::string model;
  std::vector<int> threads = {1, 2};
  int pp = 512;
  int tg = 128;
  int repeats = 3;
  uint32_t batch = 512;
  uint64_t bw_mib = 1024;
  bool no_bandwidth = false;
  bool json = false;
  std::string json_out;
};

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// A "VmHWM:" / "VmRSS:" line of /proc/self/status in bytes, 0 when /proc is not there.
uint64_t ProcStatusBytes(const std::string& key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key, 0) == 0) return std::strtoull(line.c_str() + key.size(), nullptr, 10) * 1024;
  }
  return 0;
}

// Resets VmHWM to the current resident size (Linux 4.0+); false where that is refused.
// Never called before the first row, so the peak keeps what loading the model took.
bool ResetPeakRss() {
  std::ofstream out("/proc/self/clear_refs");
  out << "5";
  out.flush();
  return static_cast<bool>(out);
}

// Size of the largest data cache, from sysfs (0 when unknown).
uint64_t LastLevelCacheBytes() {
  uint64_t best = 0;
  for (int i = 0; i < 8; ++i) {
    std::ifstream in(fmt::format("/sys/devices/system/cpu/cpu0/cache/index{}/size", i));
    std::string s;
    if (!(in >> s) || s.empty()) continue;
    uint64_t v = std::strtoull(s.c_str(), nullptr, 10);
    const char unit = s.back();
    if (unit == 'K') v <<= 10;
    if (unit == 'M') v <<= 20;
    if (unit == 'G') v <<= 30;
    best = std::max(best, v);
  }
  return best;
}

// Sums 64-bit words as `streams` interleaved sequential streams per 1 MiB chunk (a decode
// kernel reads several weight rows at once, and one core draws more bandwidth from several
// streams than from one), optionally prefetching each stream 1 KiB ahead as the kernels do.
// Independent accumulators keep the loop bound by loads, not by a dependency chain.
uint64_t SumWords(const uint64_t* p, size_t n, int streams, bool prefetch) {
  constexpr size_t kChunk = size_t{1} << 17;  // words: 1 MiB
  constexpr size_t kAhead = 128;              // words: 1 KiB
  uint64_t acc[8] = {};
  size_t done = 0;
  for (; done + kChunk <= n; done += kChunk) {
    const uint64_t* base = p + done;
    const size_t len = kChunk / static_cast<size_t>(streams);
    for (size_t i = 0; i < len; i += 4) {
      for (int k = 0; k < streams; ++k) {
        const uint64_t* q = base + static_cast<size_t>(k) * len + i;
        if (prefetch && i + kAhead < len && (i % 8) == 0) __builtin_prefetch(q + kAhead);
        acc[k] += q[0] + q[1] + q[2] + q[3];
      }
    }
  }
  for (; done < n; ++done) acc[0] += p[done];
  uint64_t sum = 0;
  for (uint64_t a : acc) sum += a;
  return sum;
}

double ThreadCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

struct Bandwidth {
  double per_cpu_second = 0;  // sum over threads of bytes / that thread's CPU seconds
  double wall = 0;            // bytes / wall seconds of the whole pass
};

// Best read bandwidth in bytes/s over `passes` passes of each read pattern, `threads`
// threads over `buf`.
// On a shared machine a thread is often descheduled mid-pass, which would make the
// wall-clock figure measure the load, not the memory: the headline figure divides each
// thread's bytes by its own CPU time (stalls on memory count as CPU time) and adds
// the threads up; the wall-clock figure is kept next to it.
Bandwidth MeasureReadBandwidth(const std::vector<uint64_t>& buf, int threads, int passes) {
  const size_t n = buf.size();
  const size_t share = (n + static_cast<size_t>(threads) - 1) / static_cast<size_t>(threads);
  std::atomic<uint64_t> sink{0};
  Bandwidth best;
  // Best over the read patterns too: one stream, eight interleaved streams, eight with
  // prefetching. The bound must be what the machine can deliver, not what one naive loop
  // gets (a single-stream sum reads ~30% below what the decode kernels draw).
  struct Pattern {
    int streams;
    bool prefetch;
  };
  constexpr Pattern kPatterns[] = {{1, false}, {8, false}, {8, true}};
  for (int pass = 0; pass < passes * 3; ++pass) {
    const int streams = kPatterns[pass % 3].streams;
    const bool prefetch = kPatterns[pass % 3].prefetch;
    std::atomic<int> ready{0};
    std::atomic<bool> go{false};
    std::vector<double> rate(static_cast<size_t>(threads), 0.0);
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
      pool.emplace_back([&, t] {
        const size_t begin = std::min(n, static_cast<size_t>(t) * share), end = std::min(n, begin + share);
        ready.fetch_add(1);
        while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
        const double c0 = ThreadCpuSeconds();
        sink.fetch_add(SumWords(buf.data() + begin, end - begin, streams, prefetch), std::memory_order_relaxed);
        const double cpu = ThreadCpuSeconds() - c0;
        rate[static_cast<size_t>(t)] = cpu > 0 ? static_cast<double>((end - begin) * sizeof(uint64_t)) / cpu : 0;
      });
    }
    while (ready.load() < threads) std::this_thread::yield();
    const auto t0 = std::chrono::steady_clock::now();
    go.store(true, std::memory_order_release);
    for (std::thread& th : pool) th.join();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    double sum = 0;
    for (double r : rate) sum += r;
    best.per_cpu_second = std::max(best.per_cpu_second, sum);
    best.wall = std::max(best.wall, static_cast<double>(n * sizeof(uint64_t)) / s);
  }
  if (sink.load() == 42) fmt::print(stderr, " ");  // keeps the sums observable
  return best;
}

// Bytes of weights one decoded token reads: every tensor except the token embedding,
// of which one row (unless it is also the output projection, then all of it).
uint64_t WeightBytesPerToken(const infer::Model& model) {
  const infer::WeightView& e = model.weights().token_embd;
  const uint64_t embd = static_cast<uint64_t>(e.rows) * e.row_bytes;
  uint64_t bytes = model.weight_bytes();
  if (!model.config().tied_embeddings) bytes = bytes - std::min(bytes, embd) + e.row_bytes;
  return bytes;
}

// "q4_K 86%, q6_K 12%, f32 1%": weight types by share of the bytes.
std::string TypeMix(const infer::GgufFile& file) {
  std::vector<std::pair<uint64_t, std::string>> by_type;
  uint64_t total = 0;
  for (const infer::GgufTensor& t : file.tensors()) {
    const std::string name = infer::TensorTypeName(t.type);
    auto it = std::find_if(by_type.begin(), by_type.end(), [&](const auto& p) { return p.second == name; });
    if (it == by_type.end()) {
      by_type.emplace_back(t.size, name);
    } else {
      it->first += t.size;
    }
    total += t.size;
  }
  std::sort(by_type.rbegin(), by_type.rend());
  std::string out;
  for (const auto& [bytes, name] : by_type) {
    const double pct = total ? 100.0 * static_cast<double>(bytes) / static_cast<double>(total) : 0;
    if (pct < 0.5 && !out.empty()) continue;
    out += fmt::format("{}{} {:.0f}%", out.empty() ? "" : ", ", name, pct);
  }
  return out;
}

int RunInferBench(const InferBenchFlags& f) {
  for (int t : f.threads) {
    if (t < 1 || t > 1024) {
      fmt::print(stderr, "cairn bench infer: --threads: {} is not between 1 and 1024\n", t);
      return 2;
    }
  }
  // What the process holds before the model (code, libraries, allocator arenas).
  const uint64_t base_rss = ProcStatusBytes("VmRSS:");
  const auto t_load = std::chrono::steady_clock::now();
  auto model = infer::Model::Load(f.model);
  if (!model.ok()) {
    fmt::print(stderr, "cairn bench infer: {}\n", std::string(model.status().message()));
    return 1;
  }
  const double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_load).count();
  const infer::Model& m = **model;
  // As the commands that run a model do once its tokenizer is built (this one needs none).
  m.file().ReleaseMetadataPages();
  const infer::ModelConfig& c = m.config();
  const uint64_t file_bytes = m.file().file_size();
  const bool encoder = c.is_encoder();
  const uint32_t n_ctx = static_cast<uint32_t>(std::max({f.pp, f.tg, 1}));
  const infer::MemoryEstimate mem = infer::EstimateMemory(m.file(), c, std::min(n_ctx, c.n_ctx_train), f.batch);
  fmt::print(stderr, "cairn bench infer: {} ({} {}, {} parameters, {}), pp {} / tg {}, median of {} runs\n", f.model,
             infer::ArchName(c.arch), TypeMix(m.file()), HumanCount(static_cast<double>(infer::ParameterCount(m.file()))),
             HumanBytes(static_cast<double>(file_bytes)), f.pp, encoder ? 0 : f.tg, f.repeats);

  struct Row {
    infer::InferBenchResult r;
    double pp = 0, tg = 0, bound = 0;
    Bandwidth bandwidth;
  };
  std::vector<Row> rows;
  const uint64_t per_token = WeightBytesPerToken(m);
  // The bandwidth right after each row's speed runs when the peak can be reset after its
  // buffer (see the top of the file), else after all rows.
  const bool bw_each_row = !f.no_bandwidth && ::access("/proc/self/clear_refs", W_OK) == 0;
  uint64_t peak = 0;
  auto measure_bandwidth = [&](Row& row) {
    std::vector<uint64_t> buf(f.bw_mib * (1u << 20) / sizeof(uint64_t));
    for (size_t i = 0; i < buf.size(); ++i) buf[i] = i;  // resident before timing
    row.bandwidth = MeasureReadBandwidth(buf, row.r.n_threads, 5);
    row.bound = per_token ? row.bandwidth.per_cpu_second / static_cast<double>(per_token) : 0;
  };
  for (int threads : f.threads) {
    infer::InferBenchOptions o;
    o.n_prompt = f.pp;
    o.n_decode = f.tg;
    o.n_threads = threads;
    o.n_batch = f.batch;
    o.repetitions = f.repeats;
    auto r = infer::BenchInfer(m, o);
    if (!r.ok()) {
      fmt::print(stderr, "cairn bench infer: {} threads: {}\n", threads, std::string(r.status().message()));
      return 1;
    }
    Row row;
    row.r = *r;
    row.pp = Median(r->prompt_samples);
    row.tg = Median(r->decode_samples);
    peak = std::max(peak, ProcStatusBytes("VmHWM:"));
    if (bw_each_row) {
      measure_bandwidth(row);  // its buffer is freed on return
      if (!ResetPeakRss()) {
        fmt::print(stderr, "cairn bench infer: cannot reset the peak-memory mark after the bandwidth buffer\n");
        return 1;
      }
    }
    rows.push_back(row);
  }
  const uint64_t limit = static_cast<uint64_t>(1.1 * static_cast<double>(file_bytes + mem.kv_cache));

  const uint64_t llc = LastLevelCacheBytes();
  if (!f.no_bandwidth && !bw_each_row) {
    for (Row& row : rows) measure_bandwidth(row);
  }

  std::string table = fmt::format("{:>7}  {:>10}  {:>10}  {:>11}  {:>10}  {:>8}\n", "threads", "pp t/s", "tg t/s",
                                  "read GB/s", "bound t/s", "tg/bound");
  nlohmann::json runs = nlohmann::json::array();
  for (const Row& row : rows) {
    const bool has_bound = !encoder && row.bound > 0;
    table += fmt::format("{:>7}  {:>10.2f}  {:>10.2f}  {:>11}  {:>10}  {:>8}\n", row.r.n_threads, row.pp, row.tg,
                         row.bandwidth.per_cpu_second > 0 ? fmt::format("{:.1f}", row.bandwidth.per_cpu_second / 1e9) : "-",
                         has_bound ? fmt::format("{:.1f}", row.bound) : "-",
                         has_bound ? fmt::format("{:.0f}%", 100 * row.tg / row.bound) : "-");
    runs.push_back({{"threads", row.r.n_threads},
                    {"pp_tokens_per_s", row.pp},
                    {"pp_samples", row.r.prompt_samples},
                    {"tg_tokens_per_s", row.tg},
                    {"tg_samples", row.r.decode_samples},
                    {"read_bytes_per_s", row.bandwidth.per_cpu_second},
                    {"read_bytes_per_s_wall", row.bandwidth.wall},
                    {"bound_tokens_per_s", has_bound ? row.bound : 0.0},
                    {"tg_fraction_of_bound", has_bound ? row.tg / row.bound : 0.0}});
  }
  const bool fits_cache = llc > 0 && per_token <= llc;
  if (!f.no_bandwidth) {
    table += bw_each_row ? "read bandwidth measured right after each thread count's runs\n"
                         : "read bandwidth measured after all the runs\n";
  }
  table += fmt::format("weights read per decoded token: {}; last-level cache {}{}\n",
                       HumanBytes(static_cast<double>(per_token)), llc ? HumanBytes(static_cast<double>(llc)) : "unknown",
                       fits_cache ? " (the weights fit in it: the bandwidth bound does not apply)" : "");
  table += fmt::format("peak resident memory: {}, {} before loading the model (limit: file {} + KV cache {} + 10% = {}): {}\n",
                       HumanBytes(static_cast<double>(peak)), HumanBytes(static_cast<double>(base_rss)),
                       HumanBytes(static_cast<double>(file_bytes)),
                       HumanBytes(static_cast<double>(mem.kv_cache)), HumanBytes(static_cast<double>(limit)),
                       peak <= limit ? "within" : "OVER");

  nlohmann::json j = {{"model", f.model},
                      {"arch", infer::ArchName(c.arch)},
                      {"types", TypeMix(m.file())},
                      {"parameters", infer::ParameterCount(m.file())},
                      {"file_bytes", file_bytes},
                      {"load_seconds", load_s},
                      {"isa", rows.empty() ? "" : rows[0].r.isa},
                      {"n_prompt", rows.empty() ? f.pp : rows[0].r.n_prompt},
                      {"n_decode", rows.empty() ? f.tg : rows[0].r.n_decode},
                      {"repetitions", f.repeats},
                      {"runs", runs},
                      {"weight_bytes_per_token", per_token},
                      {"last_level_cache_bytes", llc},
                      {"weights_fit_in_cache", fits_cache},
                      {"peak_rss_bytes", peak},
                      {"rss_before_model_bytes", base_rss},
                      {"kv_cache_bytes", mem.kv_cache},
                      {"rss_limit_bytes", limit},
                      {"bandwidth_measured", f.no_bandwidth ? "no" : bw_each_row ? "after each thread count" : "after all runs"},
                      {"rss_within_limit", peak <= limit}};
  return EmitBenchResults(f.json, f.json_out, j, table);
}

}  // namespace

void AddInferBench(CLI::App* parent, Runner* run) {
  auto f = std::make_shared<InferBenchFlags>();
  CLI::App* in = parent->add_subcommand(
      "infer", "GGUF model speed: prompt processing and decode tokens/s, peak memory, memory-bandwidth bound");
  in->add_option("-m,--model", f->model, "A .gguf model file")->required();
  in->add_option("--threads", f->threads, "Thread counts, one run each")
      ->delimiter(',')
      ->capture_default_str();
  in->add_option("--pp", f->pp, "Prompt tokens (0 skips prompt processing)")
      ->capture_default_str()
      ->check(CLI::Range(0, 1 << 20));
  in->add_option("--tg", f->tg, "Decoded tokens (0 skips decoding)")->capture_default_str()->check(CLI::Range(0, 1 << 20));
  in->add_option("--repeats", f->repeats, "Timed runs per measurement (the median is reported)")
      ->capture_default_str()
      ->check(CLI::Range(1, 100));
  in->add_option("--batch", f->batch, "Most tokens per forward pass during prompt processing")
      ->capture_default_str()
      ->check(CLI::Range(uint32_t{1}, uint32_t{1} << 16));
  in->add_option("--bw-mib", f->bw_mib, "Buffer for the read-bandwidth measurement, MiB (well above the caches)")
      ->capture_default_str()
      ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 20));
  in->add_flag("--no-bandwidth", f->no_bandwidth, "Skip the bandwidth measurement (no bound)");
  AddJsonFlags(in, &f->json, &f->json_out);
  in->callback([=] { *run = [=] { return RunInferBench(*f); }; });
}

}  // namespace cairn::cli
