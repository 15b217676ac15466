#include "cairn/memory/internal/relation_graph.h"

#include <algorithm>

namespace cairn::memory::internal {

uint32_t RelationGraph::PredicateId(std::string_view predicate) {
  auto it = predicate_ids_.find(std::string(predicate));
  if (it != predicate_ids_.end()) return it->second;
  const uint32_t id = static_cast<uint32_t>(predicates_.size());
  predicates_.emplace_back(predicate);
  predicate_ids_.emplace(std::string(predicate), id);
  return id;
}

void RelationGraph::Put(int64_t rowid, uint64_t src, uint64_t dst, std::string_view predicate, double weight) {
  const uint32_t p = PredicateId(predicate);
  auto [it, inserted] = by_key_.try_emplace(std::make_tuple(src, dst, p), static_cast<uint32_t>(rels_.size()));
  if (!inserted) {
    Rel& r = rels_[it->second];
    r.weight = weight;
    if (r.rowid != rowid) {
      by_rowid_.erase(r.rowid);
      by_rowid_[rowid] = it->second;
      r.rowid = rowid;
    }
    return;
  }
  const uint32_t i = static_cast<uint32_t>(rels_.size());
  rels_.push_back({src, dst, rowid, weight, p});
  by_rowid_[rowid] = i;
  by_entity_[src].push_back(i * 2);
  by_entity_[dst].push_back(i * 2 + 1);
}

bool RelationGraph::SetWeight(int64_t rowid, double weight) {
  auto it = by_rowid_.find(rowid);
  if (it == by_rowid_.end()) return false;
  rels_[it->second].weight = weight;
  return true;
}

std::optional<double> RelationGraph::Weight(int64_t rowid) const {
  auto it = by_rowid_.find(rowid);
  if (it == by_rowid_.end()) return std::nullopt;
  return rels_[it->second].weight;
}

std::optional<std::pair<int64_t, double>> RelationGraph::Find(uint64_t src, uint64_t dst,
                                                              std::string_view predicate) const {
  auto p = predicate_ids_.find(std::string(predicate));
  if (p == predicate_ids_.end()) return std::nullopt;
  auto it = by_key_.find(std::make_tuple(src, dst, p->second));
  if (it == by_key_.end()) return std::nullopt;
  const Rel& r = rels_[it->second];
  return std::make_pair(r.rowid, r.weight);
}

std::vector<std::pair<uint64_t, double>> RelationGraph::Strongest(uint64_t entity, size_t k) const {
  std::vector<std::pair<uint64_t, double>> out;
  auto it = by_entity_.find(entity);
  if (it == by_entity_.end() || k == 0) return out;
  std::vector<uint32_t> refs = it->second;
  // The order: weight descending, then side (source first); on the source side by (dst,
  // predicate), on the destination side by rowid.
  auto before = [this](uint32_t a, uint32_t b) {
    const Rel& x = rels_[a >> 1];
    const Rel& y = rels_[b >> 1];
    if (x.weight != y.weight) return x.weight > y.weight;
    const uint32_t sa = a & 1, sb = b & 1;
    if (sa != sb) return sa < sb;
    if (sa == 0) {
      if (x.dst != y.dst) return x.dst < y.dst;
      return predicates_[x.predicate] < predicates_[y.predicate];
    }
    return x.rowid < y.rowid;
  };
  const size_t n = std::min(k, refs.size());
  std::partial_sort(refs.begin(), refs.begin() + static_cast<std::ptrdiff_t>(n), refs.end(), before);
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    const Rel& r = rels_[refs[i] >> 1];
    out.emplace_back((refs[i] & 1) == 0 ? r.dst : r.src, r.weight);
  }
  return out;
}

void RelationGraph::Clear() {
  rels_.clear();
  by_key_.clear();
  by_entity_.clear();
  by_rowid_.clear();
  predicates_.clear();
  predicate_ids_.clear();
}

}  // namespace cairn::memory::internal
