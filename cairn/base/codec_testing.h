// cairn/base/codec_testing.h — GoogleTest checks shared by the tests of every decoder.
// Include from *_test.cc files only (it depends on GoogleTest).
#pragma once

#include <string>
#include <string_view>

#include <gtest/gtest.h>

namespace cairn {

// Expects `decode` to reject every strict prefix of a valid blob and every blob that
// differs from it in one bit. `decode(std::string_view)` returns a Status or StatusOr.
template <typename Decode>
void ExpectEveryTruncationAndBitFlipRejected(const std::string& blob, Decode decode) {
  for (size_t len = 0; len < blob.size(); ++len) {
    EXPECT_FALSE(decode(std::string_view(blob).substr(0, len)).ok()) << "prefix of " << len << " bytes";
  }
  for (size_t bit = 0; bit < blob.size() * 8; ++bit) {
    std::string bad = blob;
    bad[bit / 8] = static_cast<char>(bad[bit / 8] ^ (1 << (bit % 8)));
    EXPECT_FALSE(decode(bad).ok()) << "bit " << bit << " flipped";
  }
}

}  // namespace cairn
