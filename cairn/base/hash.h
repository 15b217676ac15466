// cairn/base/hash.h — the one hash function of cairn: XXH3 (64-bit), inlined.
//
// Sketches, partitioning and checksums all hash through here so that a key hashes
// to the same value on every node and in every release (the value is part of the
// serialized sketch formats: never change it). Thread-safe, stateless.
#pragma once

#include <cstdint>
#include <cstring>
#include <string_view>
#include <type_traits>

#define XXH_INLINE_ALL
#include <xxhash.h>

namespace cairn {

// Hash of a byte string.
inline uint64_t Hash64(std::string_view bytes, uint64_t seed = 0) {
  return XXH3_64bits_withSeed(bytes.data(), bytes.size(), seed);
}

// Hash of a 64-bit key, identical to hashing its 8 little-endian bytes.
inline uint64_t Hash64(uint64_t key, uint64_t seed = 0) {
  unsigned char buf[8];
  std::memcpy(buf, &key, 8);  // cairn targets little-endian hosts only (x86-64, aarch64)
  return XXH3_64bits_withSeed(buf, 8, seed);
}

// 128-bit hash, for filters that need two independent 64-bit values.
struct Hash128Value {
  uint64_t low;
  uint64_t high;
};
inline Hash128Value Hash128(std::string_view bytes, uint64_t seed = 0) {
  XXH128_hash_t h = XXH3_128bits_withSeed(bytes.data(), bytes.size(), seed);
  return {h.low64, h.high64};
}

// Hashes any key type that sketches accept: integers and string-like values.
template <typename Key>
inline uint64_t HashKey(const Key& key, uint64_t seed = 0) {
  if constexpr (std::is_integral_v<Key>) {
    return Hash64(static_cast<uint64_t>(key), seed);
  } else {
    return Hash64(std::string_view(key), seed);
  }
}

// A 64-bit mixing step (the murmur3/splitmix finalizer): a cheap way to derive
// further independent-looking values from one hash.
inline uint64_t Mix64(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return x;
}

}  // namespace cairn
