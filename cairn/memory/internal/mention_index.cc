#include "cairn/memory/internal/mention_index.h"

#include <algorithm>

namespace cairn::memory::internal {

void MentionIndex::Add(uint64_t entity, uint64_t episode) {
  std::vector<uint64_t>& v = by_entity_[entity];
  if (v.empty() || v.back() < episode) {
    v.push_back(episode);
    ++size_;
    return;
  }
  auto it = std::lower_bound(v.begin(), v.end(), episode);
  if (it != v.end() && *it == episode) return;
  v.insert(it, episode);
  ++size_;
}

void MentionIndex::Remove(uint64_t entity, uint64_t episode) {
  auto e = by_entity_.find(entity);
  if (e == by_entity_.end()) return;
  std::vector<uint64_t>& v = e->second;
  auto it = std::lower_bound(v.begin(), v.end(), episode);
  if (it == v.end() || *it != episode) return;
  v.erase(it);
  --size_;
  if (v.empty()) by_entity_.erase(e);
}

void MentionIndex::Newest(uint64_t entity, size_t limit, std::vector<uint64_t>* out) const {
  auto e = by_entity_.find(entity);
  if (e == by_entity_.end()) return;
  const std::vector<uint64_t>& v = e->second;
  const size_t n = std::min(limit, v.size());
  for (size_t i = 0; i < n; ++i) out->push_back(v[v.size() - 1 - i]);
}

void MentionIndex::Clear() {
  by_entity_.clear();
  size_ = 0;
}

}  // namespace cairn::memory::internal
