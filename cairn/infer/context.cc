// The batched forward pass of Context (model.h).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <thread>
#include <unordered_map>

#include <fmt/format.h>

#include "cairn/base/status.h"
#include "cairn/infer/model.h"
#include "cairn/infer/ops.h"

namespace cairn::infer {

// Activations of the batch in flight, token-major: row t of `x` is x.data() + t * n_embd.
struct Context::Scratch {
  std::vector<float> x;      // the residual stream
  std::vector<float> xn;     // normed input of a sub-block; gathered outputs
  // One region holds the attention sub-block's buffers and, once they are consumed, the
  // feed-forward's: q, k, v, attn and tmp (the attention output before it joins the
  // residual) overlap gate and up. The feed-forward's output goes to the half its down
  // projection does not read (`ffn_out`: up for a decoder, whose SwiGLU lands in gate; the
  // unused gate half for an encoder). A decoder's gate and up hold kMatMulTokenBlock
  // tokens (its feed-forward runs in groups of that many). For a Qwen2.5-0.5B micro-batch
  // of 128 tokens: 2.5 MB instead of 7.4 MB.
  std::vector<float> work;
  float* q = nullptr;
  float* k = nullptr;
  float* v = nullptr;
  float* attn = nullptr;
  float* tmp = nullptr;
  float* gate = nullptr;
  float* up = nullptr;
  float* ffn_out = nullptr;
  std::vector<float> rope;   // n_rot values (cos, sin pairs) per token
  std::vector<float> embd_row;
  std::vector<int32_t> cells;             // decoders: each token's cache cell
  std::vector<std::vector<int32_t>> members;  // encoders: batch indices of each slot
  std::vector<int32_t> out_rows;          // batch indices of the output tokens (current micro-batch)
  std::vector<float> hidden;              // the output tokens' last hidden states, in batch order
  // After the last layer's K/V, only the output tokens' rows are carried on (x, q and
  // everything after attention hold them in rows 0..n_outputs-1): nothing later needs
  // the others. `compacted` says this happened in the current Forward.
  bool compacted = false;
  // Attention work: the query rows of each slot, and the items over them.
  struct AttnItem {
    int32_t seq, kvh, begin, end;  // rows seq_rows[seq][begin, end) against kv head kvh
    int32_t h_begin, h_end;        // the query heads (of kvh's group) it computes
  };
  std::vector<std::vector<int32_t>> seq_rows;
  std::vector<AttnItem> items;
};

Context::Context(const Model& model, const ContextOptions& options)
    : model_(model), options_(options), s_(std::make_unique<Scratch>()) {}

Context::~Context() = default;

absl::StatusOr<std::unique_ptr<Context>> Context::Create(const Model& model, const ContextOptions& options) {
  const ModelConfig& c = model.config();
  if (options.n_ctx > c.n_ctx_train) {
    return absl::InvalidArgumentError(fmt::format("a context of {} tokens is longer than the model's {} (training "
                                                  "context length)",
                                                  options.n_ctx, c.n_ctx_train));
  }
  if (options.n_batch == 0 || options.n_seq == 0) {
    return absl::InvalidArgumentError(
        fmt::format("n_batch ({}) and n_seq ({}) must be positive", options.n_batch, options.n_seq));
  }
  std::unique_ptr<Context> ctx(new Context(model, options));
  ctx->n_ctx_ = options.n_ctx != 0 ? options.n_ctx : c.n_ctx_train;
  ctx->options_.n_batch = std::min(options.n_batch, ctx->n_ctx_);
  if (options.pool != nullptr) {
    ctx->pool_ = options.pool;
  } else {
    const int threads = options.n_threads > 0 ? options.n_threads
                                              : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    ctx->own_pool_ = std::make_unique<ThreadPool>(threads);
    ctx->pool_ = ctx->own_pool_.get();
  }
  if (!c.is_encoder()) {
    CAIRN_ASSIGN_OR_RETURN(ctx->cache_, KvCache::Create(c.n_layer, c.n_embd_kv(), ctx->n_ctx_, options.n_seq,
                                                        options.kv_type));
  }
  return ctx;
}

int32_t Context::SeqLength(int32_t seq) const {
  if (cache_ == nullptr || seq < 0 || seq >= static_cast<int32_t>(options_.n_seq)) return 0;
  return cache_->SeqLength(seq);
}

void Context::TruncateSeq(int32_t seq, int32_t n) {
  if (cache_ == nullptr || seq < 0 || seq >= static_cast<int32_t>(options_.n_seq)) return;
  cache_->Truncate(seq, n);
}

uint32_t Context::free_cells() const { return cache_ == nullptr ? n_ctx_ : cache_->free(); }

absl::Status Context::Check(std::span<const BatchToken> batch, OutputKind kind) const {
  const ModelConfig& c = model_.config();
  if (batch.empty()) return absl::InvalidArgumentError("forward: the batch is empty");
  if (batch.size() > options_.n_batch) {
    return absl::InvalidArgumentError(
        fmt::format("forward: a batch of {} tokens exceeds n_batch {}", batch.size(), options_.n_batch));
  }
  if (kind == OutputKind::kLogits && !model_.has_logits()) {
    return absl::InvalidArgumentError(
        fmt::format("forward: {} is an encoder without a language-model head; ask for hidden states",
                    ArchName(c.arch)));
  }
  std::unordered_map<int32_t, int32_t> next;  // slot -> the position its next token must have
  for (size_t i = 0; i < batch.size(); ++i) {
    const BatchToken& b = batch[i];
    if (b.token < 0 || b.token >= model_.n_vocab()) {
      return absl::InvalidArgumentError(fmt::format("forward: batch entry {}: token id {} is out of range (the "
                                                    "vocabulary has {} tokens)",
                                                    i, b.token, model_.n_vocab()));
    }
    if (b.seq < 0 || b.seq >= static_cast<int32_t>(options_.n_seq)) {
      return absl::InvalidArgumentError(fmt::format("forward: batch entry {}: sequence slot {} is out of range "
                                                    "(the context has {} slots)",
                                                    i, b.seq, options_.n_seq));
    }
    if (c.is_encoder()) {
      if (b.pos < 0 || b.pos >= static_cast<int32_t>(n_ctx_)) {
        return absl::InvalidArgumentError(fmt::format(
            "forward: batch entry {}: position {} is outside the context of {} tokens", i, b.pos, n_ctx_));
      }
      continue;
    }
    auto it = next.try_emplace(b.seq, cache_->SeqLength(b.seq)).first;
    if (b.pos != it->second) {
      return absl::InvalidArgumentError(fmt::format(
          "forward: batch entry {}: sequence {} continues at position {}, but the entry has position {}", i, b.seq,
          it->second, b.pos));
    }
    ++it->second;
  }
  if (cache_ != nullptr && batch.size() > cache_->free()) {
    return absl::ResourceExhaustedError(fmt::format("forward: the KV cache is full: the batch needs {} cells, {} of "
                                                    "{} are free",
                                                    batch.size(), cache_->free(), cache_->n_cells()));
  }
  return absl::OkStatus();
}

void Context::ForTokens(int64_t n, int64_t cost_per_token, const std::function<void(int64_t, int64_t)>& fn) {
  // Below some tens of microseconds of work a dispatch costs more than it saves.
  if (pool_->size() > 1 && n > 1 && n * cost_per_token >= 32768) {
    pool_->ParallelFor(n, fn);
  } else {
    fn(0, n);
  }
}

absl::Status Context::Forward(std::span<const BatchToken> batch, OutputKind kind) {
  CAIRN_RETURN_IF_ERROR(Check(batch, kind));
  const ModelConfig& c = model_.config();
  Scratch& s = *s_;
  // Decoders run a long batch in micro-batches of kMicroBatch tokens: a micro-batch's keys
  // and values are in the cache before the next one attends to them, so the result is the
  // same, and the working buffers (about 25 KB per token for a 135 M model, 90 KB for a
  // 1 B one) stay small next to the weights. The matrix products pass over the weights
  // once per 64 tokens either way. An encoder's slot attends to its whole input: one pass.
  const size_t n = batch.size();
  const size_t step = cache_ != nullptr ? std::min<size_t>(n, kMicroBatch) : n;
  s.hidden.clear();
  for (size_t b = 0; b < n; b += step) {
    const auto part = batch.subspan(b, std::min(step, n - b));
    Layers(part);
    const int64_t e = c.n_embd;
    for (size_t r = 0; r < s.out_rows.size(); ++r) {
      const float* x = s.x.data() + (s.compacted ? static_cast<int64_t>(r) : s.out_rows[r]) * e;
      s.hidden.insert(s.hidden.end(), x, x + e);
    }
  }
  Outputs(kind);
  return absl::OkStatus();
}

void Context::Layers(std::span<const BatchToken> batch) {
  const ModelConfig& c = model_.config();
  const size_t n = batch.size();
  Scratch& s = *s_;
  s.x.resize(n * c.n_embd);
  s.xn.resize(n * c.n_embd);
  {
    // A decoder's feed-forward runs kMatMulTokenBlock tokens at a time (DecoderLayer); an
    // encoder's takes the whole batch.
    const size_t ffn_tokens = c.is_encoder() ? n : std::min<size_t>(n, kMatMulTokenBlock);
    const size_t nq = n * c.n_embd_q(), nkv = n * c.n_embd_kv(), ne = n * c.n_embd, nff = ffn_tokens * c.n_ff;
    // The feed-forward's output (n_embd floats a token) fits in a half of n_ff floats a
    // token unless n_ff < n_embd; then it gets room of its own after them.
    const bool narrow = c.n_ff < c.n_embd;
    s.work.resize(std::max(2 * nff + (narrow ? ffn_tokens * c.n_embd : 0), 2 * nq + 2 * nkv + ne));
    float* w = s.work.data();
    s.q = w;
    s.k = s.q + nq;
    s.v = s.k + nkv;
    s.attn = s.v + nkv;
    s.tmp = s.attn + nq;
    s.gate = w;
    s.up = w + nff;
    s.ffn_out = narrow ? w + 2 * nff : c.is_encoder() ? s.gate : s.up;
  }

  if (cache_ != nullptr) {
    s.cells.resize(n);
    for (size_t t = 0; t < n; ++t) s.cells[t] = cache_->Append(batch[t].seq);
    s.rope.resize(n * c.n_rot);
    for (size_t t = 0; t < n; ++t) {
      RopeAngles(batch[t].pos, static_cast<int>(c.n_rot), c.rope_freq_base, c.rope_freq_scale,
                 model_.weights().rope_freqs, s.rope.data() + t * c.n_rot);
    }
  } else {
    // Slots of an encoder batch: each token attends to the members of its own.
    s.members.resize(options_.n_seq);
    for (auto& m : s.members) m.clear();
    for (size_t t = 0; t < n; ++t) s.members[batch[t].seq].push_back(static_cast<int32_t>(t));
  }

  s.out_rows.clear();
  for (size_t t = 0; t < n; ++t) {
    if (batch[t].output) s.out_rows.push_back(static_cast<int32_t>(t));
  }
  s.compacted = false;

  Embed(batch);
  for (uint32_t il = 0; il < c.n_layer; ++il) {
    if (c.is_encoder()) {
      EncoderLayer(static_cast<int>(il), batch);
    } else {
      DecoderLayer(static_cast<int>(il), batch);
    }
  }
}

void Context::Embed(std::span<const BatchToken> batch) {
  const ModelConfig& c = model_.config();
  const Model::Weights& w = model_.weights();
  const int64_t e = c.n_embd;
  Scratch& s = *s_;
  auto row = [](const WeightView& m, int64_t r, float* out) {
    // The type is supported and the row inside the tensor (checked at load and in Check).
    Dequantize(m.type, static_cast<const uint8_t*>(m.data) + r * m.row_bytes, out, m.cols).IgnoreError();
  };
  if (!c.is_encoder()) {
    // Token rows come through the file once packing dropped the mapped pages (see
    // Model::embeddings_by_read), else straight from the mapping.
    const WeightView& m = w.token_embd;
    const bool by_read = model_.embeddings_by_read();
    const auto bytes = static_cast<size_t>(*RowBytes(m.type, m.cols));
    ForTokens(static_cast<int64_t>(batch.size()), e, [&](int64_t b, int64_t end) {
      std::vector<uint8_t> buf(by_read ? bytes : 0);
      for (int64_t t = b; t < end; ++t) {
        const uint8_t* src = static_cast<const uint8_t*>(m.data) + batch[t].token * m.row_bytes;
        if (by_read) {
          model_.file().Read(src, bytes, buf.data());
          src = buf.data();
        }
        Dequantize(m.type, src, s.x.data() + t * e, m.cols).IgnoreError();
      }
    });
    return;
  }
  // bert: token + token type 0 (single-segment input) + absolute position, then LayerNorm.
  s.embd_row.assign(static_cast<size_t>(e), 0.0f);
  if (w.token_types.rows > 0) row(w.token_types, 0, s.embd_row.data());
  ForTokens(static_cast<int64_t>(batch.size()), 4 * e, [&](int64_t b, int64_t end) {
    std::vector<float> pos(static_cast<size_t>(e));
    for (int64_t t = b; t < end; ++t) {
      float* x = s.x.data() + t * e;
      row(w.token_embd, batch[t].token, x);
      row(w.position_embd, batch[t].pos, pos.data());
      for (int64_t i = 0; i < e; ++i) x[i] += s.embd_row[i] + pos[i];
      LayerNorm(x, w.embd_norm, w.embd_norm_b, c.norm_eps, e, x);
    }
  });
}

void Context::DecoderLayer(int il, std::span<const BatchToken> batch) {
  const ModelConfig& c = model_.config();
  const Model::Layer& l = model_.weights().layers[il];
  const int64_t n = static_cast<int64_t>(batch.size());
  const int64_t e = c.n_embd, nq = c.n_embd_q(), nkv = c.n_embd_kv(), ff = c.n_ff;
  const int hd = static_cast<int>(c.head_dim);
  Scratch& s = *s_;

  ForTokens(n, e, [&](int64_t b, int64_t end) {
    for (int64_t t = b; t < end; ++t) RmsNorm(s.x.data() + t * e, l.attn_norm, c.norm_eps, e, s.xn.data() + t * e);
  });
  const MatMulOut qkv[] = {{&l.wq, s.q}, {&l.wk, s.k}, {&l.wv, s.v}};
  MatMulShared(qkv, s.xn.data(), n, pool_);
  const bool neox = c.rope_type == RopeType::kNeox;
  ForTokens(n, nq + 2 * nkv, [&](int64_t b, int64_t end) {
    for (int64_t t = b; t < end; ++t) {
      float* q = s.q + t * nq;
      float* k = s.k + t * nkv;
      float* v = s.v + t * nkv;
      if (l.bq != nullptr) {
        AddTo(q, l.bq, nq);
        AddTo(k, l.bk, nkv);
        AddTo(v, l.bv, nkv);
      }
      const float* cs = s.rope.data() + t * c.n_rot;
      Rope(q, static_cast<int>(c.n_head), hd, static_cast<int>(c.n_rot), neox, cs);
      Rope(k, static_cast<int>(c.n_head_kv), hd, static_cast<int>(c.n_rot), neox, cs);
      const int32_t cell = s.cells[t];
      if (cache_->type() == KvType::kF16) {
        ToF16(k, nkv, static_cast<uint16_t*>(cache_->K(il, cell)));
        ToF16(v, nkv, static_cast<uint16_t*>(cache_->V(il, cell)));
      } else {
        std::memcpy(cache_->K(il, cell), k, nkv * sizeof(float));
        std::memcpy(cache_->V(il, cell), v, nkv * sizeof(float));
      }
    }
  });
  const int64_t m = Compact(il, n);
  if (m == 0) return;
  Attention(il, batch, m);
  MatMul(l.wo, s.attn, m, s.tmp, pool_);
  ForTokens(m, e, [&](int64_t b, int64_t end) {
    for (int64_t t = b; t < end; ++t) {
      float* x = s.x.data() + t * e;
      AddTo(x, s.tmp + t * e, e);
      RmsNorm(x, l.ffn_norm, c.norm_eps, e, s.xn.data() + t * e);
    }
  });
  // The feed-forward kMatMulTokenBlock tokens at a time: its buffers (the largest of a
  // micro-batch, 2 * n_ff floats a token) are then sized for that many tokens, and the
  // products read the weights as often as in one call.
  for (int64_t c0 = 0; c0 < m; c0 += kMatMulTokenBlock) {
    const int64_t cn = std::min<int64_t>(kMatMulTokenBlock, m - c0);
    const MatMulOut gate_up[] = {{&l.gate, s.gate}, {&l.up, s.up}};
    MatMulShared(gate_up, s.xn.data() + c0 * e, cn, pool_);
    ForTokens(cn, 8 * ff, [&](int64_t b, int64_t end) {
      SiluMul(s.gate + b * ff, s.up + b * ff, (end - b) * ff, s.gate + b * ff);
    });
    MatMul(l.down, s.gate, cn, s.ffn_out, pool_);
    ForTokens(cn, e, [&](int64_t b, int64_t end) {
      AddTo(s.x.data() + (c0 + b) * e, s.ffn_out + b * e, (end - b) * e);
    });
  }
}

void Context::EncoderLayer(int il, std::span<const BatchToken> batch) {
  const ModelConfig& c = model_.config();
  const Model::Layer& l = model_.weights().layers[il];
  const int64_t n = static_cast<int64_t>(batch.size());
  const int64_t e = c.n_embd, nq = c.n_embd_q(), nkv = c.n_embd_kv(), ff = c.n_ff;
  Scratch& s = *s_;

  const MatMulOut qkv[] = {{&l.wq, s.q}, {&l.wk, s.k}, {&l.wv, s.v}};
  MatMulShared(qkv, s.x.data(), n, pool_);
  ForTokens(n, nq + 2 * nkv, [&](int64_t b, int64_t end) {
    for (int64_t t = b; t < end; ++t) {
      AddTo(s.q + t * nq, l.bq, nq);
      AddTo(s.k + t * nkv, l.bk, nkv);
      AddTo(s.v + t * nkv, l.bv, nkv);
    }
  });
  const int64_t m = Compact(il, n);
  if (m == 0) return;
  Attention(il, batch, m);
  MatMul(l.wo, s.attn, m, s.tmp, pool_);
  ForTokens(m, 4 * e, [&](int64_t b, int64_t end) {
    for (int64_t t = b; t < end; ++t) {
      float* x = s.x.data() + t * e;
      AddTo(x, s.tmp + t * e, e);
      AddTo(x, l.bo, e);
      LayerNorm(x, l.attn_out_norm, l.attn_out_norm_b, c.norm_eps, e, x);
    }
  });
  MatMul(l.up, s.x.data(), m, s.up, pool_);
  ForTokens(m, 16 * ff, [&](int64_t b, int64_t end) {
    for (int64_t t = b; t < end; ++t) {
      float* u = s.up + t * ff;
      AddTo(u, l.b_up, ff);
      Gelu(u, ff);
    }
  });
  MatMul(l.down, s.up, m, s.ffn_out, pool_);
  ForTokens(m, 4 * e, [&](int64_t b, int64_t end) {
    for (int64_t t = b; t < end; ++t) {
      float* x = s.x.data() + t * e;
      AddTo(x, s.ffn_out + t * e, e);
      AddTo(x, l.b_down, e);
      LayerNorm(x, l.out_norm, l.out_norm_b, c.norm_eps, e, x);
    }
  });
}

// In the last layer, once every token's K/V is in place, the tokens without an output
// are dropped: their attention, feed-forward and final norm would be thrown away.
// Moves the output tokens' rows of x and q to the front and returns their count.
int64_t Context::Compact(int il, int64_t n) {
  Scratch& s = *s_;
  const int64_t n_out = static_cast<int64_t>(s.out_rows.size());
  if (il != static_cast<int>(model_.config().n_layer) - 1 || n_out == n) return n;
  const int64_t e = model_.config().n_embd, nq = model_.config().n_embd_q();
  for (int64_t r = 0; r < n_out; ++r) {
    const int64_t t = s.out_rows[r];  // >= r: rows only move towards the front
    if (t == r) continue;
    std::copy_n(s.x.data() + t * e, e, s.x.data() + r * e);
    std::copy_n(s.q + t * nq, nq, s.q + r * nq);
  }
  s.compacted = true;
  return n_out;
}

// softmax(q k^T / sqrt(head_dim)) v for every (token, head), spread over the pool.
// Grouped-query attention: query head h reads kv head h / (n_head / n_head_kv).
//
// Work items are (slot, kv head, a tile of up to kQueryTile of the slot's query rows).
// Key and value rows are addressed as base + index * n_embd_kv: the index is the cache
// cell of each position (decoders) or the batch index of each member of the slot
// (encoders). A lone query (decoding) reads them in place, one dot product per key. A
// tile of several queries (prompt processing) copies the rows it needs to float32
// once and computes all its queries' scores, softmax and weighted sums as small
// matrix products (TileScores, TileValues), masking each query's keys past its
// position.
void Context::Attention(int il, std::span<const BatchToken> batch, int64_t rows) {
  constexpr int64_t kQueryTile = 32;
  const ModelConfig& c = model_.config();
  const int64_t nq = c.n_embd_q(), nkv = c.n_embd_kv(), hd = c.head_dim;
  const int64_t group = c.n_head / c.n_head_kv;
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(hd)));
  Scratch& s = *s_;
  KvCache* cache = cache_.get();
  const bool f16 = cache != nullptr && cache->type() == KvType::kF16;
  const size_t elem = cache != nullptr ? cache->elem_bytes() : sizeof(float);
  auto entry = [&](int64_t r) -> const BatchToken& { return batch[s.compacted ? s.out_rows[r] : r]; };

  // Query rows of each slot, in batch order (for a decoder: ascending positions).
  s.seq_rows.resize(options_.n_seq);
  for (auto& v : s.seq_rows) v.clear();
  for (int64_t r = 0; r < rows; ++r) s.seq_rows[entry(r).seq].push_back(static_cast<int32_t>(r));
  s.items.clear();
  for (int32_t seq = 0; seq < static_cast<int32_t>(options_.n_seq); ++seq) {
    const int32_t n_rows = static_cast<int32_t>(s.seq_rows[seq].size());
    for (int32_t kvh = 0; kvh < static_cast<int32_t>(c.n_head_kv); ++kvh) {
      const int32_t h0 = kvh * static_cast<int32_t>(group), h1 = h0 + static_cast<int32_t>(group);
      if (n_rows == 1) {
        // Decoding: one item per query head, so that few kv heads still spread.
        for (int32_t h = h0; h < h1; ++h) s.items.push_back({seq, kvh, 0, 1, h, h + 1});
        continue;
      }
      for (int32_t b = 0; b < n_rows; b += kQueryTile) {
        s.items.push_back({seq, kvh, b, std::min<int32_t>(n_rows, b + kQueryTile), h0, h1});
      }
    }
  }

  auto body = [&](int64_t begin, int64_t end) {
    thread_local std::vector<float> scores, qs, kf, vf, qt, st, o;
    thread_local std::vector<int32_t> keys, key_pos;
    qs.resize(static_cast<size_t>(hd));
    for (int64_t it = begin; it < end; ++it) {
      const Scratch::AttnItem& item = s.items[it];
      const int32_t* tile = s.seq_rows[item.seq].data() + item.begin;
      const int64_t n_rows = item.end - item.begin, kvh = item.kvh;
      // The slot's keys: row index and position of each.
      const char *kbase, *vbase;
      const int32_t* index;
      int64_t n_keys;
      if (cache != nullptr) {
        kbase = static_cast<const char*>(cache->K(il, 0)) + kvh * hd * elem;
        vbase = static_cast<const char*>(cache->V(il, 0)) + kvh * hd * elem;
        index = cache->SeqCells(item.seq);
        n_keys = entry(tile[n_rows - 1]).pos + 1;  // through the tile's last position
      } else {
        kbase = reinterpret_cast<const char*>(s.k + kvh * hd);
        vbase = reinterpret_cast<const char*>(s.v + kvh * hd);
        index = s.members[item.seq].data();
        n_keys = static_cast<int64_t>(s.members[item.seq].size());
      }
      // Whether key j is visible to a query at position p.
      auto visible = [&](int64_t j, int32_t p) {
        if (cache != nullptr) return j <= p;
        return !c.causal || batch[index[j]].pos <= p;
      };

      if (n_rows == 1) {
        const int64_t r = tile[0];
        const int32_t p = entry(r).pos;
        const int32_t* idx = index;
        int64_t n = n_keys;
        if (cache == nullptr && c.causal) {
          keys.clear();
          for (int64_t j = 0; j < n_keys; ++j) {
            if (visible(j, p)) keys.push_back(index[j]);
          }
          idx = keys.data();
          n = static_cast<int64_t>(keys.size());
        }
        scores.resize(static_cast<size_t>(n));
        for (int64_t h = item.h_begin; h < item.h_end; ++h) {
          const float* q = s.q + r * nq + h * hd;
          for (int64_t d = 0; d < hd; ++d) qs[d] = q[d] * scale;
          float* out = s.attn + r * nq + h * hd;
          if (f16) {
            const auto* kb = reinterpret_cast<const uint16_t*>(kbase);
            GatherDotF16(qs.data(), kb, idx, n, nkv, hd, scores.data());
            Softmax(scores.data(), n);
            GatherSumF16(scores.data(), reinterpret_cast<const uint16_t*>(vbase), idx, n, nkv, hd, out);
          } else {
            GatherDot(qs.data(), reinterpret_cast<const float*>(kbase), idx, n, nkv, hd, scores.data());
            Softmax(scores.data(), n);
            GatherSum(scores.data(), reinterpret_cast<const float*>(vbase), idx, n, nkv, hd, out);
          }
        }
        continue;
      }

      // A tile: keys and values as float32 rows, queries (all heads of the group)
      // as the columns of qt, padded to a multiple of 16 with zero queries.
      kf.resize(static_cast<size_t>(n_keys * hd));
      vf.resize(static_cast<size_t>(n_keys * hd));
      for (int64_t j = 0; j < n_keys; ++j) {
        const size_t off = static_cast<size_t>(index[j]) * nkv * elem;
        if (f16) {
          FromF16(reinterpret_cast<const uint16_t*>(kbase + off), hd, kf.data() + j * hd);
          FromF16(reinterpret_cast<const uint16_t*>(vbase + off), hd, vf.data() + j * hd);
        } else {
          std::memcpy(kf.data() + j * hd, kbase + off, hd * sizeof(float));
          std::memcpy(vf.data() + j * hd, vbase + off, hd * sizeof(float));
        }
      }
      const int64_t m = n_rows * group, mp = (m + 15) / 16 * 16;
      qt.assign(static_cast<size_t>(hd * mp), 0.0f);
      for (int64_t i = 0; i < n_rows; ++i) {
        for (int64_t g = 0; g < group; ++g) {
          const float* q = s.q + tile[i] * nq + (kvh * group + g) * hd;
          for (int64_t d = 0; d < hd; ++d) qt[d * mp + i * group + g] = q[d] * scale;
        }
      }
      st.resize(static_cast<size_t>(n_keys * mp));
      TileScores(kf.data(), n_keys, hd, qt.data(), mp, st.data());
      auto mask = [&](float value) {
        if (cache == nullptr && !c.causal) return;  // an encoder's queries see every key
        for (int64_t i = 0; i < n_rows; ++i) {
          const int32_t p = entry(tile[i]).pos;
          // A decoder's keys are positions 0, 1, ...: the hidden ones are those past p.
          for (int64_t j = cache != nullptr ? p + 1 : 0; j < n_keys; ++j) {
            if (visible(j, p)) continue;
            for (int64_t g = 0; g < group; ++g) st[j * mp + i * group + g] = value;
          }
        }
      };
      mask(-INFINITY);
      SoftmaxColumns(st.data(), n_keys, mp);
      mask(0.0f);  // exactly zero, whatever exp(-inf) rounded to
      o.resize(static_cast<size_t>(mp * hd));
      TileValues(st.data(), n_keys, mp, vf.data(), hd, o.data());
      for (int64_t i = 0; i < n_rows; ++i) {
        for (int64_t g = 0; g < group; ++g) {
          std::copy_n(o.data() + (i * group + g) * hd, hd, s.attn + tile[i] * nq + (kvh * group + g) * hd);
        }
      }
    }
  };
  const int64_t items = static_cast<int64_t>(s.items.size());
  if (pool_->size() > 1 && items > 1) {
    pool_->ParallelFor(items, body);
  } else {
    body(0, items);
  }
}

void Context::Outputs(OutputKind kind) {
  const ModelConfig& c = model_.config();
  const Model::Weights& w = model_.weights();
  const int64_t e = c.n_embd;
  Scratch& s = *s_;
  n_outputs_ = static_cast<int32_t>(s.hidden.size() / static_cast<size_t>(e));
  output_width_ = kind == OutputKind::kLogits ? static_cast<int32_t>(c.n_vocab) : static_cast<int32_t>(e);
  if (n_outputs_ == 0) return;
  // The output tokens' hidden states, with the decoders' final norm (in place).
  float* h = s.hidden.data();
  if (!c.is_encoder()) {
    for (int32_t r = 0; r < n_outputs_; ++r) RmsNorm(h + r * e, w.output_norm, c.norm_eps, e, h + r * e);
  }
  if (kind == OutputKind::kLogits) {
    outputs_.resize(static_cast<size_t>(n_outputs_) * c.n_vocab);
    MatMul(w.output, h, n_outputs_, outputs_.data(), pool_);
  } else {
    outputs_.assign(h, h + static_cast<size_t>(n_outputs_) * e);
  }
}

}  // namespace cairn::infer
