// Unicode helpers for the tokenizers: UTF-8 coding, general categories, the White_Space
// property, lowercase and canonical decomposition (NFD), and GPT-2's byte-to-character
// mapping used by byte-level BPE.
//
// The category, lowercase and decomposition tables are generated from Python's unicodedata
// (gen_unicode_data.py); the Unicode version is kUnicodeVersion(). PCRE2, which the BPE
// pre-tokenizers use, carries its own tables; both are Unicode 14 on Debian 12.
//
// Everything here is a pure function over immutable tables: thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace cairn::infer::unicode {

// Unicode general categories, in the order gen_unicode_data.py writes them.
enum class Category : uint8_t {
  kCn, kLu, kLl, kLt, kLm, kLo, kMn, kMc, kMe, kNd, kNl, kNo, kPc, kPd, kPs,
  kPe, kPi, kPf, kPo, kSm, kSc, kSk, kSo, kZs, kZl, kZp, kCc, kCf, kCs, kCo,
};

inline constexpr char32_t kReplacementChar = 0xFFFD;
inline constexpr char32_t kMaxCodePoint = 0x10FFFF;

const char* UnicodeVersion();

// Category of `cp`; code points above kMaxCodePoint are kCn.
Category GetCategory(char32_t cp);
bool IsLetter(char32_t cp);       // L*
bool IsMark(char32_t cp);         // M*
bool IsNumber(char32_t cp);       // N*
bool IsPunctuation(char32_t cp);  // P*
bool IsSymbol(char32_t cp);       // S*
bool IsOther(char32_t cp);        // C* (control, format, surrogate, private use, unassigned)
// The White_Space property (tab, newline, space, NEL, NBSP, the Z* spaces, ...).
bool IsWhitespace(char32_t cp);

// Simple (one code point) lowercase; `cp` itself where there is none.
char32_t ToLower(char32_t cp);
// Full lowercase of `cp` appended to `out` (U+0130 becomes "i" + U+0307).
void AppendLower(char32_t cp, std::u32string* out);
// Canonical full decomposition of `cp` (itself when it has none), appended to `out`.
// Hangul syllables decompose into conjoining jamo.
void AppendNfd(char32_t cp, std::u32string* out);

// ---- UTF-8 ----

// Bytes in the sequence a lead byte starts (1..4), or 0 for a continuation byte or one
// that never starts a sequence (0xC0, 0xC1, 0xF5..0xFF).
int Utf8SequenceLength(uint8_t lead);
// Bytes of the character at text[pos]: the whole sequence when it is well formed, else 1,
// so that invalid bytes stand alone. 0 only when pos >= text.size().
size_t Utf8CharLength(std::string_view text, size_t pos);
// Decodes the character at text[*pos] and advances *pos past it; an invalid byte decodes
// to U+FFFD and advances by one.
char32_t DecodeUtf8(std::string_view text, size_t* pos);
void AppendUtf8(char32_t cp, std::string* out);
// Length of the longest prefix of `bytes` that does not end inside an incomplete (but so
// far valid) UTF-8 sequence: what a streaming decoder may emit now.
size_t Utf8CompletePrefixLength(std::string_view bytes);
// `s` with each byte that starts no valid UTF-8 sequence replaced by U+FFFD (as a
// tolerant decoder shows it), so that text built from byte tokens is valid UTF-8.
std::string ToValidUtf8(std::string s);

// ---- GPT-2 byte-level mapping ----

// The character (as UTF-8) byte-level BPE vocabularies use for raw byte `b`.
std::string_view ByteToUnicode(uint8_t b);
// The raw byte a character stands for, or -1 when `cp` is not one of the 256.
int UnicodeToByte(char32_t cp);

}  // namespace cairn::infer::unicode
