// cairn/infer/ops.h — the element-wise and row-wise operations of a transformer
// forward pass, other than the weight products (kernels.h): norms, rotary position
// embedding, softmax, activations, and the float16 conversions and dot products the
// attention over an f16 KV cache needs.
//
// Every function works on caller-owned buffers, allocates nothing and is thread-safe
// (pure functions of their arguments). In-place use (out == x) is allowed where a
// parameter comment says so. The AVX2 paths (chosen once at run time, see
// ops_avx2.cc) compute the same functions as the scalar ones up to float rounding;
// exp in SiluMul, Gelu and Softmax uses a polynomial with a relative error below 2e-7.
#pragma once

#include <cstdint>

namespace cairn::infer {

// out = x / sqrt(mean(x^2) + eps) * w, over one row of n. out may be x.
void RmsNorm(const float* x, const float* w, float eps, int64_t n, float* out);

// out = (x - mean) / sqrt(var + eps) * w + b, over one row of n. out may be x.
void LayerNorm(const float* x, const float* w, const float* b, float eps, int64_t n, float* out);

// Rotary position embedding for one position: `cos_sin` holds n_rot / 2 pairs
// (cos, sin) of the angles pos * freq_scale * base^(-2i / n_rot) / factor[i], from
// RopeAngles (`factors`: Llama 3.1-style per-frequency divisors, the rope_freqs.weight
// tensor, n_rot / 2 values; nullptr for none).
// Rotates the first n_rot of head_dim dimensions of each of n_heads heads (laid out
// one after the other in x), in place. Normal ordering pairs (2i, 2i+1) as llama does;
// NeoX ordering pairs (i, i + n_rot/2) as qwen2 does.
void RopeAngles(int32_t pos, int n_rot, float freq_base, float freq_scale, const float* factors, float* cos_sin);
void Rope(float* x, int n_heads, int head_dim, int n_rot, bool neox, const float* cos_sin);

// In place: x = softmax(x) over n values.
void Softmax(float* x, int64_t n);

// out[i] = silu(gate[i]) * up[i] (SwiGLU). out may be gate.
void SiluMul(const float* gate, const float* up, int64_t n, float* out);

// In place: GELU, tanh approximation (what llama.cpp's ggml_gelu computes).
void Gelu(float* x, int64_t n);

// In place: x += b over n values.
void AddTo(float* x, const float* b, int64_t n);

// The dot product of two float rows.
float Dot(const float* a, const float* b, int64_t n);
// y += a * x over n values.
void Axpy(float a, const float* x, int64_t n, float* y);

// IEEE half precision rows (the f16 KV cache).
void ToF16(const float* x, int64_t n, uint16_t* out);
void FromF16(const uint16_t* x, int64_t n, float* out);
float DotF16(const float* a, const uint16_t* b, int64_t n);
void AxpyF16(float a, const uint16_t* x, int64_t n, float* y);

// Attention over gathered rows: row j is base + idx[j] * stride (stride in elements),
// hd values long. GatherDot: out[j] = dot(q, row j) for j < n. GatherSum:
// out = sum_j p[j] * row j (out is overwritten, hd values). The f16 versions read
// half-precision rows (the f16 KV cache).
void GatherDot(const float* q, const float* base, const int32_t* idx, int64_t n, int64_t stride, int64_t hd,
               float* out);
void GatherDotF16(const float* q, const uint16_t* base, const int32_t* idx, int64_t n, int64_t stride, int64_t hd,
                  float* out);
void GatherSum(const float* p, const float* base, const int32_t* idx, int64_t n, int64_t stride, int64_t hd,
               float* out);
void GatherSumF16(const float* p, const uint16_t* base, const int32_t* idx, int64_t n, int64_t stride, int64_t hd,
                  float* out);

// Attention for a tile of queries at once (prompt processing), laid out so that no
// sum runs across vector lanes: keys and values row-major (row j at k + j * hd),
// queries transposed (query c's element d at qt[d * m + c]), scores transposed too
// (score of key j for query c at st[j * m + c]).
// TileScores: st[j * m + c] = dot(key j, query c) for j < n, c < m.
void TileScores(const float* k, int64_t n, int64_t hd, const float* qt, int64_t m, float* st);
// In place, for each of the m columns: softmax over its n rows.
void SoftmaxColumns(float* st, int64_t n, int64_t m);
// out[c * hd + i] = sum_j pt[j * m + c] * v[j * hd + i] for c < m, i < hd.
void TileValues(const float* pt, int64_t n, int64_t m, const float* v, int64_t hd, float* out);

// Which implementation runs: "avx2" or "scalar".
const char* OpsIsa();

}  // namespace cairn::infer
