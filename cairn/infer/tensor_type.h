// cairn/infer/tensor_type.h — GGML tensor types: ids, block layouts, and the reference
// (scalar) conversions between them and float32.
//
// The numeric ids are GGML's (they are what a GGUF file stores). Every id GGML has
// defined is recognised by name (so `cairn model inspect` can describe any file), but
// only the seven types cairn runs are "supported": F32, F16, BF16, Q8_0, Q4_0, Q4_K and
// Q6_K. Dequantize is bit-exact to GGML's reference definitions (ggml-quants.c,
// dequantize_row_*): the same float operations in the same order. Quantize produces
// valid blocks of the same layout; for Q4_0 and Q8_0 it follows GGML's reference
// quantizer, for Q4_K and Q6_K it is a simpler scale search than llama.cpp's (the values
// differ slightly, the format is the same).
//
// All functions are pure and thread-safe. The Block* structs are the exact on-disk
// layouts (little-endian, no padding); a row of n elements of a block type is
// n / block_size consecutive blocks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace cairn::infer {

enum class TensorType : uint32_t {
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ4_1 = 3,
  kQ5_0 = 6,
  kQ5_1 = 7,
  kQ8_0 = 8,
  kQ8_1 = 9,
  kQ2_K = 10,
  kQ3_K = 11,
  kQ4_K = 12,
  kQ5_K = 13,
  kQ6_K = 14,
  kQ8_K = 15,
  kIQ2_XXS = 16,
  kIQ2_XS = 17,
  kIQ3_XXS = 18,
  kIQ1_S = 19,
  kIQ4_NL = 20,
  kIQ3_S = 21,
  kIQ2_S = 22,
  kIQ4_XS = 23,
  kI8 = 24,
  kI16 = 25,
  kI32 = 26,
  kI64 = 27,
  kF64 = 28,
  kIQ1_M = 29,
  kBF16 = 30,
  kTQ1_0 = 34,
  kTQ2_0 = 35,
  kMXFP4 = 39,
};

struct TensorTypeInfo {
  TensorType type;
  const char* name;     // GGML's name, e.g. "q4_K"
  int64_t block_size;   // elements per block (1 for plain types)
  int64_t block_bytes;  // bytes per block
  bool supported;       // cairn can dequantize, quantize and run it
};

// The description of GGML type id `id`, or nullptr when the id is not a known type
// (including the ids GGML has retired: 4, 5, 31-33, 36-38).
const TensorTypeInfo* FindTensorType(uint32_t id);
// Same for a valid enum value (never nullptr for the enumerators above).
const TensorTypeInfo& TypeInfo(TensorType type);

inline const char* TensorTypeName(TensorType type) { return TypeInfo(type).name; }
inline int64_t BlockSize(TensorType type) { return TypeInfo(type).block_size; }
inline int64_t BlockBytes(TensorType type) { return TypeInfo(type).block_bytes; }
inline bool IsSupported(TensorType type) { return TypeInfo(type).supported; }

// Case-insensitive GGML name ("q4_k", "Q8_0", "bf16") to type; InvalidArgument otherwise.
absl::StatusOr<TensorType> ParseTensorType(std::string_view name);

// Bytes of a row of n elements; InvalidArgument when n is negative or not a multiple of
// the block size. Never overflows for n < 2^62.
absl::StatusOr<uint64_t> RowBytes(TensorType type, int64_t n);

// Dequantizes n elements (one row or several consecutive rows) starting at `src`.
// InvalidArgument when the type is not supported or n is not a multiple of its block
// size. Bit-exact to GGML's dequantize_row_* for every supported type.
absl::Status Dequantize(TensorType type, const void* src, float* out, int64_t n);
// Quantizes n elements into `dst` (RowBytes(type, n) bytes). Same preconditions.
absl::Status Quantize(TensorType type, const float* src, void* dst, int64_t n);

// IEEE binary16 and bfloat16 conversions, exact and portable (no F16C needed).
// Fp32ToFp16 rounds to nearest even, saturates to inf beyond the half range and keeps
// NaN a NaN. Fp32ToBf16 rounds to nearest even as GGML does (NaN stays a quiet NaN).
float Fp16ToFp32(uint16_t h);
uint16_t Fp32ToFp16(float f);
inline float Bf16ToFp32(uint16_t b) {
  const uint32_t bits = static_cast<uint32_t>(b) << 16;
  float f;
  __builtin_memcpy(&f, &bits, sizeof f);
  return f;
}
uint16_t Fp32ToBf16(float f);

// ---- Block layouts (GGML's, byte for byte) ----

inline constexpr int kQK4_0 = 32;
inline constexpr int kQK8_0 = 32;
inline constexpr int kQK_K = 256;     // super-block size of the k-quants
inline constexpr int kKScaleBytes = 12;  // packed 6-bit scales and mins of Q4_K

// y[j] = (nibble - 8) * d; element j < 16 in the low nibble of qs[j], j >= 16 in the
// high nibble of qs[j - 16].
struct BlockQ4_0 {
  uint16_t d;  // fp16 scale
  uint8_t qs[kQK4_0 / 2];
};
static_assert(sizeof(BlockQ4_0) == 18);

// y[j] = qs[j] * d.
struct BlockQ8_0 {
  uint16_t d;  // fp16 scale
  int8_t qs[kQK8_0];
};
static_assert(sizeof(BlockQ8_0) == 34);

// 8 sub-blocks of 32 with a 6-bit scale and a 6-bit min each:
// y = d * scale_j * q - dmin * min_j, q a 4-bit value. Sub-blocks 2k and 2k+1 share
// qs[32k .. 32k+31] (low and high nibbles).
struct BlockQ4_K {
  uint16_t d;     // fp16 super-scale of the scales
  uint16_t dmin;  // fp16 super-scale of the mins
  uint8_t scales[kKScaleBytes];
  uint8_t qs[kQK_K / 2];
};
static_assert(sizeof(BlockQ4_K) == 144);

// 16 sub-blocks of 16 with a signed 8-bit scale each: y = d * scale_j * (q - 32),
// q a 6-bit value split into 4 low bits (ql) and 2 high bits (qh).
struct BlockQ6_K {
  uint8_t ql[kQK_K / 2];
  uint8_t qh[kQK_K / 4];
  int8_t scales[kQK_K / 16];
  uint16_t d;  // fp16 super-scale
};
static_assert(sizeof(BlockQ6_K) == 210);

// Scale and min of sub-block j (0..7) of a Q4_K block, unpacked from the 12 bytes.
inline void Q4KScaleMin(int j, const uint8_t* scales, uint8_t* scale, uint8_t* min) {
  if (j < 4) {
    *scale = scales[j] & 63;
    *min = scales[j + 4] & 63;
  } else {
    *scale = static_cast<uint8_t>((scales[j + 4] & 0xF) | ((scales[j - 4] >> 6) << 4));
    *min = static_cast<uint8_t>((scales[j + 4] >> 4) | ((scales[j] >> 6) << 4));
  }
}

}  // namespace cairn::infer
