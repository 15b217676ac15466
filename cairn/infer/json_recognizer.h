// cairn/infer/json_recognizer.h — a byte-at-a-time recognizer of the JSON texts a
// compiled schema (json_schema.h) admits.
//
// The state is a pushdown automaton's: a stack of frames (an object and the key or
// value inside it, an array and its current item, a string with its length so far
// and any escape or UTF-8 sequence in progress, a number's part, a literal's
// position). Where the text has not yet decided between choices (the alternatives of
// anyOf, the values of an enum, which optional property a key starts) the state
// holds one stack per choice still possible; identical stacks are merged, and a
// byte that no stack accepts is rejected. Every state the recognizer reaches can
// still be completed, so a generator following it never gets stuck.
//
// The text is RFC 8259 JSON: one value, with no whitespace after it; whitespace
// before and inside it comes in runs of at most kMaxWhitespaceRun bytes (so that
// a generator cannot produce whitespace forever).
//
// Thread-safety: a JsonRecognizer is immutable after construction; JsonStates are
// plain values.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "cairn/infer/json_schema.h"

namespace cairn::infer::json {

inline constexpr int kMaxWhitespaceRun = 8;

struct Frame {
  int32_t node = 0;
  uint8_t kind = 0;
  uint8_t sub = 0;
  uint16_t x = 0;
  int32_t a = 0;
  int32_t b = 0;
};

// The stacks still possible, stored one after another.
struct JsonState {
  std::vector<Frame> frames;
  std::vector<uint32_t> ends;  // ends[i]: one past stack i's last frame in `frames`
  std::vector<uint8_t> ws;     // per stack: whitespace bytes just before
  bool empty() const { return ends.empty(); }
  size_t stacks() const { return ends.size(); }
};

// A byte that is an ordinary character inside a string: printable ASCII other than
// the quote and the backslash.
inline bool IsPlainStringByte(uint8_t c) { return c >= 0x20 && c < 0x80 && c != '"' && c != '\\'; }

class JsonRecognizer {
 public:
  explicit JsonRecognizer(JsonGrammar grammar);

  // Nothing read yet.
  JsonState Start() const;
  // `*next` = `state` after `byte`; false (and *next empty) when the byte cannot come
  // next. `next` must not be `&state`.
  bool Advance(const JsonState& state, uint8_t byte, JsonState* next) const;
  // The same for several bytes; `state` is left as it was when they are rejected.
  bool Advance(JsonState* state, std::string_view bytes, JsonState* scratch) const;
  // True when `byte` certainly leaves `state` as it is (an ordinary character in a
  // string without length bounds): a quick test that lets a caller skip Advance.
  // False does not mean the state changes.
  bool Neutral(const JsonState& state, uint8_t byte) const;
  // The text read is a whole value (a top-level number may still go on).
  bool CanEnd(const JsonState& state) const;
  // The text read is a whole value that nothing may follow.
  bool Finished(const JsonState& state) const;

  const JsonGrammar& grammar() const { return g_; }

 private:
  JsonGrammar g_;
};

}  // namespace cairn::infer::json
