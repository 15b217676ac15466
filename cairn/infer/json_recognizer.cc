#include "cairn/infer/json_recognizer.h"

#include <cstring>
#include <utility>

namespace cairn::infer::json {
namespace {

enum Kind : uint8_t { kValue, kObj, kArr, kStr, kNum, kLit };

// Object frames: a = index of the last declared property written (-1 before any).
enum ObjSub : uint8_t { kObjOpen, kObjNeedKey, kObjInKey, kObjAfterKey, kObjInValue, kObjAfterValue };
// Array frames: a = items written.
enum ArrSub : uint8_t { kArrOpen, kArrInValue, kArrAfterValue };
// String frames: a = code points so far; x and b as each state says.
enum StrSub : uint8_t {
  kStrChar,         // between characters
  kStrCont,         // x: continuation bytes still due; b: (lowest << 8) | highest allowed for the next
  kStrEsc,          // after a backslash
  kStrHex,          // \u: x digits read, b their value
  kStrLowBackslash, // a high surrogate was written: "\uDC00".."\uDFFF" must follow
  kStrLowU,
  kStrLowHex,
};
// Number frames: a = digits in the current part.
enum NumSub : uint8_t { kNumStart, kNumMinus, kNumZero, kNumInt, kNumDot, kNumFrac, kNumE, kNumESign, kNumExp };

constexpr int32_t kMaxIntDigits = 15, kMaxFracDigits = 16, kMaxExpDigits = 2;

bool IsWs(uint8_t c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; }
bool IsDigit(uint8_t c) { return c >= '0' && c <= '9'; }
int HexValue(uint8_t c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

struct Stack {
  int n = 0;
  uint8_t ws = 0;
  Frame f[kMaxFrames];

  Frame& top() { return f[n - 1]; }
};

void CopyStack(Stack* dst, const Stack& src) {
  dst->n = src.n;
  dst->ws = src.ws;
  std::memcpy(dst->f, src.f, sizeof(Frame) * static_cast<size_t>(src.n));
}

class Feeder {
 public:
  Feeder(const JsonGrammar& g, JsonState* out) : g_(g), out_(out) {}

  // Advances `s` by `c`, adding every stack that results to the output.
  void Feed(Stack& s, uint8_t c) {
    for (;;) {
      if (s.n == 0) return;  // nothing follows the value
      Frame& f = s.top();
      const JsonNode& node = g_.nodes[static_cast<size_t>(f.node)];
      switch (f.kind) {
        case kValue:
          if (IsWs(c)) return Whitespace(s);
          if (!node.alternatives.empty()) {
            for (int32_t alt : node.alternatives) {
              Stack t;
              CopyStack(&t, s);
              t.top().node = alt;
              Feed(t, c);
            }
            return;
          }
          if (!node.literals.empty()) {
            for (int32_t lit : node.literals) {
              Stack t;
              CopyStack(&t, s);
              t.top() = Frame{f.node, kLit, 0, 0, lit, 0};
              Feed(t, c);
            }
            return;
          }
          switch (c) {
            case '{':
              if (!(node.types & kObject)) return;
              f = Frame{f.node, kObj, kObjOpen, 0, -1, 0};
              return Content(s);
            case '[':
              if (!(node.types & kArray)) return;
              f = Frame{f.node, kArr, kArrOpen, 0, 0, 0};
              return Content(s);
            case '"':
              if (!(node.types & kString)) return;
              f = Frame{f.node, kStr, kStrChar, 0, 0, 0};
              return Content(s);
            case 't':
            case 'f':
              if (!(node.types & kBoolean)) return;
              f = Frame{f.node, kLit, 0, 0, c == 't' ? kLiteralTrue : kLiteralFalse, 0};
              continue;
            case 'n':
              if (!(node.types & kNull)) return;
              f = Frame{f.node, kLit, 0, 0, kLiteralNull, 0};
              continue;
            default:
              if ((c == '-' || IsDigit(c)) && (node.types & (kNumber | kInteger))) {
                f = Frame{f.node, kNum, kNumStart, 0, 0, 0};
                continue;
              }
              return;
          }
        case kLit: {
          const std::string& lit = g_.literals[static_cast<size_t>(f.a)];
          const size_t pos = static_cast<size_t>(f.b);
          if (pos >= lit.size() || static_cast<uint8_t>(lit[pos]) != c) return;
          if (static_cast<size_t>(++f.b) == lit.size()) Pop(s);
          return Content(s);
        }
        case kNum:
          if (Number(f, node, c)) return Content(s);
          if (f.sub == kNumZero || f.sub == kNumInt || f.sub == kNumFrac || f.sub == kNumExp) {
            Pop(s);  // the byte ends the number: the enclosing value reads it
            continue;
          }
          return;
        case kStr:
          if (String(s, f, node, c)) return Content(s);
          return;
        case kObj:
          return Object(s, f, node, c);
        case kArr:
          return Array(s, f, node, c);
        default:
          return;
      }
    }
  }

 private:
  void Emit(const Stack& s) {
    const size_t begin = out_->frames.size();
    // Merge with an identical stack (two alternatives that met again).
    uint32_t prev = 0;
    for (size_t i = 0; i < out_->ends.size(); ++i) {
      const uint32_t end = out_->ends[i];
      if (end - prev == static_cast<uint32_t>(s.n) && out_->ws[i] == s.ws &&
          (s.n == 0 || std::memcmp(out_->frames.data() + prev, s.f, sizeof(Frame) * static_cast<size_t>(s.n)) == 0)) {
        return;
      }
      prev = end;
    }
    if (out_->ends.size() >= kMaxChoices) return;  // keep the choices made so far; still sound
    out_->frames.insert(out_->frames.end(), s.f, s.f + s.n);
    out_->ends.push_back(static_cast<uint32_t>(begin + static_cast<size_t>(s.n)));
    out_->ws.push_back(s.ws);
  }

  void Whitespace(Stack& s) {
    if (s.ws >= kMaxWhitespaceRun) return;
    ++s.ws;
    Emit(s);
  }

  void Content(Stack& s) {
    s.ws = 0;
    Emit(s);
  }

  // The top frame's value is complete: its parent moves on.
  static void Pop(Stack& s) {
    --s.n;
    if (s.n == 0) return;
    Frame& p = s.top();
    if (p.kind == kObj) {
      p.sub = p.sub == kObjInKey ? kObjAfterKey : kObjAfterValue;
    } else if (p.kind == kArr) {
      ++p.a;
      p.sub = kArrAfterValue;
    }
  }

  static bool Push(Stack& s, const Frame& f) {
    if (s.n >= kMaxFrames) return false;
    s.f[s.n++] = f;
    return true;
  }

  static bool Number(Frame& f, const JsonNode& node, uint8_t c) {
    const bool fraction = (node.types & kNumber) != 0;  // else integers only
    switch (f.sub) {
      case kNumStart:
        if (c == '-') return f.sub = kNumMinus, true;
        [[fallthrough]];
      case kNumMinus:
        if (c == '0') return f.sub = kNumZero, true;
        if (IsDigit(c)) return f.sub = kNumInt, f.a = 1, true;
        return false;
      case kNumInt:
        if (IsDigit(c)) return f.a < kMaxIntDigits ? (++f.a, true) : false;
        [[fallthrough]];
      case kNumZero:
        if (!fraction) return false;
        if (c == '.') return f.sub = kNumDot, true;
        if (c == 'e' || c == 'E') return f.sub = kNumE, true;
        return false;
      case kNumDot:
        if (IsDigit(c)) return f.sub = kNumFrac, f.a = 1, true;
        return false;
      case kNumFrac:
        if (IsDigit(c)) return f.a < kMaxFracDigits ? (++f.a, true) : false;
        if (c == 'e' || c == 'E') return f.sub = kNumE, true;
        return false;
      case kNumE:
        if (c == '+' || c == '-') return f.sub = kNumESign, true;
        [[fallthrough]];
      case kNumESign:
        if (IsDigit(c)) return f.sub = kNumExp, f.a = 1, true;
        return false;
      case kNumExp:
        if (IsDigit(c)) return f.a < kMaxExpDigits ? (++f.a, true) : false;
        return false;
      default:
        return false;
    }
  }

  // One byte of a string (after its opening quote); false when it cannot come.
  static bool String(Stack& s, Frame& f, const JsonNode& node, uint8_t c) {
    switch (f.sub) {
      case kStrChar:
        if (c == '"') {
          if (f.a < node.min_length) return false;
          Pop(s);
          return true;
        }
        if (c < 0x20 || f.a >= node.max_length) return false;
        // Lengths are counted only where the schema bounds them, so that in a free
        // string an ordinary character leaves the state as it was (see Neutral).
        if (node.min_length > 0 || node.max_length != INT32_MAX) ++f.a;
        if (c == '\\') return f.sub = kStrEsc, true;
        if (c < 0x80) return true;
        // UTF-8: the lead byte says how many continuation bytes follow, and the
        // first of them is narrowed to rule out overlong forms, surrogates and
        // code points above U+10FFFF.
        if (c >= 0xC2 && c <= 0xDF) return Lead(f, 1, 0x80, 0xBF);
        if (c == 0xE0) return Lead(f, 2, 0xA0, 0xBF);
        if (c == 0xED) return Lead(f, 2, 0x80, 0x9F);
        if (c >= 0xE1 && c <= 0xEF) return Lead(f, 2, 0x80, 0xBF);
        if (c == 0xF0) return Lead(f, 3, 0x90, 0xBF);
        if (c >= 0xF1 && c <= 0xF3) return Lead(f, 3, 0x80, 0xBF);
        if (c == 0xF4) return Lead(f, 3, 0x80, 0x8F);
        return false;
      case kStrCont:
        if (c < (f.b >> 8) || c > (f.b & 0xFF)) return false;
        f.b = 0x80BF;
        if (--f.x == 0) f.sub = kStrChar;
        return true;
      case kStrEsc:
        if (c == 'u') return f.sub = kStrHex, f.x = 0, f.b = 0, true;
        if (c == '"' || c == '\\' || c == '/' || c == 'b' || c == 'f' || c == 'n' || c == 'r' || c == 't') {
          return f.sub = kStrChar, true;
        }
        return false;
      case kStrHex:
      case kStrLowHex: {
        const int v = HexValue(c);
        if (v < 0) return false;
        f.b = f.b * 16 + v;
        ++f.x;
        const bool low = f.sub == kStrLowHex;
        if (f.x == 2) {
          const bool is_low = f.b >= 0xDC && f.b <= 0xDF;
          if (is_low != low) return false;  // a low surrogate only right after a high one
        }
        if (f.x == 4) f.sub = (!low && f.b >= 0xD800 && f.b <= 0xDBFF) ? kStrLowBackslash : kStrChar;
        return true;
      }
      case kStrLowBackslash:
        if (c != '\\') return false;
        return f.sub = kStrLowU, true;
      case kStrLowU:
        if (c != 'u') return false;
        return f.sub = kStrLowHex, f.x = 0, f.b = 0, true;
      default:
        return false;
    }
  }

  static bool Lead(Frame& f, int continuation, int lo, int hi) {
    f.sub = kStrCont;
    f.x = static_cast<uint16_t>(continuation);
    f.b = (lo << 8) | hi;
    return true;
  }

  void StartKey(Stack& s, const JsonNode& node, uint8_t c) {
    Frame& f = s.top();
    if (node.properties.empty()) {
      if (node.additional < 0) return;
      f.sub = kObjInKey;
      if (!Push(s, Frame{0, kStr, kStrChar, 0, 0, 0})) return;
      return Content(s);
    }
    const int32_t n = static_cast<int32_t>(node.properties.size());
    const int32_t first = f.a + 1;
    const int32_t last = std::min(node.next_required[static_cast<size_t>(first)], n - 1);
    for (int32_t k = first; k <= last; ++k) {
      Stack t;
      CopyStack(&t, s);
      t.top().a = k;
      t.top().sub = kObjInKey;
      if (!Push(t, Frame{f.node, kLit, 0, 0, node.properties[static_cast<size_t>(k)].key_literal, 0})) return;
      Feed(t, c);
    }
  }

  void Object(Stack& s, Frame& f, const JsonNode& node, uint8_t c) {
    const int32_t n = static_cast<int32_t>(node.properties.size());
    const bool declared = n > 0;
    const bool may_close = !declared || node.next_required[static_cast<size_t>(f.a + 1)] == n;
    switch (f.sub) {
      case kObjOpen:
      case kObjNeedKey:
        if (IsWs(c)) return Whitespace(s);
        if (c == '"') return StartKey(s, node, c);
        if (c == '}' && f.sub == kObjOpen && may_close) {
          Pop(s);
          return Content(s);
        }
        return;
      case kObjAfterKey: {
        if (IsWs(c)) return Whitespace(s);
        if (c != ':') return;
        const int32_t value = declared ? node.properties[static_cast<size_t>(f.a)].node : node.additional;
        f.sub = kObjInValue;
        if (!Push(s, Frame{value, kValue, 0, 0, 0, 0})) return;
        return Content(s);
      }
      case kObjAfterValue:
        if (IsWs(c)) return Whitespace(s);
        if (c == ',' && (!declared || f.a + 1 < n)) {
          f.sub = kObjNeedKey;
          return Content(s);
        }
        if (c == '}' && may_close) {
          Pop(s);
          return Content(s);
        }
        return;
      default:
        return;
    }
  }

  void Array(Stack& s, Frame& f, const JsonNode& node, uint8_t c) {
    switch (f.sub) {
      case kArrOpen:
        if (IsWs(c)) return Whitespace(s);
        if (c == ']') {
          if (node.min_items > 0) return;
          Pop(s);
          return Content(s);
        }
        if (node.max_items == 0) return;
        f.sub = kArrInValue;
        if (!Push(s, Frame{node.items, kValue, 0, 0, 0, 0})) return;
        return Feed(s, c);
      case kArrAfterValue:
        if (IsWs(c)) return Whitespace(s);
        if (c == ',' && f.a < node.max_items) {
          f.sub = kArrInValue;
          if (!Push(s, Frame{node.items, kValue, 0, 0, 0, 0})) return;
          return Content(s);
        }
        if (c == ']' && f.a >= node.min_items) {
          Pop(s);
          return Content(s);
        }
        return;
      default:
        return;
    }
  }

  const JsonGrammar& g_;
  JsonState* out_;
};

}  // namespace

JsonRecognizer::JsonRecognizer(JsonGrammar grammar) : g_(std::move(grammar)) {}

JsonState JsonRecognizer::Start() const {
  JsonState s;
  s.frames.push_back(Frame{g_.root, kValue, 0, 0, 0, 0});
  s.ends.push_back(1);
  s.ws.push_back(0);
  return s;
}

bool JsonRecognizer::Advance(const JsonState& state, uint8_t byte, JsonState* next) const {
  next->frames.clear();
  next->ends.clear();
  next->ws.clear();
  Feeder feeder(g_, next);
  Stack s;
  uint32_t begin = 0;
  for (size_t i = 0; i < state.ends.size(); ++i) {
    const uint32_t end = state.ends[i];
    s.n = static_cast<int>(end - begin);
    s.ws = state.ws[i];
    if (end > begin) std::memcpy(s.f, state.frames.data() + begin, sizeof(Frame) * (end - begin));
    feeder.Feed(s, byte);
    begin = end;
  }
  return !next->empty();
}

bool JsonRecognizer::Advance(JsonState* state, std::string_view bytes, JsonState* scratch) const {
  JsonState cur = *state;
  for (char c : bytes) {
    if (!Advance(cur, static_cast<uint8_t>(c), scratch)) return false;
    std::swap(cur, *scratch);
  }
  *state = std::move(cur);
  return true;
}

bool JsonRecognizer::Neutral(const JsonState& state, uint8_t byte) const {
  if (state.ends.size() != 1 || state.ends[0] == 0 || !IsPlainStringByte(byte)) return false;
  const Frame& f = state.frames[state.ends[0] - 1];
  if (f.kind != kStr || f.sub != kStrChar || state.ws[0] != 0) return false;
  const JsonNode& n = g_.nodes[static_cast<size_t>(f.node)];
  return n.min_length == 0 && n.max_length == INT32_MAX;
}

bool JsonRecognizer::CanEnd(const JsonState& state) const {
  uint32_t begin = 0;
  for (uint32_t end : state.ends) {
    if (end == begin) return true;
    if (end - begin == 1) {
      const Frame& f = state.frames[begin];
      if (f.kind == kNum && (f.sub == kNumZero || f.sub == kNumInt || f.sub == kNumFrac || f.sub == kNumExp)) {
        return true;
      }
    }
    begin = end;
  }
  return false;
}

bool JsonRecognizer::Finished(const JsonState& state) const {
  uint32_t begin = 0;
  for (uint32_t end : state.ends) {
    if (end == begin) return true;
    begin = end;
  }
  return false;
}

}  // namespace cairn::infer::json
