// The entity graph's relations (cairn/memory's `relations` table) held in memory for
// recall's neighbour expansion, which asks for an entity's strongest relations.
//
// SQLite stays the source of truth: the store loads the graph from the table when it opens
// and applies each committed write's relations to it (their rowid and weight as the table
// holds them). Keeping the weight-ordered lookups here means the table needs no index on
// the weight, which every weight change would move (twice, one entry per side): those
// index pages were most of what a write transaction wrote.
//
// Not thread-safe: the owner serializes writers against readers.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"

namespace cairn::memory::internal {

class RelationGraph {
 public:
  // Sets the relation (src, dst, predicate) with table rowid `rowid` to `weight`, adding it
  // when new.
  void Put(int64_t rowid, uint64_t src, uint64_t dst, std::string_view predicate, double weight);

  // Sets the weight of the relation with table rowid `rowid`; false when there is none.
  bool SetWeight(int64_t rowid, double weight);
  // The weight of the relation with table rowid `rowid`, when there is one.
  std::optional<double> Weight(int64_t rowid) const;

  // The relation's (rowid, weight), when it is in the graph.
  std::optional<std::pair<int64_t, double>> Find(uint64_t src, uint64_t dst, std::string_view predicate) const;

  // The `k` strongest relations of `entity`, either side, as (the other entity, weight):
  // by weight, highest first; among equal weights those where `entity` is the source first,
  // ordered by (dst, predicate), then those where it is the destination, in rowid (creation)
  // order. A relation from an entity to itself counts on both sides. (This is the order
  // recall's graph signal has always used, so recall's results do not depend on where the
  // relations are read from.)
  std::vector<std::pair<uint64_t, double>> Strongest(uint64_t entity, size_t k) const;

  size_t size() const { return rels_.size(); }
  void Clear();

 private:
  struct Rel {
    uint64_t src, dst;
    int64_t rowid;
    double weight;
    uint32_t predicate;  // index into predicates_
  };
  uint32_t PredicateId(std::string_view predicate);

  std::vector<Rel> rels_;
  absl::flat_hash_map<std::tuple<uint64_t, uint64_t, uint32_t>, uint32_t> by_key_;
  // Per entity: (index into rels_) * 2 + side (0: the entity is the source, 1: the destination).
  absl::flat_hash_map<uint64_t, std::vector<uint32_t>> by_entity_;
  absl::flat_hash_map<int64_t, uint32_t> by_rowid_;
  std::vector<std::string> predicates_;
  std::unordered_map<std::string, uint32_t> predicate_ids_;
};

}  // namespace cairn::memory::internal
