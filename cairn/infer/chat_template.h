// cairn/infer/chat_template.h — turning a conversation into a model's prompt text.
//
// Chat models are trained on one prompt layout each; the GGUF file carries it as a
// Jinja template (`tokenizer.chat_template`). cairn does not run Jinja: like
// llama.cpp's llm_chat_detect_template, it recognizes the common layouts by
// distinctive markers in the template text and renders them with hand-written code.
// Each format renders what its reference template renders (with HF's trim_blocks),
// except for the leading BOS: the text never starts with BOS, because encoding the
// prompt with add_special adds it (BOS tokens inside the text, as Llama 2 puts
// before every later turn, are rendered and need Encode's parse_special).
//
//   chatml   <|im_start|>ROLE\nCONTENT<|im_end|>\n ...  then <|im_start|>assistant\n
//            (Qwen, SmolLM, OpenHermes; recognized by <|im_start|>)
//   llama2   [INST] <<SYS>>\nSYSTEM\n<</SYS>>\n\nUSER [/INST] ANSWER </s><s>[INST] ...
//            (Meta's template: the system prompt goes into the first user turn, turns
//            are stripped; recognized by [INST] with <<SYS>>)
//   mistral  [INST] USER [/INST]ANSWER</s>[INST] ...  (Mistral-Instruct v0.1/v0.2: a
//            system prompt goes before the next user turn, followed by \n\n;
//            recognized by [INST] without <<SYS>>; the v3/v7 layouts are not supported)
//   llama3   <|start_header_id|>ROLE<|end_header_id|>\n\nCONTENT<|eot_id|> ... then
//            the assistant header (content trimmed)
//   zephyr   <|ROLE|>\nCONTENT</s>\n ...  then <|assistant|>\n  (the end marker is
//            <|endoftext|> when the template names it, else the model's EOS text)
//   phi3     <|ROLE|>\nCONTENT<|end|>\n ...  then <|assistant|>\n
//   gemma    <start_of_turn>user\nCONTENT<end_of_turn>\n ... with "model" for the
//            assistant, the system prompt and \n\n prepended to the next user turn,
//            content trimmed; then <start_of_turn>model\n
//
// Roles are free text for the formats that print them (chatml, llama3, zephyr,
// phi3); the others know system, user and assistant and treat any other role as
// user. add_generation_prompt appends the opening of the assistant's turn (llama2
// and mistral have none: the prompt already ends with [/INST]).
//
// Thread-safety: a ChatTemplate is an immutable value.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace cairn::infer {

class Tokenizer;

enum class ChatFormat { kChatML, kLlama2, kMistral, kLlama3, kZephyr, kPhi3, kGemma };

struct ChatMessage {
  std::string role;  // "system", "user", "assistant", ...
  std::string content;
};

// The text of the model's BOS and EOS tokens, for the formats that print them.
struct ChatSpecialTokens {
  std::string bos = "<s>";
  std::string eos = "</s>";
};
// The tokenizer's BOS/EOS token strings, or the defaults above where it has none.
ChatSpecialTokens ChatSpecialTokensOf(const Tokenizer& tokenizer);

// "chatml", "llama2", "mistral", "llama3", "zephyr", "phi3", "gemma".
std::string_view ChatFormatName(ChatFormat format);
std::vector<std::string> ChatFormatNames();
// InvalidArgument listing the known names for anything else. "llama2-sys",
// "mistral-v1" and "phi-3"/"phi-3-mini" style spellings are not accepted: one name each.
absl::StatusOr<ChatFormat> ParseChatFormat(std::string_view name);

// Recognizes a Jinja chat template by its markers (a template that is exactly a
// format's name counts too). NotFound when it matches none of the supported formats,
// with the template's first line in the message.
absl::StatusOr<ChatFormat> DetectChatFormat(std::string_view jinja);

class ChatTemplate {
 public:
  explicit ChatTemplate(ChatFormat format, ChatSpecialTokens tokens = {});

  // The format named by `name` when it is not empty (InvalidArgument for an unknown
  // name), else the one `jinja` is recognized as: FailedPrecondition when `jinja` is
  // empty (the model has no template), NotFound when it is not recognized. Either
  // message says to choose a format by name and lists them.
  static absl::StatusOr<ChatTemplate> Select(std::string_view name, std::string_view jinja,
                                             ChatSpecialTokens tokens = {});

  ChatFormat format() const { return format_; }
  std::string_view name() const { return ChatFormatName(format_); }

  std::string Apply(std::span<const ChatMessage> messages, bool add_generation_prompt = true) const;

  // Text that ends an assistant turn in this format ("<|im_end|>", "<|eot_id|>",
  // the EOS text, ...): generation stops there when the vocabulary spells the marker
  // as ordinary text instead of having an end-of-turn token for it.
  std::vector<std::string> StopStrings() const;

 private:
  ChatFormat format_;
  ChatSpecialTokens tokens_;
};

}  // namespace cairn::infer
