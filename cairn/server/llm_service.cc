#include "cairn/server/llm_service.h"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <optional>
#include <thread>
#include <utility>

#include "cairn/infer/chat_template.h"
#include "cairn/infer/constraint.h"
#include "cairn/infer/generate.h"
#include "cairn/server/json_body.h"
#include "cairn/server/model_embedder.h"
#include "cairn/server/openai_api.h"
#include "cairn/server/rag.h"
#include "fmt/format.h"
#include "spdlog/spdlog.h"

namespace cairn::server {

namespace {

using nlohmann::json;

// HTTP status for a client that went away before the answer was complete (nginx's).
constexpr int kClientClosed = 499;

int64_t UnixNow() { return static_cast<int64_t>(std::time(nullptr)); }

Response TooBusy(const absl::Status& st) {
  Response r = Response::Error(429, "rate_limit_error", std::string(st.message()) + "; retry later");
  r.headers.emplace_back("Retry-After", "1");
  return r;
}

Response Unavailable(std::string_view message) {
  Response r = Response::Error(503, kUnavailable, message);
  r.headers.emplace_back("Retry-After", "1");
  return r;
}

std::string_view FinishReasonOf(const SeqResult& r) {
  // A timeout mid-generation cuts the completion short: OpenAI's word for that is "length".
  return r.finish == SeqFinish::kStop ? "stop" : "length";
}

}  // namespace

struct LlmService::Served {
  LlmModelOptions options;
  std::shared_ptr<const infer::Model> model;
  std::optional<infer::Tokenizer> tokenizer;
  std::optional<infer::ChatTemplate> chat_template;
  absl::Status chat_template_status;  // why there is none
  std::vector<std::string> template_stops;
  std::unique_ptr<LlmEngine> engine;  // decoders
  std::unique_ptr<ModelEmbedder> embedder;
  int64_t created = 0;
};

LlmService::~LlmService() { Stop(); }

void LlmService::Stop() {
  for (auto& m : models_)
    if (m->engine) m->engine->Stop();
}

absl::StatusOr<std::unique_ptr<LlmService>> LlmService::Create(std::vector<LlmModelOptions> models,
                                                               MetricsRegistry* metrics) {
  std::unique_ptr<LlmService> service(new LlmService());
  service->metrics_ = metrics;
  for (LlmModelOptions& o : models) {
    if (o.name.empty()) o.name = std::filesystem::path(o.path).stem().string();
    if (service->FindModel(o.name) != nullptr)
      return absl::InvalidArgumentError(fmt::format("two models are named '{}'", o.name));
    if (o.timeout_s <= 0)
      return absl::InvalidArgumentError(fmt::format("model '{}': timeout must be > 0 s", o.name));
    auto served = std::make_unique<Served>();
    absl::StatusOr<infer::LoadedModel> loaded = infer::LoadModelAndTokenizer(o.path);
    if (!loaded.ok())
      return absl::Status(loaded.status().code(),
                          fmt::format("model '{}': {}", o.name, std::string(loaded.status().message())));
    served->model = std::shared_ptr<const infer::Model>(std::move(loaded->model));
    served->tokenizer = std::move(loaded->tokenizer);
    const int threads =
        o.threads > 0 ? o.threads : static_cast<int>(std::clamp(std::thread::hardware_concurrency(), 1u, 8u));

    if (served->model->has_logits()) {
      const std::string jinja(served->model->file().GetString("tokenizer.chat_template").value_or(""));
      absl::StatusOr<infer::ChatTemplate> tmpl =
          infer::ChatTemplate::Select(o.chat_template, jinja, infer::ChatSpecialTokensOf(*served->tokenizer));
      if (tmpl.ok()) {
        served->chat_template = *tmpl;
        served->template_stops = tmpl->StopStrings();
      } else if (!o.chat_template.empty()) {
        return absl::InvalidArgumentError(
            fmt::format("model '{}': {}", o.name, std::string(tmpl.status().message())));
      } else {
        // Completions still work; chat requests get this message.
        served->chat_template_status = tmpl.status();
      }
      LlmEngineOptions eo;
      eo.name = o.name;
      eo.slots = o.slots;
      eo.ctx = o.ctx;
      eo.queue = o.queue;
      eo.threads = threads;
      eo.prefill_chunk = o.prefill_chunk;
      eo.metrics = metrics;
      absl::StatusOr<std::unique_ptr<LlmEngine>> engine =
          LlmEngine::Create(served->model, *served->tokenizer, std::move(eo));
      if (!engine.ok())
        return absl::Status(engine.status().code(),
                            fmt::format("model '{}': {}", o.name, std::string(engine.status().message())));
      served->engine = std::move(*engine);
    }
    ModelEmbedderOptions emo;
    emo.n_threads = threads;
    emo.max_sessions = 1;
    emo.name = o.name;
    // Decoders: bounded like a generation slot, so the embedder's cache stays small.
    if (served->engine) emo.n_ctx = static_cast<uint32_t>(served->engine->ctx());
    absl::StatusOr<std::unique_ptr<ModelEmbedder>> embedder =
        ModelEmbedder::Create(served->model, *served->tokenizer, emo);
    if (!embedder.ok())
      return absl::Status(embedder.status().code(),
                          fmt::format("model '{}': {}", o.name, std::string(embedder.status().message())));
    served->embedder = std::move(*embedder);
    served->created = UnixNow();
    served->options = std::move(o);
    service->models_.push_back(std::move(served));
  }
  return service;
}

void LlmService::CountRequest(const Served& m, int status) const {
  if (metrics_ == nullptr) return;
  metrics_->Counter("cairn_llm_requests_total", "Requests to the OpenAI-compatible API by model and HTTP status",
                    {{"model", m.options.name}, {"status", std::to_string(status)}})
      .Increment();
}

const LlmService::Served* LlmService::FindModel(std::string_view name) const {
  for (const auto& m : models_)
    if (m->options.name == name) return m.get();
  return nullptr;
}

LlmEngine* LlmService::engine(std::string_view name) const {
  const Served* m = FindModel(name);
  return m != nullptr ? m->engine.get() : nullptr;
}

std::vector<std::string> LlmService::model_names() const {
  std::vector<std::string> names;
  for (const auto& m : models_) names.push_back(m->options.name);
  return names;
}

void LlmService::RegisterRoutes(Router& router) {
  router.Add("POST", "/v1/chat/completions", [this](const Request& r) { return Complete(r, /*chat=*/true); });
  router.Add("POST", "/v1/completions", [this](const Request& r) { return Complete(r, /*chat=*/false); });
  router.Add("POST", "/v1/embeddings", [this](const Request& r) { return Embeddings(r); });
  router.Add("GET", "/v1/models", [this](const Request&) { return Models(); });
  router.Add("GET", "/v1/models/{model}", [this](const Request& r) {
    const Served* m = FindModel(r.Param("model"));
    if (m == nullptr) return Response::Error(404, kNotFound, fmt::format("model '{}' not found", r.Param("model")), "model");
    return Response::Json({{"id", m->options.name}, {"object", "model"}, {"created", m->created}, {"owned_by", "cairn"}});
  });
}

Response LlmService::Models() const {
  json data = json::array();
  for (const auto& m : models_)
    data.push_back({{"id", m->options.name}, {"object", "model"}, {"created", m->created}, {"owned_by", "cairn"}});
  return Response::Json({{"object", "list"}, {"data", std::move(data)}});
}

Response LlmService::Complete(const Request& req, bool chat) const {
  absl::StatusOr<json> body = ParseJsonObject(req.body);
  if (!body.ok()) return Response::FromStatus(body.status());
  absl::StatusOr<CompletionRequest> parsed = chat ? ParseChatCompletionRequest(*body) : ParseCompletionRequest(*body);
  if (!parsed.ok()) return Response::FromStatus(parsed.status());
  CompletionRequest& cr = *parsed;

  const Served* m = cr.model.empty() && models_.size() == 1 ? models_[0].get() : FindModel(cr.model);
  if (m == nullptr) {
    if (cr.model.empty()) return Response::Error(400, kInvalidRequest, "'model' is required", "model");
    return Response::Error(404, kNotFound, fmt::format("model '{}' not found", cr.model), "model");
  }
  auto fail = [&](Response r) {
    CountRequest(*m, r.status);
    return r;
  };
  if (!m->engine)
    return fail(Response::Error(400, kInvalidRequest,
                                fmt::format("model '{}' is an embedding model; use /v1/embeddings", m->options.name),
                                "model"));
  const infer::Tokenizer& tokenizer = *m->tokenizer;

  // "cairn": {"rag": ...}: passages from a collection become the context.
  json citations;  // null: no retrieval
  if (chat && cr.cairn.is_object() && cr.cairn.contains("rag")) {
    if (collections_ == nullptr)
      return fail(
          Response::Error(400, kInvalidRequest, "this server has no collections to retrieve from", "cairn.rag"));
    absl::StatusOr<RagOptions> rag = ParseRagOptions(cr.cairn["rag"]);
    if (!rag.ok()) return fail(Response::FromStatus(rag.status(), "cairn.rag"));
    std::string question;
    for (auto it = cr.messages.rbegin(); it != cr.messages.rend() && question.empty(); ++it)
      if (it->role == "user") question = it->content;
    if (question.empty())
      return fail(
          Response::Error(400, kInvalidRequest, "'cairn.rag' needs a user message to retrieve for", "messages"));
    absl::StatusOr<std::vector<Passage>> passages = Retrieve(*collections_, *rag, question);
    if (!passages.ok()) return fail(Response::FromStatus(passages.status(), "cairn.rag"));
    cr.messages = WithPassages(cr.messages, *passages);
    citations = json{{"citations", CitationsJson(*passages)}};
  }

  SeqParams sp;
  if (chat) {
    if (!m->chat_template)
      return fail(Response::Error(400, kInvalidRequest,
                                  fmt::format("model '{}' has no chat template cairn knows ({}); start the server "
                                              "with a chat template name, or use /v1/completions",
                                              m->options.name, std::string(m->chat_template_status.message()))));
    const std::string text = m->chat_template->Apply(cr.messages, /*add_generation_prompt=*/true);
    sp.prompt = tokenizer.Encode(text, /*add_special=*/true, /*parse_special=*/true);
    sp.stop = m->template_stops;
  } else {
    sp.prompt = tokenizer.Encode(cr.prompt, /*add_special=*/true, /*parse_special=*/false);
  }
  const int ctx = m->engine->ctx();
  if (sp.prompt.empty())
    return fail(Response::Error(400, kInvalidRequest, "the prompt encodes to no tokens", chat ? "messages" : "prompt"));
  if (static_cast<int64_t>(sp.prompt.size()) >= ctx)
    return fail(Response::Error(
        400, kInvalidRequest,
        fmt::format("the prompt is {} tokens long; this model's context holds {} tokens per request (prompt and "
                    "completion together)",
                    sp.prompt.size(), ctx),
        chat ? "messages" : "prompt"));
  for (std::string& s : cr.stop) sp.stop.push_back(std::move(s));
  sp.max_tokens = cr.max_tokens;
  sp.ignore_eos = cr.ignore_eos;
  sp.sampling = cr.sampling;
  if (cr.format != ResponseFormat::kText) {
    absl::StatusOr<std::unique_ptr<infer::TokenConstraint>> c =
        infer::MakeJsonConstraint(tokenizer, cr.format == ResponseFormat::kJsonSchema ? cr.schema : json(nullptr));
    if (!c.ok())
      return fail(Response::Error(400, kInvalidRequest,
                                  fmt::format("response_format: {}", std::string(c.status().message())),
                                  "response_format"));
    sp.constraint = std::move(*c);
  }
  const auto timeout = std::chrono::duration_cast<LlmClock::duration>(
      std::chrono::duration<double>(m->options.timeout_s));
  sp.deadline = LlmClock::now() + timeout;

  absl::StatusOr<std::shared_ptr<SeqHandle>> submitted = m->engine->Submit(std::move(sp));
  if (!submitted.ok()) {
    if (absl::IsResourceExhausted(submitted.status())) return fail(TooBusy(submitted.status()));
    if (absl::IsUnavailable(submitted.status())) return fail(Unavailable(std::string(submitted.status().message())));
    return fail(Response::FromStatus(submitted.status()));
  }
  std::shared_ptr<SeqHandle> handle = std::move(*submitted);
  const std::string id = NewCompletionId(chat);
  const int64_t created = UnixNow();
  const std::string model_name = m->options.name;

  if (!cr.stream) {
    const SeqResult& r = handle->WaitDone();
    if (r.finish == SeqFinish::kError)
      return fail(Response::Error(500, kInternal, fmt::format("generation failed: {}", std::string(r.status.message()))));
    if (r.finish == SeqFinish::kCancelled) return fail(Unavailable("the server is stopping"));
    if (r.finish == SeqFinish::kTimeout && !r.started)
      return fail(Unavailable(fmt::format("timed out after {} s waiting for a free slot", m->options.timeout_s)));
    const Usage usage{r.prompt_tokens, r.completion_tokens, r.cached_tokens};
    CountRequest(*m, 200);
    json out = chat ? ChatCompletionJson(id, created, model_name, r.text, FinishReasonOf(r), usage)
                    : CompletionJson(id, created, model_name, r.text, FinishReasonOf(r), usage);
    if (!citations.is_null()) out["cairn"] = std::move(citations);
    return Response::Json(std::move(out));
  }

  Response resp;
  resp.status = 200;
  resp.content_type = "text/event-stream";
  resp.headers.emplace_back("Cache-Control", "no-cache");
  const bool include_usage = cr.include_usage;
  resp.stream = [this, m, handle, id, created, model_name, chat, include_usage,
                 citations = std::move(citations)](const Response::Writer& write) {
    auto chunk = [&](std::string_view text, std::optional<std::string_view> finish) {
      return chat ? ChatChunkJson(id, created, model_name, json{{"content", std::string(text)}}, finish, include_usage)
                  : CompletionChunkJson(id, created, model_name, text, finish, include_usage);
    };
    // The role goes out at once: the client sees the stream open, and a client that
    // is already gone is noticed before any work is done.
    // With retrieval the first chunk also carries the citations.
    json first = chat ? ChatChunkJson(id, created, model_name, json{{"role", "assistant"}, {"content", ""}},
                                      std::nullopt, include_usage)
                      : json();
    if (chat && !citations.is_null()) first["cairn"] = citations;
    bool ok = chat ? write(SseEvent(first)) : true;
    bool done = false;
    while (ok && !done) {
      std::string piece;
      done = handle->Wait(&piece, std::chrono::milliseconds(500));
      if (!piece.empty()) ok = write(SseEvent(chunk(piece, std::nullopt)));
    }
    if (!ok) {
      handle->Cancel();
      CountRequest(*m, kClientClosed);
      return;
    }
    const SeqResult& r = handle->result();
    if (r.finish == SeqFinish::kError || r.finish == SeqFinish::kCancelled ||
        (r.finish == SeqFinish::kTimeout && !r.started)) {
      const std::string message = r.finish == SeqFinish::kError
                                      ? fmt::format("generation failed: {}", std::string(r.status.message()))
                                  : r.finish == SeqFinish::kCancelled ? std::string("the server is stopping")
                                                                      : std::string("timed out waiting for a free slot");
      write(SseEvent(json{{"error", {{"message", message}, {"type", r.finish == SeqFinish::kError ? kInternal : kUnavailable}}}}));
      CountRequest(*m, r.finish == SeqFinish::kError ? 500 : 503);
      return;
    }
    ok = write(SseEvent(chat ? ChatChunkJson(id, created, model_name, json::object(), FinishReasonOf(r), include_usage)
                             : CompletionChunkJson(id, created, model_name, "", FinishReasonOf(r), include_usage)));
    if (ok && include_usage) {
      const Usage usage{r.prompt_tokens, r.completion_tokens, r.cached_tokens};
      ok = write(SseEvent(chat ? ChatUsageChunkJson(id, created, model_name, usage)
                               : CompletionUsageChunkJson(id, created, model_name, usage)));
    }
    if (ok) ok = write(kSseDone);
    CountRequest(*m, ok ? 200 : kClientClosed);
  };
  return resp;
}

Response LlmService::Embeddings(const Request& req) const {
  absl::StatusOr<json> body = ParseJsonObject(req.body);
  if (!body.ok()) return Response::FromStatus(body.status());
  absl::StatusOr<EmbeddingRequest> parsed = ParseEmbeddingRequest(*body);
  if (!parsed.ok()) return Response::FromStatus(parsed.status());
  const Served* m = parsed->model.empty() && models_.size() == 1 ? models_[0].get() : FindModel(parsed->model);
  if (m == nullptr) {
    if (parsed->model.empty()) return Response::Error(400, kInvalidRequest, "'model' is required", "model");
    return Response::Error(404, kNotFound, fmt::format("model '{}' not found", parsed->model), "model");
  }
  std::vector<std::vector<float>> vectors;
  int64_t tokens = 0;
  for (size_t i = 0; i < parsed->input.size(); ++i) {
    const std::string& text = parsed->input[i];
    std::vector<float> v(m->embedder->dim());
    absl::Status st = m->embedder->Embed(text, v);
    if (!st.ok()) {
      Response r = absl::IsInvalidArgument(st)
                       ? Response::Error(400, kInvalidRequest,
                                         fmt::format("'input[{}]': {}", i, std::string(st.message())), "input")
                       : Response::FromStatus(st);
      CountRequest(*m, r.status);
      return r;
    }
    tokens += static_cast<int64_t>(m->embedder->Tokens(text).size());
    vectors.push_back(std::move(v));
  }
  CountRequest(*m, 200);
  return Response::Json(EmbeddingsJson(m->options.name, vectors, parsed->base64, tokens));
}

}  // namespace cairn::server
