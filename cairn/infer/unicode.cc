#include "cairn/infer/unicode.h"

#include <algorithm>
#include <array>
#include <vector>

namespace cairn::infer::unicode_data {
extern const char kUnicodeVersion[];
extern const uint32_t kCategoryRuns[];
extern const size_t kCategoryRunsSize;
extern const uint32_t kLowerFrom[];
extern const size_t kLowerFromSize;
extern const uint32_t kLowerTo[];
extern const size_t kLowerToSize;
extern const uint32_t kDecompKeys[];
extern const size_t kDecompKeysSize;
extern const uint32_t kDecompData[];
extern const size_t kDecompDataSize;
}  // namespace cairn::infer::unicode_data

namespace cairn::infer::unicode {
namespace {

namespace data = ::cairn::infer::unicode_data;

// Hangul syllable arithmetic (Unicode chapter 3.12).
constexpr char32_t kHangulBase = 0xAC00, kLeadBase = 0x1100, kVowelBase = 0x1161, kTrailBase = 0x11A7;
constexpr char32_t kVowelCount = 21, kTrailCount = 28, kSyllableCount = 11172;

// Offsets into kDecompData, one per kDecompKeys entry (the generator stores only lengths).
const std::vector<uint32_t>& DecompOffsets() {
  static const std::vector<uint32_t> offsets = [] {
    std::vector<uint32_t> v(data::kDecompKeysSize);
    uint32_t offset = 0;
    for (size_t i = 0; i < data::kDecompKeysSize; ++i) {
      v[i] = offset;
      offset += data::kDecompKeys[i] & 7;
    }
    return v;
  }();
  return offsets;
}

struct ByteTables {
  std::array<char32_t, 256> byte_to_cp{};
  std::array<std::string, 256> byte_to_utf8;
  std::array<int16_t, 324> cp_to_byte{};  // the mapped code points are all below 256 + 68
};

const ByteTables& GetByteTables() {
  static const ByteTables tables = [] {
    ByteTables t;
    t.cp_to_byte.fill(-1);
    // Printable Latin-1 bytes stand for themselves; the rest are moved, in order, to 256+.
    auto printable = [](int b) {
      return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    };
    char32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const char32_t cp = printable(b) ? static_cast<char32_t>(b) : next++;
      t.byte_to_cp[b] = cp;
      AppendUtf8(cp, &t.byte_to_utf8[b]);
      t.cp_to_byte[cp] = static_cast<int16_t>(b);
    }
    return t;
  }();
  return tables;
}

}  // namespace

const char* UnicodeVersion() { return data::kUnicodeVersion; }

namespace {
Category SearchCategory(char32_t cp) {
  // The last run starting at or before cp.
  const uint32_t* begin = data::kCategoryRuns;
  const uint32_t* end = begin + data::kCategoryRunsSize;
  const uint32_t key = (static_cast<uint32_t>(cp) << 5) | 31;
  const uint32_t* it = std::upper_bound(begin, end, key);
  return static_cast<Category>(*(it - 1) & 31);
}
}  // namespace

Category GetCategory(char32_t cp) {
  // Latin-1 is most of most text: a direct table instead of the binary search.
  static const std::array<Category, 256> latin1 = [] {
    std::array<Category, 256> t{};
    for (char32_t c = 0; c < 256; ++c) t[c] = SearchCategory(c);
    return t;
  }();
  if (cp < 256) return latin1[cp];
  if (cp > kMaxCodePoint) return Category::kCn;
  return SearchCategory(cp);
}

bool IsLetter(char32_t cp) {
  const Category c = GetCategory(cp);
  return c >= Category::kLu && c <= Category::kLo;
}
bool IsMark(char32_t cp) {
  const Category c = GetCategory(cp);
  return c >= Category::kMn && c <= Category::kMe;
}
bool IsNumber(char32_t cp) {
  const Category c = GetCategory(cp);
  return c >= Category::kNd && c <= Category::kNo;
}
bool IsPunctuation(char32_t cp) {
  const Category c = GetCategory(cp);
  return c >= Category::kPc && c <= Category::kPo;
}
bool IsSymbol(char32_t cp) {
  const Category c = GetCategory(cp);
  return c >= Category::kSm && c <= Category::kSo;
}
bool IsOther(char32_t cp) {
  const Category c = GetCategory(cp);
  return c == Category::kCn || (c >= Category::kCc && c <= Category::kCo);
}

bool IsWhitespace(char32_t cp) {
  switch (cp) {
    case 0x09: case 0x0A: case 0x0B: case 0x0C: case 0x0D: case 0x20: case 0x85: case 0xA0:
    case 0x1680: case 0x2028: case 0x2029: case 0x202F: case 0x205F: case 0x3000:
      return true;
    default:
      return cp >= 0x2000 && cp <= 0x200A;
  }
}

char32_t ToLower(char32_t cp) {
  if (cp < 0x80) return (cp >= 'A' && cp <= 'Z') ? cp + 32 : cp;
  const uint32_t* begin = data::kLowerFrom;
  const uint32_t* end = begin + data::kLowerFromSize;
  const uint32_t* it = std::lower_bound(begin, end, static_cast<uint32_t>(cp));
  if (it == end || *it != cp) return cp;
  return data::kLowerTo[it - begin];
}

void AppendLower(char32_t cp, std::u32string* out) {
  if (cp == 0x130) {  // the one code point whose lowercase is two
    out->push_back('i');
    out->push_back(0x307);
    return;
  }
  out->push_back(ToLower(cp));
}

void AppendNfd(char32_t cp, std::u32string* out) {
  if (cp < 0xC0) {
    out->push_back(cp);
    return;
  }
  if (cp >= kHangulBase && cp < kHangulBase + kSyllableCount) {
    const char32_t index = cp - kHangulBase;
    out->push_back(kLeadBase + index / (kVowelCount * kTrailCount));
    out->push_back(kVowelBase + (index % (kVowelCount * kTrailCount)) / kTrailCount);
    if (index % kTrailCount != 0) out->push_back(kTrailBase + index % kTrailCount);
    return;
  }
  const uint32_t* begin = data::kDecompKeys;
  const uint32_t* end = begin + data::kDecompKeysSize;
  const uint32_t* it = std::lower_bound(begin, end, static_cast<uint32_t>(cp) << 3);
  if (it == end || (*it >> 3) != cp) {
    out->push_back(cp);
    return;
  }
  const uint32_t offset = DecompOffsets()[it - begin];
  for (uint32_t i = 0; i < (*it & 7); ++i) out->push_back(data::kDecompData[offset + i]);
}

int Utf8SequenceLength(uint8_t lead) {
  if (lead < 0x80) return 1;
  if (lead < 0xC2) return 0;
  if (lead < 0xE0) return 2;
  if (lead < 0xF0) return 3;
  if (lead < 0xF5) return 4;
  return 0;
}

namespace {
// The allowed range of the byte after `lead` (excludes overlongs, surrogates, > U+10FFFF).
bool SecondByteOk(uint8_t lead, uint8_t second) {
  switch (lead) {
    case 0xE0: return second >= 0xA0 && second <= 0xBF;
    case 0xED: return second >= 0x80 && second <= 0x9F;
    case 0xF0: return second >= 0x90 && second <= 0xBF;
    case 0xF4: return second >= 0x80 && second <= 0x8F;
    default: return (second & 0xC0) == 0x80;
  }
}
}  // namespace

size_t Utf8CharLength(std::string_view text, size_t pos) {
  if (pos >= text.size()) return 0;
  const auto lead = static_cast<uint8_t>(text[pos]);
  const int n = Utf8SequenceLength(lead);
  if (n <= 1 || pos + n > text.size()) return 1;
  if (!SecondByteOk(lead, static_cast<uint8_t>(text[pos + 1]))) return 1;
  for (int i = 2; i < n; ++i) {
    if ((static_cast<uint8_t>(text[pos + i]) & 0xC0) != 0x80) return 1;
  }
  return static_cast<size_t>(n);
}

char32_t DecodeUtf8(std::string_view text, size_t* pos) {
  const size_t n = Utf8CharLength(text, *pos);
  if (n == 0) return kReplacementChar;
  const auto* p = reinterpret_cast<const uint8_t*>(text.data()) + *pos;
  *pos += n;
  switch (n) {
    case 1: return p[0] < 0x80 ? p[0] : kReplacementChar;
    case 2: return ((p[0] & 0x1Fu) << 6) | (p[1] & 0x3Fu);
    case 3: return ((p[0] & 0x0Fu) << 12) | ((p[1] & 0x3Fu) << 6) | (p[2] & 0x3Fu);
    default: return ((p[0] & 0x07u) << 18) | ((p[1] & 0x3Fu) << 12) | ((p[2] & 0x3Fu) << 6) | (p[3] & 0x3Fu);
  }
}

void AppendUtf8(char32_t cp, std::string* out) {
  if (cp > kMaxCodePoint || (cp >= 0xD800 && cp <= 0xDFFF)) cp = kReplacementChar;
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

size_t Utf8CompletePrefixLength(std::string_view bytes) {
  const size_t size = bytes.size();
  // A sequence is at most 4 bytes: only the last 3 can be an unfinished one.
  for (size_t back = 1; back <= 3 && back <= size; ++back) {
    const size_t start = size - back;
    const auto b = static_cast<uint8_t>(bytes[start]);
    if ((b & 0xC0) == 0x80) continue;  // a continuation byte: look further back
    const int n = Utf8SequenceLength(b);
    if (n <= static_cast<int>(back)) return size;  // complete, or not a lead byte at all
    if (back >= 2 && !SecondByteOk(b, static_cast<uint8_t>(bytes[start + 1]))) return size;
    return start;  // a valid beginning still missing bytes: hold it back
  }
  return size;
}

std::string_view ByteToUnicode(uint8_t b) { return GetByteTables().byte_to_utf8[b]; }

int UnicodeToByte(char32_t cp) {
  const ByteTables& t = GetByteTables();
  if (cp >= t.cp_to_byte.size()) return -1;
  return t.cp_to_byte[cp];
}

// Byte tokens can spell invalid UTF-8 (a stray continuation byte, a lead byte
// followed by ASCII): each invalid byte becomes U+FFFD, as a tolerant decoder shows
// it, so that every piece streamed is valid UTF-8.
std::string ToValidUtf8(std::string s) {
  size_t pos = 0;
  while (pos < s.size()) {
    const size_t n = Utf8CharLength(s, pos);
    if (n == 1 && static_cast<unsigned char>(s[pos]) >= 0x80) break;
    pos += n;
  }
  if (pos == s.size()) return s;
  std::string out = s.substr(0, pos);
  while (pos < s.size()) {
    const size_t n = Utf8CharLength(s, pos);
    if (n == 1 && static_cast<unsigned char>(s[pos]) >= 0x80) {
      out += "\xEF\xBF\xBD";
    } else {
      out.append(s, pos, n);
    }
    pos += n;
  }
  return out;
}

}  // namespace cairn::infer::unicode
