// cairn/server/openai_api.h — the OpenAI wire format: request parsing and response bodies.
//
// Parsers take a parsed JSON object and return InvalidArgument naming the field
// ("'messages[2].content' must be a string or an array of text parts, got a number")
// for wrong types and bad values; fields the API does not know are ignored, as
// OpenAI's clients send extras (user, logprobs: false, ...). Only n = 1 is served.
//
// Defaults follow OpenAI's, not llama.cpp's: temperature 1, top_p 1, no top-k and no
// min-p; an absent seed means a fresh random one; max_tokens absent means until the
// context is full.
//
// Builders produce the bodies exactly as OpenAI shapes them: chat.completion,
// chat.completion.chunk (server-sent events), text_completion, embeddings (float
// arrays or base64 little-endian float32, as the official clients request by
// default), and the model list.
//
// Thread-safety: stateless functions.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "cairn/infer/chat_template.h"
#include "cairn/infer/sampler.h"
#include "nlohmann/json.hpp"

namespace cairn::server {

enum class ResponseFormat { kText, kJsonObject, kJsonSchema };

struct CompletionRequest {
  bool chat = true;                           // /v1/chat/completions (else /v1/completions)
  std::string model;                          // empty when absent
  std::vector<infer::ChatMessage> messages;   // chat
  std::string prompt;                         // completions
  infer::SamplerParams sampling;              // seed filled in (random when absent)
  int32_t max_tokens = -1;                    // max_completion_tokens or max_tokens; -1: none
  std::vector<std::string> stop;
  bool stream = false;
  bool include_usage = false;                 // stream_options.include_usage
  bool ignore_eos = false;                    // llama-server's extension: generate past EOS (benchmarks)
  ResponseFormat format = ResponseFormat::kText;
  nlohmann::json schema;                      // json_schema.schema (null: any object)
  nlohmann::json cairn;                       // the "cairn" extension object as sent (null when absent)
};

absl::StatusOr<CompletionRequest> ParseChatCompletionRequest(const nlohmann::json& body);
absl::StatusOr<CompletionRequest> ParseCompletionRequest(const nlohmann::json& body);

struct EmbeddingRequest {
  std::string model;
  std::vector<std::string> input;  // at least one
  bool base64 = false;             // encoding_format "base64" (else "float")
};
absl::StatusOr<EmbeddingRequest> ParseEmbeddingRequest(const nlohmann::json& body);

struct Usage {
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  int64_t cached_tokens = 0;
};
nlohmann::json UsageJson(const Usage& usage);

// A fresh id: "chatcmpl-<24 hex digits>" / "cmpl-...".
std::string NewCompletionId(bool chat);

nlohmann::json ChatCompletionJson(std::string_view id, int64_t created, std::string_view model, std::string_view text,
                                  std::string_view finish_reason, const Usage& usage);
// One chat.completion.chunk; `delta` e.g. {"role":"assistant","content":""} or
// {"content":"..."}; a null finish_reason is sent as null. With `usage_field` the
// chunk carries "usage": null (OpenAI does so when include_usage is on).
nlohmann::json ChatChunkJson(std::string_view id, int64_t created, std::string_view model, nlohmann::json delta,
                             std::optional<std::string_view> finish_reason, bool usage_field);
// The last chunk of include_usage: empty choices and the usage.
nlohmann::json ChatUsageChunkJson(std::string_view id, int64_t created, std::string_view model, const Usage& usage);

nlohmann::json CompletionJson(std::string_view id, int64_t created, std::string_view model, std::string_view text,
                              std::string_view finish_reason, const Usage& usage);
nlohmann::json CompletionChunkJson(std::string_view id, int64_t created, std::string_view model,
                                   std::string_view text, std::optional<std::string_view> finish_reason,
                                   bool usage_field);
nlohmann::json CompletionUsageChunkJson(std::string_view id, int64_t created, std::string_view model,
                                        const Usage& usage);

// {"object":"list","data":[{"object":"embedding","index":i,"embedding":...}],"model","usage"}.
nlohmann::json EmbeddingsJson(std::string_view model, const std::vector<std::vector<float>>& vectors, bool base64,
                              int64_t prompt_tokens);

// One server-sent event: "data: <json>\n\n".
std::string SseEvent(const nlohmann::json& data);
inline constexpr std::string_view kSseDone = "data: [DONE]\n\n";

}  // namespace cairn::server
