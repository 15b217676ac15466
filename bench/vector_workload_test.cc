#include "bench/vector_workload.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>

#include <gtest/gtest.h>

#include "bench/vector_bench.h"

namespace cairn::bench {
namespace {

std::string TempDir(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() / ("cairn_vw_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

void WriteText(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

float L2(const float* a, const float* b, size_t d) {
  float s = 0;
  for (size_t i = 0; i < d; ++i) s += (a[i] - b[i]) * (a[i] - b[i]);
  return s;
}

TEST(VectorWorkloadTest, GeneratorIsDeterministicAndQueriesDiffer) {
  EmbeddingOptions o;
  o.dim = 32;
  o.clusters = 20;
  auto a = GenerateEmbeddings(o, 500, 0);
  auto b = GenerateEmbeddings(o, 500, 0);
  auto q = GenerateEmbeddings(o, 100, 1);
  EXPECT_EQ(a.data, b.data);
  ASSERT_EQ(a.n, 500u);
  ASSERT_EQ(a.dim, 32u);
  for (size_t i = 0; i < q.n; ++i) {
    for (size_t j = 0; j < a.n; ++j) ASSERT_GT(L2(q.row(i), a.row(j), 32), 0.0f);
  }
  o.seed = 43;
  EXPECT_NE(GenerateEmbeddings(o, 500, 0).data, a.data);
}

TEST(VectorWorkloadTest, GeneratorIsClusteredNotUniform) {
  EmbeddingOptions o;
  o.dim = 64;
  o.clusters = 10;
  auto s = GenerateEmbeddings(o, 2000, 0);
  // Nearest-neighbour distances are far below the typical pairwise distance.
  double nn = 0, pair = 0;
  for (size_t i = 0; i < 100; ++i) {
    float best = INFINITY;
    for (size_t j = 0; j < s.n; ++j) {
      if (j != i) best = std::min(best, L2(s.row(i), s.row(j), o.dim));
    }
    nn += best;
    pair += L2(s.row(i), s.row((i * 7919 + 13) % s.n), o.dim);
  }
  EXPECT_LT(nn, 0.25 * pair);
}

TEST(VectorWorkloadTest, NormalizedForCosine) {
  EmbeddingOptions o;
  o.dim = 16;
  o.normalize = true;
  auto s = GenerateEmbeddings(o, 50, 0);
  for (size_t i = 0; i < s.n; ++i) {
    double n = 0;
    for (size_t j = 0; j < s.dim; ++j) n += s.row(i)[j] * s.row(i)[j];
    EXPECT_NEAR(n, 1.0, 1e-5);
  }
}

TEST(VectorWorkloadTest, FvecsAndIvecsRoundTrip) {
  const std::string dir = TempDir("rt");
  EmbeddingOptions o;
  o.dim = 8;
  auto s = GenerateEmbeddings(o, 10, 0);
  ASSERT_TRUE(WriteFvecs(dir + "/a.fvecs", s).ok());
  auto r = ReadFvecs(dir + "/a.fvecs");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->n, 10u);
  EXPECT_EQ(r->dim, 8u);
  EXPECT_EQ(r->data, s.data);
  auto first = ReadFvecs(dir + "/a.fvecs", 3);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->n, 3u);
  std::vector<std::vector<uint32_t>> rows = {{1, 2, 3}, {4, 5, 6}};
  ASSERT_TRUE(WriteIvecs(dir + "/g.ivecs", rows).ok());
  auto g = ReadIvecs(dir + "/g.ivecs");
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(*g, rows);
  std::filesystem::remove_all(dir);
}

TEST(VectorWorkloadTest, MalformedVecsFilesGiveClearErrors) {
  const std::string dir = TempDir("bad");
  EmbeddingOptions o;
  o.dim = 4;
  auto s = GenerateEmbeddings(o, 3, 0);
  ASSERT_TRUE(WriteFvecs(dir + "/a.fvecs", s).ok());
  std::filesystem::resize_file(dir + "/a.fvecs", 3 * 20 - 6);
  auto r = ReadFvecs(dir + "/a.fvecs");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("row 2 is truncated"), std::string::npos) << r.status();

  WriteText(dir + "/empty.fvecs", "");
  EXPECT_NE(ReadFvecs(dir + "/empty.fvecs").status().message().find("is empty"), std::string::npos);

  // Second row declares another dimension.
  std::string bytes;
  auto put = [&](int32_t v) { bytes.append(reinterpret_cast<const char*>(&v), 4); };
  put(2), put(0), put(0), put(3), put(0), put(0), put(0);
  WriteText(dir + "/dim.fvecs", bytes);
  r = ReadFvecs(dir + "/dim.fvecs");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("row 1 has dimension 3, the rows before have 2"), std::string::npos)
      << r.status();
  WriteText(dir + "/text.fvecs", "hello world, not vectors");
  EXPECT_NE(ReadFvecs(dir + "/text.fvecs").status().message().find("declares dimension"), std::string::npos);
  EXPECT_EQ(ReadFvecs(dir + "/missing.fvecs").status().code(), absl::StatusCode::kNotFound);
  std::filesystem::remove_all(dir);
}

TEST(VectorWorkloadTest, BvecsAreWidened) {
  const std::string dir = TempDir("bvecs");
  std::string bytes;
  const int32_t d = 3;
  for (int r = 0; r < 2; ++r) {
    bytes.append(reinterpret_cast<const char*>(&d), 4);
    bytes.push_back(static_cast<char>(1 + r));
    bytes.push_back(static_cast<char>(200));
    bytes.push_back(0);
  }
  WriteText(dir + "/a.bvecs", bytes);
  auto r = ReadVecs(dir + "/a.bvecs");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->data, (std::vector<float>{1, 200, 0, 2, 200, 0}));
  std::filesystem::remove_all(dir);
}

TEST(VectorWorkloadTest, GroundTruthMatchesBruteForceAndFilter) {
  EmbeddingOptions o;
  o.dim = 24;
  o.clusters = 8;
  auto base = GenerateEmbeddings(o, 700, 0);
  auto q = GenerateEmbeddings(o, 20, 1);
  auto gt = ExactGroundTruth(base, q, vector::Metric::kL2, 5, 2);
  ASSERT_EQ(gt.size(), 20u);
  for (size_t i = 0; i < q.n; ++i) {
    std::vector<std::pair<float, uint32_t>> all;
    for (size_t j = 0; j < base.n; ++j) all.emplace_back(L2(q.row(i), base.row(j), o.dim), j);
    std::sort(all.begin(), all.end());
    ASSERT_EQ(gt[i].size(), 5u);
    for (size_t r = 0; r < 5; ++r) EXPECT_EQ(gt[i][r], all[r].second) << "query " << i << " rank " << r;
  }
  auto mask = AllowedMask(base.n, 0.1, 3);
  size_t allowed = 0;
  for (auto m : mask) allowed += m;
  EXPECT_GT(allowed, 40u);
  EXPECT_LT(allowed, 110u);
  auto fgt = ExactGroundTruth(base, q, vector::Metric::kL2, 5, 1, mask);
  for (const auto& row : fgt) {
    ASSERT_EQ(row.size(), 5u);
    for (uint32_t id : row) EXPECT_TRUE(mask[id]);
  }
}

TEST(VectorWorkloadTest, GroundTruthCacheIsReusedAndKeyedByContent) {
  const std::string dir = TempDir("cache");
  EmbeddingOptions o;
  o.dim = 8;
  auto base = GenerateEmbeddings(o, 200, 0);
  auto q = GenerateEmbeddings(o, 10, 1);
  bool cached = true;
  auto a = CachedGroundTruth(base, q, vector::Metric::kL2, 10, 1, dir, &cached);
  ASSERT_TRUE(a.ok());
  EXPECT_FALSE(cached);
  auto b = CachedGroundTruth(base, q, vector::Metric::kL2, 10, 1, dir, &cached);
  ASSERT_TRUE(b.ok());
  EXPECT_TRUE(cached);
  EXPECT_EQ(*a, *b);
  base.data[0] += 1;  // other data, other key
  EXPECT_NE(GroundTruthKey(base, q, vector::Metric::kL2, 10), GroundTruthKey(base, q, vector::Metric::kCosine, 10));
  (void)CachedGroundTruth(base, q, vector::Metric::kL2, 10, 1, dir, &cached);
  EXPECT_FALSE(cached);
  std::filesystem::remove_all(dir);
}

TEST(VectorWorkloadTest, Recall) {
  const std::vector<uint32_t> truth = {1, 2, 3, 4};
  const std::vector<uint64_t> found = {4, 9, 1, 7};
  EXPECT_DOUBLE_EQ(RecallAtK(found, truth, 4), 0.5);
  EXPECT_DOUBLE_EQ(RecallAtK(found, truth, 1), 0.0);
}

TEST(VectorWorkloadTest, ReadsCsvJsonLinesNpyAndFvecs) {
  const std::string dir = TempDir("records");
  WriteText(dir + "/a.csv", "id,x,y\n7,1.5,2\n\n8,-1,0.25\r\n");
  auto csv = ReadRecords(dir + "/a.csv", RecordFormat::kAuto);
  ASSERT_TRUE(csv.ok()) << csv.status();
  ASSERT_EQ(csv->size(), 2u);
  EXPECT_EQ((*csv)[1].id, 8u);
  EXPECT_EQ((*csv)[1].vector, (std::vector<float>{-1, 0.25f}));

  WriteText(dir + "/a.jsonl",
            "{\"id\": 1, \"vector\": [1, 2], \"text\": \"pump 7\", \"attributes\": {\"kind\": \"pump\"}}\n"
            "{\"id\": 2, \"vector\": [3, 4]}\n");
  auto jl = ReadRecords(dir + "/a.jsonl", RecordFormat::kAuto);
  ASSERT_TRUE(jl.ok()) << jl.status();
  ASSERT_EQ(jl->size(), 2u);
  EXPECT_EQ((*jl)[0].text, "pump 7");
  EXPECT_EQ((*jl)[0].attributes.at("kind"), "\"pump\"");

  // .npy v1.0, float32, shape (2, 3).
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
  while ((10 + header.size() + 1) % 64 != 0) header.push_back(' ');
  header.push_back('\n');
  std::string npy = std::string("\x93NUMPY\x01\x00", 8);
  npy.push_back(static_cast<char>(header.size() & 0xff));
  npy.push_back(static_cast<char>(header.size() >> 8));
  npy += header;
  const float vals[6] = {1, 2, 3, 4, 5, 6};
  npy.append(reinterpret_cast<const char*>(vals), sizeof(vals));
  WriteText(dir + "/a.npy", npy);
  auto np = ReadRecords(dir + "/a.npy", RecordFormat::kAuto);
  ASSERT_TRUE(np.ok()) << np.status();
  ASSERT_EQ(np->size(), 2u);
  EXPECT_EQ((*np)[1].vector, (std::vector<float>{4, 5, 6}));
  WriteText(dir + "/short.npy", npy.substr(0, npy.size() - 4));
  EXPECT_NE(ReadRecords(dir + "/short.npy", RecordFormat::kAuto).status().message().find("truncated"),
            std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST(VectorWorkloadTest, MalformedRecordsNameTheLine) {
  const std::string dir = TempDir("malformed");
  WriteText(dir + "/a.csv", "1,1,2\n2,1,x\n");
  auto r = ReadRecords(dir + "/a.csv", RecordFormat::kAuto);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("a.csv:2: column 3: 'x' is not a finite number"), std::string::npos)
      << r.status();
  WriteText(dir + "/b.csv", "1,1,2\n2,1,2\n3,1\n");
  r = ReadRecords(dir + "/b.csv", RecordFormat::kAuto);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("b.csv:3: has 1 values, expected 2"), std::string::npos) << r.status();
  WriteText(dir + "/c.jsonl", "{\"id\": 1, \"vector\": [1]}\n{\"id\": 2, \"vector\": [1\n");
  r = ReadRecords(dir + "/c.jsonl", RecordFormat::kAuto);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("c.jsonl:2: invalid JSON"), std::string::npos) << r.status();
  WriteText(dir + "/d.jsonl", "{\"id\": -1, \"vector\": [1]}\n");
  EXPECT_NE(ReadRecords(dir + "/d.jsonl", RecordFormat::kAuto).status().message().find("d.jsonl:1: \"id\""),
            std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST(VectorWorkloadTest, ParsesVectorText) {
  auto v = ParseVectorText("[0.5, -1,2e1]");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, (std::vector<float>{0.5f, -1, 20}));
  EXPECT_FALSE(ParseVectorText("1,,2").ok());
  EXPECT_FALSE(ParseVectorText("1,nan").ok());
}

TEST(VectorWorkloadTest, ParallelForVisitsEveryIndexOnce) {
  std::vector<std::atomic<int>> seen(1000);
  size_t last = 0;
  std::mutex mu;
  ParallelFor(1000, 3, [&](size_t i) { seen[i]++; }, [&](size_t done) {
    std::lock_guard<std::mutex> lock(mu);
    last = std::max(last, done);
  });
  for (auto& s : seen) EXPECT_EQ(s.load(), 1);
  EXPECT_EQ(last, 1000u);
}

}  // namespace
// `cairn vector bench` without the CLI binary: skipped unless CAIRN_VECTOR_BENCH_N is
// set; CAIRN_VECTOR_BENCH_ONLY (comma list), _QUERIES, _EF (comma list), _DIM, _THREADS, _EFC.
TEST(VectorBenchFromEnvironment, Run) {
  const char* n = std::getenv("CAIRN_VECTOR_BENCH_N");
  if (n == nullptr) GTEST_SKIP() << "set CAIRN_VECTOR_BENCH_N to run";
  auto list = [](const char* v) {
    std::vector<std::string> out;
    std::string cur;
    for (const char* p = v; ; ++p) {
      if (*p == ',' || *p == 0) {
        if (!cur.empty()) out.push_back(cur);
        cur.clear();
        if (*p == 0) break;
      } else {
        cur.push_back(*p);
      }
    }
    return out;
  };
  VectorBenchOptions o;
  o.n = static_cast<size_t>(std::atoll(n));
  if (const char* v = std::getenv("CAIRN_VECTOR_BENCH_DIM")) o.dim = static_cast<size_t>(std::atoll(v));
  if (const char* v = std::getenv("CAIRN_VECTOR_BENCH_QUERIES")) o.queries = static_cast<size_t>(std::atoll(v));
  if (const char* v = std::getenv("CAIRN_VECTOR_BENCH_THREADS")) o.threads = std::atoi(v);
  if (const char* v = std::getenv("CAIRN_VECTOR_BENCH_EFC")) o.ef_construction = static_cast<size_t>(std::atoll(v));
  if (const char* v = std::getenv("CAIRN_VECTOR_BENCH_ONLY")) o.only = list(v);
  if (const char* v = std::getenv("CAIRN_VECTOR_BENCH_EF")) {
    o.ef.clear();
    for (const auto& e : list(v)) o.ef.push_back(static_cast<size_t>(std::atoll(e.c_str())));
  }
  auto report = RunVectorBench(o);
  ASSERT_TRUE(report.ok()) << report.status();
  std::printf("%s\n", FormatVectorBench(o, *report).c_str());
}

}  // namespace cairn::bench
