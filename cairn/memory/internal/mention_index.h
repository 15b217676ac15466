// Which episodes mention each entity (cairn/memory's `mentions` table), held in memory for
// recall's graph signal, which reads an entity's newest mentions.
//
// SQLite stays the source of truth: the store loads the index from the table when it opens
// and applies each committed write's mentions to it. The table's key is (episode, entity),
// so a batch of new episodes appends to it; an index by entity would put each mention on a
// page of its own entity's range, a page anywhere in the index per entity a batch names,
// and those pages were the largest share of what a write transaction wrote.
//
// Not thread-safe: the owner serializes writers against readers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/container/flat_hash_map.h"

namespace cairn::memory::internal {

class MentionIndex {
 public:
  // Records that `episode` mentions `entity` (again: no change).
  void Add(uint64_t entity, uint64_t episode);
  // Forgets that `episode` mentions `entity` (not recorded: no change).
  void Remove(uint64_t entity, uint64_t episode);
  // Appends to *out the up to `limit` highest episode ids that mention `entity`, highest
  // first (the order of `ORDER BY episode DESC LIMIT limit` over the table).
  void Newest(uint64_t entity, size_t limit, std::vector<uint64_t>* out) const;

  size_t size() const { return size_; }  // (entity, episode) pairs
  void Clear();

 private:
  // Per entity, its episodes ascending: new episodes have the highest ids, so they append.
  absl::flat_hash_map<uint64_t, std::vector<uint64_t>> by_entity_;
  size_t size_ = 0;
};

}  // namespace cairn::memory::internal
