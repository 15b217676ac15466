// Chat templates: every format against the text its reference Jinja template renders
// for llama.cpp's test conversation (test-chat-template.cpp), and recognition of
// templates by their markers.
#include "cairn/infer/chat_template.h"

#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace cairn::infer {
namespace {

using ::testing::HasSubstr;

const std::vector<ChatMessage>& Conversation() {
  static const std::vector<ChatMessage> c = {
      {"system", "You are a helpful assistant"},
      {"user", "Hello"},
      {"assistant", "Hi there"},
      {"user", "Who are you"},
      {"assistant", "   I am an assistant   "},
      {"user", "Another question"},
  };
  return c;
}

std::string Render(ChatFormat f, ChatSpecialTokens tokens = {}) {
  return ChatTemplate(f, tokens).Apply(Conversation(), /*add_generation_prompt=*/true);
}

TEST(ChatTemplateTest, ChatML) {
  EXPECT_EQ(Render(ChatFormat::kChatML),
            "<|im_start|>system\nYou are a helpful assistant<|im_end|>\n"
            "<|im_start|>user\nHello<|im_end|>\n"
            "<|im_start|>assistant\nHi there<|im_end|>\n"
            "<|im_start|>user\nWho are you<|im_end|>\n"
            "<|im_start|>assistant\n   I am an assistant   <|im_end|>\n"
            "<|im_start|>user\nAnother question<|im_end|>\n"
            "<|im_start|>assistant\n");
  std::vector<ChatMessage> one = {{"user", "Hi"}};
  EXPECT_EQ(ChatTemplate(ChatFormat::kChatML).Apply(one, false), "<|im_start|>user\nHi<|im_end|>\n");
}

TEST(ChatTemplateTest, Llama2) {
  // Meta's template: BOS before every user turn but the first (the tokenizer adds
  // that one), stripped content, " EOS" after answers, no generation prompt.
  EXPECT_EQ(Render(ChatFormat::kLlama2),
            "[INST] <<SYS>>\nYou are a helpful assistant\n<</SYS>>\n\nHello [/INST] Hi there </s>"
            "<s>[INST] Who are you [/INST] I am an assistant </s>"
            "<s>[INST] Another question [/INST]");
  std::vector<ChatMessage> no_system = {{"user", "  Hello "}};
  EXPECT_EQ(ChatTemplate(ChatFormat::kLlama2).Apply(no_system), "[INST] Hello [/INST]");
  // The model's own BOS/EOS spellings.
  std::vector<ChatMessage> two = {{"user", "a"}, {"assistant", "b"}, {"user", "c"}};
  EXPECT_EQ(ChatTemplate(ChatFormat::kLlama2, {"<BOS>", "<EOS>"}).Apply(two),
            "[INST] a [/INST] b <EOS><BOS>[INST] c [/INST]");
}

TEST(ChatTemplateTest, Mistral) {
  EXPECT_EQ(Render(ChatFormat::kMistral),
            "[INST] You are a helpful assistant\n\nHello [/INST]Hi there</s>"
            "[INST] Who are you [/INST]   I am an assistant   </s>"
            "[INST] Another question [/INST]");
}

TEST(ChatTemplateTest, Llama3) {
  EXPECT_EQ(Render(ChatFormat::kLlama3),
            "<|start_header_id|>system<|end_header_id|>\n\nYou are a helpful assistant<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\nHi there<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nWho are you<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\nI am an assistant<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nAnother question<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

TEST(ChatTemplateTest, Zephyr) {
  EXPECT_EQ(Render(ChatFormat::kZephyr, {"<s>", "<|endoftext|>"}),
            "<|system|>\nYou are a helpful assistant<|endoftext|>\n"
            "<|user|>\nHello<|endoftext|>\n"
            "<|assistant|>\nHi there<|endoftext|>\n"
            "<|user|>\nWho are you<|endoftext|>\n"
            "<|assistant|>\n   I am an assistant   <|endoftext|>\n"
            "<|user|>\nAnother question<|endoftext|>\n"
            "<|assistant|>\n");
  // Zephyr-7B and TinyLlama-Chat close turns with eos_token (</s>).
  std::vector<ChatMessage> one = {{"user", "Hi"}};
  EXPECT_EQ(ChatTemplate(ChatFormat::kZephyr).Apply(one), "<|user|>\nHi</s>\n<|assistant|>\n");
}

TEST(ChatTemplateTest, Phi3) {
  EXPECT_EQ(Render(ChatFormat::kPhi3),
            "<|system|>\nYou are a helpful assistant<|end|>\n"
            "<|user|>\nHello<|end|>\n"
            "<|assistant|>\nHi there<|end|>\n"
            "<|user|>\nWho are you<|end|>\n"
            "<|assistant|>\n   I am an assistant   <|end|>\n"
            "<|user|>\nAnother question<|end|>\n"
            "<|assistant|>\n");
}

TEST(ChatTemplateTest, Gemma) {
  EXPECT_EQ(Render(ChatFormat::kGemma),
            "<start_of_turn>user\nYou are a helpful assistant\n\nHello<end_of_turn>\n"
            "<start_of_turn>model\nHi there<end_of_turn>\n"
            "<start_of_turn>user\nWho are you<end_of_turn>\n"
            "<start_of_turn>model\nI am an assistant<end_of_turn>\n"
            "<start_of_turn>user\nAnother question<end_of_turn>\n"
            "<start_of_turn>model\n");
}

TEST(ChatTemplateTest, GenerationPromptOnlyWhenAsked) {
  std::vector<ChatMessage> one = {{"user", "Hi"}};
  for (ChatFormat f : {ChatFormat::kChatML, ChatFormat::kLlama3, ChatFormat::kZephyr, ChatFormat::kPhi3,
                       ChatFormat::kGemma}) {
    ChatTemplate t(f);
    const std::string with = t.Apply(one, true), without = t.Apply(one, false);
    EXPECT_TRUE(with.starts_with(without)) << t.name();
    EXPECT_GT(with.size(), without.size()) << t.name();
  }
}

// Short templates written in each family's style: just enough Jinja to carry the
// markers detection looks at.
TEST(ChatTemplateTest, DetectsFormatsByMarkers) {
  struct Case {
    std::string jinja;
    ChatFormat want;
  };
  const std::vector<Case> cases = {
      {"{% for m in messages %}{{'<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n'}}{% endfor %}",
       ChatFormat::kChatML},
      {"{{ bos_token }}{% if messages[0]['role'] == 'system' %}{% set s = '<<SYS>>\\n' + messages[0]['content'] %}"
       "{% endif %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}",
       ChatFormat::kLlama2},
      {"{{ bos_token }}{% for m in messages %}{% if m['role'] == 'user' %}{{ '[INST] ' + m['content'] + ' [/INST]' }}"
       "{% else %}{{ m['content'] + eos_token }}{% endif %}{% endfor %}",
       ChatFormat::kMistral},
      {"{{- bos_token }}{%- for m in messages %}{{- '<|start_header_id|>' + m['role'] + '<|end_header_id|>\\n\\n' }}"
       "{{- m['content'] | trim + '<|eot_id|>' }}{%- endfor %}",
       ChatFormat::kLlama3},
      {"{% for m in messages %}{% if m['role'] == 'user' %}{{ '<|user|>\\n' + m['content'] + eos_token }}"
       "{% elif m['role'] == 'assistant' %}{{ '<|assistant|>\\n' + m['content'] + eos_token }}{% endif %}{% endfor %}",
       ChatFormat::kZephyr},
      {"{% for m in messages %}{{'<|' + m['role'] + '|>\\n' + m['content'] + '<|end|>\\n'}}{% endfor %}"
       "{{ '<|assistant|>\\n' }}",
       ChatFormat::kPhi3},
      {"{% for m in messages %}{{ '<start_of_turn>' + role + '\\n' + m['content'] | trim + '<end_of_turn>\\n' }}"
       "{% endfor %}",
       ChatFormat::kGemma},
      {"chatml", ChatFormat::kChatML},
      {"llama3", ChatFormat::kLlama3},
  };
  for (const Case& c : cases) {
    absl::StatusOr<ChatFormat> f = DetectChatFormat(c.jinja);
    ASSERT_TRUE(f.ok()) << f.status() << " for " << c.jinja;
    EXPECT_EQ(*f, c.want) << c.jinja;
  }
}

TEST(ChatTemplateTest, UnknownTemplatesAreClearErrors) {
  absl::StatusOr<ChatFormat> f = DetectChatFormat("{% for m in messages %}### {{ m['role'] }}: {{ m['content'] }}");
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(f.status().message()),
              HasSubstr("not recognized (it starts: '{% for m in messages %}### {{ m['role'] }}"));
  EXPECT_THAT(std::string(f.status().message()), HasSubstr("chatml, llama2, mistral, llama3, zephyr, phi3, gemma"));
  // Families with a marker cairn knows but a layout it does not render.
  f = DetectChatFormat("{{'<|im_start|>' + m['role'] + '<|im_sep|>'}}");
  EXPECT_THAT(std::string(f.status().message()), HasSubstr("Phi-4"));
  f = DetectChatFormat("{{ '[SYSTEM_PROMPT]' }}{{ '[INST]' }}");
  EXPECT_THAT(std::string(f.status().message()), HasSubstr("Mistral v7"));

  absl::StatusOr<ChatTemplate> t = ChatTemplate::Select("", "");
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(t.status().message()), HasSubstr("has no chat template"));
  t = ChatTemplate::Select("vicuna", "<|im_start|>");
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(t.status().message()), HasSubstr("unknown chat template 'vicuna' (known: chatml,"));
}

TEST(ChatTemplateTest, SelectPrefersTheNameAndFixesZephyrsEndMarker) {
  absl::StatusOr<ChatTemplate> t = ChatTemplate::Select("gemma", "<|im_start|>");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->format(), ChatFormat::kGemma);
  t = ChatTemplate::Select("", "{{ '<|user|>\\n' + m['content'] + '<|endoftext|>' }}");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->format(), ChatFormat::kZephyr);
  std::vector<ChatMessage> one = {{"user", "Hi"}};
  EXPECT_EQ(t->Apply(one), "<|user|>\nHi<|endoftext|>\n<|assistant|>\n");
  EXPECT_EQ(t->StopStrings(), std::vector<std::string>{"<|endoftext|>"});
}

TEST(ChatTemplateTest, NamesRoundTrip) {
  for (const std::string& name : ChatFormatNames()) {
    absl::StatusOr<ChatFormat> f = ParseChatFormat(name);
    ASSERT_TRUE(f.ok()) << name;
    EXPECT_EQ(ChatFormatName(*f), name);
    EXPECT_FALSE(ChatTemplate(*f).StopStrings().empty()) << name;
  }
  EXPECT_EQ(ChatTemplate(ChatFormat::kChatML).StopStrings(), std::vector<std::string>{"<|im_end|>"});
}

}  // namespace
}  // namespace cairn::infer
