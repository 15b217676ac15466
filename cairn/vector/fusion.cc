#include "cairn/vector/fusion.h"

#include <algorithm>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"

namespace cairn::vector {

std::vector<FusedHit> FuseReciprocalRank(std::span<const RankedList> lists, size_t k,
                                         double rank_constant) {
  absl::flat_hash_map<uint64_t, double> scores;
  for (const RankedList& list : lists) {
    if (!(list.weight > 0)) continue;
    absl::flat_hash_set<uint64_t> seen;
    size_t rank = 0;
    for (uint64_t id : list.ids) {
      if (!seen.insert(id).second) continue;
      ++rank;
      scores[id] += list.weight / (rank_constant + static_cast<double>(rank));
    }
  }
  std::vector<FusedHit> out;
  out.reserve(scores.size());
  for (const auto& [id, s] : scores) out.push_back({id, s});
  auto better = [](const FusedHit& a, const FusedHit& b) {
    return a.score != b.score ? a.score > b.score : a.id < b.id;
  };
  if (out.size() > k) {
    std::partial_sort(out.begin(), out.begin() + static_cast<ptrdiff_t>(k), out.end(), better);
    out.resize(k);
  } else {
    std::sort(out.begin(), out.end(), better);
  }
  return out;
}

}  // namespace cairn::vector
