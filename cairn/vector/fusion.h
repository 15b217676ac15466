// Weighted reciprocal-rank fusion (Cormack, Clarke, Büttcher 2009) of ranked id lists.
//
// Each list contributes weight / (rank_constant + rank) to every id it holds (rank 1 =
// its best), and ids are returned by total score, highest first, ties by smaller id.
// Rank-based fusion needs no score calibration between BM25 and vector distances.
// Stateless and thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace cairn::vector {

struct RankedList {
  double weight = 1.0;
  std::vector<uint64_t> ids;  // best first; duplicates after the first are ignored
};

struct FusedHit {
  uint64_t id = 0;
  double score = 0;
};

// At most k fused hits. Lists with weight <= 0 are ignored.
std::vector<FusedHit> FuseReciprocalRank(std::span<const RankedList> lists, size_t k,
                                         double rank_constant = 60.0);

}  // namespace cairn::vector
