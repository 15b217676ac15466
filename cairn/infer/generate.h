// cairn/infer/generate.h — text generation: prompt in, streamed completion out.
//
// Generate evaluates a prompt in a Session (one batched prefill), then samples one
// token at a time (sampler.h), feeding each back, until one of:
//   - an end-of-generation token (EOS, EOT, EOM: Tokenizer::IsEndOfGeneration),
//     which is not part of the result;                               finish "stop"
//   - one of the stop strings appears in the text; the text ends just before it;
//                                                                    finish "stop"
//   - max_tokens tokens, or the context is full;                     finish "length"
//   - the streaming callback returns false;                          finish "cancelled"
//   - with a constraint: when it is Complete() (the token that completed it is
//     part of the result);                                           finish "stop"
//
// Constraint (constraint.h): at each step it masks the logits before sampling (a
// copy: the session's logits are not changed) and is advanced by the token picked.
// If the sampler still picks a masked token (rounding in its draw can), the most
// likely allowed token is taken instead; if the constraint allows no token at all
// the generation ends with "length". The caller keeps the constraint's state: pass a
// fresh one for each generation.
//
// Streaming: the callback receives the completion as it becomes final, in pieces of
// complete UTF-8 (a character split over byte tokens is held until whole). Text that
// could still turn out to be the start of a stop string is held back too, so a stop
// string never leaks into the stream, even partially; when generation ends another
// way, what was held is sent. The pieces joined are exactly GenerateResult::text
// (except after a cancel: nothing more is sent once the callback said stop).
// Tokens are decoded as llama.cpp prints them: no space is stripped from the first
// one, control tokens print nothing.
//
// KV cache reuse: with `session_tokens` (the tokens the session holds, kept by the
// caller between calls), Generate keeps the cached positions that agree with the new
// prompt and evaluates only the rest: a chat that re-renders the whole conversation
// each turn pays only for the new turn. Without it the session is cleared first.
//
// The sampler sees the whole prompt as history (for the penalties), as llama.cpp's
// does. Not thread-safe: the session and the callback are used on the calling thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "cairn/infer/constraint.h"
#include "cairn/infer/model.h"
#include "cairn/infer/sampler.h"
#include "cairn/infer/tokenizer.h"

namespace cairn::infer {

enum class FinishReason { kStop, kLength, kCancelled };
// "stop", "length", "cancelled" (the OpenAI API's words).
std::string_view FinishReasonName(FinishReason reason);

struct GenerateOptions {
  int32_t max_tokens = 256;  // tokens to generate at most; < 0: until the context is full
  std::vector<std::string> stop;  // empty strings are ignored
  SamplerParams sampling;
  bool ignore_eos = false;  // keep going past end-of-generation tokens (benchmarks)
  // Called with each final piece of text (never empty); return false to cancel.
  std::function<bool(std::string_view piece)> on_text;
  // Restricts what may be generated (e.g. MakeJsonConstraint); not owned; null: none.
  TokenConstraint* constraint = nullptr;
  // In/out: the tokens the session holds before the call (must match session.pos()
  // to be used) and after it (prompt + the completion tokens that were evaluated).
  std::vector<int32_t>* session_tokens = nullptr;
};

struct GenerateUsage {
  int32_t prompt_tokens = 0;      // the whole prompt
  int32_t cached_tokens = 0;      // of which reused from the KV cache
  int32_t completion_tokens = 0;  // tokens sampled, the end-of-generation token excluded
};

struct GenerateTimings {
  int32_t prompt_eval_tokens = 0;  // prompt tokens evaluated (not cached)
  double prompt_ms = 0;
  int32_t decode_tokens = 0;  // tokens evaluated one at a time after the prompt
  double decode_ms = 0;
  double sample_ms = 0;
  double prompt_tokens_per_second() const { return prompt_ms > 0 ? prompt_eval_tokens * 1000.0 / prompt_ms : 0; }
  double decode_tokens_per_second() const { return decode_ms > 0 ? decode_tokens * 1000.0 / decode_ms : 0; }
};

struct GenerateResult {
  std::string text;
  std::vector<int32_t> tokens;  // the completion's tokens (stop strings cut the text, not these)
  FinishReason finish = FinishReason::kStop;
  GenerateUsage usage;
  GenerateTimings timings;
};

// A model and the tokenizer of the same file, as every command and service that runs one
// loads them: Model::Load, then the vocabulary; once the tokenizer (which keeps its own
// copies of the strings) is built, the file's metadata pages are released
// (GgufFile::ReleaseMetadataPages).
struct LoadedModel {
  std::unique_ptr<Model> model;
  Tokenizer tokenizer;
};
absl::StatusOr<LoadedModel> LoadModelAndTokenizer(const std::string& path);

// Errors (before anything is evaluated): an empty prompt, a model without logits
// (an encoder), invalid sampler parameters, a token id outside the vocabulary, a
// prompt longer than the context; errors of the forward pass are passed on.
absl::StatusOr<GenerateResult> Generate(Session& session, const Tokenizer& tokenizer,
                                        std::span<const int32_t> prompt, const GenerateOptions& options);

// The streaming half of Generate on its own (tests, and callers that produce text
// some other way): appends text, cuts it at the first stop string, and says how much
// is final. Pieces must be complete UTF-8 (stop strings too).
class StopStringMatcher {
 public:
  explicit StopStringMatcher(std::vector<std::string> stop);
  // Adds `piece`; returns true when a stop string is now complete (text() then ends
  // just before it, and everything is final).
  bool Append(std::string_view piece);
  // Declares the end of the text: what was held back becomes final.
  void Finish() { held_ = 0; }
  const std::string& text() const { return text_; }
  // Text not yet taken with TakeFinal that can no longer change.
  std::string_view TakeFinal();

 private:
  std::vector<std::string> stop_;
  size_t max_stop_ = 0;
  std::string text_;
  size_t taken_ = 0;
  size_t held_ = 0;  // bytes at the end of text_ that may begin a stop string
};

}  // namespace cairn::infer
