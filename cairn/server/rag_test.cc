#include "cairn/server/rag.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cairn/server/testing.h"

namespace cairn::server {
namespace {

using ::testing::HasSubstr;
using nlohmann::json;

std::string ErrorOf(const json& rag) {
  absl::StatusOr<RagOptions> o = ParseRagOptions(rag);
  EXPECT_FALSE(o.ok()) << rag.dump();
  return o.ok() ? "" : std::string(o.status().message());
}

TEST(ParseRagOptions, ReadsTheFieldsAndNamesBadOnes) {
  absl::StatusOr<RagOptions> o = ParseRagOptions(json{{"collection", "docs"}});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->collection, "docs");
  EXPECT_EQ(o->k, 5);
  EXPECT_TRUE(o->filter.is_null());
  o = ParseRagOptions(json::parse(R"({"collection": "docs", "k": 3, "filter": {"field": "kind", "eq": "pump"},
                                      "hybrid": {"vector_weight": 0, "text_weight": 2}})"));
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->k, 3);
  EXPECT_EQ(o->filter["eq"], "pump");
  EXPECT_EQ(o->vector_weight, 0);
  EXPECT_EQ(o->text_weight, 2);

  EXPECT_THAT(ErrorOf(json::array()), HasSubstr("'cairn.rag' must be an object"));
  EXPECT_THAT(ErrorOf(json::object()), HasSubstr("'cairn.rag.collection' is required"));
  EXPECT_THAT(ErrorOf({{"collection", 7}}), HasSubstr("cairn.rag.collection"));
  EXPECT_THAT(ErrorOf({{"collection", ""}}), HasSubstr("cairn.rag.collection"));
  EXPECT_THAT(ErrorOf({{"collection", "d"}, {"k", 0}}), HasSubstr("cairn.rag.k"));
  EXPECT_THAT(ErrorOf({{"collection", "d"}, {"k", 101}}), HasSubstr("cairn.rag.k"));
  EXPECT_THAT(ErrorOf({{"collection", "d"}, {"k", "5"}}), HasSubstr("cairn.rag.k"));
  EXPECT_THAT(ErrorOf({{"collection", "d"}, {"top_k", 5}}), HasSubstr("top_k"));
  EXPECT_THAT(ErrorOf({{"collection", "d"}, {"filter", "kind=pump"}}), HasSubstr("cairn.rag.filter"));
  json bad_filter = json::parse(R"({"collection": "d", "filter": {"and": [{"field": "a", "eq": 1}, {"field": "b"}]}})");
  EXPECT_THAT(ErrorOf(bad_filter), HasSubstr("cairn.rag.filter.and[1]"));
  EXPECT_THAT(ErrorOf({{"collection", "d"}, {"hybrid", {{"vector_weight", -1}}}}),
              HasSubstr("cairn.rag.hybrid.vector_weight"));
  EXPECT_THAT(ErrorOf({{"collection", "d"}, {"hybrid", {{"vector_weight", 0}, {"text_weight", 0}}}}),
              HasSubstr("cannot both be 0"));
}

class RetrieveTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<vector::CollectionStore>> s =
        vector::CollectionStore::Open(dir_.path(), {.fsync = vector::FsyncPolicy::kNever});
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = std::move(*s);
    vector::CollectionSettings settings;
    settings.name = "docs";
    settings.dim = 64;
    settings.index = vector::IndexKind::kFlat;
    absl::StatusOr<std::shared_ptr<vector::Collection>> c = store_->Create(settings);
    ASSERT_TRUE(c.ok()) << c.status();
    std::vector<vector::Point> points(5);
    const char* texts[] = {"The pump P-7 runs at a pressure of 4 bar.", "Valve V-2 closes when the tank is full.",
                           "The compressor is serviced every 500 hours.", "Pump P-9 was replaced in March.", ""};
    const char* kinds[] = {"pump", "valve", "compressor", "pump", "pump"};
    for (size_t i = 0; i < points.size(); ++i) {
      points[i].id = 10 + i;
      if (texts[i][0] != '\0') points[i].text = texts[i];
      else points[i].vector.assign(64, 0.5f);  // a point without text: never a passage
      points[i].attributes["kind"] = std::string(kinds[i]);
    }
    ASSERT_TRUE((*c)->Upsert(points).ok());
  }
  testing::TempDir dir_;
  std::unique_ptr<vector::CollectionStore> store_;
};

TEST_F(RetrieveTest, FindsTheMatchingPassagesBestFirst) {
  RagOptions o;
  o.collection = "docs";
  o.k = 3;
  absl::StatusOr<std::vector<Passage>> p = Retrieve(*store_, o, "What pressure does the pump run at?");
  ASSERT_TRUE(p.ok()) << p.status();
  ASSERT_FALSE(p->empty());
  EXPECT_LE(p->size(), 3u);
  EXPECT_EQ((*p)[0].id, "10");
  EXPECT_THAT((*p)[0].text, HasSubstr("4 bar"));
  EXPECT_EQ((*p)[0].attributes["kind"], "pump");
  for (size_t i = 1; i < p->size(); ++i) EXPECT_GE((*p)[i - 1].score, (*p)[i].score);
  for (const Passage& passage : *p) EXPECT_NE(passage.id, "14");  // no text
}

TEST_F(RetrieveTest, TheFilterRestrictsThePassages) {
  absl::StatusOr<RagOptions> o = ParseRagOptions(json::parse(
      R"({"collection": "docs", "k": 10, "filter": {"field": "kind", "eq": "valve"}})"));
  ASSERT_TRUE(o.ok());
  absl::StatusOr<std::vector<Passage>> p = Retrieve(*store_, *o, "What pressure does the pump run at?");
  ASSERT_TRUE(p.ok()) << p.status();
  ASSERT_EQ(p->size(), 1u);
  EXPECT_EQ((*p)[0].id, "11");
  // Text only.
  o->filter = nullptr;
  o->vector_weight = 0;
  p = Retrieve(*store_, *o, "compressor hours");
  ASSERT_TRUE(p.ok()) << p.status();
  ASSERT_EQ(p->size(), 1u);
  EXPECT_EQ((*p)[0].id, "12");
}

TEST_F(RetrieveTest, UnknownCollectionsAndEmptyQuestionsAreErrors) {
  RagOptions o;
  o.collection = "nope";
  absl::StatusOr<std::vector<Passage>> p = Retrieve(*store_, o, "anything");
  ASSERT_FALSE(p.ok());
  EXPECT_TRUE(absl::IsNotFound(p.status()));
  EXPECT_THAT(std::string(p.status().message()),
              HasSubstr("'cairn.rag.collection': there is no collection named 'nope'"));
  o.collection = "docs";
  p = Retrieve(*store_, o, "  \n");
  ASSERT_FALSE(p.ok());
  EXPECT_TRUE(absl::IsInvalidArgument(p.status()));
}

TEST(WithPassages, NumbersThePassagesInTheSystemMessage) {
  std::vector<Passage> passages = {{"10", "Alpha text.", 0.5, json::object()},
                                   {"11", "Beta text.", 0.4, json::object()}};
  std::vector<infer::ChatMessage> chat = {{"user", "Question?"}};
  std::vector<infer::ChatMessage> out = WithPassages(chat, passages);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].role, "system");
  EXPECT_THAT(out[0].content, HasSubstr("[1] Alpha text."));
  EXPECT_THAT(out[0].content, HasSubstr("[2] Beta text."));
  EXPECT_THAT(out[0].content, HasSubstr("Cite"));
  EXPECT_EQ(out[1].content, "Question?");

  std::vector<infer::ChatMessage> with_system = {{"system", "Be terse."}, {"user", "Question?"}};
  out = WithPassages(with_system, passages);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].content.rfind("Be terse.\n\n", 0), 0u);
  EXPECT_THAT(out[0].content, HasSubstr("[2] Beta text."));

  out = WithPassages(with_system, {});
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].content, "Be terse.");
}

TEST(CitationsJson, ListsThePassagesWithTheirNumbers) {
  std::vector<Passage> passages = {{"10", "Alpha.", 0.5, json{{"kind", "pump"}}}, {"11", "Beta.", 0.25, json()}};
  json c = CitationsJson(passages);
  ASSERT_TRUE(c.is_array());
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c[0],
            json::parse(R"({"index": 1, "id": "10", "score": 0.5, "text": "Alpha.", "attributes": {"kind": "pump"}})"));
  EXPECT_EQ(c[1]["index"], 2);
  EXPECT_EQ(c[1]["attributes"], json::object());
  EXPECT_EQ(CitationsJson({}), json::array());
}

}  // namespace
}  // namespace cairn::server
