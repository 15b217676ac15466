// Helpers shared by cairn/memory's tests: small stores, episodes and fact queries.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "cairn/base/clock.h"
#include "cairn/memory/internal/sqlite.h"
#include "cairn/memory/memory.h"

namespace cairn::memory::testing {

inline constexpr int64_t kDay = 86400000;
inline constexpr int64_t kT0 = 1'700'000'000'000;  // a fixed epoch (ms) for world times

inline MemoryOptions Options(const Clock* clock = nullptr) {
  MemoryOptions o;
  o.dim = 64;
  o.sync_full = false;
  o.clock = clock;
  return o;
}

inline Episode Ep(const std::string& ns, const std::string& author, int64_t t, const std::string& content,
                  const std::string& speaker = "") {
  Episode e;
  e.ns = ns;
  e.author = author;
  e.time_ms = t;
  e.content = content;
  e.speaker = speaker;
  return e;
}

// Runs each statement on the database of the store in `dir` (closed), as a store made by an
// older build would have it; false (with the failure reported) when one fails.
inline bool ExecOnStore(const std::string& dir, std::initializer_list<const char*> sqls) {
  auto c = internal::Conn::Open(dir + "/memory.db", false, false);
  EXPECT_TRUE(c.ok()) << c.status();
  if (!c.ok()) return false;
  for (const char* sql : sqls) {
    absl::Status s = (*c)->Exec(sql);
    EXPECT_TRUE(s.ok()) << sql << ": " << s;
    if (!s.ok()) return false;
  }
  return true;
}

// A recall of episodes by the graph signal alone (agent "a", namespace "n").
inline RecallQuery GraphOnlyQuery(const std::string& text, size_t k) {
  RecallQuery q;
  q.agent = "a";
  q.namespaces = {"n"};
  q.k = k;
  q.facts = false;
  q.text = text;
  q.vector_weight = q.bm25_weight = q.recency_weight = q.importance_weight = 0;
  q.graph_weight = 1;
  return q;
}

// The ids of what a recall returned, in order (none when it failed, which is reported).
inline std::vector<uint64_t> Ids(const absl::StatusOr<std::vector<Recalled>>& r) {
  EXPECT_TRUE(r.ok()) << r.status();
  std::vector<uint64_t> out;
  if (r.ok())
    for (const Recalled& x : *r) out.push_back(x.id);
  return out;
}

inline std::vector<Fact> CurrentFacts(MemoryStore& m, const std::string& ns, const std::string& subject,
                                      const std::string& predicate, std::optional<int64_t> as_of = std::nullopt) {
  FactQuery q;
  q.agent = "a";
  q.ns = ns;
  q.subject = subject;
  q.predicate = predicate;
  q.as_of_ms = as_of;
  auto r = m.Facts(q);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *r : std::vector<Fact>{};
}

}  // namespace cairn::memory::testing
