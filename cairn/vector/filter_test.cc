#include "cairn/vector/filter.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cairn/base/random.h"

namespace cairn::vector {
namespace {

Predicate MustParse(std::string_view text) {
  auto p = ParseFilter(text);
  EXPECT_TRUE(p.ok()) << p.status();
  return p.ok() ? *p : Predicate{};
}

std::string ParseError(std::string_view text) {
  auto p = ParseFilter(text);
  EXPECT_FALSE(p.ok()) << text;
  return p.ok() ? "" : std::string(p.status().message());
}

TEST(FilterParse, ErrorsNameTheProblem) {
  EXPECT_NE(ParseError("{\"and\":[{\"field\":\"a\",\"eq\":1},{\"field\":\"b\",\"gte\":true}]}").find("filter.and[1]"),
            std::string::npos);
  EXPECT_NE(ParseError("{\"field\":\"a\",\"eq\":1,\"ne\":2}").find("exactly one"), std::string::npos);
  EXPECT_NE(ParseError("{\"field\":\"a\",\"like\":1}").find("unknown key 'like'"), std::string::npos);
  EXPECT_NE(ParseError("{\"field\":\"a b\",\"eq\":1}").find("field name"), std::string::npos);
  EXPECT_NE(ParseError("{\"or\":[]}").find("non-empty array"), std::string::npos);
  EXPECT_NE(ParseError("[1]").find("must be a JSON object"), std::string::npos);
  EXPECT_NE(ParseError("{\"field\":\"a\",\"gt\":1,\"lt\":\"x\"}").find("both be numbers"), std::string::npos);
  EXPECT_NE(ParseError("{nope").find("not valid JSON"), std::string::npos);
  EXPECT_NE(ParseError("{\"field\":\"t\",\"contains\":3}").find("needs a string"), std::string::npos);
}

TEST(FilterMatch, Semantics) {
  Attributes a{{"kind", std::string("pump")}, {"temp", int64_t{55}}, {"load", 0.5},
               {"tags", Tags{"urgent", "east"}}};
  EXPECT_TRUE(MustParse(R"({"field":"kind","eq":"pump"})").Matches(a));
  EXPECT_FALSE(MustParse(R"({"field":"kind","eq":"valve"})").Matches(a));
  EXPECT_TRUE(MustParse(R"({"field":"temp","eq":55.0})").Matches(a));
  EXPECT_FALSE(MustParse(R"({"field":"temp","eq":"55"})").Matches(a));
  EXPECT_TRUE(MustParse(R"({"field":"temp","gte":55,"lt":56})").Matches(a));
  EXPECT_FALSE(MustParse(R"({"field":"temp","gt":55})").Matches(a));
  EXPECT_TRUE(MustParse(R"({"field":"load","lte":0.5})").Matches(a));
  EXPECT_TRUE(MustParse(R"({"field":"kind","in":["valve","pump"]})").Matches(a));
  EXPECT_TRUE(MustParse(R"({"field":"tags","contains":"east"})").Matches(a));
  EXPECT_FALSE(MustParse(R"({"field":"tags","contains":"west"})").Matches(a));
  EXPECT_TRUE(MustParse(R"({"field":"missing","ne":1})").Matches(a));
  EXPECT_FALSE(MustParse(R"({"field":"missing","eq":1})").Matches(a));
  EXPECT_TRUE(MustParse(R"({"and":[{"field":"kind","eq":"pump"},{"field":"temp","gte":50}]})").Matches(a));
  EXPECT_FALSE(MustParse(R"({"not":{"field":"kind","eq":"pump"}})").Matches(a));
  EXPECT_TRUE(MustParse(R"({"field":"kind","gte":"p","lt":"q"})").Matches(a));
}

TEST(FilterAttributes, JsonAndBinaryRoundTrip) {
  auto j = nlohmann::json::parse(R"({"kind":"pump","temp":55,"load":0.5,"tags":["a","b"]})");
  auto a = AttributesFromJson(j);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(std::get<int64_t>(a->at("temp")), 55);
  EXPECT_EQ(AttributesToJson(*a), j);
  ByteWriter w;
  EncodeAttributes(*a, &w);
  ByteReader r(w.data());
  EXPECT_EQ(DecodeAttributes(&r), *a);
  EXPECT_TRUE(r.Finish().ok());
  EXPECT_FALSE(AttributesFromJson(nlohmann::json::parse(R"({"x":{"y":1}})")).ok());
  EXPECT_FALSE(AttributesFromJson(nlohmann::json::parse(R"({"x":[1]})")).ok());
  EXPECT_FALSE(AttributesFromJson(nlohmann::json::parse(R"({"bad name":1})")).ok());
}

// Random attributes and predicates: ListMatching and a bound filter agree with a
// brute-force evaluation, and leaf estimates are exact.
TEST(FilterIndex, AgreesWithBruteForce) {
  SplitMix64 rng(7);
  AttributeIndex index;
  std::map<uint64_t, Attributes> truth;
  const char* kinds[] = {"pump", "valve", "motor", "fan"};
  for (uint64_t id = 0; id < 2000; ++id) {
    Attributes a;
    if (rng.Next() % 10) a["kind"] = std::string(kinds[rng.Next() % 4]);
    a["temp"] = static_cast<int64_t>(rng.Next() % 100);
    if (rng.Next() % 2) a["load"] = static_cast<double>(rng.Next() % 1000) / 1000.0;
    Tags t;
    for (int i = 0; i < 3; ++i) {
      if (rng.Next() % 3 == 0) t.push_back(fmt::format("t{}", rng.Next() % 5));
    }
    a["tags"] = t;
    index.Put(id, a);
    truth[id] = a;
  }
  // Overwrite and delete some, so the inverted indexes must track changes.
  for (uint64_t id = 0; id < 300; ++id) {
    if (id % 3 == 0) {
      index.Erase(id);
      truth.erase(id);
    } else {
      Attributes a{{"kind", std::string("valve")}, {"temp", int64_t{1000}}};
      index.Put(id, a);
      truth[id] = a;
    }
  }
  const char* filters[] = {
      R"({"field":"kind","eq":"pump"})",
      R"({"field":"kind","ne":"pump"})",
      R"({"field":"temp","gte":10,"lt":20})",
      R"({"field":"temp","gt":99})",
      R"({"field":"load","lte":0.01})",
      R"({"field":"kind","in":["fan","motor"]})",
      R"({"field":"tags","contains":"t3"})",
      R"({"and":[{"field":"kind","eq":"pump"},{"field":"temp","lt":5}]})",
      R"({"or":[{"field":"kind","eq":"fan"},{"field":"tags","contains":"t1"}]})",
      R"({"not":{"field":"temp","gte":50}})",
      R"({"and":[{"not":{"field":"kind","eq":"valve"}},{"field":"load","gte":0.9}]})",
  };
  for (const char* f : filters) {
    Predicate p = MustParse(f);
    std::vector<uint64_t> expected;
    for (const auto& [id, a] : truth) {
      if (p.Matches(a)) expected.push_back(id);
    }
    EXPECT_EQ(index.ListMatching(p), expected) << f;
    if (p.op != Predicate::Op::kAnd && p.op != Predicate::Op::kOr && p.op != Predicate::Op::kNot) {
      EXPECT_EQ(index.EstimateCount(p), static_cast<double>(expected.size())) << f;
    }
    for (double fraction : {0.0, 1.0}) {
      auto bound = index.Bind(p, fraction);
      std::vector<uint64_t> listed;
      ASSERT_TRUE(bound->ListAllowed(&listed));
      EXPECT_EQ(listed, expected) << f;
      size_t allowed = 0;
      for (uint64_t id = 0; id < 2000; ++id) allowed += bound->Allows(id);
      EXPECT_EQ(allowed, expected.size()) << f;
      EXPECT_GE(bound->EstimatedSelectivity(), 0.0);
      EXPECT_LE(bound->EstimatedSelectivity(), 1.0);
    }
  }
}

TEST(FilterIndex, SelectivityOfOnePercent) {
  AttributeIndex index;
  for (uint64_t id = 0; id < 10000; ++id) index.Put(id, {{"bucket", static_cast<int64_t>(id % 100)}});
  auto f = index.Bind(MustParse(R"({"field":"bucket","eq":7})"));
  EXPECT_DOUBLE_EQ(f->EstimatedSelectivity(), 0.01);
  std::vector<uint64_t> ids;
  ASSERT_TRUE(f->ListAllowed(&ids));
  EXPECT_EQ(ids.size(), 100u);
}

}  // namespace
}  // namespace cairn::vector
