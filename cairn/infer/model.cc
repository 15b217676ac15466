#include "cairn/infer/model.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <unordered_map>

#include <fmt/format.h>

#include "cairn/base/status.h"

namespace cairn::infer {
namespace {

absl::Status ModelError(const GgufFile& file, const std::string& what) {
  return absl::InvalidArgumentError(fmt::format("model {}: {}", file.path(), what));
}

}  // namespace

Model::~Model() = default;

absl::StatusOr<std::unique_ptr<Model>> Model::Load(const std::string& path) {
  CAIRN_ASSIGN_OR_RETURN(std::unique_ptr<GgufFile> file, GgufFile::Open(path));
  return FromFile(std::move(file));
}

absl::StatusOr<std::unique_ptr<Model>> Model::FromFile(std::unique_ptr<GgufFile> file) {
  if (file == nullptr) return absl::InvalidArgumentError("model: no file");
  std::unique_ptr<Model> m(new Model());
  m->file_ = std::move(file);
  CAIRN_ASSIGN_OR_RETURN(m->config_, ReadModelConfig(*m->file_));
  CAIRN_RETURN_IF_ERROR(CheckModelTensors(*m->file_, m->config_));
  const ModelConfig& c = m->config_;
  if (!c.rope_scaling.empty() && c.rope_scaling != "none" && c.rope_scaling != "linear") {
    return ModelError(*m->file_, fmt::format("RoPE scaling '{}' is not supported (cairn runs none and linear)",
                                             c.rope_scaling));
  }
  if (c.pooling == Pooling::kRank) {
    return ModelError(*m->file_, "pooling type 'rank' (a reranker head) is not supported");
  }
  CAIRN_RETURN_IF_ERROR(m->Bind());
  for (const GgufTensor& t : m->file_->tensors()) m->weight_bytes_ += t.size;
  // On by default since the panels are held in huge pages (kernels.cc, AllocPanels):
  // prompts, batched steps and one-token decode all read them faster than the rows.
  // CAIRN_INFER_PACK=0 keeps the rows (less load time; for comparisons).
  if (const char* env = std::getenv("CAIRN_INFER_PACK"); env == nullptr || std::strcmp(env, "0") != 0) {
    m->PackWeights();
  }
  return m;
}

// Repacks every matrix the forward pass multiplies by (not the embedding tables, which
// are only looked up row by row), one at a time, so at most one matrix is resident twice.
void Model::PackWeights() {
  // The output matrix first: while a matrix is packed its mapped pages and its copy are
  // both resident, so the peak is the copies made so far plus the matrix being packed;
  // packing the largest matrix (the output, often the embedding table) last would hold
  // it twice on top of every other copy.
  std::vector<WeightView*> views{&weights_.output};
  for (Layer& l : weights_.layers) {
    for (WeightView* v : {&l.wq, &l.wk, &l.wv, &l.wo, &l.gate, &l.up, &l.down}) views.push_back(v);
  }
  if (file_->mapped()) {
    // The norm weights and biases sit between the matrices in the file; reading one of them
    // later would bring back the large page around it (measured: two 2 MiB pages per
    // layer). They are small, so they are copied out of the mapping first.
    std::unordered_map<const void*, uint64_t> sizes;
    for (const GgufTensor& t : file_->tensors()) sizes[t.data] = t.size;
    auto own = [&](const float*& v) {
      const auto it = v == nullptr ? sizes.end() : sizes.find(v);
      if (it == sizes.end()) return;
      std::vector<float>& copy = owned_vectors_.emplace_back(it->second / sizeof(float));
      std::memcpy(copy.data(), v, copy.size() * sizeof(float));
      v = copy.data();
    };
    for (Layer& l : weights_.layers) {
      for (const float** v : {&l.attn_norm, &l.ffn_norm, &l.attn_out_norm, &l.attn_out_norm_b, &l.out_norm, &l.out_norm_b,
                              &l.bq, &l.bk, &l.bv, &l.bo, &l.b_up, &l.b_down}) {
        own(*v);
      }
    }
    for (const float** v : {&weights_.embd_norm, &weights_.embd_norm_b, &weights_.output_norm, &weights_.rope_freqs}) {
      own(*v);
    }
  }
  const long page = ::sysconf(_SC_PAGESIZE);
  for (WeightView* v : views) {
    if (v->rows == 0 || v->data == nullptr) continue;
    std::unique_ptr<PackedMatrix> p = PackMatrix(*v, nullptr);
    if (p == nullptr) continue;
    v->packed = p.get();
    packed_bytes_ += p->bytes();
    if (file_->mapped() && page > 0) {
      // The range is widened to 2 MiB boundaries (within the mapping), as the page cache
      // may hold the file in large pages that a partial range would leave mapped. Dropping
      // more is harmless: the mapping is a private, never-written view of the file, and
      // whatever is read later (the next matrix as it is packed) is faulted back in.
      constexpr uintptr_t kHuge = uintptr_t{2} << 20;
      const auto lo = reinterpret_cast<uintptr_t>(file_->bytes());
      const uintptr_t hi = (lo + file_->file_size()) / static_cast<uintptr_t>(page) * static_cast<uintptr_t>(page);
      const auto begin = reinterpret_cast<uintptr_t>(v->data);
      const uintptr_t end = begin + static_cast<uintptr_t>(p->rows) * v->row_bytes;
      const uintptr_t first = std::max(lo, begin / kHuge * kHuge), last = std::min(hi, (end + kHuge - 1) / kHuge * kHuge);
      if (last > first) ::madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED);
      embeddings_by_read_ = true;
    }
    packed_.push_back(std::move(p));
  }
}

Pooling Model::default_pooling() const {
  return config_.pooling == Pooling::kNone ? Pooling::kMean : config_.pooling;
}

// Points every weight at its tensor in the mapping. CheckModelTensors has checked
// presence, shapes and types; MatMul's own precondition is checked once more here so
// that a bad view is an error at load, never an abort during a forward pass.
absl::Status Model::Bind() {
  const GgufFile& f = *file_;
  const ModelConfig& c = config_;
  absl::Status status;
  auto matrix = [&](const std::string& name) -> WeightView {
    const GgufTensor* t = f.FindTensor(name);
    if (t == nullptr || t->n_dims != 2) {
      if (status.ok()) status = ModelError(f, fmt::format("tensor '{}' is missing or not a matrix", name));
      return WeightView{};
    }
    absl::StatusOr<uint64_t> row_bytes = RowBytes(t->type, t->ne[0]);
    WeightView w{t->type, t->ne[1], t->ne[0], t->data, row_bytes.ok() ? static_cast<size_t>(*row_bytes) : 0};
    if (absl::Status s = row_bytes.ok() ? CheckWeightView(w) : row_bytes.status(); !s.ok() && status.ok()) {
      status = ModelError(f, fmt::format("tensor '{}': {}", name, std::string(s.message())));
    }
    return w;
  };
  auto vec = [&](const std::string& name) -> const float* {
    const GgufTensor* t = f.FindTensor(name);
    if (t == nullptr || t->type != TensorType::kF32) {
      if (status.ok()) status = ModelError(f, fmt::format("tensor '{}' is missing or not f32", name));
      return nullptr;
    }
    if (reinterpret_cast<uintptr_t>(t->data) % alignof(float) != 0) {
      if (status.ok()) status = ModelError(f, fmt::format("tensor '{}' is not aligned for f32", name));
      return nullptr;
    }
    return reinterpret_cast<const float*>(t->data);
  };

  Weights& w = weights_;
  w.token_embd = matrix("token_embd.weight");
  if (c.is_encoder()) {
    if (c.n_token_types > 0) w.token_types = matrix("token_types.weight");
    w.position_embd = matrix("position_embd.weight");
    w.embd_norm = vec("token_embd_norm.weight");
    w.embd_norm_b = vec("token_embd_norm.bias");
  } else {
    w.output_norm = vec("output_norm.weight");
    w.output = c.tied_embeddings ? w.token_embd : matrix("output.weight");
    // Llama 3.1 and later ship their RoPE frequency scaling as divisors, one per
    // rotated pair (llama.cpp's optional rope_freqs.weight).
    if (const GgufTensor* t = f.FindTensor("rope_freqs.weight"); t != nullptr) {
      if (t->n_dims != 1 || t->ne[0] != c.n_rot / 2) {
        return ModelError(f, fmt::format("tensor 'rope_freqs.weight' has shape {}, expected [{}]", t->ShapeString(),
                                         c.n_rot / 2));
      }
      w.rope_freqs = vec("rope_freqs.weight");
    }
  }
  w.layers.resize(c.n_layer);
  for (uint32_t i = 0; i < c.n_layer; ++i) {
    const std::string b = fmt::format("blk.{}.", i);
    Layer& l = w.layers[i];
    l.wq = matrix(b + "attn_q.weight");
    l.wk = matrix(b + "attn_k.weight");
    l.wv = matrix(b + "attn_v.weight");
    l.wo = matrix(b + "attn_output.weight");
    if (c.qkv_bias) {
      l.bq = vec(b + "attn_q.bias");
      l.bk = vec(b + "attn_k.bias");
      l.bv = vec(b + "attn_v.bias");
    }
    l.up = matrix(b + "ffn_up.weight");
    l.down = matrix(b + "ffn_down.weight");
    if (c.is_encoder()) {
      l.bo = vec(b + "attn_output.bias");
      l.attn_out_norm = vec(b + "attn_output_norm.weight");
      l.attn_out_norm_b = vec(b + "attn_output_norm.bias");
      l.b_up = vec(b + "ffn_up.bias");
      l.b_down = vec(b + "ffn_down.bias");
      l.out_norm = vec(b + "layer_output_norm.weight");
      l.out_norm_b = vec(b + "layer_output_norm.bias");
    } else {
      l.attn_norm = vec(b + "attn_norm.weight");
      l.ffn_norm = vec(b + "ffn_norm.weight");
      l.gate = matrix(b + "ffn_gate.weight");
    }
  }
  return status;
}

// ---- Session ----

Session::Session(Context* ctx, int32_t seq) : ctx_(ctx), seq_(seq) {}

absl::StatusOr<std::unique_ptr<Session>> Session::Create(const Model& model, const ContextOptions& options) {
  ContextOptions o = options;
  o.n_seq = 1;
  CAIRN_ASSIGN_OR_RETURN(std::unique_ptr<Context> ctx, Context::Create(model, o));
  auto s = std::make_unique<Session>(ctx.get(), 0);
  s->own_ctx_ = std::move(ctx);
  return s;
}

absl::Status Session::CheckTokens(std::span<const int32_t> tokens) const {
  if (tokens.empty()) return absl::InvalidArgumentError("no tokens to evaluate");
  const int32_t n_vocab = ctx_->model().n_vocab();
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i] < 0 || tokens[i] >= n_vocab) {
      return absl::InvalidArgumentError(
          fmt::format("token id {} at index {} is out of range (the vocabulary has {} tokens)", tokens[i], i, n_vocab));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::span<const float>> Session::Decode(std::span<const int32_t> tokens) {
  if (!ctx_->model().has_logits()) {
    return absl::FailedPreconditionError(fmt::format(
        "{} is an encoder model without a language-model head: use Embed", ArchName(ctx_->model().config().arch)));
  }
  CAIRN_RETURN_IF_ERROR(CheckTokens(tokens));
  const int64_t n = static_cast<int64_t>(tokens.size());
  const int64_t at = pos();
  if (at + n > ctx_->n_ctx()) {
    return absl::OutOfRangeError(fmt::format(
        "{} tokens do not fit in the context: the sequence holds {} of {} positions, {} are left", n, at,
        ctx_->n_ctx(), ctx_->n_ctx() - at));
  }
  if (n > ctx_->free_cells()) {
    return absl::ResourceExhaustedError(fmt::format(
        "{} tokens do not fit in the KV cache: {} of its {} cells are free (other sequences hold the rest)", n,
        ctx_->free_cells(), ctx_->n_ctx()));
  }
  const int64_t n_batch = ctx_->n_batch();
  for (int64_t begin = 0; begin < n; begin += n_batch) {
    const int64_t end = std::min(n, begin + n_batch);
    batch_.clear();
    for (int64_t i = begin; i < end; ++i) {
      batch_.push_back({tokens[i], seq_, static_cast<int32_t>(at + i), i == n - 1});
    }
    CAIRN_RETURN_IF_ERROR(ctx_->Forward(batch_, OutputKind::kLogits));
  }
  const std::span<const float> out = ctx_->Output(0);
  logits_.assign(out.begin(), out.end());
  return std::span<const float>(logits_);
}

absl::Status Session::Truncate(int32_t n) {
  if (n < 0) return absl::InvalidArgumentError(fmt::format("cannot truncate to {} positions", n));
  ctx_->TruncateSeq(seq_, n);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<float>> Session::Embed(std::span<const int32_t> tokens, std::optional<Pooling> pooling) {
  CAIRN_RETURN_IF_ERROR(CheckTokens(tokens));
  const Model& model = ctx_->model();
  const Pooling pool = pooling.value_or(model.default_pooling());
  if (pool == Pooling::kRank || pool == Pooling::kNone) {
    return absl::InvalidArgumentError(fmt::format("pooling '{}' does not give one vector per input",
                                                  PoolingName(pool)));
  }
  const int64_t n = static_cast<int64_t>(tokens.size());
  if (n > ctx_->n_ctx()) {
    return absl::OutOfRangeError(
        fmt::format("{} tokens do not fit in the context of {} tokens", n, ctx_->n_ctx()));
  }
  const bool encoder = model.config().is_encoder();
  const int64_t n_batch = ctx_->n_batch();
  if (encoder && n > n_batch) {
    return absl::OutOfRangeError(fmt::format(
        "{} tokens exceed the batch size of {}: an encoder needs its whole input in one batch", n, n_batch));
  }
  ctx_->ClearSeq(seq_);
  if (n > ctx_->free_cells()) {
    return absl::ResourceExhaustedError(fmt::format(
        "{} tokens do not fit in the KV cache: {} of its {} cells are free", n, ctx_->free_cells(), ctx_->n_ctx()));
  }
  const int32_t width = model.n_embd();
  std::vector<double> sum(static_cast<size_t>(width), 0.0);
  absl::Status status;
  for (int64_t begin = 0; begin < n && status.ok(); begin += n_batch) {
    const int64_t end = std::min(n, begin + n_batch);
    batch_.clear();
    for (int64_t i = begin; i < end; ++i) {
      const bool out = pool == Pooling::kMean || (pool == Pooling::kCls && i == 0) ||
                       (pool == Pooling::kLast && i == n - 1);
      batch_.push_back({tokens[i], seq_, static_cast<int32_t>(i), out});
    }
    status = ctx_->Forward(batch_, OutputKind::kHidden);
    if (!status.ok()) break;
    for (int32_t r = 0; r < ctx_->n_outputs(); ++r) {
      const std::span<const float> row = ctx_->Output(r);
      for (int32_t j = 0; j < width; ++j) sum[j] += row[j];
    }
  }
  ctx_->ClearSeq(seq_);
  CAIRN_RETURN_IF_ERROR(status);
  if (pool == Pooling::kMean) {
    for (double& v : sum) v /= static_cast<double>(n);
  }
  double norm = 0;
  for (double v : sum) norm += v * v;
  norm = std::sqrt(norm);
  std::vector<float> out(static_cast<size_t>(width));
  for (int32_t j = 0; j < width; ++j) out[j] = static_cast<float>(norm > 0 ? sum[j] / norm : 0.0);
  return out;
}

}  // namespace cairn::infer
