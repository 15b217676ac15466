// `cairn tokenize -m FILE.gguf`: text to token ids with a model's vocabulary, or back.
//
//   echo -n "Hello world" | cairn tokenize -m model.gguf      -> 1 15043 3186
//   cairn tokenize -m model.gguf -p "Hello" --pieces          -> one "id<TAB>piece" per line
//   echo "1 15043 3186" | cairn tokenize -m model.gguf --decode   -> Hello world
//
// Encoding reads all of stdin as one text, exactly as it is (a trailing newline is
// text too; --lines tokenizes each line on its own). Decoding reads ids separated by
// spaces, commas or newlines and writes the text with nothing added, so
// `cairn tokenize ... | cairn tokenize --decode ...` gives back the input.
#include <cstdio>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "cairn/cli/commands.h"
#include "cairn/infer/gguf.h"
#include "cairn/infer/tokenizer.h"
#include "cairn/infer/vocab.h"

namespace cairn::cli {
namespace {

struct TokenizeFlags {
  std::string model;
  std::string prompt;
  bool has_prompt = false;
  bool decode = false;
  bool no_special = false;
  bool parse_special = false;
  bool render_special = false;
  bool pieces = false;
  bool lines = false;
};

int Fail(const std::string& message) {
  std::fprintf(stderr, "cairn tokenize: %s\n", message.c_str());
  return 1;
}

absl::StatusOr<infer::Tokenizer> LoadTokenizer(const std::string& path) {
  auto file = infer::GgufFile::Open(path);
  if (!file.ok()) return file.status();
  auto vocab = infer::LoadVocab(**file);
  if (!vocab.ok()) return vocab.status();
  return infer::Tokenizer::Create(*std::move(vocab));
}

std::string ReadAll(std::FILE* in) {
  std::string text;
  char buf[1 << 16];
  for (size_t n; (n = std::fread(buf, 1, sizeof(buf), in)) > 0;) text.append(buf, n);
  return text;
}

// "id<TAB>piece" with the piece's control characters escaped, so one token is one line.
std::string PieceLine(const infer::Tokenizer& t, int32_t id) {
  std::string shown;
  for (unsigned char c : t.TokenToPiece(id, /*render_special=*/true)) {
    if (c == '\n') {
      shown += "\\n";
    } else if (c == '\t') {
      shown += "\\t";
    } else if (c == '\\') {
      shown += "\\\\";
    } else if (c < 0x20 || c == 0x7F) {
      shown += fmt::format("\\x{:02x}", c);
    } else {
      shown.push_back(static_cast<char>(c));
    }
  }
  return fmt::format("{}\t{}\n", id, shown);
}

void PrintIds(const infer::Tokenizer& t, const std::vector<int32_t>& ids, bool pieces, std::string* out) {
  if (pieces) {
    for (int32_t id : ids) *out += PieceLine(t, id);
    return;
  }
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i > 0) out->push_back(' ');
    *out += std::to_string(ids[i]);
  }
  out->push_back('\n');
}

int RunEncode(const TokenizeFlags& f, const infer::Tokenizer& t) {
  const std::string text = f.has_prompt ? f.prompt : ReadAll(stdin);
  std::string out;
  auto encode = [&](std::string_view part) {
    PrintIds(t, t.Encode(part, !f.no_special, f.parse_special), f.pieces, &out);
  };
  if (f.lines) {
    size_t pos = 0;
    while (pos < text.size()) {
      size_t end = text.find('\n', pos);
      if (end == std::string::npos) end = text.size();
      encode(std::string_view(text).substr(pos, end - pos));
      pos = end + 1;
    }
  } else {
    encode(text);
  }
  std::fwrite(out.data(), 1, out.size(), stdout);
  return 0;
}

int RunDecode(const TokenizeFlags& f, const infer::Tokenizer& t) {
  const std::string text = f.has_prompt ? f.prompt : ReadAll(stdin);
  std::vector<int32_t> ids;
  size_t pos = 0;
  while (pos < text.size()) {
    const char c = text[pos];
    if (c == ' ' || c == ',' || c == '\n' || c == '\t' || c == '\r' || c == '[' || c == ']') {
      ++pos;
      continue;
    }
    size_t end = pos;
    while (end < text.size() && ((text[end] >= '0' && text[end] <= '9') || (end == pos && text[end] == '-'))) ++end;
    const std::string_view number = std::string_view(text).substr(pos, end - pos);
    if (end == pos || number == "-" || number.size() > 10) {
      const size_t stop = text.find_first_of(" ,\n\t\r", pos);
      return Fail(fmt::format("'{}' at byte {} is not a token id", text.substr(pos, stop - pos), pos));
    }
    const long long id = std::stoll(std::string(number));
    if (id < 0 || id >= t.vocab_size()) {
      return Fail(fmt::format("token id {} is outside the vocabulary (ids 0..{})", id, t.vocab_size() - 1));
    }
    ids.push_back(static_cast<int32_t>(id));
    pos = end;
  }
  std::string out;
  if (f.pieces) {
    for (int32_t id : ids) out += PieceLine(t, id);
  } else {
    out = t.Decode(ids, {.render_special = f.render_special});
  }
  std::fwrite(out.data(), 1, out.size(), stdout);
  return 0;
}

int RunTokenize(const TokenizeFlags& f) {
  auto tokenizer = LoadTokenizer(f.model);
  if (!tokenizer.ok()) return Fail(std::string(tokenizer.status().message()));
  return f.decode ? RunDecode(f, *tokenizer) : RunEncode(f, *tokenizer);
}

}  // namespace

void RegisterTokenize(CLI::App& app, Runner* run) {
  auto f = std::make_shared<TokenizeFlags>();
  CLI::App* cmd = app.add_subcommand(
      "tokenize", "Token ids of the text on stdin with a GGUF model's vocabulary (--decode: ids to text)");
  cmd->add_option("-m,--model", f->model, "GGUF model (or vocabulary-only) file")->required();
  cmd->add_option("-p,--prompt", f->prompt, "Text (or, with --decode, ids) to use instead of stdin")
      ->each([f](const std::string&) { f->has_prompt = true; });
  cmd->add_flag("-d,--decode", f->decode, "Read token ids, write the text");
  cmd->add_flag("--no-special,--no-bos", f->no_special, "Do not add BOS/EOS/CLS/SEP as the model would");
  cmd->add_flag("--parse-special", f->parse_special,
                "Control-token strings in the text (<|im_start|>, </s>) become their ids");
  cmd->add_flag("--render-special", f->render_special, "--decode: print control tokens' text (<s>, [CLS])");
  cmd->add_flag("--pieces", f->pieces, "One line per token: id, a tab, and its text");
  cmd->add_flag("--lines", f->lines, "Tokenize each input line on its own (one output line each)");
  cmd->callback([run, f] { *run = [f] { return RunTokenize(*f); }; });
}

}  // namespace cairn::cli
