#include "cairn/vector/text_index.h"

#include <filesystem>

#include <gtest/gtest.h>

#include "cairn/base/temp_dir.h"

namespace cairn::vector {
namespace {

class OddIds : public Filter {
 public:
  bool Allows(uint64_t id) const override { return id % 2 == 1; }
};

TEST(TextIndex, Bm25RankingPersistenceAndFilter) {
  TempDir dir;
  const std::string path = (std::filesystem::path(dir.path()) / "text.db").string();
  {
    auto t = TextIndex::Open(path);
    ASSERT_TRUE(t.ok()) << t.status();
    EXPECT_EQ((*t)->applied_seq(), 0u);
    std::vector<TextChange> changes = {
        {1, "bearing failure on press seven, bearing replaced"},
        {2, "press seven bearing temperature high"},
        {3, "cooling fan noise in hall B"},
        {~uint64_t{0}, "bearing in the largest id"},
    };
    ASSERT_TRUE((*t)->Apply(5, changes).ok());
    EXPECT_EQ((*t)->applied_seq(), 5u);
    auto hits = (*t)->Search("bearing", 10, nullptr);
    ASSERT_TRUE(hits.ok()) << hits.status();
    ASSERT_EQ(hits->size(), 3u);
    EXPECT_EQ((*hits)[0].id, 1u);  // two occurrences rank first
    EXPECT_GT((*hits)[0].score, 0);
    EXPECT_GE((*hits)[0].score, (*hits)[1].score);
    OddIds odd_filter;
    auto odd = (*t)->Search("bearing fan", 10, &odd_filter);
    ASSERT_TRUE(odd.ok());
    for (const auto& h : *odd) EXPECT_EQ(h.id % 2, 1u);
    // Operators in user text are not FTS5 syntax.
    EXPECT_TRUE((*t)->Search("\"bearing\" OR NEAR( *", 10, nullptr).ok());
    EXPECT_TRUE((*t)->Search("!!!", 10, nullptr)->empty());
    std::vector<TextChange> remove = {{2, std::nullopt}};
    ASSERT_TRUE((*t)->Apply(6, remove).ok());
  }
  auto t = TextIndex::Open(path);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ((*t)->applied_seq(), 6u);
  EXPECT_EQ((*t)->Count(), 3u);
  EXPECT_FALSE((*(*t)->Get(2)).has_value());
  EXPECT_EQ(*(*(*t)->Get(~uint64_t{0})), "bearing in the largest id");
  EXPECT_TRUE((*t)->Checkpoint().ok());
}

TEST(TextIndex, MatchExpression) {
  EXPECT_EQ(TextIndex::MatchExpression("Hello, \"world\" OR x*"), "\"Hello\" OR \"world\" OR \"OR\" OR \"x\"");
  EXPECT_EQ(TextIndex::MatchExpression(" .,; "), "");
}

}  // namespace
}  // namespace cairn::vector
