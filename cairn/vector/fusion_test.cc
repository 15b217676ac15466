#include "cairn/vector/fusion.h"

#include <gtest/gtest.h>

namespace cairn::vector {
namespace {

TEST(FusionRrf, SumsWeightedReciprocalRanks) {
  RankedList lists[] = {{1.0, {10, 20, 30}}, {1.0, {30, 40}}};
  auto out = FuseReciprocalRank(lists, 10);
  ASSERT_EQ(out.size(), 4u);
  EXPECT_EQ(out[0].id, 30u);  // found by both sides
  EXPECT_DOUBLE_EQ(out[0].score, 1.0 / 63 + 1.0 / 61);
  EXPECT_EQ(out[1].id, 10u);
  EXPECT_EQ(out[2].id, 20u);  // rank 2 of list 1 ties rank 2 of list 2 (40): smaller id first
  EXPECT_EQ(out[3].id, 40u);
}

TEST(FusionRrf, WeightsAndK) {
  RankedList lists[] = {{0.1, {1, 2}}, {2.0, {3, 4}}, {0.0, {5}}};
  auto out = FuseReciprocalRank(lists, 3);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].id, 3u);
  EXPECT_EQ(out[1].id, 4u);
  EXPECT_EQ(out[2].id, 1u);
  RankedList dup[] = {{1.0, {7, 7, 8}}};
  auto d = FuseReciprocalRank(dup, 5);
  ASSERT_EQ(d.size(), 2u);
  EXPECT_DOUBLE_EQ(d[1].score, 1.0 / 62);
}

}  // namespace
}  // namespace cairn::vector
