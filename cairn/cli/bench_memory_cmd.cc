// `cairn bench memory`: agent memory (cairn/memory) at scale on synthetic episodes.
//
// The generator is reproducible from --seed and writes what agents in a swarm would:
// several agents sharing one namespace, each episode one to three sentences with
// timestamps moving forward, words drawn from a 20,000-word synthetic vocabulary with a
// Zipf(1) distribution, a few thousand recurring people (Zipf too, so some come up all
// the time), organizations and places, and sentences the rule-based extractor turns into
// facts (works at, lives in / moved to, likes, is a, negations that close a fact). People
// keep their employer and home for a while (about 1 statement in 25 is a change), so most
// fact sentences confirm a current fact and some close one.
//
// It remembers --episodes episodes in batches of --batch (RememberBatch: one transaction
// per batch, acknowledged after its commit; the batches back to back, then Flush, which
// waits for the store's vector thread) and reports the throughput (wall, and CPU of every
// thread of the process over the same time), then the recall
// latency percentiles of --queries queries (people, places and topics, k = 10) at
// checkpoints (10 K, 100 K, 1 M and the end), the bytes on disk and the resident memory
// per episode. The extraction share is the time RuleExtractor alone takes on the same
// episodes (a separate pass over them) divided by the remember time.
#include <fmt/format.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <span>
#include <string>
#include <unordered_set>
#include <vector>

#include "cairn/cli/commands.h"
#include "cairn/memory/extractor.h"
#include "cairn/memory/memory.h"

namespace cairn::cli {
namespace {

struct MemoryBenchFlags {
  uint64_t episodes = 1'000'000;
  uint64_t queries = 1000;
  uint64_t seed = 1;
  uint64_t batch = 256;
  int agents = 8;
  std::string dir;  // empty: a temporary directory, removed at the end
  bool keep = false;
  bool recall_only = false;  // open the store in `dir` as it is and only run recall queries
  std::string sync = "full";
  size_t hnsw_m = memory::MemoryOptions{}.hnsw_m;
  size_t ef_construction = memory::MemoryOptions{}.hnsw_ef_construction;
  uint64_t cache_mib = memory::MemoryOptions{}.write_cache_bytes >> 20;
  uint64_t checkpoint_mib = memory::MemoryOptions{}.wal_checkpoint_bytes >> 20;
  bool json = false;
  std::string json_out;
};

// ---------------------------------------------------------------------------------------------
// Synthetic episodes

constexpr const char* kSyllables[] = {
    "ka",  "lo",  "mi",  "ne",  "ru",  "sa",  "ti",  "vo",  "ze",  "ba",  "de",  "fi",  "go",  "hu",  "ja",  "ke",
    "li",  "mo",  "nu",  "pa",  "qui", "re",  "si",  "to",  "ul",  "va",  "wen", "xo",  "yal", "zu",  "bro", "cla",
    "dri", "fen", "gar", "hel", "ist", "jor", "kel", "lum", "mar", "nor", "ost", "pel", "ran", "sto", "tur", "ven"};
constexpr size_t kNumSyllables = sizeof(kSyllables) / sizeof(kSyllables[0]);
constexpr const char* kFirst[] = {
    "Alma",    "Bruno",  "Carmen", "Dmitri", "Elena",  "Farid",   "Greta",    "Hiro",    "Ingrid",   "Jonas",
    "Kemal",   "Leila",  "Marco",  "Nadia",  "Oskar",  "Priya",   "Quentin",  "Rosa",    "Sven",     "Tamara",
    "Umar",    "Vera",   "Wendel", "Xenia",  "Yusuf",  "Zora",    "Anouk",    "Basil",   "Celine",   "Dario",
    "Esme",    "Felix",  "Gaia",   "Hamid",  "Ilse",   "Joaquin", "Kaja",     "Lorenz",  "Mireille", "Nikolai",
    "Olufemi", "Paloma", "Rafael", "Saskia", "Tobias", "Ulrike",  "Valentin", "Wanjiru", "Yannick",  "Zeynep"};
constexpr const char* kLast[] = {"Okafor",   "Lindqvist", "Moreau",    "Takahashi",  "Novak",      "Haddad",
                                 "Brennan",  "Castillo",  "Petrov",    "Achterberg", "Mbeki",      "Santoro",
                                 "Kowalski", "Eriksen",   "Delacroix", "Nakamura",   "Fitzgerald", "Oyelaran",
                                 "Varga",    "Quispe",    "Halvorsen", "Ibarra",     "Jaramillo",  "Kuznetsova",
                                 "Laurent",  "Marchetti", "Nyberg",    "Ortega",     "Pacheco",    "Rasmussen"};
constexpr const char* kOrgSuffix[] = {"Labs",     "Inc",        "Corp",  "University", "Institute",
                                      "Hospital", "Foundation", "Group", "Bank",       "Agency"};
constexpr const char* kMonths[] = {"January", "February", "March",     "April",   "May",      "June",
                                   "July",    "August",   "September", "October", "November", "December"};

// Samples ranks 0..n-1 with probability proportional to 1 / (rank + 1)^s.
class Zipf {
 public:
  Zipf(size_t n, double s) : cdf_(n) {
    double sum = 0;
    for (size_t i = 0; i < n; ++i) cdf_[i] = sum += 1.0 / std::pow(static_cast<double>(i + 1), s);
    for (double& c : cdf_) c /= sum;
  }
  size_t operator()(std::mt19937_64& rng) const {
    double u = std::uniform_real_distribution<double>(0, 1)(rng);
    return std::min<size_t>(std::lower_bound(cdf_.begin(), cdf_.end(), u) - cdf_.begin(), cdf_.size() - 1);
  }

 private:
  std::vector<double> cdf_;
};

std::string Capitalize(std::string s) {
  if (!s.empty()) s[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(s[0])));
  return s;
}

class EpisodeGenerator {
 public:
  EpisodeGenerator(uint64_t seed, int agents)
      : rng_(seed), agents_(agents), words_(20000, 1.0), people_z_(2000, 1.1), orgs_z_(400, 1.0), places_z_(300, 1.0) {
    // Words: the base-48 digits (in syllables) of a scrambled index, so ranks are not
    // alphabetical and every word is distinct.
    for (size_t i = 0; i < 20000; ++i)
      vocab_.push_back(Spell((i * 7919 + 48 * 48) % (48 * 48 * 48 - 48 * 48) + 48 * 48));
    for (size_t i = 0; i < 2000; ++i) {
      size_t f = (i * 17) % std::size(kFirst), l = (i * 31 + i / std::size(kFirst)) % std::size(kLast);
      people_.push_back(fmt::format("{} {}", kFirst[f], kLast[l]));
    }
    for (size_t i = 0; i < 400; ++i)
      orgs_.push_back(fmt::format("{} {}", Capitalize(Spell(100000 + i * 37)), kOrgSuffix[i % std::size(kOrgSuffix)]));
    for (size_t i = 0; i < 300; ++i) places_.push_back(Capitalize(Spell(50000 + i * 53)));
    time_ms_ = 1704067200000;  // 2024-01-01
  }

  memory::Episode Next(const std::string& ns) {
    memory::Episode e;
    e.ns = ns;
    const int agent = static_cast<int>(rng_() % static_cast<uint64_t>(agents_));
    e.author = fmt::format("agent-{}", agent);
    time_ms_ += 1000 + static_cast<int64_t>(rng_() % 120000);
    e.time_ms = time_ms_;
    e.source = fmt::format("chat-{}", rng_() % 5000);
    e.importance = static_cast<double>(rng_() % 101) / 100.0;
    const int sentences = 1 + static_cast<int>(rng_() % 3);
    for (int i = 0; i < sentences; ++i) {
      if (i) e.content += ' ';
      e.content += Sentence();
    }
    return e;
  }

  // A question like the ones agents ask their memory.
  std::string Query() {
    switch (rng_() % 6) {
      case 0:
        return fmt::format("Where does {} work?", Person());
      case 1:
        return fmt::format("What does {} like?", Person());
      case 2:
        return fmt::format("When did {} move to {}?", Person(), Place());
      case 3:
        return fmt::format("what about the {} {} near {}", Word(), Word(), Place());
      case 4:
        return fmt::format("{} {} {}", Word(), Word(), Word());
      default:
        return fmt::format("Who talked with {} about {}?", Person(), Word());
    }
  }

  // Names the extractor is told the store knows (for the extraction-only pass).
  std::unordered_set<std::string> KnownAliases() const {
    std::unordered_set<std::string> out;
    for (const auto* list : {&people_, &orgs_, &places_})
      for (const std::string& n : *list) out.insert(memory::NormalizeName(n));
    return out;
  }

 private:
  std::string Spell(size_t v) const {
    std::string w;
    do {
      w += kSyllables[v % kNumSyllables];
      v /= kNumSyllables;
    } while (v);
    return w;
  }
  const std::string& Word() { return vocab_[words_(rng_)]; }
  std::string Words(int n) {
    std::string s;
    for (int i = 0; i < n; ++i) {
      if (i) s += ' ';
      s += Word();
    }
    return s;
  }
  std::string Person() {
    const std::string& p = people_[people_z_(rng_)];
    return rng_() % 5 == 0 ? p.substr(0, p.find(' ')) : p;  // sometimes the first name alone
  }
  const std::string& Org() { return orgs_[orgs_z_(rng_)]; }
  const std::string& Place() { return places_[places_z_(rng_)]; }
  int Few() { return 2 + static_cast<int>(rng_() % 6); }

  // People keep their employer and home for a while: a sentence about them states the
  // current one (a confirmation), and now and then a new one (which closes the old fact).
  std::string Sentence() {
    const size_t who = people_z_(rng_);
    const std::string& p = people_[who];
    switch (rng_() % 12) {
      case 0:
        if (employer_[who] < 0 || rng_() % 25 == 0) employer_[who] = static_cast<int>(orgs_z_(rng_));
        return fmt::format("{} works at {}.", p, orgs_[static_cast<size_t>(employer_[who])]);
      case 1:
        if (home_[who] < 0 || rng_() % 25 == 0) {
          home_[who] = static_cast<int>(places_z_(rng_));
          return fmt::format("{} moved to {} last {}.", p, places_[static_cast<size_t>(home_[who])],
                             rng_() % 2 ? "month" : "week");
        }
        return fmt::format("{} lives in {}.", p, places_[static_cast<size_t>(home_[who])]);
      case 2:
        return fmt::format("{} likes {}.", p, Words(1 + static_cast<int>(rng_() % 2)));
      case 3:
        return fmt::format("{} is a {}.", p, Word());
      case 4:
        if (employer_[who] >= 0 && rng_() % 4 == 0) {
          const std::string& o = orgs_[static_cast<size_t>(employer_[who])];
          employer_[who] = -1;
          return fmt::format("{} does not work at {} anymore.", p, o);
        }
        return fmt::format("{} called about the {} at {}.", p, Words(Few()), Org());
      case 5:
        return fmt::format("I met {} to talk about the {} and the {}.", Person(), Words(Few()), Words(2));
      case 6:
        return fmt::format("we discussed {} with {} near {}.", Words(Few()), Person(), Place());
      case 7:
        return fmt::format("the {} was {} for {} days.", Words(Few()), Words(Few()), 1 + rng_() % 30);
      case 8:
        return fmt::format("it seems {} and {}.", Words(Few() + 2), Words(Few()));
      case 9:
        return fmt::format("we saw {} at {} after the {}.", Person(), Org(), Words(Few()));
      case 10:
        return fmt::format("the report on {} says {}.", Words(Few()), Words(Few() + 4));
      default:
        return fmt::format("{} asked about {} in {}.", Person(), Words(Few()), Place());
    }
  }

  std::mt19937_64 rng_;
  int agents_;
  Zipf words_, people_z_, orgs_z_, places_z_;
  std::vector<std::string> vocab_, people_, orgs_, places_;
  std::vector<int> employer_ = std::vector<int>(2000, -1), home_ = std::vector<int>(2000, -1);
  int64_t time_ms_ = 0;
};

// ---------------------------------------------------------------------------------------------
// Measurement

double Now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

double CpuSeconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

// CPU time of the calling thread: on a busy machine it shows the work a call does, which
// wall time mixes with waiting for a core.
double ThreadCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

// A line of /proc/self/status in bytes ("VmRSS:", "RssAnon:", "RssFile:").
uint64_t StatusBytes(const char* key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  const size_t n = std::strlen(key);
  while (std::getline(in, line))
    if (line.compare(0, n, key) == 0) return std::stoull(line.substr(n)) * 1024;
  return 0;
}
uint64_t RssBytes() { return StatusBytes("VmRSS:"); }

uint64_t DirBytes(const std::string& dir) {
  uint64_t total = 0;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec); !ec && it != decltype(it)(); it.increment(ec))
    if (it->is_regular_file(ec)) total += it->file_size(ec);
  return total;
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(std::ceil(p * static_cast<double>(v.size()))) - 1;
  return v[std::min(i, v.size() - 1)];
}

struct Checkpoint {
  uint64_t episodes = 0;
  double p50 = 0, p95 = 0, p99 = 0, max = 0, mean_results = 0;
  double cpu_p50 = 0, cpu_p99 = 0;  // thread CPU time
};

int RunMemoryBench(const MemoryBenchFlags& f) {
  const char* cmd = "cairn bench memory";
  if (f.sync != "full" && f.sync != "normal") return fmt::print(stderr, "{}: --sync must be full or normal\n", cmd), 2;
  std::string dir = f.dir;
  bool temp = false;
  if (dir.empty()) {
    dir = (std::filesystem::temp_directory_path() / fmt::format("cairn-bench-memory-{}", ::getpid())).string();
    temp = true;
  }
  std::error_code ec;
  if (f.recall_only) {
    if (temp) return fmt::print(stderr, "{}: --recall-only needs --dir (a store an earlier run kept)\n", cmd), 2;
    if (!std::filesystem::exists(dir, ec) || std::filesystem::is_empty(dir, ec))
      return fmt::print(stderr, "{}: --recall-only: '{}' holds no store\n", cmd, dir), 2;
  } else if (std::filesystem::exists(dir, ec) && !std::filesystem::is_empty(dir, ec)) {
    return fmt::print(stderr, "{}: '{}' is not empty; give a new directory (or --recall-only)\n", cmd, dir), 2;
  }
  const uint64_t rss0 = RssBytes();
  memory::MemoryOptions mo;
  mo.sync_full = f.sync == "full";
  mo.hnsw_m = f.hnsw_m;
  mo.hnsw_ef_construction = f.ef_construction;
  mo.write_cache_bytes = f.cache_mib << 20;
  mo.wal_checkpoint_bytes = f.checkpoint_mib << 20;
  auto store = memory::MemoryStore::Open(dir, mo);
  if (!store.ok()) return fmt::print(stderr, "{}: {}\n", cmd, std::string(store.status().message())), 1;
  memory::MemoryStore& m = **store;
  const std::string ns = "swarm";
  if (f.recall_only) {
    if (!m.GetNamespace(ns).ok())
      return fmt::print(stderr, "{}: --recall-only: '{}' has no namespace '{}' (not a store of this bench)\n", cmd,
                        dir, ns),
             1;
  } else {
    if (absl::Status s = m.CreateNamespace(ns, "agent-0", true); !s.ok())
      return fmt::print(stderr, "{}: {}\n", cmd, std::string(s.message())), 1;
    for (int a = 1; a < f.agents; ++a) (void)m.Grant(ns, "agent-0", fmt::format("agent-{}", a), true, true);
  }

  if (f.recall_only) {
    fmt::print(stderr, "{}: recall only, {} queries over the {} episodes of the store in {}, seed {}\n", cmd,
               f.queries, m.EpisodeCount(), dir, f.seed);
  } else {
    fmt::print(stderr,
               "{}: {} episodes from {} agents into one namespace, batches of {}, synchronous={}, HNSW m {} "
               "ef_construction {}, write cache {} MiB, checkpoint at {} MiB, seed {}, in {}\n",
               cmd, f.episodes, f.agents, f.batch, f.sync, f.hnsw_m, f.ef_construction, f.cache_mib,
               f.checkpoint_mib, f.seed, dir);
  }
  EpisodeGenerator gen(f.seed, f.agents);
  EpisodeGenerator qgen(f.seed ^ 0x9e3779b97f4a7c15ull, f.agents);
  const std::unordered_set<std::string> known = gen.KnownAliases();
  memory::RuleExtractor extractor;

  std::vector<uint64_t> marks;
  double remember_s = 0, remember_cpu = 0, extract_s = 0;
  uint64_t done = 0, facts = 0, closed = 0, mentions = 0;
  if (f.recall_only) {
    done = m.EpisodeCount();  // one checkpoint: the store as it is
    marks.push_back(done);
  } else {
    for (uint64_t c = 10000; c < f.episodes; c *= 10) marks.push_back(c);
    marks.push_back(f.episodes);
  }
  std::vector<Checkpoint> checkpoints;
  double last_progress = Now();
  std::vector<memory::Episode> chunk;
  for (uint64_t mark : marks) {
    // Episodes are made (and the extractor run alone on them) a chunk at a time outside the
    // measured time; the measured time is RememberBatch calls back to back and then Flush,
    // which waits for the store's vector thread: the CPU figure is the whole process's
    // (every thread) over that time.
    constexpr uint64_t kChunk = 65536;
    while (done < mark) {
      const uint64_t chunk_end = std::min<uint64_t>(mark, done + kChunk);
      chunk.clear();
      for (uint64_t i = done; i < chunk_end; ++i) chunk.push_back(gen.Next(ns));
      // The extractor alone, on the same text, for the extraction share.
      double t0 = Now();
      for (const memory::Episode& e : chunk) {
        memory::ExtractContext ctx;
        ctx.speaker = e.author;
        ctx.is_known_alias = [&known](const std::string& lower) { return known.count(lower) > 0; };
        (void)extractor.Extract(e.content, ctx);
      }
      extract_s += Now() - t0;
      const double c0 = CpuSeconds();
      t0 = Now();
      for (size_t at = 0; at < chunk.size(); at += f.batch) {
        const size_t take = std::min<size_t>(f.batch, chunk.size() - at);
        auto r = m.RememberBatch(std::span<const memory::Episode>(chunk.data() + at, take));
        if (!r.ok()) return fmt::print(stderr, "{}: remember: {}\n", cmd, std::string(r.status().message())), 1;
        for (const auto& x : *r)
          facts += x.fact_ids.size(), closed += x.closed_fact_ids.size(), mentions += x.entity_ids.size();
        done += take;
        if (Now() - last_progress >= 5) {
          last_progress = Now();
          const double s = remember_s + (Now() - t0), cpu = remember_cpu + (CpuSeconds() - c0);
          fmt::print(stderr, "  {} episodes, {:.0f} episodes/s so far ({:.0f} per cpu-second), resident {:.0f} MiB\n",
                     done, static_cast<double>(done) / s, static_cast<double>(done) / cpu,
                     static_cast<double>(RssBytes()) / 1048576.0);
        }
      }
      if (absl::Status s = m.Flush(); !s.ok())
        return fmt::print(stderr, "{}: remember: {}\n", cmd, std::string(s.message())), 1;
      remember_s += Now() - t0;
      remember_cpu += CpuSeconds() - c0;
    }
    Checkpoint cp;
    cp.episodes = done;
    std::vector<double> lat, cpu;
    size_t results = 0;
    for (uint64_t i = 0; i < f.queries; ++i) {
      memory::RecallQuery q;
      q.agent = fmt::format("agent-{}", i % static_cast<uint64_t>(f.agents));
      q.text = qgen.Query();
      q.k = 10;
      q.namespaces = {ns};
      double c0 = ThreadCpuSeconds();
      double t0 = Now();
      auto r = m.Recall(q);
      lat.push_back((Now() - t0) * 1000);
      cpu.push_back((ThreadCpuSeconds() - c0) * 1000);
      if (!r.ok()) return fmt::print(stderr, "{}: recall: {}\n", cmd, std::string(r.status().message())), 1;
      results += r->size();
    }
    cp.p50 = Percentile(lat, 0.50), cp.p95 = Percentile(lat, 0.95), cp.p99 = Percentile(lat, 0.99);
    cp.max = Percentile(lat, 1.0);
    cp.cpu_p50 = Percentile(cpu, 0.50), cp.cpu_p99 = Percentile(cpu, 0.99);
    cp.mean_results = f.queries ? static_cast<double>(results) / static_cast<double>(f.queries) : 0;
    fmt::print(stderr,
               "  at {} episodes: recall p50 {:.2f} ms, p99 {:.2f} ms (cpu p50 {:.2f}, p99 {:.2f}) over {} queries\n",
               done, cp.p50, cp.p99, cp.cpu_p50, cp.cpu_p99, f.queries);
    checkpoints.push_back(cp);
  }
  const uint64_t rss = RssBytes();
  // The store reads its database through a memory map: the pages it touched count in the
  // resident size, but they are the OS page cache's (shared, reclaimable), not the heap.
  const uint64_t rss_file = StatusBytes("RssFile:"), rss_anon = StatusBytes("RssAnon:");
  store->reset();  // closes the store: the WAL is checkpointed and the disk figure is final
  const uint64_t disk = DirBytes(dir);
  if (temp && !f.keep) std::filesystem::remove_all(dir, ec);

  const double eps = static_cast<double>(done) / std::max(remember_s, 1e-9);
  const double n = static_cast<double>(std::max<uint64_t>(done, 1));
  nlohmann::json j = {{"benchmark", "memory"},
                      {"episodes", done},
                      {"agents", f.agents},
                      {"batch", f.batch},
                      {"synchronous", f.sync},
                      {"hnsw_m", f.hnsw_m},
                      {"hnsw_ef_construction", f.ef_construction},
                      {"write_cache_mib", f.cache_mib},
                      {"wal_checkpoint_mib", f.checkpoint_mib},
                      {"seed", f.seed},
                      {"remember_seconds", remember_s},
                      {"remember_cpu_seconds", remember_cpu},
                      {"remember_episodes_per_cpu_s", static_cast<double>(done) / std::max(remember_cpu, 1e-9)},
                      {"remember_episodes_per_s", eps},
                      {"extraction_share", extract_s / std::max(remember_s, 1e-9)},
                      {"facts_written_or_confirmed", facts},
                      {"facts_closed", closed},
                      {"entity_mentions", mentions},
                      {"disk_bytes", disk},
                      {"disk_bytes_per_episode", static_cast<double>(disk) / n},
                      {"rss_bytes", rss},
                      {"rss_anon_bytes", rss_anon},
                      {"rss_file_bytes", rss_file},
                      {"rss_bytes_per_episode", static_cast<double>(rss > rss0 ? rss - rss0 : 0) / n}};
  std::string table =
      f.recall_only
          ? fmt::format("remember  not run (--recall-only): the store in {} holds {} episodes\n", dir, done)
          : fmt::format(
                "remember  {} episodes in {:.2f} s: {:.0f} episodes/s (cpu {:.2f} s: {:.0f} episodes per cpu-second; "
                "extraction {:.0f}% of the time)\n"
                "          {} facts written or confirmed, {} closed, {} entity mentions\n",
                done, remember_s, eps, remember_cpu, static_cast<double>(done) / std::max(remember_cpu, 1e-9),
                100 * extract_s / std::max(remember_s, 1e-9), facts, closed, mentions);
  if (f.recall_only) j["recall_only"] = true;
  j["recall"] = nlohmann::json::array();
  for (const Checkpoint& cp : checkpoints) {
    j["recall"].push_back({{"episodes", cp.episodes},
                           {"queries", f.queries},
                           {"p50_ms", cp.p50},
                           {"p95_ms", cp.p95},
                           {"p99_ms", cp.p99},
                           {"max_ms", cp.max},
                           {"cpu_p50_ms", cp.cpu_p50},
                           {"cpu_p99_ms", cp.cpu_p99},
                           {"mean_results", cp.mean_results}});
    table += fmt::format(
        "recall    at {:>9} episodes, {} queries, k=10: p50 {:.2f} ms  p95 {:.2f} ms  p99 {:.2f} ms  "
        "max {:.2f} ms (cpu p50 {:.2f} ms  p99 {:.2f} ms)\n",
        cp.episodes, f.queries, cp.p50, cp.p95, cp.p99, cp.max, cp.cpu_p50, cp.cpu_p99);
  }
  table += fmt::format("disk      {:.1f} MiB, {:.0f} bytes per episode\n", static_cast<double>(disk) / 1048576.0,
                       static_cast<double>(disk) / n);
  table += fmt::format(
      "memory    resident {:.1f} MiB, {:.0f} bytes per episode over the start (anonymous {:.1f} MiB, mapped files "
      "{:.1f} MiB)\n",
      static_cast<double>(rss) / 1048576.0, static_cast<double>(rss > rss0 ? rss - rss0 : 0) / n,
      static_cast<double>(rss_anon) / 1048576.0, static_cast<double>(rss_file) / 1048576.0);
  const bool remember_ok = eps >= 5000;
  const bool recall_ok = checkpoints.empty() || checkpoints.back().p99 <= 20;
  if (f.recall_only) {
    j["targets"] = {{"recall_p99_20ms", recall_ok}};
    table += fmt::format("targets   recall p99 <= 20 ms at {} episodes: {}\n", done, recall_ok ? "met" : "MISSED");
  } else {
    j["targets"] = {{"remember_5000_per_s", remember_ok}, {"recall_p99_20ms", recall_ok}};
    table += fmt::format("targets   remember >= 5000 episodes/s: {}; recall p99 <= 20 ms at {} episodes: {}\n",
                         remember_ok ? "met" : "MISSED", done, recall_ok ? "met" : "MISSED");
  }
  return EmitBenchResults(f.json, f.json_out, j, table);
}

}  // namespace

void AddMemoryBench(CLI::App* parent, Runner* run) {
  auto f = std::make_shared<MemoryBenchFlags>();
  CLI::App* c = parent->add_subcommand(
      "memory", "Agent memory on synthetic episodes: remember episodes/s, recall latency percentiles, bytes");
  c->add_option("--episodes", f->episodes, "Episodes to remember")
      ->capture_default_str()
      ->check(CLI::Range(uint64_t{1}, uint64_t{100'000'000}));
  c->add_option("--queries", f->queries, "Recall queries at each checkpoint (10 K, 100 K, 1 M, the end)")
      ->capture_default_str()
      ->check(CLI::Range(uint64_t{0}, uint64_t{10'000'000}));
  c->add_option("--batch", f->batch, "Episodes per RememberBatch call (one transaction)")
      ->capture_default_str()
      ->check(CLI::Range(uint64_t{1}, uint64_t{100'000}));
  c->add_option("--agents", f->agents, "Agents writing to the shared namespace")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000));
  c->add_option("--hnsw-m", f->hnsw_m, "HNSW links per node of the store's vector collection")
      ->capture_default_str()
      ->check(CLI::Range(size_t{2}, size_t{64}));
  c->add_option("--ef-construction", f->ef_construction, "HNSW candidate list while inserting")
      ->capture_default_str()
      ->check(CLI::Range(size_t{1}, size_t{10000}));
  c->add_option("--cache-mib", f->cache_mib, "SQLite page cache of the writing connection, MiB (0: SQLite's 2 MB)")
      ->capture_default_str()
      ->check(CLI::Range(uint64_t{0}, uint64_t{1} << 20));
  c->add_option("--checkpoint-mib", f->checkpoint_mib, "WAL size at which the writer checkpoints itself, MiB (0: SQLite's 4 MB);"
                " the store's vector thread also checkpoints after each batch")
      ->capture_default_str()
      ->check(CLI::Range(uint64_t{0}, uint64_t{1} << 20));
  c->add_option("--seed", f->seed, "Seed of the episode and query generators")->capture_default_str();
  c->add_option("--dir", f->dir, "Store directory (new or empty; kept). Default: a temporary one, removed");
  c->add_flag("--keep", f->keep, "Keep the temporary store directory");
  c->add_flag("--recall-only", f->recall_only,
              "Open the store that an earlier run kept in --dir and only measure recall over it (--queries queries)");
  c->add_option("--sync", f->sync, "SQLite synchronous mode: full (power loss) or normal (process crashes)")
      ->capture_default_str();
  AddJsonFlags(c, &f->json, &f->json_out);
  c->callback([=] { *run = [=] { return RunMemoryBench(*f); }; });
}

}  // namespace cairn::cli
