#include "cairn/stream/state.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "cairn/base/temp_dir.h"
#include "cairn/stream/checkpoint.h"
#include "gtest/gtest.h"

namespace cairn::stream {
namespace {

namespace fs = std::filesystem;

// A fresh directory `name` in this test process's own temporary directory,
// which goes away with the process.
std::string TempDir(const std::string& name) {
  static const cairn::TempDir root("cairn-state");
  return root.Fresh(name);
}

class StateTest : public ::testing::TestWithParam<StateBackendKind> {
 protected:
  std::unique_ptr<KeyedStateStore> NewStore(const std::string& tag) {
    StateBackendOptions o;
    o.kind = GetParam();
    o.rocksdb_dir = TempDir(tag) + "/db";
    auto s = KeyedStateStore::Create(o, &clock_);
    EXPECT_TRUE(s.ok()) << s.status();
    return std::move(*s);
  }
  ManualClock clock_{1'000'000'000'000};
};

TEST_P(StateTest, ValueStatePerKeyAndNamespace) {
  auto store = NewStore("value");
  auto* v = store->GetValueState<int64_t>("v");
  store->SetCurrentKey("a");
  EXPECT_FALSE(v->Value().has_value());
  v->Update(5);
  store->SetCurrentKey("b");
  v->Update(7);
  store->SetCurrentNamespace(3);
  EXPECT_FALSE(v->Value().has_value());
  v->Update(9);
  store->SetCurrentNamespace(0);
  EXPECT_EQ(v->Value(), 7);
  store->SetCurrentKey("a");
  EXPECT_EQ(v->Value(), 5);
  v->Clear();
  EXPECT_FALSE(v->Value().has_value());
  EXPECT_EQ(store->GetValueState<int64_t>("v"), v);  // same handle by name
}

TEST_P(StateTest, ListMapAndReducingStates) {
  auto store = NewStore("kinds");
  auto* list = store->GetListState<std::string>("l");
  auto* map = store->GetMapState<std::string, int64_t>("m");
  auto* sum = store->GetReducingState<int64_t>("r", [](const int64_t& a, const int64_t& b) { return a + b; });
  store->SetCurrentKey("k");
  list->Add("x");
  list->Add("y");
  EXPECT_EQ(list->Get(), (std::vector<std::string>{"x", "y"}));
  map->Put("p", 1);
  map->Put("q", 2);
  EXPECT_EQ(map->Get("q"), 2);
  EXPECT_TRUE(map->Contains("p"));
  map->Remove("p");
  EXPECT_FALSE(map->Contains("p"));
  int items = 0;
  map->ForEach([&](const std::string& k, const int64_t& v) {
    ++items;
    EXPECT_EQ(k, "q");
    EXPECT_EQ(v, 2);
  });
  EXPECT_EQ(items, 1);
  sum->Add(3);
  sum->Add(4);
  EXPECT_EQ(sum->Get(), 7);
  store->SetCurrentKey("other");
  EXPECT_TRUE(list->Get().empty());
  EXPECT_TRUE(map->Empty());
  EXPECT_FALSE(sum->Get().has_value());
}

TEST_P(StateTest, TimeToLiveHidesAndDropsOldEntries) {
  auto store = NewStore("ttl");
  auto* v = store->GetValueState<int64_t>("v", StateTtl{std::chrono::milliseconds(100)});
  auto* m = store->GetMapState<int64_t, int64_t>("m", StateTtl{std::chrono::milliseconds(100)});
  store->SetCurrentKey("k");
  v->Update(1);
  m->Put(1, 10);
  clock_.Advance(60'000'000);  // 60 ms
  EXPECT_EQ(v->Value(), 1);
  m->Put(2, 20);
  clock_.Advance(60'000'000);  // 120 ms after the first writes
  EXPECT_FALSE(v->Value().has_value());
  EXPECT_FALSE(m->Get(1).has_value());
  EXPECT_EQ(m->Get(2), 20);
}

TEST_P(StateTest, SnapshotAndRestoreRoundTrip) {
  std::string dir = TempDir(fmt::format("snap{}", static_cast<int>(GetParam())));
  {
    auto store = NewStore("snap-src");
    auto* v = store->GetValueState<std::string>("v");
    auto* l = store->GetListState<int64_t>("l");
    for (int k = 0; k < 100; ++k) {
      store->SetCurrentKey(std::to_string(k));
      v->Update("value" + std::to_string(k));
      l->Add(k);
      l->Add(k * 2);
    }
    ASSERT_TRUE(store->Snapshot(dir).ok());
    store->SetCurrentKey("0");
    v->Update("changed after the snapshot");
  }
  auto store = NewStore("snap-dst");
  auto* v = store->GetValueState<std::string>("v");
  ASSERT_TRUE(store->Restore(dir).ok());
  auto* l = store->GetListState<int64_t>("l");  // created after Restore: still gets its entries
  for (int k = 0; k < 100; ++k) {
    store->SetCurrentKey(std::to_string(k));
    EXPECT_EQ(v->Value(), "value" + std::to_string(k));
    EXPECT_EQ(l->Get(), (std::vector<int64_t>{k, k * 2}));
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, StateTest,
                         ::testing::Values(StateBackendKind::kMemory, StateBackendKind::kRocksDb),
                         [](const auto& info) {
                           return info.param == StateBackendKind::kMemory ? std::string("Memory")
                                                                          : std::string("RocksDb");
                         });

TEST(StateStore, CorruptMemorySnapshotIsRejected) {
  ManualClock clock;
  auto store = *KeyedStateStore::Create({}, &clock);
  auto* v = store->GetValueState<int64_t>("v");
  store->SetCurrentKey("k");
  v->Update(1);
  std::string dir = TempDir("corrupt");
  ASSERT_TRUE(store->Snapshot(dir).ok());
  {
    std::fstream f(dir + "/state.bin", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(20);
    f.put('\x7f');
  }
  auto other = *KeyedStateStore::Create({}, &clock);
  other->GetValueState<int64_t>("v");
  EXPECT_FALSE(other->Restore(dir).ok());
}

TEST(CheckpointStore, CompletesKeepsNewestAndSkipsCorrupt) {
  std::string dir = TempDir("ckpt");
  auto store = *CheckpointStore::Open(dir, 2);
  for (int64_t id = 1; id <= 4; ++id) {
    std::string path = *store.Begin(id);
    std::ofstream(path + "/data.bin") << "payload " << id;
    ASSERT_TRUE(store.Complete(id, fmt::format("meta{}", id)).ok());
  }
  EXPECT_EQ(store.CompleteIds(), (std::vector<int64_t>{3, 4}));
  // An in-progress directory is never restored.
  std::string partial = *store.Begin(5);
  std::ofstream(partial + "/data.bin") << "half";
  std::vector<std::string> warnings;
  auto latest = store.FindLatest(&warnings);
  ASSERT_TRUE(latest.has_value());
  EXPECT_EQ(latest->id, 4);
  EXPECT_EQ(latest->metadata, "meta4");
  EXPECT_TRUE(warnings.empty());
  // Corrupt the newest: the previous one is used, with a warning naming why.
  std::ofstream(dir + "/chk-4/data.bin", std::ios::app) << "x";
  latest = store.FindLatest(&warnings);
  ASSERT_TRUE(latest.has_value());
  EXPECT_EQ(latest->id, 3);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("data.bin"), std::string::npos) << warnings[0];
  // A missing metadata file (a partial copy) is skipped too.
  fs::remove(dir + "/chk-3/_metadata");
  EXPECT_FALSE(store.FindLatest(&warnings).has_value());
}

}  // namespace
}  // namespace cairn::stream
