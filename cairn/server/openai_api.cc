#include "cairn/server/openai_api.h"

#include <bit>
#include <cstring>
#include <random>

#include "absl/strings/escaping.h"
#include "cairn/base/status.h"
#include "cairn/server/json_body.h"
#include "fmt/format.h"

namespace cairn::server {

namespace {

using nlohmann::json;

// OpenAI caps stop at 4 sequences; a few more do no harm, thousands would.
constexpr size_t kMaxStop = 16;
constexpr size_t kMaxEmbeddingInputs = 2048;

uint64_t RandomSeed() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  return rng();
}

absl::Status ParseSampling(const json& body, CompletionRequest* r) {
  // OpenAI semantics: plain temperature / nucleus sampling, nothing else.
  r->sampling = infer::SamplerParams{};
  r->sampling.temperature = 1.0f;
  r->sampling.top_p = 1.0f;
  r->sampling.top_k = 0;
  r->sampling.min_p = 0.0f;
  if (const json* v = Find(body, "temperature")) {
    CAIRN_ASSIGN_OR_RETURN(double t, AsDouble(*v, "temperature", 0.0, 2.0));
    r->sampling.temperature = static_cast<float>(t);
  }
  if (const json* v = Find(body, "top_p")) {
    CAIRN_ASSIGN_OR_RETURN(double p, AsDouble(*v, "top_p", 0.0, 1.0));
    r->sampling.top_p = static_cast<float>(p);
  }
  if (const json* v = Find(body, "presence_penalty")) {
    CAIRN_ASSIGN_OR_RETURN(double p, AsDouble(*v, "presence_penalty", -2.0, 2.0));
    r->sampling.presence_penalty = static_cast<float>(p);
  }
  if (const json* v = Find(body, "frequency_penalty")) {
    CAIRN_ASSIGN_OR_RETURN(double p, AsDouble(*v, "frequency_penalty", -2.0, 2.0));
    r->sampling.frequency_penalty = static_cast<float>(p);
  }
  if (const json* v = Find(body, "seed")) {
    // OpenAI seeds are signed 64-bit integers; any integer is fine as a seed.
    if (v->is_number_integer()) {
      r->sampling.seed = v->is_number_unsigned() ? v->get<uint64_t>() : static_cast<uint64_t>(v->get<int64_t>());
    } else {
      return WrongType("seed", "an integer", *v);
    }
  } else {
    r->sampling.seed = RandomSeed();
  }
  return absl::OkStatus();
}

absl::Status ParseCommon(const json& body, CompletionRequest* r) {
  if (const json* v = Find(body, "model")) {
    CAIRN_ASSIGN_OR_RETURN(r->model, AsString(*v, "model"));
  }
  CAIRN_RETURN_IF_ERROR(ParseSampling(body, r));
  const json* max = Find(body, "max_completion_tokens");
  const char* max_name = "max_completion_tokens";
  if (max == nullptr) {
    max = Find(body, "max_tokens");
    max_name = "max_tokens";
  }
  if (max != nullptr) {
    CAIRN_ASSIGN_OR_RETURN(int64_t m, AsInt(*max, max_name, 0, 1 << 30));
    r->max_tokens = static_cast<int32_t>(m);
  }
  if (const json* v = Find(body, "n")) {
    CAIRN_ASSIGN_OR_RETURN(int64_t n, AsInt(*v, "n", 1, 1 << 20));
    if (n != 1) return absl::InvalidArgumentError(fmt::format("'n' must be 1 (one choice per request), got {}", n));
  }
  if (const json* v = Find(body, "stop")) {
    if (v->is_string()) {
      r->stop.push_back(v->get<std::string>());
    } else if (v->is_array()) {
      if (v->size() > kMaxStop)
        return absl::InvalidArgumentError(fmt::format("'stop' has {} strings; at most {}", v->size(), kMaxStop));
      for (size_t i = 0; i < v->size(); ++i) {
        CAIRN_ASSIGN_OR_RETURN(std::string s, AsString((*v)[i], Element("stop", i)));
        r->stop.push_back(std::move(s));
      }
    } else {
      return WrongType("stop", "a string or an array of strings", *v);
    }
  }
  if (const json* v = Find(body, "stream")) {
    CAIRN_ASSIGN_OR_RETURN(r->stream, AsBool(*v, "stream"));
  }
  if (const json* v = Find(body, "ignore_eos")) {
    CAIRN_ASSIGN_OR_RETURN(r->ignore_eos, AsBool(*v, "ignore_eos"));
  }
  if (const json* v = Find(body, "stream_options")) {
    if (!v->is_object()) return WrongType("stream_options", "an object", *v);
    if (const json* u = Find(*v, "include_usage")) {
      CAIRN_ASSIGN_OR_RETURN(r->include_usage, AsBool(*u, "stream_options.include_usage"));
    }
  }
  if (const json* v = Find(body, "response_format")) {
    if (!v->is_object()) return WrongType("response_format", "an object", *v);
    CAIRN_ASSIGN_OR_RETURN(std::string type, RequiredString(*v, "response_format", "type"));
    if (type == "text") {
      r->format = ResponseFormat::kText;
    } else if (type == "json_object") {
      r->format = ResponseFormat::kJsonObject;
    } else if (type == "json_schema") {
      r->format = ResponseFormat::kJsonSchema;
      const json* js = Find(*v, "json_schema");
      if (js == nullptr) return absl::InvalidArgumentError("'response_format.json_schema' is required");
      if (!js->is_object()) return WrongType("response_format.json_schema", "an object", *js);
      if (const json* schema = Find(*js, "schema")) {
        if (!schema->is_object() && !schema->is_boolean())
          return WrongType("response_format.json_schema.schema", "an object", *schema);
        r->schema = *schema;
      }
    } else {
      return absl::InvalidArgumentError(fmt::format(
          "'response_format.type' must be \"text\", \"json_object\" or \"json_schema\", got \"{}\"", type));
    }
  }
  if (const json* v = Find(body, "cairn")) {
    if (!v->is_object()) return WrongType("cairn", "an object", *v);
    r->cairn = *v;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> MessageContent(const json& content, const std::string& field) {
  if (content.is_null()) return std::string();
  if (content.is_string()) return content.get<std::string>();
  if (!content.is_array()) return WrongType(field, "a string or an array of text parts", content);
  std::string text;
  for (size_t i = 0; i < content.size(); ++i) {
    const json& part = content[i];
    const std::string pf = Element(field, i);
    if (!part.is_object()) return WrongType(pf, "an object", part);
    CAIRN_ASSIGN_OR_RETURN(std::string type, RequiredString(part, pf, "type"));
    if (type != "text")
      return absl::InvalidArgumentError(
          fmt::format("'{}.type' is \"{}\"; only text parts are supported", pf, type));
    CAIRN_ASSIGN_OR_RETURN(std::string t, RequiredString(part, pf, "text"));
    text += t;
  }
  return text;
}

json Choice(json message_or_delta, std::string_view key, std::optional<std::string_view> finish) {
  json c = json::object();
  c["index"] = 0;
  c[std::string(key)] = std::move(message_or_delta);
  c["logprobs"] = nullptr;
  c["finish_reason"] = finish ? json(std::string(*finish)) : json(nullptr);
  return c;
}

json Envelope(std::string_view id, std::string_view object, int64_t created, std::string_view model) {
  json j = json::object();
  j["id"] = std::string(id);
  j["object"] = std::string(object);
  j["created"] = created;
  j["model"] = std::string(model);
  j["system_fingerprint"] = "cairn";
  return j;
}

}  // namespace

absl::StatusOr<CompletionRequest> ParseChatCompletionRequest(const json& body) {
  if (!body.is_object()) return WrongType("body", "an object", body);
  CompletionRequest r;
  r.chat = true;
  CAIRN_RETURN_IF_ERROR(ParseCommon(body, &r));
  const json* messages = Find(body, "messages");
  if (messages == nullptr) return absl::InvalidArgumentError("'messages' is required");
  if (!messages->is_array()) return WrongType("messages", "an array", *messages);
  if (messages->empty()) return absl::InvalidArgumentError("'messages' must not be empty");
  for (size_t i = 0; i < messages->size(); ++i) {
    const json& m = (*messages)[i];
    const std::string field = Element("messages", i);
    if (!m.is_object()) return WrongType(field, "an object", m);
    infer::ChatMessage msg;
    CAIRN_ASSIGN_OR_RETURN(msg.role, RequiredString(m, field, "role"));
    // "developer" is OpenAI's newer name for the system role.
    if (msg.role == "developer") msg.role = "system";
    const json* content = Find(m, "content");
    if (content != nullptr) {
      CAIRN_ASSIGN_OR_RETURN(msg.content, MessageContent(*content, Child(field, "content")));
    } else if (msg.role != "assistant") {
      return absl::InvalidArgumentError(fmt::format("'{}.content' is required", field));
    }
    r.messages.push_back(std::move(msg));
  }
  return r;
}

absl::StatusOr<CompletionRequest> ParseCompletionRequest(const json& body) {
  if (!body.is_object()) return WrongType("body", "an object", body);
  CompletionRequest r;
  r.chat = false;
  CAIRN_RETURN_IF_ERROR(ParseCommon(body, &r));
  const json* prompt = Find(body, "prompt");
  if (prompt == nullptr) return absl::InvalidArgumentError("'prompt' is required");
  if (prompt->is_string()) {
    r.prompt = prompt->get<std::string>();
  } else if (prompt->is_array() && prompt->size() == 1 && (*prompt)[0].is_string()) {
    r.prompt = (*prompt)[0].get<std::string>();
  } else {
    return WrongType("prompt", "a string (or an array of one string)", *prompt);
  }
  if (r.prompt.empty()) return absl::InvalidArgumentError("'prompt' must not be empty");
  return r;
}

absl::StatusOr<EmbeddingRequest> ParseEmbeddingRequest(const json& body) {
  if (!body.is_object()) return WrongType("body", "an object", body);
  EmbeddingRequest r;
  if (const json* v = Find(body, "model")) {
    CAIRN_ASSIGN_OR_RETURN(r.model, AsString(*v, "model"));
  }
  const json* input = Find(body, "input");
  if (input == nullptr) return absl::InvalidArgumentError("'input' is required");
  if (input->is_string()) {
    r.input.push_back(input->get<std::string>());
  } else if (input->is_array()) {
    if (input->empty()) return absl::InvalidArgumentError("'input' must not be empty");
    if (input->size() > kMaxEmbeddingInputs)
      return absl::InvalidArgumentError(
          fmt::format("'input' has {} strings; at most {}", input->size(), kMaxEmbeddingInputs));
    for (size_t i = 0; i < input->size(); ++i) {
      CAIRN_ASSIGN_OR_RETURN(std::string s, AsString((*input)[i], Element("input", i)));
      r.input.push_back(std::move(s));
    }
  } else {
    return WrongType("input", "a string or an array of strings", *input);
  }
  if (const json* v = Find(body, "encoding_format")) {
    CAIRN_ASSIGN_OR_RETURN(std::string f, AsString(*v, "encoding_format"));
    if (f == "base64") {
      r.base64 = true;
    } else if (f != "float") {
      return absl::InvalidArgumentError(
          fmt::format("'encoding_format' must be \"float\" or \"base64\", got \"{}\"", f));
    }
  }
  if (Find(body, "dimensions") != nullptr)
    return absl::InvalidArgumentError("'dimensions' is not supported: the model's embedding size is fixed");
  return r;
}

json UsageJson(const Usage& u) {
  json j = {{"prompt_tokens", u.prompt_tokens},
            {"completion_tokens", u.completion_tokens},
            {"total_tokens", u.prompt_tokens + u.completion_tokens}};
  j["prompt_tokens_details"] = {{"cached_tokens", u.cached_tokens}};
  return j;
}

std::string NewCompletionId(bool chat) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  return fmt::format("{}-{:016x}{:08x}", chat ? "chatcmpl" : "cmpl", rng(), static_cast<uint32_t>(rng()));
}

json ChatCompletionJson(std::string_view id, int64_t created, std::string_view model, std::string_view text,
                        std::string_view finish_reason, const Usage& usage) {
  json j = Envelope(id, "chat.completion", created, model);
  json message = {{"role", "assistant"}, {"content", std::string(text)}, {"refusal", nullptr}};
  j["choices"] = json::array({Choice(std::move(message), "message", finish_reason)});
  j["usage"] = UsageJson(usage);
  return j;
}

json ChatChunkJson(std::string_view id, int64_t created, std::string_view model, json delta,
                   std::optional<std::string_view> finish_reason, bool usage_field) {
  json j = Envelope(id, "chat.completion.chunk", created, model);
  j["choices"] = json::array({Choice(std::move(delta), "delta", finish_reason)});
  if (usage_field) j["usage"] = nullptr;
  return j;
}

json ChatUsageChunkJson(std::string_view id, int64_t created, std::string_view model, const Usage& usage) {
  json j = Envelope(id, "chat.completion.chunk", created, model);
  j["choices"] = json::array();
  j["usage"] = UsageJson(usage);
  return j;
}

json CompletionJson(std::string_view id, int64_t created, std::string_view model, std::string_view text,
                    std::string_view finish_reason, const Usage& usage) {
  json j = Envelope(id, "text_completion", created, model);
  json c = {{"index", 0}, {"text", std::string(text)}, {"logprobs", nullptr}, {"finish_reason", std::string(finish_reason)}};
  j["choices"] = json::array({std::move(c)});
  j["usage"] = UsageJson(usage);
  return j;
}

json CompletionChunkJson(std::string_view id, int64_t created, std::string_view model, std::string_view text,
                         std::optional<std::string_view> finish_reason, bool usage_field) {
  json j = Envelope(id, "text_completion", created, model);
  json c = {{"index", 0}, {"text", std::string(text)}, {"logprobs", nullptr}};
  c["finish_reason"] = finish_reason ? json(std::string(*finish_reason)) : json(nullptr);
  j["choices"] = json::array({std::move(c)});
  if (usage_field) j["usage"] = nullptr;
  return j;
}

json CompletionUsageChunkJson(std::string_view id, int64_t created, std::string_view model, const Usage& usage) {
  json j = Envelope(id, "text_completion", created, model);
  j["choices"] = json::array();
  j["usage"] = UsageJson(usage);
  return j;
}

json EmbeddingsJson(std::string_view model, const std::vector<std::vector<float>>& vectors, bool base64,
                    int64_t prompt_tokens) {
  json data = json::array();
  for (size_t i = 0; i < vectors.size(); ++i) {
    json e = {{"object", "embedding"}, {"index", i}};
    if (base64) {
      // Little-endian float32, as the official clients decode it.
      std::string bytes(vectors[i].size() * sizeof(float), '\0');
      static_assert(std::endian::native == std::endian::little, "base64 embeddings assume a little-endian host");
      std::memcpy(bytes.data(), vectors[i].data(), bytes.size());
      e["embedding"] = absl::Base64Escape(bytes);
    } else {
      e["embedding"] = vectors[i];
    }
    data.push_back(std::move(e));
  }
  return {{"object", "list"},
          {"data", std::move(data)},
          {"model", std::string(model)},
          {"usage", {{"prompt_tokens", prompt_tokens}, {"total_tokens", prompt_tokens}}}};
}

std::string SseEvent(const json& data) {
  return "data: " + data.dump(-1, ' ', false, json::error_handler_t::replace) + "\n\n";
}

}  // namespace cairn::server
