#include "cairn/infer/chat_template.h"

#include <algorithm>
#include <utility>

#include <fmt/format.h>

#include "cairn/infer/tokenizer.h"

namespace cairn::infer {
namespace {

struct FormatName {
  ChatFormat format;
  std::string_view name;
};
constexpr FormatName kFormats[] = {
    {ChatFormat::kChatML, "chatml"}, {ChatFormat::kLlama2, "llama2"}, {ChatFormat::kMistral, "mistral"},
    {ChatFormat::kLlama3, "llama3"}, {ChatFormat::kZephyr, "zephyr"}, {ChatFormat::kPhi3, "phi3"},
    {ChatFormat::kGemma, "gemma"},
};

std::string NameList() {
  std::string out;
  for (const FormatName& f : kFormats) {
    if (!out.empty()) out += ", ";
    out += f.name;
  }
  return out;
}

// Python's str.strip() / Jinja's trim on ASCII whitespace.
std::string_view Trim(std::string_view s) {
  constexpr std::string_view kSpace = " \t\n\r\f\v";
  const size_t begin = s.find_first_not_of(kSpace);
  if (begin == std::string_view::npos) return {};
  return s.substr(begin, s.find_last_not_of(kSpace) - begin + 1);
}

std::string FirstLine(std::string_view text) {
  std::string_view line = text.substr(0, text.find('\n'));
  if (line.size() > 80) return std::string(line.substr(0, 77)) + "...";
  return std::string(line);
}

bool Contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

// Formats that print each role's name.
void RenderTagged(std::span<const ChatMessage> messages, std::string_view open, std::string_view mid,
                  std::string_view close, bool trim, std::string* out) {
  for (const ChatMessage& m : messages) {
    *out += open;
    *out += m.role;
    *out += mid;
    *out += trim ? Trim(m.content) : std::string_view(m.content);
    *out += close;
  }
}

}  // namespace

ChatSpecialTokens ChatSpecialTokensOf(const Tokenizer& tokenizer) {
  ChatSpecialTokens t;
  if (tokenizer.IsValidId(tokenizer.bos_id())) t.bos = std::string(tokenizer.TokenText(tokenizer.bos_id()));
  if (tokenizer.IsValidId(tokenizer.eos_id())) t.eos = std::string(tokenizer.TokenText(tokenizer.eos_id()));
  return t;
}

std::string_view ChatFormatName(ChatFormat format) {
  for (const FormatName& f : kFormats) {
    if (f.format == format) return f.name;
  }
  return "unknown";
}

std::vector<std::string> ChatFormatNames() {
  std::vector<std::string> names;
  for (const FormatName& f : kFormats) names.emplace_back(f.name);
  return names;
}

absl::StatusOr<ChatFormat> ParseChatFormat(std::string_view name) {
  for (const FormatName& f : kFormats) {
    if (f.name == name) return f.format;
  }
  return absl::InvalidArgumentError(
      fmt::format("unknown chat template '{}' (known: {})", std::string(name), NameList()));
}

absl::StatusOr<ChatFormat> DetectChatFormat(std::string_view t) {
  // The same questions, in the same order, as llama.cpp's llm_chat_detect_template,
  // for the formats cairn renders.
  for (const FormatName& f : kFormats) {
    if (t == f.name) return f.format;
  }
  auto unsupported = [&](std::string_view what) {
    return absl::NotFoundError(fmt::format("chat template looks like {}, which cairn does not render (it starts: "
                                           "'{}'); choose a format by name ({})",
                                           std::string(what), FirstLine(t), NameList()));
  };
  if (Contains(t, "<|im_start|>")) {
    if (Contains(t, "<|im_sep|>")) return unsupported("Phi-4");
    if (Contains(t, "<end_of_utterance>")) return unsupported("SmolVLM");
    return ChatFormat::kChatML;
  }
  if (t.substr(0, 7) == "mistral" || Contains(t, "[INST]")) {
    if (Contains(t, "[SYSTEM_PROMPT]")) return unsupported("Mistral v7");
    if (Contains(t, "[AVAILABLE_TOOLS]")) return unsupported("Mistral v3");
    return Contains(t, "<<SYS>>") ? ChatFormat::kLlama2 : ChatFormat::kMistral;
  }
  if (Contains(t, "<|assistant|>") && Contains(t, "<|end|>")) return ChatFormat::kPhi3;
  if (Contains(t, "[gMASK]")) return unsupported("ChatGLM");
  if (Contains(t, "<|user|>") && (Contains(t, "<|endoftext|>") || Contains(t, "eos_token"))) {
    return ChatFormat::kZephyr;
  }
  if (Contains(t, "<start_of_turn>")) return ChatFormat::kGemma;
  if (Contains(t, "<|start_header_id|>") && Contains(t, "<|end_header_id|>")) return ChatFormat::kLlama3;
  return absl::NotFoundError(fmt::format("chat template not recognized (it starts: '{}'); choose a format by name ({})",
                                         FirstLine(t), NameList()));
}

ChatTemplate::ChatTemplate(ChatFormat format, ChatSpecialTokens tokens) : format_(format), tokens_(std::move(tokens)) {}

absl::StatusOr<ChatTemplate> ChatTemplate::Select(std::string_view name, std::string_view jinja,
                                                  ChatSpecialTokens tokens) {
  if (!name.empty()) {
    absl::StatusOr<ChatFormat> f = ParseChatFormat(name);
    if (!f.ok()) return f.status();
    return ChatTemplate(*f, std::move(tokens));
  }
  if (jinja.empty()) {
    return absl::FailedPreconditionError(fmt::format(
        "the model has no chat template (tokenizer.chat_template); choose a format by name ({})", NameList()));
  }
  absl::StatusOr<ChatFormat> f = DetectChatFormat(jinja);
  if (!f.ok()) return f.status();
  // StableLM-2-Zephyr ends turns with <|endoftext|> spelled out; Zephyr-7B with eos_token.
  if (*f == ChatFormat::kZephyr && Contains(jinja, "<|endoftext|>")) tokens.eos = "<|endoftext|>";
  return ChatTemplate(*f, std::move(tokens));
}

std::string ChatTemplate::Apply(std::span<const ChatMessage> messages, bool add_generation_prompt) const {
  std::string out;
  switch (format_) {
    case ChatFormat::kChatML:
      RenderTagged(messages, "<|im_start|>", "\n", "<|im_end|>\n", false, &out);
      if (add_generation_prompt) out += "<|im_start|>assistant\n";
      break;
    case ChatFormat::kLlama3:
      RenderTagged(messages, "<|start_header_id|>", "<|end_header_id|>\n\n", "<|eot_id|>", true, &out);
      if (add_generation_prompt) out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
      break;
    case ChatFormat::kZephyr:
      RenderTagged(messages, "<|", "|>\n", tokens_.eos + "\n", false, &out);
      if (add_generation_prompt) out += "<|assistant|>\n";
      break;
    case ChatFormat::kPhi3:
      RenderTagged(messages, "<|", "|>\n", "<|end|>\n", false, &out);
      if (add_generation_prompt) out += "<|assistant|>\n";
      break;
    case ChatFormat::kLlama2: {
      // Meta's template: a system prompt is folded into the next user turn, every
      // user turn but the first opens with BOS, answers are stripped and closed
      // with " EOS".
      std::string system;
      for (const ChatMessage& m : messages) {
        if (m.role == "system") {
          system = "<<SYS>>\n" + m.content + "\n<</SYS>>\n\n";
        } else if (m.role == "assistant") {
          out += " ";
          out += Trim(m.content);
          out += " " + tokens_.eos;
        } else {
          if (!out.empty()) out += tokens_.bos;
          out += "[INST] ";
          out += Trim(system + m.content);
          out += " [/INST]";
          system.clear();
        }
      }
      break;
    }
    case ChatFormat::kMistral: {
      std::string system;
      for (const ChatMessage& m : messages) {
        if (m.role == "system") {
          system = m.content + "\n\n";
        } else if (m.role == "assistant") {
          out += m.content + tokens_.eos;
        } else {
          out += "[INST] " + system + m.content + " [/INST]";
          system.clear();
        }
      }
      break;
    }
    case ChatFormat::kGemma: {
      std::string system;
      for (const ChatMessage& m : messages) {
        if (m.role == "system") {
          system += Trim(m.content);
          continue;
        }
        const bool model = m.role == "assistant";
        out += model ? "<start_of_turn>model\n" : "<start_of_turn>user\n";
        if (!model && !system.empty()) {
          out += system + "\n\n";
          system.clear();
        }
        out += Trim(m.content);
        out += "<end_of_turn>\n";
      }
      if (add_generation_prompt) out += "<start_of_turn>model\n";
      break;
    }
  }
  return out;
}

std::vector<std::string> ChatTemplate::StopStrings() const {
  switch (format_) {
    case ChatFormat::kChatML:
      return {"<|im_end|>"};
    case ChatFormat::kLlama3:
      return {"<|eot_id|>"};
    case ChatFormat::kPhi3:
      return {"<|end|>"};
    case ChatFormat::kGemma:
      return {"<end_of_turn>"};
    case ChatFormat::kLlama2:
    case ChatFormat::kMistral:
    case ChatFormat::kZephyr:
      break;
  }
  return {tokens_.eos};
}

}  // namespace cairn::infer
