// `cairn vector …`: build an index from a file, search it, and benchmark cairn's
// indexes against hnswlib and FAISS on the same data.
//
// `build --out DIR` creates a collection directory (collection.h: ids, vectors,
// attributes, text for BM25, WAL + snapshot); `build --out FILE.hnsw` writes one bare
// HnswIndex file (vectors and graph only, opened memory-mapped by HnswIndex::Open).
// `search --index` takes either; filters need a collection (they read attributes).
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "bench/vector_bench.h"
#include "bench/vector_workload.h"
#include "cairn/cli/commands.h"
#include "cairn/cli/format.h"
#include "cairn/vector/collection.h"
#include "cairn/vector/filter.h"
#include "cairn/vector/hnsw.h"

namespace cairn::cli {
namespace {

using Clock = std::chrono::steady_clock;
double Since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::string Msg(const absl::Status& st) { return std::string(st.message()); }

// ------------------------------------------------------------------------- bench

struct VectorBenchFlags {
  bench::VectorBenchOptions o;
  std::string metric = "l2";
  bool json = false;
  std::string json_out;
  bool quiet = false;
  bool n_given = false;
};

int RunVectorBenchCommand(VectorBenchFlags f) {
  auto metric = vector::ParseMetric(f.metric);
  if (!metric.ok()) {
    fmt::print(stderr, "cairn vector bench: --metric: {}\n", Msg(metric.status()));
    return 2;
  }
  f.o.metric = *metric;
  f.o.progress = !f.quiet;
  if (!f.o.base_file.empty() && !f.n_given) f.o.n = 0;  // every row of the file
  if (f.o.ef.empty()) {
    fmt::print(stderr, "cairn vector bench: --ef needs at least one value\n");
    return 2;
  }
  auto report = bench::RunVectorBench(f.o);
  if (!report.ok()) {
    fmt::print(stderr, "cairn vector bench: {}\n", Msg(report.status()));
    return 1;
  }
  const nlohmann::json j = bench::VectorBenchToJson(f.o, *report);
  if (f.json) {
    fmt::print("{}\n", j.dump(2));
  } else {
    fmt::print("{}", bench::FormatVectorBench(f.o, *report));
  }
  if (!f.json_out.empty()) {
    std::ofstream out(f.json_out);
    out << j.dump(2) << "\n";
    if (!out) {
      fmt::print(stderr, "cairn vector bench: cannot write '{}'\n", f.json_out);
      return 1;
    }
  }
  for (const auto& r : report->runners) {
    if (!r.ok) return 1;  // every failure was printed with its reason
  }
  return 0;
}

// ------------------------------------------------------------------------- build

struct BuildFlags {
  std::string input;
  std::string format = "auto";
  std::string out;
  std::string metric = "l2";
  size_t M = 16;
  size_t efc = 200;
  bool sq8 = false;
  int threads = 2;
  bool quiet = false;
  std::string name;  // collection name; default: from the directory name
};

bool IsIndexFile(const std::string& path) { return path.ends_with(".hnsw"); }

// A collection name from a directory name: [A-Za-z0-9_-], at most 64, starting alphanumeric.
std::string NameFromDir(const std::string& dir) {
  std::string base = std::filesystem::path(dir).filename().string();
  if (base.empty()) base = std::filesystem::path(dir).parent_path().filename().string();
  std::string out;
  for (char c : base) {
    if (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-') out.push_back(c);
    if (out.size() == 64) break;
  }
  if (out.empty() || !std::isalnum(static_cast<unsigned char>(out[0]))) out = "c" + out;
  return out.substr(0, 64);
}

int BuildCollection(const BuildFlags& f, vector::Metric metric, std::vector<bench::VectorRecord>& records) {
  vector::CollectionSettings cs;
  cs.name = f.name.empty() ? NameFromDir(f.out) : f.name;
  cs.dim = records[0].vector.size();
  cs.metric = metric;
  cs.index = f.sq8 ? vector::IndexKind::kHnswSq8 : vector::IndexKind::kHnsw;
  cs.hnsw.m = f.M;
  cs.hnsw.ef_construction = f.efc;
  cs.embedder = "none";
  vector::CollectionOptions co;
  co.fsync = vector::FsyncPolicy::kNever;  // one Flush + Snapshot at the end instead
  std::error_code ec;
  if (std::filesystem::exists(f.out, ec)) {
    fmt::print(stderr, "cairn vector build: '{}' already exists (a collection is created in a new directory)\n", f.out);
    return 1;
  }
  auto col = vector::Collection::Create(f.out, cs, co);
  if (!col.ok()) {
    fmt::print(stderr, "cairn vector build: {}\n", Msg(col.status()));
    return 1;
  }
  const auto t = Clock::now();
  const size_t n = records.size(), batch = std::max<size_t>(10'000, n / 20);
  std::vector<vector::Point> points;
  for (size_t i = 0; i < n; i += batch) {
    points.clear();
    for (size_t j = i; j < std::min(n, i + batch); ++j) {
      auto& r = records[j];
      vector::Point p;
      p.id = r.id;
      p.vector = std::move(r.vector);
      if (!r.text.empty()) p.text = std::move(r.text);
      if (!r.attributes.empty()) {
        nlohmann::json obj = nlohmann::json::object();
        for (const auto& [k, v] : r.attributes) obj[k] = nlohmann::json::parse(v);
        auto attrs = vector::AttributesFromJson(obj);
        if (!attrs.ok()) {
          fmt::print(stderr, "cairn vector build: record {} (id {}): {}\n", j + 1, r.id, Msg(attrs.status()));
          return 1;
        }
        p.attributes = std::move(*attrs);
      }
      points.push_back(std::move(p));
    }
    if (auto st = (*col)->Upsert(points); !st.ok()) {
      fmt::print(stderr, "cairn vector build: records {}..{}: {}\n", i + 1, i + points.size(), Msg(st));
      return 1;
    }
    if (!f.quiet && n > batch) {
      fmt::print(stderr, "  inserted {} of {} ({:.0f}%), {:.1f} s\n", Thousands(i + points.size()), Thousands(n),
                 100.0 * static_cast<double>(i + points.size()) / n, Since(t));
    }
  }
  if (auto st = (*col)->Snapshot(); !st.ok()) {
    fmt::print(stderr, "cairn vector build: snapshot: {}\n", Msg(st));
    return 1;
  }
  fmt::print("built collection '{}' in {}: {} vectors, dimension {}, {} metric, {} in {:.1f} s\n", cs.name, f.out,
             Thousands((*col)->Count()), cs.dim, vector::MetricName(metric), f.sq8 ? "HNSW+SQ8" : "HNSW", Since(t));
  return 0;
}

int RunBuild(const BuildFlags& f) {
  auto metric = vector::ParseMetric(f.metric);
  if (!metric.ok()) {
    fmt::print(stderr, "cairn vector build: --metric: {}\n", Msg(metric.status()));
    return 2;
  }
  auto format = bench::ParseRecordFormat(f.format);
  if (!format.ok()) {
    fmt::print(stderr, "cairn vector build: --format: {}\n", Msg(format.status()));
    return 2;
  }
  std::error_code ec;
  const uint64_t input_bytes = std::filesystem::file_size(f.input, ec);
  const auto t0 = Clock::now();
  auto last = Clock::now();
  auto records = bench::ReadRecords(f.input, *format, [&](uint64_t bytes) {
    if (f.quiet || Since(last) < 1.0 || input_bytes == 0) return;
    last = Clock::now();
    fmt::print(stderr, "  reading {}: {:.0f}%\n", f.input, 100.0 * static_cast<double>(bytes) / input_bytes);
  });
  if (!records.ok()) {
    fmt::print(stderr, "cairn vector build: {}\n", Msg(records.status()));
    return 1;
  }
  if (!IsIndexFile(f.out)) return BuildCollection(f, *metric, *records);
  const size_t n = records->size(), dim = (*records)[0].vector.size();
  size_t with_extras = 0;
  std::vector<uint64_t> ids(n);
  std::vector<float> rows;
  rows.reserve(n * dim);
  for (size_t i = 0; i < n; ++i) {
    const auto& r = (*records)[i];
    ids[i] = r.id;
    rows.insert(rows.end(), r.vector.begin(), r.vector.end());
    if (!r.text.empty() || !r.attributes.empty()) ++with_extras;
  }
  records->clear();
  if (!f.quiet) {
    fmt::print(stderr, "read {} vectors of dimension {} in {:.1f} s; building HNSW (M={}, efc={}, {}, {} threads)\n",
               Thousands(n), dim, Since(t0), f.M, f.efc, f.sq8 ? "SQ8" : "float32", f.threads);
  }
  if (with_extras > 0) {
    fmt::print(stderr,
               "cairn vector build: note: {} records carry text or attributes; an index file keeps vectors "
               "and ids only (build into a directory for a collection that keeps them)\n",
               Thousands(with_extras));
  }
  vector::HnswOptions h;
  h.dim = dim;
  h.metric = *metric;
  h.M = f.M;
  h.ef_construction = f.efc;
  h.storage = f.sq8 ? vector::HnswStorage::kSq8 : vector::HnswStorage::kFloat32;
  h.initial_capacity = std::max<size_t>(n, 1);
  auto index = vector::HnswIndex::Create(h);
  if (!index.ok()) {
    fmt::print(stderr, "cairn vector build: {}\n", Msg(index.status()));
    return 2;
  }
  if (f.sq8) {
    const size_t sample = std::min<size_t>(n, 100'000);
    if (auto st = (*index)->Train(std::span<const float>(rows.data(), sample * dim)); !st.ok()) {
      fmt::print(stderr, "cairn vector build: {}\n", Msg(st));
      return 1;
    }
  }
  const auto t1 = Clock::now();
  const size_t chunk = std::max<size_t>(10'000, n / 20);
  for (size_t i = 0; i < n; i += chunk) {
    const size_t m = std::min(chunk, n - i);
    auto st = (*index)->AddBatch(std::span<const uint64_t>(ids.data() + i, m),
                                 std::span<const float>(rows.data() + i * dim, m * dim),
                                 static_cast<size_t>(f.threads));
    if (!st.ok()) {
      fmt::print(stderr, "cairn vector build: rows {}..{}: {}\n", i, i + m - 1, Msg(st));
      return 1;
    }
    if (!f.quiet && n > chunk) {
      fmt::print(stderr, "  inserted {} of {} ({:.0f}%), {:.1f} s\n", Thousands(i + m), Thousands(n),
                 100.0 * static_cast<double>(i + m) / n, Since(t1));
    }
  }
  if (auto st = (*index)->Save(f.out); !st.ok()) {
    fmt::print(stderr, "cairn vector build: {}\n", Msg(st));
    return 1;
  }
  fmt::print("built {}: {} vectors, dimension {}, {} metric, {} in {:.1f} s ({})\n", f.out, Thousands((*index)->size()),
             dim, vector::MetricName(*metric), f.sq8 ? "HNSW+SQ8" : "HNSW", Since(t1),
             HumanBytes(static_cast<double>(std::filesystem::file_size(f.out, ec))));
  return 0;
}

// ------------------------------------------------------------------------ search

struct SearchFlags {
  std::string index;
  std::string query;
  std::string query_file;
  size_t k = 10;
  size_t ef = 0;
  std::string filter;
  bool json = false;
};

absl::StatusOr<std::vector<std::vector<float>>> ReadQueries(const SearchFlags& f) {
  std::vector<std::vector<float>> out;
  if (!f.query.empty()) {
    auto v = bench::ParseVectorText(f.query);
    if (!v.ok()) return absl::InvalidArgumentError("--query: " + Msg(v.status()));
    out.push_back(std::move(*v));
    return out;
  }
  const std::string lower = [&] {
    std::string s = f.query_file;
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
  }();
  if (lower.ends_with(".fvecs") || lower.ends_with(".bvecs")) {
    auto set = bench::ReadVecs(f.query_file);
    if (!set.ok()) return set.status();
    for (size_t i = 0; i < set->n; ++i) out.emplace_back(set->row(i), set->row(i) + set->dim);
    return out;
  }
  std::ifstream in(f.query_file);
  if (!in) return absl::NotFoundError(fmt::format("cannot open '{}'", f.query_file));
  std::string line;
  size_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    auto v = bench::ParseVectorText(line);
    if (!v.ok()) {
      return absl::InvalidArgumentError(fmt::format("{}:{}: {}", std::filesystem::path(f.query_file).filename().string(),
                                                    line_no, Msg(v.status())));
    }
    out.push_back(std::move(*v));
  }
  if (out.empty()) return absl::InvalidArgumentError(fmt::format("'{}' holds no query vectors", f.query_file));
  return out;
}

int SearchCollection(const SearchFlags& f, const std::vector<std::vector<float>>& queries) {
  std::optional<vector::Predicate> filter;
  if (!f.filter.empty()) {
    auto p = vector::ParseFilter(std::string_view(f.filter));
    if (!p.ok()) {
      fmt::print(stderr, "cairn vector search: --filter: {}\n", Msg(p.status()));
      return 2;
    }
    filter = std::move(*p);
  }
  const auto t0 = Clock::now();
  auto col = vector::Collection::Open(f.index);
  if (!col.ok()) {
    fmt::print(stderr, "cairn vector search: {}\n", Msg(col.status()));
    return 1;
  }
  const double open_s = Since(t0);
  const auto& cs = (*col)->settings();
  nlohmann::json all = nlohmann::json::array();
  for (size_t qi = 0; qi < queries.size(); ++qi) {
    if (queries[qi].size() != cs.dim) {
      fmt::print(stderr, "cairn vector search: query {} has {} values; the index has dimension {}\n", qi + 1,
                 queries[qi].size(), cs.dim);
      return 1;
    }
    vector::SearchRequest req;
    req.vector = queries[qi];
    req.k = f.k;
    req.ef = f.ef;
    req.filter = filter;
    const auto t = Clock::now();
    auto hits = (*col)->Search(req);
    if (!hits.ok()) {
      fmt::print(stderr, "cairn vector search: query {}: {}\n", qi + 1, Msg(hits.status()));
      return 1;
    }
    const double us = Since(t) * 1e6;
    if (f.json) {
      nlohmann::json arr = nlohmann::json::array();
      for (const auto& h : *hits) {
        nlohmann::json e = {{"id", h.id}, {"distance", h.distance.value_or(0)}};
        if (h.text) e["text"] = *h.text;
        if (!h.attributes.empty()) e["attributes"] = vector::AttributesToJson(h.attributes);
        arr.push_back(e);
      }
      all.push_back({{"query", qi + 1}, {"microseconds", us}, {"results", arr}});
      continue;
    }
    if (queries.size() > 1) fmt::print("query {}\n", qi + 1);
    fmt::print("{:>4}  {:>12}  {:>12}  {}\n", "rank", "id", "distance", "text");
    for (size_t i = 0; i < hits->size(); ++i) {
      const auto& h = (*hits)[i];
      std::string text = h.text.value_or("");
      if (text.size() > 60) text = text.substr(0, 57) + "...";
      fmt::print("{:>4}  {:>12}  {:>12.6g}  {}\n", i + 1, h.id, h.distance.value_or(0), text);
    }
  }
  if (f.json) {
    fmt::print("{}\n", nlohmann::json({{"collection", cs.name},
                                       {"size", (*col)->Count()},
                                       {"dim", cs.dim},
                                       {"metric", std::string(vector::MetricName(cs.metric))},
                                       {"open_seconds", open_s},
                                       {"queries", all}})
                           .dump(2));
  }
  return 0;
}

int RunSearch(const SearchFlags& f) {
  if (f.query.empty() == f.query_file.empty()) {
    fmt::print(stderr, "cairn vector search: give exactly one of --query and --query-file\n");
    return 2;
  }
  std::error_code ec;
  const bool collection = std::filesystem::is_directory(f.index, ec);
  if (!f.filter.empty() && !collection) {
    fmt::print(stderr,
               "cairn vector search: --filter needs a collection directory (an index file holds no attributes)\n");
    return 2;
  }
  auto queries = ReadQueries(f);
  if (!queries.ok()) {
    fmt::print(stderr, "cairn vector search: {}\n", Msg(queries.status()));
    return 1;
  }
  if (collection) return SearchCollection(f, *queries);
  const auto t0 = Clock::now();
  auto index = vector::HnswIndex::Open(f.index);
  if (!index.ok()) {
    fmt::print(stderr, "cairn vector search: {}\n", Msg(index.status()));
    return 1;
  }
  const double open_s = Since(t0);
  nlohmann::json all = nlohmann::json::array();
  vector::SearchParams p;
  p.k = f.k;
  p.ef = f.ef;
  for (size_t qi = 0; qi < queries->size(); ++qi) {
    const auto& q = (*queries)[qi];
    if (q.size() != (*index)->dim()) {
      fmt::print(stderr, "cairn vector search: query {} has {} values; the index has dimension {}\n", qi + 1,
                 q.size(), (*index)->dim());
      return 1;
    }
    const auto t = Clock::now();
    auto r = (*index)->Search(q, p);
    if (!r.ok()) {
      fmt::print(stderr, "cairn vector search: query {}: {}\n", qi + 1, Msg(r.status()));
      return 1;
    }
    const double us = Since(t) * 1e6;
    if (f.json) {
      nlohmann::json hits = nlohmann::json::array();
      for (const auto& nb : *r) hits.push_back({{"id", nb.id}, {"distance", nb.distance}});
      all.push_back({{"query", qi + 1}, {"microseconds", us}, {"results", hits}});
      continue;
    }
    if (queries->size() > 1) fmt::print("query {}\n", qi + 1);
    fmt::print("{:>4}  {:>12}  {:>12}\n", "rank", "id", "distance");
    for (size_t i = 0; i < r->size(); ++i) fmt::print("{:>4}  {:>12}  {:>12.6g}\n", i + 1, (*r)[i].id, (*r)[i].distance);
  }
  if (f.json) {
    fmt::print("{}\n", nlohmann::json({{"index", f.index},
                                       {"size", (*index)->size()},
                                       {"dim", (*index)->dim()},
                                       {"metric", std::string(vector::MetricName((*index)->metric()))},
                                       {"open_seconds", open_s},
                                       {"queries", all}})
                           .dump(2));
  }
  return 0;
}

}  // namespace

void AddVectorBench(CLI::App* parent, const std::string& name, Runner* run) {
  auto f = std::make_shared<VectorBenchFlags>();
  CLI::App* b = parent->add_subcommand(
      name, "cairn HNSW (float, SQ8) vs hnswlib and FAISS on the same data: recall vs QPS, build, memory, load");
  b->add_option("--n", f->o.n, "Base vectors to generate (or to read from --base)")
      ->capture_default_str()
      ->check(CLI::Range(size_t{1}, size_t{1'000'000'000}));
  b->add_option("--dim", f->o.dim, "Dimension of generated vectors")
      ->capture_default_str()
      ->check(CLI::Range(size_t{1}, size_t{65536}));
  b->add_option("--metric", f->metric, "l2 or cosine (ip also accepted)")->capture_default_str();
  b->add_option("--queries", f->o.queries, "Queries (generated, or the first of --query)")
      ->capture_default_str()
      ->check(CLI::Range(size_t{1}, size_t{10'000'000}));
  b->add_option("--k", f->o.k, "Neighbours per query (recall@k)")
      ->capture_default_str()
      ->check(CLI::Range(size_t{1}, size_t{1000}));
  b->add_option("--ef", f->o.ef, "ef values of the recall/QPS sweep")
      ->delimiter(',')
      ->capture_default_str()
      ->check(CLI::Range(size_t{1}, size_t{100000}));
  b->add_option("--M", f->o.M, "HNSW links per node")->capture_default_str()->check(CLI::Range(size_t{2}, size_t{64}));
  b->add_option("--efc", f->o.ef_construction, "HNSW ef_construction")
      ->capture_default_str()
      ->check(CLI::Range(size_t{1}, size_t{10000}));
  b->add_option("--threads", f->o.threads, "Build threads, and concurrent searchers")
      ->capture_default_str()
      ->check(CLI::Range(1, 256));
  b->add_option("--seed", f->o.seed, "Generator seed")->capture_default_str();
  b->add_option("--clusters", f->o.generator.clusters, "Generator: cluster centres")->capture_default_str();
  b->add_option("--intrinsic-dim", f->o.generator.intrinsic_dim, "Generator: dimension of each cluster's subspace")
      ->capture_default_str();
  b->add_option("--base", f->o.base_file, "Base vectors (.fvecs/.bvecs) instead of generated ones");
  b->add_option("--query", f->o.query_file, "Query vectors (.fvecs/.bvecs), with --base");
  b->add_option("--gt", f->o.gt_file, "Ground truth (.ivecs) for --base/--query; computed and cached when absent");
  b->add_option("--cache-dir", f->o.cache_dir,
                "Ground-truth cache (default: next to --base, else ~/.cache/cairn/vector-bench)");
  b->add_option("--only", f->o.only, "Only these: cairn, cairn-sq8, hnswlib, faiss-hnsw, faiss-ivfpq")
      ->delimiter(',')
      ->check(CLI::IsMember({"cairn", "cairn-sq8", "hnswlib", "faiss-hnsw", "faiss-ivfpq"}));
  b->add_option("--filter-selectivity", f->o.filter_selectivity, "Filtered search: fraction allowed (0 = skip)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  b->add_option("--recall-target", f->o.recall_target, "Recall of the concurrent step and the summary")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  b->add_flag("--wall-clock", [f](int64_t) { f->o.cpu_clock = false; },
              "Single-thread QPS over wall time instead of the searching thread's CPU time");
  b->add_flag("--quiet", f->quiet, "No progress on stderr");
  AddJsonFlags(b, &f->json, &f->json_out);
  b->callback([=] {
    f->n_given = b->count("--n") > 0;
    *run = [=] { return RunVectorBenchCommand(*f); };
  });
}

void RegisterVector(CLI::App& app, Runner* run) {
  CLI::App* v = app.add_subcommand("vector", "Vector indexes: build from a file, search, benchmark");
  v->require_subcommand(1);

  auto bf = std::make_shared<BuildFlags>();
  CLI::App* b = v->add_subcommand("build", "Build a collection or an HNSW index file from .fvecs, .npy, CSV or JSON lines");
  b->add_option("--input", bf->input,
                "Vectors: .fvecs, .npy (float32, C order, 2-D), CSV (id,v1..vn) or JSON lines "
                "({\"id\":..,\"vector\":[..],\"text\":..,\"attributes\":{..}})")
      ->required();
  b->add_option("--format", bf->format, "auto (by extension), fvecs, npy, csv or jsonl")->capture_default_str();
  b->add_option("--out", bf->out,
                "A new collection directory, or FILE.hnsw for a bare index file (vectors and ids only)")
      ->required();
  b->add_option("--name", bf->name, "Collection name (default: from the directory name)");
  b->add_option("--metric", bf->metric, "l2, ip or cosine")->capture_default_str();
  b->add_option("--M", bf->M, "Links per node")->capture_default_str()->check(CLI::Range(size_t{2}, size_t{64}));
  b->add_option("--efc", bf->efc, "ef_construction")->capture_default_str()->check(CLI::Range(size_t{1}, size_t{10000}));
  b->add_flag("--sq8", bf->sq8, "Store SQ8 codes (1 byte per dimension) and re-rank on full vectors");
  b->add_option("--threads", bf->threads, "Insert threads")->capture_default_str()->check(CLI::Range(1, 256));
  b->add_flag("--quiet", bf->quiet, "No progress on stderr");
  b->callback([=] { *run = [=] { return RunBuild(*bf); }; });

  auto sf = std::make_shared<SearchFlags>();
  CLI::App* s = v->add_subcommand("search", "Nearest neighbours of one or more query vectors");
  s->add_option("--index", sf->index, "A collection directory or index file written by `cairn vector build`")
      ->required();
  s->add_option("--query", sf->query, "One query: \"v1,v2,...\"");
  s->add_option("--query-file", sf->query_file, "Queries: .fvecs, or one \"v1,v2,...\" per line");
  s->add_option("--k", sf->k, "Neighbours per query")->capture_default_str()->check(CLI::Range(size_t{1}, size_t{10000}));
  s->add_option("--ef", sf->ef, "HNSW ef (0 = the index default)")->capture_default_str();
  s->add_option("--filter", sf->filter,
                "JSON filter on attributes, e.g. '{\"field\":\"kind\",\"eq\":\"pump\"}' (collections only)");
  s->add_flag("--json", sf->json, "Print JSON instead of a table");
  s->callback([=] { *run = [=] { return RunSearch(*sf); }; });

  AddVectorBench(v, "bench", run);
}

}  // namespace cairn::cli
