#include "cairn/infer/generate.h"

#include <algorithm>
#include <chrono>
#include <limits>
#include <utility>

#include <fmt/format.h>

#include "cairn/infer/unicode.h"

namespace cairn::infer {
namespace {

using Clock = std::chrono::steady_clock;

double MsSince(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

}  // namespace

absl::StatusOr<LoadedModel> LoadModelAndTokenizer(const std::string& path) {
  absl::StatusOr<std::unique_ptr<Model>> model = Model::Load(path);
  if (!model.ok()) return model.status();
  absl::StatusOr<Vocab> vocab = LoadVocab((*model)->file());
  if (!vocab.ok()) return vocab.status();
  absl::StatusOr<Tokenizer> tokenizer = Tokenizer::Create(*std::move(vocab));
  if (!tokenizer.ok()) return tokenizer.status();
  (*model)->file().ReleaseMetadataPages();
  return LoadedModel{*std::move(model), *std::move(tokenizer)};
}

std::string_view FinishReasonName(FinishReason reason) {
  switch (reason) {
    case FinishReason::kStop:
      return "stop";
    case FinishReason::kLength:
      return "length";
    case FinishReason::kCancelled:
      return "cancelled";
  }
  return "stop";
}

// ----------------------------------------------------------------- StopStringMatcher

StopStringMatcher::StopStringMatcher(std::vector<std::string> stop) {
  for (std::string& s : stop) {
    if (s.empty()) continue;
    max_stop_ = std::max(max_stop_, s.size());
    stop_.push_back(std::move(s));
  }
}

bool StopStringMatcher::Append(std::string_view piece) {
  const size_t old_size = text_.size();
  text_.append(piece);
  // The text before this piece held no whole stop string, so a new one ends inside
  // the piece: search only from where it could begin. The earliest match wins.
  size_t cut = std::string::npos;
  for (const std::string& s : stop_) {
    const size_t from = old_size + 1 > s.size() ? old_size + 1 - s.size() : 0;
    const size_t pos = text_.find(s, from);
    if (pos < cut) cut = pos;
  }
  if (cut != std::string::npos) {
    text_.resize(cut);
    taken_ = std::min(taken_, text_.size());
    held_ = 0;
    return true;
  }
  // Hold back the longest tail that is the beginning of some stop string.
  held_ = 0;
  for (const std::string& s : stop_) {
    for (size_t k = std::min(s.size() - 1, text_.size()); k > held_; --k) {
      if (std::string_view(text_).substr(text_.size() - k) == std::string_view(s).substr(0, k)) {
        held_ = k;
        break;
      }
    }
  }
  return false;
}

std::string_view StopStringMatcher::TakeFinal() {
  const size_t end = std::max(taken_, text_.size() - held_);
  std::string_view out = std::string_view(text_).substr(taken_, end - taken_);
  taken_ = end;
  return out;
}

// ------------------------------------------------------------------------ Generate

absl::StatusOr<GenerateResult> Generate(Session& session, const Tokenizer& tokenizer,
                                        std::span<const int32_t> prompt, const GenerateOptions& options) {
  if (prompt.empty()) return absl::InvalidArgumentError("generate: the prompt has no tokens");
  const Model& model = session.context().model();
  if (!model.has_logits()) {
    return absl::InvalidArgumentError(fmt::format("generate: a {} model has no language-model head (embed with it instead)",
                                                  ArchName(model.config().arch)));
  }
  if (absl::Status st = ValidateSamplerParams(options.sampling); !st.ok()) return st;
  if (tokenizer.vocab_size() > model.n_vocab()) {
    return absl::InvalidArgumentError(fmt::format("generate: the vocabulary has {} tokens, the model only {}",
                                                  tokenizer.vocab_size(), model.n_vocab()));
  }
  for (size_t i = 0; i < prompt.size(); ++i) {
    if (prompt[i] < 0 || prompt[i] >= model.n_vocab()) {
      return absl::InvalidArgumentError(
          fmt::format("generate: prompt token {} is {}, outside the vocabulary (0..{})", i, prompt[i], model.n_vocab() - 1));
    }
  }

  // Keep what the cache already holds of this prompt, but evaluate at least its last
  // token: its logits are where sampling starts.
  std::vector<int32_t> held;
  if (options.session_tokens != nullptr && static_cast<int32_t>(options.session_tokens->size()) == session.pos()) {
    held = std::move(*options.session_tokens);
  }
  size_t keep = 0;
  while (keep < held.size() && keep + 1 < prompt.size() && held[keep] == prompt[keep]) ++keep;
  if (absl::Status st = session.Truncate(static_cast<int32_t>(keep)); !st.ok()) return st;
  held.resize(keep);
  if (options.session_tokens != nullptr) options.session_tokens->clear();

  GenerateResult r;
  r.usage.prompt_tokens = static_cast<int32_t>(prompt.size());
  r.usage.cached_tokens = static_cast<int32_t>(keep);
  r.timings.prompt_eval_tokens = static_cast<int32_t>(prompt.size() - keep);

  Clock::time_point t0 = Clock::now();
  absl::StatusOr<std::span<const float>> logits = session.Decode(prompt.subspan(keep));
  if (!logits.ok()) return logits.status();
  r.timings.prompt_ms = MsSince(t0);
  held.insert(held.end(), prompt.begin() + static_cast<std::ptrdiff_t>(keep), prompt.end());

  Sampler sampler(options.sampling);
  sampler.Accept(prompt);
  StreamDecoder decoder(tokenizer, {.render_special = false, .strip_prefix_space = false});
  StopStringMatcher matcher(options.stop);
  bool cancelled = false, stop_string = false;
  auto emit = [&] {
    std::string_view piece = matcher.TakeFinal();
    if (!piece.empty() && options.on_text && !options.on_text(piece)) cancelled = true;
  };

  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  std::vector<float> masked;
  r.finish = FinishReason::kLength;
  for (;;) {
    if (options.max_tokens >= 0 && static_cast<int32_t>(r.tokens.size()) >= options.max_tokens) break;
    t0 = Clock::now();
    int32_t token = 0;
    if (options.constraint != nullptr) {
      masked.assign(logits->begin(), logits->end());
      options.constraint->Apply(masked);
      const auto best = std::max_element(masked.begin(), masked.end());
      if (best == masked.end() || *best == kNegInf) break;  // nothing allowed: ends with "length"
      token = sampler.Sample(masked);
      if (token < 0 || static_cast<size_t>(token) >= masked.size() || masked[static_cast<size_t>(token)] == kNegInf) {
        token = static_cast<int32_t>(best - masked.begin());
      }
      if (absl::Status st = options.constraint->Accept(token); !st.ok()) return st;
    } else {
      token = sampler.Sample(*logits);
    }
    r.timings.sample_ms += MsSince(t0);
    sampler.Accept(token);
    if (!options.ignore_eos && tokenizer.IsEndOfGeneration(token)) {
      r.finish = FinishReason::kStop;
      break;
    }
    r.tokens.push_back(token);
    if (matcher.Append(unicode::ToValidUtf8(decoder.Push(token)))) {
      r.finish = FinishReason::kStop;
      stop_string = true;
      emit();
      break;
    }
    emit();
    if (cancelled) {
      r.finish = FinishReason::kCancelled;
      break;
    }
    if (options.constraint != nullptr && options.constraint->Complete()) {
      r.finish = FinishReason::kStop;
      break;
    }
    if (options.max_tokens >= 0 && static_cast<int32_t>(r.tokens.size()) >= options.max_tokens) break;
    if (session.context().free_cells() == 0) break;  // the context is full
    t0 = Clock::now();
    logits = session.Decode(std::span<const int32_t>(&token, 1));
    if (!logits.ok()) return logits.status();
    r.timings.decode_ms += MsSince(t0);
    ++r.timings.decode_tokens;
    held.push_back(token);
  }

  if (!cancelled && !stop_string) {
    // Bytes of a character the stream never completed.
    if (matcher.Append(unicode::ToValidUtf8(decoder.Flush()))) r.finish = FinishReason::kStop;
    matcher.Finish();
    emit();
  }
  r.text = matcher.text();
  r.usage.completion_tokens = static_cast<int32_t>(r.tokens.size());
  if (options.session_tokens != nullptr) *options.session_tokens = std::move(held);
  return r;
}

}  // namespace cairn::infer
