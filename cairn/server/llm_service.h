// cairn/server/llm_service.h — the node's language models behind the OpenAI-compatible API.
//
// An LlmService loads GGUF models (one LlmEngine per decoder: continuous batching,
// llm_engine.h; a ModelEmbedder per model for embeddings) and answers:
//   POST /v1/chat/completions   chat, rendered with the model's chat template
//   POST /v1/completions        plain text prompt
//   POST /v1/embeddings         pooled, L2-normalized vectors (bert or decoder models)
//   GET  /v1/models, GET /v1/models/{model}
// Streaming (stream: true) answers server-sent events: `data: <chunk>\n\n` per piece,
// the first chunk carrying the role, the last one the finish_reason, an optional usage
// chunk (stream_options.include_usage), then `data: [DONE]\n\n`.
//
// Errors use the server's one error shape: 400 naming the field for malformed JSON,
// wrong types and bad values, a prompt that does not fit the context (with the
// numbers) or an unsupported response_format; 404 for an unknown model; 429 with
// Retry-After when the model's queue is full; 503 with Retry-After when a request
// timed out before it got a slot or the service is stopping. A request that times
// out while generating ends with the text so far and finish_reason "length". A
// streaming client that disconnects cancels its sequence at the next token (the
// slot is free for the next step); a non-streaming request runs to its end or its
// timeout.
//
// Retrieval-augmented chat (rag.h): a chat request with "cairn": {"rag": {...}}
// retrieves passages from the collections given to SetCollections for the last
// user message, puts them into the system message, and answers them as
// "cairn": {"citations": [...]} (in the response, or in the first chunk of a stream).
//
// Metrics (MetricsRegistry): cairn_llm_requests_total{model,status} (status: the HTTP
// status, 499 for a client that went away), and the engine's token, latency, queue
// and KV gauges (llm_engine.h).
//
// Thread-safety: handlers run concurrently. Stop the HTTP server before destroying
// the service (streams in flight use it).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "cairn/base/metrics.h"
#include "cairn/server/llm_engine.h"
#include "cairn/server/router.h"
#include "cairn/vector/collection.h"

namespace cairn::server {

struct LlmModelOptions {
  std::string name;           // the API's model id; empty: the file name without .gguf
  std::string path;           // GGUF file
  int slots = 4;              // sequences decoding together
  int ctx = 0;                // tokens per slot; 0: the model's context length / slots
  int queue = 64;             // requests waiting beyond the slots (429 beyond)
  int threads = 0;            // forward-pass threads; 0: the hardware's, at most 8
  int prefill_chunk = 32;     // prompt tokens per step while others decode (LlmEngineOptions)
  double timeout_s = 600;     // per request, queueing included
  std::string chat_template;  // a format name (chat_template.h); empty: from the model
};

class LlmService {
 public:
  // Loads every model (names must be distinct). Errors name the model and the file.
  // `metrics` may be null (no metrics).
  static absl::StatusOr<std::unique_ptr<LlmService>> Create(std::vector<LlmModelOptions> models,
                                                            MetricsRegistry* metrics);
  ~LlmService();
  LlmService(const LlmService&) = delete;
  LlmService& operator=(const LlmService&) = delete;

  void RegisterRoutes(Router& router);
  // The collections "cairn.rag" retrieves from; must outlive the service. Without
  // them a request with "cairn.rag" gets 400.
  void SetCollections(vector::CollectionStore* store) { collections_ = store; }
  // Cancels everything in flight and joins the engine threads. Idempotent.
  void Stop();

  // The engine serving `name` (nullptr when unknown or an embeddings-only model).
  LlmEngine* engine(std::string_view name) const;
  std::vector<std::string> model_names() const;

 private:
  struct Served;
  LlmService() = default;
  const Served* FindModel(std::string_view name) const;
  Response Complete(const Request& req, bool chat) const;
  Response Embeddings(const Request& req) const;
  Response Models() const;
  void CountRequest(const Served& m, int status) const;

  std::vector<std::unique_ptr<Served>> models_;
  MetricsRegistry* metrics_ = nullptr;
  vector::CollectionStore* collections_ = nullptr;
};

}  // namespace cairn::server
