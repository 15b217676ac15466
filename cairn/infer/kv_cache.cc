#include "cairn/infer/kv_cache.h"

#include <algorithm>

#include <fmt/format.h>

namespace cairn::infer {

const char* KvTypeName(KvType type) { return type == KvType::kF16 ? "f16" : "f32"; }

absl::StatusOr<std::unique_ptr<KvCache>> KvCache::Create(uint32_t n_layer, uint32_t n_embd_kv, uint32_t n_cells,
                                                         uint32_t n_seq, KvType type) {
  if (n_layer == 0 || n_embd_kv == 0 || n_cells == 0 || n_seq == 0) {
    return absl::InvalidArgumentError(fmt::format(
        "kv cache: every dimension must be positive (layers {}, kv width {}, cells {}, sequences {})", n_layer,
        n_embd_kv, n_cells, n_seq));
  }
  if (n_cells > (1u << 30) || n_seq > (1u << 20)) {
    return absl::InvalidArgumentError(fmt::format("kv cache: {} cells for {} sequences is too many", n_cells, n_seq));
  }
  std::unique_ptr<KvCache> c(new KvCache());
  c->n_layer_ = n_layer;
  c->n_embd_kv_ = n_embd_kv;
  c->n_cells_ = n_cells;
  c->type_ = type;
  c->layer_stride_ = static_cast<uint64_t>(n_cells) * n_embd_kv;
  const uint64_t elems = c->layer_stride_ * n_layer;
  const uint64_t half = elems * c->elem_bytes();
  c->k_.reset(std::calloc(elems, c->elem_bytes()));
  c->v_.reset(std::calloc(elems, c->elem_bytes()));
  if (c->k_ == nullptr || c->v_ == nullptr) {
    return absl::ResourceExhaustedError(fmt::format(
        "kv cache: cannot allocate {} MiB for {} cells x {} layers of {} {} values (K and V)",
        (2 * half) >> 20, n_cells, n_layer, n_embd_kv, KvTypeName(type)));
  }
  c->seqs_.resize(n_seq);
  c->free_.resize(n_cells);
  for (uint32_t i = 0; i < n_cells; ++i) c->free_[i] = static_cast<int32_t>(n_cells - 1 - i);
  return c;
}

int32_t KvCache::Append(int32_t seq) {
  const int32_t cell = free_.back();
  free_.pop_back();
  seqs_[seq].push_back(cell);
  return cell;
}

void KvCache::Truncate(int32_t seq, int32_t n) {
  std::vector<int32_t>& cells = seqs_[seq];
  if (n >= static_cast<int32_t>(cells.size())) return;
  n = std::max(n, 0);
  // Released last position first, so the next Append reuses the lowest of them.
  for (size_t i = cells.size(); i-- > static_cast<size_t>(n);) free_.push_back(cells[i]);
  cells.resize(static_cast<size_t>(n));
  // Keep the free list's lowest cells on top so that a sequence stays as contiguous as
  // the other slots allow.
  std::sort(free_.begin(), free_.end(), std::greater<int32_t>());
}

}  // namespace cairn::infer
