#include "cairn/vector/collection.h"

#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "cairn/base/random.h"
#include "cairn/vector/wal.h"

namespace cairn::vector {
namespace {

namespace fs = std::filesystem;

struct TempDir {
  TempDir() {
    // A parameterized test's name has a '/' ("Name/0"): one directory level, not two.
    std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::replace(name.begin(), name.end(), '/', '_');
    path = fs::temp_directory_path() / ("cairn_coll_" + std::to_string(::getpid()) + "_" + name);
    fs::remove_all(path);
  }
  ~TempDir() { fs::remove_all(path); }
  std::string str() const { return path.string(); }
  fs::path path;
};

CollectionSettings Settings(IndexKind kind = IndexKind::kFlat, size_t dim = 8, Metric metric = Metric::kL2) {
  CollectionSettings s;
  s.name = "docs";
  s.dim = dim;
  s.metric = metric;
  s.index = kind;
  s.embedder = "none";
  return s;
}

std::vector<float> RandomVector(SplitMix64& rng, size_t dim) {
  std::vector<float> v(dim);
  for (float& x : v) x = static_cast<float>(rng.Next() % 2001) / 1000.0f - 1.0f;
  return v;
}

std::vector<Point> RandomPoints(uint64_t first_id, size_t n, size_t dim, uint64_t seed) {
  SplitMix64 rng(seed);
  std::vector<Point> pts(n);
  for (size_t i = 0; i < n; ++i) {
    pts[i].id = first_id + i;
    pts[i].vector = RandomVector(rng, dim);
    pts[i].attributes = {{"bucket", static_cast<int64_t>((first_id + i) % 10)},
                         {"kind", std::string((first_id + i) % 2 ? "pump" : "valve")}};
    if (i % 3 == 0) pts[i].text = "note " + std::to_string(first_id + i) + " about bearings";
  }
  return pts;
}

Predicate Filter(std::string_view json) { return *ParseFilter(json); }

TEST(CollectionSettingsTest, ValidationAndJson) {
  CollectionSettings s = Settings(IndexKind::kHnsw);
  EXPECT_TRUE(s.Validate().ok());
  auto back = SettingsFromJson(SettingsToJson(s));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->name, "docs");
  EXPECT_EQ(back->index, IndexKind::kHnsw);
  EXPECT_EQ(back->embedder, "none");
  s.name = "bad/name";
  EXPECT_FALSE(s.Validate().ok());
  s.name = "ok";
  s.dim = 0;
  EXPECT_FALSE(s.Validate().ok());
  EXPECT_FALSE(SettingsFromJson(R"({"name":"a","dim":4,"colour":1})").ok());
  EXPECT_FALSE(SettingsFromJson(R"({"name":"a"})").ok());
  EXPECT_FALSE(SettingsFromJson(R"({"name":"a","dim":4,"metric":"manhattan"})").ok());
  auto d = SettingsFromJson(R"({"name":"a","dim":4})");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->metric, Metric::kCosine);
  EXPECT_EQ(d->embedder, "hash");
}

TEST(CollectionBasic, UpsertGetSearchDelete) {
  TempDir dir;
  auto c = Collection::Create(dir.str(), Settings());
  ASSERT_TRUE(c.ok()) << c.status();
  auto pts = RandomPoints(1, 200, 8, 1);
  ASSERT_TRUE((*c)->Upsert(pts).ok());
  EXPECT_EQ((*c)->Count(), 200u);
  auto p = (*c)->Get(4);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->vector, pts[3].vector);
  EXPECT_EQ(p->text, pts[3].text);
  EXPECT_EQ(std::get<int64_t>(p->attributes.at("bucket")), 4);

  SearchRequest req;
  req.vector = pts[10].vector;
  req.k = 5;
  auto hits = (*c)->Search(req);
  ASSERT_TRUE(hits.ok()) << hits.status();
  ASSERT_EQ(hits->size(), 5u);
  EXPECT_EQ((*hits)[0].id, 11u);
  EXPECT_FLOAT_EQ(*(*hits)[0].distance, 0.0f);

  req.filter = Filter(R"({"and":[{"field":"bucket","eq":3},{"field":"kind","eq":"pump"}]})");
  hits = (*c)->Search(req);
  ASSERT_TRUE(hits.ok());
  EXPECT_EQ(hits->size(), 5u);
  for (const auto& h : *hits) {
    EXPECT_EQ(h.id % 10, 3u);
    EXPECT_EQ(std::get<std::string>(h.attributes.at("kind")), "pump");
  }

  ASSERT_TRUE((*c)->Delete(11).ok());
  EXPECT_TRUE(absl::IsNotFound((*c)->Get(11).status()));
  EXPECT_TRUE(absl::IsNotFound((*c)->Delete(11)));
  req.filter.reset();
  hits = (*c)->Search(req);
  for (const auto& h : *hits) EXPECT_NE(h.id, 11u);
  EXPECT_EQ((*c)->Count(), 199u);
}

TEST(CollectionBasic, FailedBatchLeavesNothingBehind) {
  TempDir dir;
  auto c = Collection::Create(dir.str(), Settings(IndexKind::kFlat, 8, Metric::kCosine));
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE((*c)->Upsert(RandomPoints(1, 10, 8, 2)).ok());
  const auto wal_size = fs::file_size(dir.path / "wal.log");
  auto bad = RandomPoints(100, 10, 8, 3);
  bad[7].vector.pop_back();
  auto st = (*c)->Upsert(bad);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("point 7 (id 107): vector has 7 values; collection 'docs' has dimension 8"),
            std::string::npos)
      << st;
  bad = RandomPoints(100, 10, 8, 3);
  bad[2].vector.assign(8, 0.0f);
  EXPECT_NE((*c)->Upsert(bad).message().find("zero vector"), std::string::npos);
  bad = RandomPoints(100, 10, 8, 3);
  bad[4].id = bad[1].id;
  EXPECT_NE((*c)->Upsert(bad).message().find("twice"), std::string::npos);
  bad = RandomPoints(100, 10, 8, 3);
  bad[5].vector.clear();
  bad[5].text = "text but no embedder";
  EXPECT_NE((*c)->Upsert(bad).message().find("no embedder"), std::string::npos);
  bad = RandomPoints(100, 10, 8, 3);
  bad[9].attributes["bad name!"] = int64_t{1};
  EXPECT_FALSE((*c)->Upsert(bad).ok());
  std::vector<uint64_t> del = {1, 2, 999};
  EXPECT_TRUE(absl::IsNotFound((*c)->Delete(del)));
  EXPECT_EQ((*c)->Count(), 10u);
  EXPECT_TRUE((*c)->Get(1).ok());
  EXPECT_EQ(fs::file_size(dir.path / "wal.log"), wal_size);
  c->reset();
  auto again = Collection::Open(dir.str());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again)->Count(), 10u);
  EXPECT_TRUE(absl::IsNotFound((*again)->Get(100).status()));
}

// Vectors, attributes and texts after a mix of snapshot and WAL replay.
void ExpectSameContents(const Collection& a, const Collection& b, uint64_t max_id) {
  EXPECT_EQ(a.Count(), b.Count());
  for (uint64_t id = 0; id <= max_id; ++id) {
    auto pa = a.Get(id);
    auto pb = b.Get(id);
    ASSERT_EQ(pa.ok(), pb.ok()) << id;
    if (!pa.ok()) continue;
    EXPECT_EQ(pa->vector, pb->vector) << id;
    EXPECT_EQ(pa->attributes, pb->attributes) << id;
    EXPECT_EQ(pa->text, pb->text) << id;
  }
}

class CollectionPersist : public ::testing::TestWithParam<IndexKind> {};

TEST_P(CollectionPersist, RoundTripThroughSnapshotAndWal) {
  TempDir dir;
  auto c = Collection::Create(dir.str(), Settings(GetParam(), 16, Metric::kCosine));
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_TRUE((*c)->Upsert(RandomPoints(0, 600, 16, 4)).ok());
  ASSERT_TRUE((*c)->Snapshot().ok());
  EXPECT_EQ(fs::file_size(dir.path / "wal.log"), 0u);
  ASSERT_TRUE((*c)->Upsert(RandomPoints(500, 200, 16, 5)).ok());  // overwrites 500..599
  std::vector<uint64_t> del = {3, 7, 650};
  ASSERT_TRUE((*c)->Delete(del).ok());
  auto reopened = Collection::Open(dir.str());
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  EXPECT_EQ((*reopened)->open_stats().replayed_records, 2u);
  ExpectSameContents(**c, **reopened, 800);
  SearchRequest req;
  req.vector = RandomPoints(500, 200, 16, 5)[55].vector;  // point 555's vector
  req.k = 3;
  auto hits = (*reopened)->Search(req);
  ASSERT_TRUE(hits.ok());
  EXPECT_EQ((*hits)[0].id, 555u);
  // And once more after a second snapshot of the reopened collection.
  ASSERT_TRUE((*reopened)->Snapshot().ok());
  auto third = Collection::Open(dir.str());
  ASSERT_TRUE(third.ok()) << third.status();
  EXPECT_EQ((*third)->open_stats().replayed_records, 0u);
  ExpectSameContents(**c, **third, 800);
}

// A collection opened from a snapshot (flat: rows used in place from the mapping) and
// then changed: replaced, new and deleted points (the first and the last snapshot rows
// among them) survive a reopen, both from the WAL and from a second snapshot; the
// first snapshot file is never written through (its checksum still holds on reopen).
TEST_P(CollectionPersist, ChangesAfterOpeningFromASnapshotPersist) {
  TempDir dir;
  const size_t dim = 8;
  std::map<uint64_t, std::vector<float>> expected;
  SplitMix64 rng(11);
  auto make = [&](std::vector<uint64_t> ids) {
    std::vector<Point> pts;
    for (uint64_t id : ids) {
      pts.push_back({.id = id, .vector = RandomVector(rng, dim), .attributes = {{"id", static_cast<int64_t>(id)}}, .text = {}});
      expected[id] = pts.back().vector;
    }
    return pts;
  };
  auto remove = [&](Collection& c, std::vector<uint64_t> ids) {
    ASSERT_TRUE(c.Delete(ids).ok());
    for (uint64_t id : ids) expected.erase(id);
  };
  auto check = [&](const Collection& c) {
    EXPECT_EQ(c.Count(), expected.size());
    for (uint64_t id = 0; id <= 1000; ++id) {
      auto p = c.Get(id);
      auto it = expected.find(id);
      ASSERT_EQ(p.ok(), it != expected.end()) << id;
      if (!p.ok()) continue;
      EXPECT_EQ(p->vector, it->second) << id;
      EXPECT_EQ(std::get<int64_t>(p->attributes.at("id")), static_cast<int64_t>(id));
    }
    for (uint64_t id : {uint64_t{1}, uint64_t{150}, uint64_t{1000}}) {
      if (!expected.contains(id)) continue;
      SearchRequest req;
      req.vector = expected[id];
      req.k = 1;
      req.ef = 200;
      auto hits = c.Search(req);
      ASSERT_TRUE(hits.ok());
      ASSERT_EQ(hits->size(), 1u);
      EXPECT_EQ((*hits)[0].id, id);
    }
  };
  {
    std::vector<uint64_t> ids;
    for (uint64_t i = 0; i < 300; ++i) ids.push_back(3 * i);
    auto c = Collection::Create(dir.str(), Settings(GetParam(), dim));
    ASSERT_TRUE(c.ok()) << c.status();
    ASSERT_TRUE((*c)->Upsert(make(ids)).ok());
    ASSERT_TRUE((*c)->Snapshot().ok());
  }
  {
    auto c = Collection::Open(dir.str());
    ASSERT_TRUE(c.ok()) << c.status();
    ASSERT_TRUE((*c)->Upsert(make({0, 150, 897, 1, 1000})).ok());  // replace 0, 150, 897; add 1, 1000
    remove(**c, {3, 897, 450});
    ASSERT_TRUE((*c)->Upsert(make({3, 894})).ok());                // 3 again; replace 894
    check(**c);
  }
  {
    auto c = Collection::Open(dir.str());  // the snapshot plus the WAL
    ASSERT_TRUE(c.ok()) << c.status();
    EXPECT_EQ((*c)->open_stats().replayed_records, 3u);
    check(**c);
    ASSERT_TRUE((*c)->Snapshot().ok());
    remove(**c, {0, 6, 1000});
    ASSERT_TRUE((*c)->Upsert(make({2, 9})).ok());
    check(**c);
  }
  auto c = Collection::Open(dir.str());  // the second snapshot plus the WAL
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ((*c)->open_stats().replayed_records, 2u);
  check(**c);
}

INSTANTIATE_TEST_SUITE_P(Kinds, CollectionPersist, ::testing::Values(IndexKind::kFlat, IndexKind::kHnsw, IndexKind::kHnswSq8),
                         [](const auto& info) { return std::string(IndexKindName(info.param)); });

TEST(CollectionPersistence, AutomaticSnapshotAfterWalBytes) {
  TempDir dir;
  CollectionOptions opts;
  opts.snapshot_wal_bytes = 4096;
  auto c = Collection::Create(dir.str(), Settings(), opts);
  ASSERT_TRUE(c.ok());
  for (uint64_t b = 0; b < 20; ++b) ASSERT_TRUE((*c)->Upsert(RandomPoints(b * 10, 10, 8, b)).ok());
  EXPECT_TRUE(fs::exists(dir.path / "points.snap"));
  EXPECT_LT(fs::file_size(dir.path / "wal.log"), 4096u);
  auto reopened = Collection::Open(dir.str(), opts);
  ASSERT_TRUE(reopened.ok());
  EXPECT_GT((*reopened)->open_stats().snapshot_seq, 0u);
  ExpectSameContents(**c, **reopened, 200);
}

// text.db behind the WAL (a crash between the WAL append and the SQLite commit, or a
// lost text.db): reopening replays the missing batches into it.
TEST(CollectionPersistence, TextIndexCatchesUpFromTheWal) {
  TempDir dir;
  {
    auto c = Collection::Create(dir.str(), Settings());
    ASSERT_TRUE(c.ok());
    ASSERT_TRUE((*c)->Upsert(RandomPoints(0, 30, 8, 1)).ok());
    ASSERT_TRUE((*c)->Delete(3).ok());
  }
  for (const char* f : {"text.db", "text.db-wal", "text.db-shm"}) fs::remove(dir.path / f);
  auto c = Collection::Open(dir.str());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(*(*c)->Get(6)->text, "note 6 about bearings");
  SearchRequest req;
  req.text = "bearings";
  req.k = 20;
  auto hits = (*c)->Search(req);
  ASSERT_TRUE(hits.ok());
  EXPECT_EQ(hits->size(), 9u);  // ids 0, 6, 9, ..., 27 (3 was deleted)
}

TEST(CollectionPersistence, TornTailIsTruncated) {
  TempDir dir;
  {
    auto c = Collection::Create(dir.str(), Settings());
    ASSERT_TRUE(c.ok());
    ASSERT_TRUE((*c)->Upsert(RandomPoints(0, 10, 8, 1)).ok());
    ASSERT_TRUE((*c)->Upsert(RandomPoints(10, 10, 8, 2)).ok());
  }
  // A third batch whose record was only partly written when the process died.
  std::string rec = EncodeWalRecord(3, std::vector<WalOp>{{WalOp::Kind::kDelete, 0, {}, {}, {}}});
  {
    std::ofstream f(dir.path / "wal.log", std::ios::app | std::ios::binary);
    f.write(rec.data(), static_cast<std::streamsize>(rec.size() - 5));
  }
  const auto size_with_tail = fs::file_size(dir.path / "wal.log");
  auto c = Collection::Open(dir.str());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ((*c)->open_stats().truncated_bytes, rec.size() - 5);
  EXPECT_EQ(fs::file_size(dir.path / "wal.log"), size_with_tail - (rec.size() - 5));
  EXPECT_EQ((*c)->Count(), 20u);
  EXPECT_TRUE((*c)->Get(0).ok());
  // The log keeps working after the cut.
  ASSERT_TRUE((*c)->Delete(0).ok());
  c->reset();
  auto again = Collection::Open(dir.str());
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ((*again)->Count(), 19u);
}

TEST(CollectionPersistence, CorruptFilesAreClearErrors) {
  TempDir dir;
  {
    auto c = Collection::Create(dir.str(), Settings());
    ASSERT_TRUE(c.ok());
    ASSERT_TRUE((*c)->Upsert(RandomPoints(0, 50, 8, 1)).ok());
    ASSERT_TRUE((*c)->Snapshot().ok());
    ASSERT_TRUE((*c)->Upsert(RandomPoints(50, 10, 8, 2)).ok());
    ASSERT_TRUE((*c)->Upsert(RandomPoints(60, 10, 8, 3)).ok());
  }
  const fs::path wal = dir.path / "wal.log";
  const fs::path snap = dir.path / "points.snap";
  std::string wal_bytes = *ReadWholeFile(wal.string());
  std::string snap_bytes = *ReadWholeFile(snap.string());
  auto write = [](const fs::path& p, const std::string& b) {
    std::ofstream(p, std::ios::binary | std::ios::trunc).write(b.data(), static_cast<std::streamsize>(b.size()));
  };
  std::string bad = wal_bytes;
  bad[30] ^= 0x40;  // first record, with a second after it
  write(wal, bad);
  auto c = Collection::Open(dir.str());
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(c.status().message().find(wal.string()), std::string::npos) << c.status();
  EXPECT_NE(c.status().message().find("offset 0"), std::string::npos) << c.status();
  write(wal, wal_bytes);

  bad = snap_bytes;
  bad[bad.size() / 2] ^= 0x01;
  write(snap, bad);
  c = Collection::Open(dir.str());
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find(snap.string()), std::string::npos) << c.status();
  EXPECT_NE(c.status().message().find("checksum"), std::string::npos) << c.status();
  write(snap, snap_bytes.substr(0, snap_bytes.size() - 3));
  c = Collection::Open(dir.str());
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find(snap.string()), std::string::npos) << c.status();
  write(snap, snap_bytes);
  c = Collection::Open(dir.str());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ((*c)->Count(), 70u);
}

TEST(CollectionHybrid, KeywordMatchMissedByVectorsIsFoundByHybrid) {
  TempDir dir;
  auto c = Collection::Create(dir.str(), Settings(IndexKind::kFlat, 8, Metric::kL2));
  ASSERT_TRUE(c.ok());
  auto pts = RandomPoints(0, 300, 8, 9);
  for (auto& p : pts) p.text = "routine inspection log entry";
  pts[137].text = "ZX-42 seal leak detected during routine inspection";
  ASSERT_TRUE((*c)->Upsert(pts).ok());
  SearchRequest req;
  req.vector = pts[0].vector;  // far from point 137 in vector space
  req.k = 5;
  auto vec_only = (*c)->Search(req);
  ASSERT_TRUE(vec_only.ok());
  for (const auto& h : *vec_only) ASSERT_NE(h.id, 137u);
  req.text = "ZX-42 leak";
  auto hybrid = (*c)->Search(req);
  ASSERT_TRUE(hybrid.ok()) << hybrid.status();
  bool found = false;
  for (const auto& h : *hybrid) {
    if (h.id == 137) {
      found = true;
      EXPECT_TRUE(h.bm25.has_value());
      EXPECT_EQ(*h.text, *pts[137].text);
    }
  }
  EXPECT_TRUE(found);
  EXPECT_EQ((*hybrid)[0].id, 0u);  // found by both sides: vector rank 1 plus a BM25 rank
  // Text weight only.
  req.vector_weight = 0;
  auto text_only = (*c)->Search(req);
  ASSERT_TRUE(text_only.ok());
  ASSERT_FALSE(text_only->empty());
  EXPECT_EQ((*text_only)[0].id, 137u);
  EXPECT_FALSE((*text_only)[0].distance.has_value());
  // Filters apply to the text side too.
  req.filter = Filter(R"({"field":"kind","eq":"valve"})");  // 137 is a pump
  text_only = (*c)->Search(req);
  ASSERT_TRUE(text_only.ok());
  for (const auto& h : *text_only) EXPECT_NE(h.id, 137u);
}

TEST(CollectionHybrid, DefaultEmbedderMakesTextSearchWorkOutOfTheBox) {
  TempDir dir;
  CollectionSettings s = Settings(IndexKind::kHnsw, 128, Metric::kCosine);
  s.embedder = "hash";
  auto c = Collection::Create(dir.str(), s);
  ASSERT_TRUE(c.ok());
  const char* docs[] = {"hydraulic pump on press 7 overheating", "conveyor belt slipping at station 3",
                        "quarterly invoice sent to customer", "press 7 pump temperature alarm",
                        "new badge readers installed at the gate"};
  std::vector<Point> pts;
  for (uint64_t i = 0; i < 5; ++i) pts.push_back({.id = i, .vector = {}, .attributes = {}, .text = docs[i]});
  ASSERT_TRUE((*c)->Upsert(pts).ok());
  SearchRequest req;
  req.text = "pump overheated on press 7";
  req.k = 2;
  auto hits = (*c)->Search(req);
  ASSERT_TRUE(hits.ok()) << hits.status();
  ASSERT_EQ(hits->size(), 2u);
  std::set<uint64_t> top = {(*hits)[0].id, (*hits)[1].id};
  EXPECT_EQ(top, (std::set<uint64_t>{0, 3}));
  req.text_weight = 0;  // embedded text only
  hits = (*c)->Search(req);
  ASSERT_TRUE(hits.ok());
  EXPECT_EQ((*hits)[0].id, 0u);
  EXPECT_TRUE((*hits)[0].distance.has_value());
}

TEST(CollectionStoreTest, CreateListGetDropReopen) {
  TempDir dir;
  {
    auto store = CollectionStore::Open(dir.str());
    ASSERT_TRUE(store.ok()) << store.status();
    CollectionSettings a = Settings();
    a.name = "alpha";
    CollectionSettings b = Settings(IndexKind::kHnsw, 4);
    b.name = "beta";
    ASSERT_TRUE((*store)->Create(b).ok());
    auto ca = (*store)->Create(a);
    ASSERT_TRUE(ca.ok());
    EXPECT_TRUE(absl::IsAlreadyExists((*store)->Create(a).status()));
    a.name = "../evil";
    EXPECT_TRUE(absl::IsInvalidArgument((*store)->Create(a).status()));
    ASSERT_TRUE((*ca)->Upsert(RandomPoints(0, 5, 8, 1)).ok());
    auto list = (*store)->List();
    ASSERT_EQ(list.size(), 2u);
    EXPECT_EQ(list[0].name, "alpha");
    EXPECT_EQ(list[1].name, "beta");
    ASSERT_TRUE((*store)->Drop("beta").ok());
    EXPECT_TRUE(absl::IsNotFound((*store)->Get("beta").status()));
    EXPECT_TRUE(absl::IsNotFound((*store)->Drop("beta")));
    EXPECT_FALSE(fs::exists(dir.path / "beta"));
  }
  auto store = CollectionStore::Open(dir.str());
  ASSERT_TRUE(store.ok());
  auto alpha = (*store)->Get("alpha");
  ASSERT_TRUE(alpha.ok());
  EXPECT_EQ((*alpha)->Count(), 5u);
  EXPECT_EQ((*store)->List().size(), 1u);
  // A dropped collection refuses writes held through an old pointer.
  ASSERT_TRUE((*store)->Drop("alpha").ok());
  EXPECT_EQ((*alpha)->Upsert(RandomPoints(9, 1, 8, 1)).code(), absl::StatusCode::kFailedPrecondition);
}

// Searches (vector, text, filtered) run while another thread upserts and deletes; every
// search sees whole batches (a filter never lets through a point of the wrong bucket).
TEST(CollectionConcurrency, SearchesDuringWrites) {
  TempDir dir;
  auto c = Collection::Create(dir.str(), Settings(IndexKind::kHnsw, 8));
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE((*c)->Upsert(RandomPoints(0, 200, 8, 1)).ok());
  std::atomic<bool> stop{false};
  std::atomic<int> errors{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 2; ++t) {
    readers.emplace_back([&, t] {
      SplitMix64 rng(100 + t);
      while (!stop.load()) {
        SearchRequest req;
        req.vector = RandomVector(rng, 8);
        req.k = 10;
        if (rng.Next() % 2) req.text = "bearings";
        req.filter = Filter(R"({"field":"bucket","eq":4})");
        auto hits = (*c)->Search(req);
        if (!hits.ok()) {
          ++errors;
          continue;
        }
        for (const auto& h : *hits) {
          if (std::get<int64_t>(h.attributes.at("bucket")) != 4) ++errors;
        }
      }
    });
  }
  for (uint64_t b = 0; b < 30; ++b) {
    ASSERT_TRUE((*c)->Upsert(RandomPoints(200 + b * 10, 10, 8, b)).ok());
    ASSERT_TRUE((*c)->Delete(b).ok());
  }
  stop = true;
  for (auto& r : readers) r.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ((*c)->Count(), 200u + 300u - 30u);
}

// kill -9 of a writer: every batch it acknowledged (Upsert returned OK and it said so
// through the pipe) is there after reopening.
TEST(CollectionCrash, AcknowledgedUpsertsSurviveKill9) {
  TempDir dir;
  {
    auto c = Collection::Create(dir.str(), Settings(IndexKind::kHnsw, 8));
    ASSERT_TRUE(c.ok());
  }
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::close(fds[0]);
    CollectionOptions opts;
    opts.snapshot_wal_bytes = 64 << 10;  // snapshots happen while the parent may kill us
    auto c = Collection::Open(dir.str(), opts);
    if (!c.ok()) ::_exit(2);
    for (uint64_t b = 0;; ++b) {
      auto pts = RandomPoints(b * 8, 8, 8, b);
      if (!(*c)->Upsert(pts).ok()) ::_exit(3);
      uint64_t acked = b;
      if (::write(fds[1], &acked, sizeof(acked)) != sizeof(acked)) ::_exit(4);
    }
  }
  ::close(fds[1]);
  uint64_t last = 0, got = 0, acked;
  while (got < 150 && ::read(fds[0], &acked, sizeof(acked)) == sizeof(acked)) {
    last = acked;
    ++got;
  }
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ::close(fds[0]);
  ASSERT_EQ(got, 150u) << "child exited early with status " << status;
  EXPECT_TRUE(WIFSIGNALED(status));
  auto c = Collection::Open(dir.str());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_GE((*c)->Count(), (last + 1) * 8);
  for (uint64_t id = 0; id < (last + 1) * 8; ++id) {
    auto p = (*c)->Get(id);
    ASSERT_TRUE(p.ok()) << "acknowledged id " << id << " lost";
    if (id % 8 % 3 == 0) {
      EXPECT_TRUE(p->text.has_value()) << id;
    }
  }
}

// Open time from a snapshot (a proxy for the 1 M target; CAIRN_VECTOR_OPEN_N and
// CAIRN_VECTOR_OPEN_KIND=flat|hnsw|hnsw_sq8 measure bigger ones).
// CPU time (user + system) of every thread of the process, or of the calling thread.
double ProcessCpuSeconds(int who = RUSAGE_SELF) {
  struct rusage ru;
  ::getrusage(who, &ru);
  auto sec = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) * 1e-6; };
  return sec(ru.ru_utime) + sec(ru.ru_stime);
}

TEST(CollectionOpen, SnapshotOpenTime) {
  // CAIRN_VECTOR_OPEN_N points (default 20000) of kind CAIRN_VECTOR_OPEN_KIND (default
  // flat); CAIRN_VECTOR_OPEN_DIR keeps the collection there and reuses it when present
  // (a large HNSW collection takes minutes to build); CAIRN_VECTOR_OPEN_REPEAT opens
  // it that many times and reports the median.
  const char* env = std::getenv("CAIRN_VECTOR_OPEN_N");
  const char* kind_env = std::getenv("CAIRN_VECTOR_OPEN_KIND");
  const char* dir_env = std::getenv("CAIRN_VECTOR_OPEN_DIR");
  const char* repeat_env = std::getenv("CAIRN_VECTOR_OPEN_REPEAT");
  const size_t n = env ? static_cast<size_t>(std::atoll(env)) : 20000;
  const IndexKind kind = kind_env ? *ParseIndexKind(kind_env) : IndexKind::kFlat;
  const size_t repeat = repeat_env ? std::max<size_t>(1, static_cast<size_t>(std::atoll(repeat_env))) : 1;
  const size_t dim = 128;
  TempDir tmp;
  const std::string dir = dir_env ? std::string(dir_env) : tmp.str();
  CollectionOptions opts;
  opts.fsync = FsyncPolicy::kNever;
  opts.snapshot_wal_bytes = ~0ull;
  const size_t batch = 1000;
  double upsert_s = 0, snapshot_s = 0;
  if (!fs::exists(dir)) {
    auto c = Collection::Create(dir, Settings(kind, dim), opts);
    ASSERT_TRUE(c.ok());
    SplitMix64 rng(5);
    auto t0 = std::chrono::steady_clock::now();
    for (size_t b = 0; b < n; b += batch) {
      std::vector<Point> pts;
      for (size_t i = b; i < std::min(n, b + batch); ++i) {
        pts.push_back({.id = i, .vector = RandomVector(rng, dim), .attributes = {{"bucket", static_cast<int64_t>(i % 100)}}, .text = {}});
      }
      ASSERT_TRUE((*c)->Upsert(pts).ok());
    }
    upsert_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    t0 = std::chrono::steady_clock::now();
    ASSERT_TRUE((*c)->Snapshot().ok());
    snapshot_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  std::vector<double> times;
  for (size_t r = 0; r < repeat; ++r) {
    const double cpu0 = ProcessCpuSeconds(), main0 = ProcessCpuSeconds(RUSAGE_THREAD);
    auto reopened = Collection::Open(dir, opts);
    const double cpu = ProcessCpuSeconds() - cpu0, main_cpu = ProcessCpuSeconds(RUSAGE_THREAD) - main0;
    ASSERT_TRUE(reopened.ok()) << reopened.status();
    EXPECT_EQ((*reopened)->Count(), n);
    const auto& st = (*reopened)->open_stats();
    times.push_back(st.seconds);
    std::printf("[ open ] %zu x %zu %s: upsert %.0f points/s (fsync never, batches of %zu), snapshot %.3f s, "
                "open %.3f s (snapshot %.3f, index %.3f, attributes %.3f, wal %.3f), CPU %.3f s (opening thread "
                "%.3f, attribute loader %.3f)\n",
                n, dim, std::string(IndexKindName(kind)).c_str(), upsert_s > 0 ? static_cast<double>(n) / upsert_s : 0.0,
                batch, snapshot_s, st.seconds, st.snapshot_seconds, st.index_seconds, st.attribute_seconds,
                st.wal_seconds, cpu, main_cpu, cpu - main_cpu);
  }
  std::sort(times.begin(), times.end());
  std::printf("[ open ] median of %zu: %.3f s\n", repeat, times[times.size() / 2]);
}

// Acknowledged-write rate with fsync on every batch (the default), batches of 1 and 100.
TEST(CollectionOpen, UpsertRateWithFsync) {
  TempDir dir;
  auto c = Collection::Create(dir.str(), Settings(IndexKind::kHnsw, 128, Metric::kCosine));
  ASSERT_TRUE(c.ok());
  SplitMix64 rng(6);
  uint64_t id = 0;
  for (size_t batch : {size_t{1}, size_t{100}}) {
    const size_t batches = batch == 1 ? 200 : 20;
    auto t0 = std::chrono::steady_clock::now();
    for (size_t b = 0; b < batches; ++b) {
      std::vector<Point> pts;
      for (size_t i = 0; i < batch; ++i) {
        pts.push_back({.id = id++, .vector = RandomVector(rng, 128), .attributes = {{"k", int64_t{1}}},
                       .text = "some words for the text index"});
      }
      ASSERT_TRUE((*c)->Upsert(pts).ok());
    }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("[ upsert ] hnsw 128-d, fsync always, batches of %zu: %.0f batches/s, %.0f points/s\n", batch,
                static_cast<double>(batches) / s, static_cast<double>(batches * batch) / s);
  }
}

}  // namespace
}  // namespace cairn::vector
