// cairn/infer/kv_cache.h — the attention key/value cache of a decoder, shared by
// several sequences.
//
// The cache holds K and V rows (n_embd_kv values each) of every layer for n_cells
// cells. A cell belongs to at most one sequence slot at a time; each slot keeps the
// list of its cells in position order, so position p of slot s lives in cell
// SeqCells(s)[p]. Slots grow at the end (Append) and shrink from the end (Truncate,
// Clear); freed cells return to a common free list, so the slots share the capacity
// rather than splitting it up front. A single sequence on a fresh cache occupies cells
// 0, 1, 2, ... in order.
//
// Values are stored as IEEE half precision (KvType::kF16, llama.cpp's default and half
// the memory) or float32 (kF32). The storage is allocated zeroed with calloc, so pages
// no position has reached yet cost no resident memory.
//
// Not thread-safe for mutation; the forward pass writes K/V rows of distinct cells and
// reads others from several threads at once, which is safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"

namespace cairn::infer {

enum class KvType { kF16, kF32 };
const char* KvTypeName(KvType type);  // "f16", "f32"

class KvCache {
 public:
  // InvalidArgument for a zero dimension; ResourceExhausted when the storage cannot be
  // allocated (the message gives the bytes).
  static absl::StatusOr<std::unique_ptr<KvCache>> Create(uint32_t n_layer, uint32_t n_embd_kv, uint32_t n_cells,
                                                         uint32_t n_seq, KvType type);

  uint32_t n_layer() const { return n_layer_; }
  uint32_t n_embd_kv() const { return n_embd_kv_; }
  uint32_t n_cells() const { return n_cells_; }
  uint32_t n_seq() const { return static_cast<uint32_t>(seqs_.size()); }
  KvType type() const { return type_; }
  size_t elem_bytes() const { return type_ == KvType::kF16 ? 2 : 4; }
  // Bytes of K and V storage together.
  uint64_t bytes() const { return 2ull * layer_stride_ * n_layer_ * elem_bytes(); }

  uint32_t used() const { return n_cells_ - static_cast<uint32_t>(free_.size()); }
  uint32_t free() const { return static_cast<uint32_t>(free_.size()); }

  // Positions held by slot `seq` (0 <= seq < n_seq()).
  int32_t SeqLength(int32_t seq) const { return static_cast<int32_t>(seqs_[seq].size()); }
  // Cell of each position of the slot, SeqLength(seq) entries.
  const int32_t* SeqCells(int32_t seq) const { return seqs_[seq].data(); }

  // Gives the slot the next position's cell and returns it. Precondition: free() > 0.
  int32_t Append(int32_t seq);
  // Keeps the first n positions of the slot (n >= SeqLength: no change).
  void Truncate(int32_t seq, int32_t n);
  void Clear(int32_t seq) { Truncate(seq, 0); }

  // The K or V row of `layer` in `cell` (elem_bytes() * n_embd_kv() bytes).
  void* K(uint32_t layer, int32_t cell) { return Row(k_.get(), layer, cell); }
  void* V(uint32_t layer, int32_t cell) { return Row(v_.get(), layer, cell); }
  const void* K(uint32_t layer, int32_t cell) const { return Row(k_.get(), layer, cell); }
  const void* V(uint32_t layer, int32_t cell) const { return Row(v_.get(), layer, cell); }

 private:
  struct FreeDeleter {
    void operator()(void* p) const { std::free(p); }
  };
  KvCache() = default;
  void* Row(void* base, uint32_t layer, int32_t cell) const {
    return static_cast<char*>(base) +
           (layer * layer_stride_ + static_cast<uint64_t>(cell) * n_embd_kv_) * elem_bytes();
  }

  uint32_t n_layer_ = 0, n_embd_kv_ = 0, n_cells_ = 0;
  KvType type_ = KvType::kF16;
  uint64_t layer_stride_ = 0;  // elements per layer
  std::unique_ptr<void, FreeDeleter> k_, v_;
  std::vector<std::vector<int32_t>> seqs_;
  std::vector<int32_t> free_;  // a stack: the lowest free cell on top
};

}  // namespace cairn::infer
