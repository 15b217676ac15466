#include "cairn/stream/format.h"

#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>

#include <simdjson.h>

#include "fmt/format.h"

namespace cairn::stream {
namespace {

namespace od = simdjson::ondemand;

std::string Excerpt(std::string_view s, size_t max = 60) { return PrintableExcerpt(s, max); }

// ---------------------------------------------------------------------------
// JSON

struct JsonThreadState {
  od::parser parser;
  simdjson::dom::parser dom;  // validates nested values, which ondemand only skips over
  std::string padded;         // the input copied with simdjson's required padding
};

JsonThreadState& ThreadJson() {
  thread_local JsonThreadState state;
  return state;
}

const char* JsonTypeName(od::json_type t) {
  switch (t) {
    case od::json_type::array: return "an array";
    case od::json_type::object: return "an object";
    case od::json_type::number: return "a number";
    case od::json_type::string: return "a string";
    case od::json_type::boolean: return "a boolean";
    case od::json_type::null: return "null";
  }
  return "an unknown value";
}

class JsonRowReader {
 public:
  explicit JsonRowReader(std::string_view text) : text_(text) {}

  absl::StatusOr<Row> Read() {
    JsonThreadState& js = ThreadJson();
    js.padded.assign(text_.data(), text_.size());
    js.padded.append(simdjson::SIMDJSON_PADDING, '\0');
    base_ = js.padded.data();
    od::document doc;
    if (auto e = js.parser.iterate(js.padded.data(), text_.size(), js.padded.size()).get(doc)) {
      return Fail(e, "", nullptr);
    }
    doc_ = &doc;
    od::json_type type;
    if (auto e = doc.type().get(type)) return Fail(e, "", &doc);
    if (type != od::json_type::object) {
      return absl::InvalidArgumentError(
          fmt::format("JSON: expected one object, found {} at byte {}", JsonTypeName(type), FirstNonSpace()));
    }
    od::object object;
    if (auto e = doc.get_object().get(object)) return Fail(e, "", &doc);
    Row row;
    for (auto member : object) {
      od::field field;
      if (auto e = std::move(member).get(field)) return Fail(e, "", &doc);
      std::string_view key;
      if (auto e = field.unescaped_key().get(key)) return Fail(e, "", &doc);
      std::string name(key);
      od::value value = field.value();
      absl::StatusOr<Value> v = ReadValue(value, name);
      if (!v.ok()) return v.status();
      AddField(row, std::move(name), std::move(*v));
    }
    // current_location() fails with OUT_OF_BOUNDS exactly when the document is used up.
    if (const char* loc = nullptr; doc.current_location().get(loc) == simdjson::SUCCESS) {
      size_t at = Offset(loc);
      return absl::InvalidArgumentError(
          fmt::format("JSON: unexpected content after the object at byte {}: '{}'", at, Excerpt(text_.substr(at))));
    }
    return row;
  }

 private:
  // A repeated member name keeps its first position and its last value, as
  // most JSON readers do.
  static void AddField(Row& row, std::string name, Value v) {
    for (Field& f : row.mutable_fields()) {
      if (f.name == name) {
        f.value = std::move(v);
        return;
      }
    }
    row.mutable_fields().push_back(Field{std::move(name), std::move(v)});
  }

  absl::StatusOr<Value> ReadValue(od::value& value, const std::string& name) {
    od::json_type type;
    if (auto e = value.type().get(type)) return Fail(e, name, doc_);
    switch (type) {
      case od::json_type::object: {
        od::object nested;
        std::string_view raw;
        if (auto e = value.get_object().get(nested)) return Fail(e, name, doc_);
        if (auto e = nested.raw_json().get(raw)) return Fail(e, name, doc_);
        return Nested(raw, name);
      }
      case od::json_type::array: {
        od::array nested;
        std::string_view raw;
        if (auto e = value.get_array().get(nested)) return Fail(e, name, doc_);
        if (auto e = nested.raw_json().get(raw)) return Fail(e, name, doc_);
        return Nested(raw, name);
      }
      case od::json_type::number: {
        od::number_type nt;
        if (auto e = value.get_number_type().get(nt)) return Fail(e, name, doc_);
        if (nt == od::number_type::signed_integer) {
          int64_t i;
          if (value.get_int64().get(i) == simdjson::SUCCESS) return Value(i);
        }
        // Integers beyond int64 and numbers with a fraction or exponent.
        double d;
        if (auto e = value.get_double().get(d)) return Fail(e, name, doc_);
        return Value(d);
      }
      case od::json_type::string: {
        std::string_view s;
        if (auto e = value.get_string().get(s)) return Fail(e, name, doc_);
        return Value(std::string(s));
      }
      case od::json_type::boolean: {
        bool b;
        if (auto e = value.get_bool().get(b)) return Fail(e == simdjson::INCORRECT_TYPE ? simdjson::T_ATOM_ERROR : e, name, doc_);
        return Value(b);
      }
      case od::json_type::null: {
        bool is_null = false;
        if (auto e = value.is_null().get(is_null)) return Fail(e == simdjson::INCORRECT_TYPE ? simdjson::N_ATOM_ERROR : e, name, doc_);
        if (!is_null) return Fail(simdjson::N_ATOM_ERROR, name, doc_);
        return Value();
      }
    }
    return Fail(simdjson::INCORRECT_TYPE, name, doc_);
  }

  // The ondemand parser skips nested values by their brackets only; the DOM
  // parser checks every token inside before the text is kept.
  absl::StatusOr<Value> Nested(std::string_view raw, const std::string& name) {
    while (!raw.empty() && (raw.back() == ' ' || raw.back() == '\t' || raw.back() == '\n' || raw.back() == '\r')) {
      raw.remove_suffix(1);
    }
    size_t start = Offset(raw.data());
    simdjson::dom::element element;
    if (auto e = ThreadJson().dom.parse(raw.data(), raw.size(), true).get(element)) {
      return absl::InvalidArgumentError(fmt::format("JSON: field \"{}\": invalid nested value starting at byte {}: {}",
                                                    Excerpt(name), start, simdjson::error_message(e)));
    }
    return Value(std::string(raw));
  }

  size_t Offset(const char* p) const {
    if (p < base_ || p > base_ + text_.size()) return text_.size();
    return static_cast<size_t>(p - base_);
  }

  size_t FirstNonSpace() const {
    size_t i = 0;
    while (i < text_.size() && (text_[i] == ' ' || text_[i] == '\t' || text_[i] == '\n' || text_[i] == '\r')) ++i;
    return i;
  }

  absl::Status Fail(simdjson::error_code e, std::string_view field, od::document* doc) {
    if (e == simdjson::EMPTY) return absl::InvalidArgumentError("JSON: empty input, expected an object");
    std::string what = simdjson::error_message(e);
    if (e == simdjson::INCOMPLETE_ARRAY_OR_OBJECT) {
      // Found before any parsing, from the first and last brackets alone: no position to give.
      what = "brackets do not balance: the object is not closed, or something follows its closing brace";
      doc = nullptr;
    }
    while (!what.empty() && what.back() == '.') what.pop_back();
    std::string where;
    const char* loc = nullptr;
    if (doc != nullptr && doc->current_location().get(loc) == simdjson::SUCCESS) {
      where = fmt::format(" at byte {}", Offset(loc));
    }
    std::string in_field = field.empty() ? std::string() : fmt::format(" in field \"{}\"", Excerpt(field));
    return absl::InvalidArgumentError(
        fmt::format("JSON: {}{}{} (input starts '{}')", what, in_field, where, Excerpt(text_, 40)));
  }

  std::string_view text_;
  const char* base_ = nullptr;
  od::document* doc_ = nullptr;
};

// Decodes one UTF-8 sequence at s[i]; returns its length, or 0 when invalid
// (overlong forms, surrogates and code points above U+10FFFF included).
size_t Utf8SequenceLength(std::string_view s, size_t i) {
  auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char c = byte(i);
  size_t n;
  uint32_t cp;
  if (c >= 0xc2 && c <= 0xdf) {
    n = 2;
    cp = c & 0x1f;
  } else if (c >= 0xe0 && c <= 0xef) {
    n = 3;
    cp = c & 0x0f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    n = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((byte(i + k) & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (byte(i + k) & 0x3f);
  }
  if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff))) return 0;
  if (cp >= 0xd800 && cp <= 0xdfff) return 0;
  return n;
}

// Shortest text that reads back as the same double and still looks like a
// double (so "1.0" does not come back as an integer).
void AppendDouble(std::string& out, double d, const char* nan, const char* inf) {
  if (std::isnan(d)) {
    out += nan;
    return;
  }
  if (std::isinf(d)) {
    if (d < 0) out += '-';
    out += inf;
    return;
  }
  size_t start = out.size();
  fmt::format_to(std::back_inserter(out), "{}", d);
  if (out.find_first_of(".e", start) == std::string::npos) out += ".0";
}

// ---------------------------------------------------------------------------
// CSV

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Types an unquoted CSV field the way a JSON scalar is typed. Numbers with a
// leading zero ("007", "00.5") stay strings: they are identifiers such as zip
// codes, and reading them as numbers would lose the zeros.
Value InferValue(std::string_view s) {
  if (s.empty()) return Value();
  if (s == "true" || s == "True" || s == "TRUE") return Value(true);
  if (s == "false" || s == "False" || s == "FALSE") return Value(false);
  size_t i = s[0] == '-' ? 1 : 0;
  if (i < s.size() && (IsDigit(s[i]) || (s[i] == '.' && i + 1 < s.size() && IsDigit(s[i + 1])))) {
    if (s[i] == '0' && i + 1 < s.size() && IsDigit(s[i + 1])) return Value(std::string(s));
    const char* end = s.data() + s.size();
    int64_t v;
    auto [p, ec] = std::from_chars(s.data(), end, v);
    if (ec == std::errc() && p == end) return Value(v);
    double d;
    auto [pd, ecd] = std::from_chars(s.data(), end, d);
    if (ecd == std::errc() && pd == end && std::isfinite(d)) return Value(d);
  }
  return Value(std::string(s));
}

bool CsvNeedsQuotes(std::string_view s, char delimiter) {
  if (s.empty()) return true;
  for (char c : s) {
    if (c == delimiter || c == '"' || c == '\n' || c == '\r') return true;
  }
  return false;
}

void AppendCsvQuoted(std::string& out, std::string_view s) {
  out += '"';
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
}

// ---------------------------------------------------------------------------
// Event time

constexpr int64_t kMsPerSecond = 1000;
constexpr double kSecondsThreshold = 1e11;  // "auto": below this a number is seconds

std::string DescribeValue(const Value& v) {
  switch (v.index()) {
    case 0:
      return "null";
    case 4:
      return fmt::format("\"{}\"", Excerpt(std::get<std::string>(v)));
    default:
      return ValueToString(v);
  }
}

absl::Status TimeError(const Value& v, std::string_view format, std::string_view why) {
  return absl::InvalidArgumentError(
      fmt::format("cannot read event time from {} as {}: {}", DescribeValue(v), format, why));
}

// Days since 1970-01-01 of a proleptic Gregorian date (month 1..12). Counts in
// 400-year eras starting on 1 March, so that the leap day falls at the end of
// each shifted year.
int64_t DaysSinceEpoch(int64_t year, int month, int day) {
  int64_t y = month <= 2 ? year - 1 : year;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t year_of_era = y - era * 400;
  int shifted_month = month > 2 ? month - 3 : month + 9;  // March = 0
  int64_t day_of_year = (153 * shifted_month + 2) / 5 + day - 1;
  int64_t day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
  return era * 146097 + day_of_era - 719468;
}

int DaysInMonth(int64_t year, int month) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  return month == 2 && leap ? 29 : kDays[month - 1];
}

class IsoReader {
 public:
  explicit IsoReader(std::string_view s) : s_(s) {}

  // Reads exactly `n` digits into *v; false (with error()) otherwise.
  bool Digits(int n, int* v, std::string_view what) {
    int r = 0;
    for (int k = 0; k < n; ++k) {
      if (pos_ >= s_.size() || !IsDigit(s_[pos_])) {
        Expect(fmt::format("{} digits of the {}", n, what));
        return false;
      }
      r = r * 10 + (s_[pos_++] - '0');
    }
    *v = r;
    return true;
  }
  bool Char(char c) {
    if (pos_ < s_.size() && s_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  void Expect(std::string_view what) {
    if (error_.empty()) {
      error_ = pos_ < s_.size() ? fmt::format("expected {} at character {}", what, pos_ + 1)
                                : fmt::format("expected {} after the end", what);
    }
  }
  bool at_end() const { return pos_ >= s_.size(); }
  char peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }
  void advance() { ++pos_; }
  const std::string& error() const { return error_; }
  void Fail(std::string why) {
    if (error_.empty()) error_ = std::move(why);
  }

 private:
  std::string_view s_;
  size_t pos_ = 0;
  std::string error_;
};

// "YYYY-MM-DD[(T| )hh:mm[:ss[(.|,)fraction]]][Z|(+|-)hh[[:]mm]]"; a missing
// zone is UTC. The error says what was expected where.
absl::StatusOr<EventTime> ParseIso8601(std::string_view s) {
  IsoReader r(s);
  int year, month, day, hour = 0, minute = 0, second = 0;
  int64_t millis = 0;
  bool ok = r.Digits(4, &year, "year") && (r.Char('-') || (r.Expect("'-' after the year"), false)) &&
            r.Digits(2, &month, "month") && (r.Char('-') || (r.Expect("'-' after the month"), false)) &&
            r.Digits(2, &day, "day");
  if (ok && (month < 1 || month > 12)) r.Fail(fmt::format("month {} is not 1..12", month)), ok = false;
  if (ok && (day < 1 || day > DaysInMonth(year, month))) {
    r.Fail(fmt::format("day {} does not exist in {:04d}-{:02d}", day, year, month));
    ok = false;
  }
  if (ok && !r.at_end() && (r.peek() == 'T' || r.peek() == 't' || r.peek() == ' ')) {
    r.advance();
    ok = r.Digits(2, &hour, "hour") && (r.Char(':') || (r.Expect("':' after the hour"), false)) &&
         r.Digits(2, &minute, "minute");
    if (ok && r.Char(':')) {
      ok = r.Digits(2, &second, "second");
      if (ok && (r.peek() == '.' || r.peek() == ',')) {
        r.advance();
        int digits = 0;
        while (IsDigit(r.peek())) {
          if (digits < 3) millis = millis * 10 + (r.peek() - '0');
          ++digits;
          r.advance();
        }
        if (digits == 0) {
          r.Expect("digits of the fraction of a second");
          ok = false;
        }
        for (int k = digits; k < 3; ++k) millis *= 10;  // fractions below 1 ms are cut off
      }
    }
    if (ok && (hour > 23 || minute > 59 || second > 60)) {
      r.Fail(fmt::format("time {:02d}:{:02d}:{:02d} is out of range", hour, minute, second));
      ok = false;
    }
  }
  int offset_minutes = 0;
  if (ok && !r.at_end()) {
    char c = r.peek();
    if (c == 'Z' || c == 'z') {
      r.advance();
    } else if (c == '+' || c == '-') {
      r.advance();
      int oh = 0, om = 0;
      ok = r.Digits(2, &oh, "zone offset hours");
      if (ok && !r.at_end()) {
        r.Char(':');
        ok = r.Digits(2, &om, "zone offset minutes");
      }
      if (ok && (oh > 23 || om > 59)) {
        r.Fail(fmt::format("zone offset {:02d}:{:02d} is out of range", oh, om));
        ok = false;
      }
      offset_minutes = (c == '-' ? -1 : 1) * (oh * 60 + om);
    } else {
      r.Expect("'T', 'Z' or a zone offset");
      ok = false;
    }
  }
  if (ok && !r.at_end()) {
    r.Expect("the end of the timestamp");
    ok = false;
  }
  if (!ok) return absl::InvalidArgumentError(r.error());
  int64_t seconds = DaysSinceEpoch(year, month, day) * 86400 + hour * 3600 + minute * 60 + second -
                    static_cast<int64_t>(offset_minutes) * 60;
  return seconds * kMsPerSecond + millis;
}

absl::StatusOr<EventTime> FromDouble(const Value& v, double d, double scale, std::string_view format) {
  if (!std::isfinite(d)) return TimeError(v, format, "not a finite number");
  double ms = std::round(d * scale);
  // 2^63 is exactly representable; anything at or beyond it does not fit.
  if (!(ms > -9.2233720368547758e18 && ms < 9.2233720368547758e18)) {
    return TimeError(v, format, "out of the range of event times");
  }
  return static_cast<EventTime>(ms);
}

absl::StatusOr<EventTime> FromInt(const Value& v, int64_t i, int64_t scale, std::string_view format) {
  if (scale != 1 && (i > std::numeric_limits<int64_t>::max() / scale || i < std::numeric_limits<int64_t>::min() / scale)) {
    return TimeError(v, format, "out of the range of event times");
  }
  return i * scale;
}

// A whole-string number: int64 when it is one, else double; nullopt otherwise.
std::optional<Value> NumberFromString(std::string_view s) {
  if (s.empty()) return std::nullopt;
  const char* end = s.data() + s.size();
  int64_t i;
  auto [p, ec] = std::from_chars(s.data(), end, i);
  if (ec == std::errc() && p == end) return Value(i);
  double d;
  auto [pd, ecd] = std::from_chars(s.data(), end, d);
  if (ecd == std::errc() && pd == end) return Value(d);
  return std::nullopt;
}

}  // namespace

// ---------------------------------------------------------------------------

absl::StatusOr<Row> ParseJsonRow(std::string_view text) {
  try {
    return JsonRowReader(text).Read();
  } catch (const std::exception& e) {  // simdjson reports by error codes; allocation may still throw
    return absl::InternalError(fmt::format("JSON: {}", e.what()));
  }
}

void AppendJsonString(std::string& out, std::string_view s) {
  out += '"';
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
      size_t run = i + 1;
      while (run < s.size()) {
        unsigned char d = static_cast<unsigned char>(s[run]);
        if (d < 0x20 || d >= 0x80 || d == '"' || d == '\\') break;
        ++run;
      }
      out.append(s.data() + i, run - i);
      i = run;
      continue;
    }
    static constexpr char kEscaped[] = "\"\\\n\r\t\b\f";
    static constexpr std::string_view kEscapes[] = {"\\\"", "\\\\", "\\n", "\\r", "\\t", "\\b", "\\f"};
    if (const char* e = c != 0 ? std::strchr(kEscaped, c) : nullptr; e != nullptr) {
      out += kEscapes[e - kEscaped];
    } else if (c < 0x20) {
      fmt::format_to(std::back_inserter(out), "\\u{:04x}", c);
    } else if (size_t n = Utf8SequenceLength(s, i); n > 0) {
      out.append(s.data() + i, n);
      i += n;
      continue;
    } else {
      out += "\\ufffd";
    }
    ++i;
  }
  out += '"';
}

std::string FormatJsonRow(const Row& row) {
  std::string out = "{";
  bool first = true;
  for (const Field& f : row.fields()) {
    if (!first) out += ',';
    first = false;
    AppendJsonString(out, f.name);
    out += ':';
    switch (f.value.index()) {
      case 0:
        out += "null";
        break;
      case 1:
        out += std::get<bool>(f.value) ? "true" : "false";
        break;
      case 2:
        fmt::format_to(std::back_inserter(out), "{}", std::get<int64_t>(f.value));
        break;
      case 3: {
        double d = std::get<double>(f.value);
        if (std::isfinite(d)) {
          AppendDouble(out, d, "", "");
        } else {
          out += "null";  // JSON has no NaN or infinity
        }
        break;
      }
      default:
        AppendJsonString(out, std::get<std::string>(f.value));
    }
  }
  out += '}';
  return out;
}

CsvRowParser::CsvRowParser(CsvOptions options) : options_(std::move(options)) {
  if (!options_.header) columns_ = options_.columns;
}

absl::Status CsvRowParser::Split(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  const char delim = options_.delimiter;
  cells_.clear();
  scratch_.clear();
  size_t i = 0;
  const size_t n = line.size();
  while (true) {
    Cell cell;
    size_t field_start = i;
    if (i < n && line[i] == '"') {
      cell.quoted = true;
      ++i;
      size_t begin = i;
      bool escaped = false;
      while (true) {
        const void* q = i < n ? std::memchr(line.data() + i, '"', n - i) : nullptr;
        if (q == nullptr) {
          return absl::InvalidArgumentError(fmt::format("CSV: quoted field {} starting at byte {} has no closing quote",
                                                        cells_.size() + 1, field_start));
        }
        i = static_cast<size_t>(static_cast<const char*>(q) - line.data());
        if (i + 1 < n && line[i + 1] == '"') {
          escaped = true;
          i += 2;
          continue;
        }
        break;
      }
      if (escaped) {
        size_t at = scratch_.size();
        for (size_t k = begin; k < i; ++k) {
          scratch_ += line[k];
          if (line[k] == '"') ++k;  // the doubled quote
        }
        cell.scratch_begin = at;
        cell.scratch_size = scratch_.size() - at;
        cell.in_scratch = true;
      } else {
        cell.text = line.substr(begin, i - begin);
      }
      ++i;  // the closing quote
      if (i < n && line[i] != delim) {
        return absl::InvalidArgumentError(fmt::format(
            "CSV: unexpected '{}' after the closing quote of field {} at byte {}", Excerpt(line.substr(i, 1)),
            cells_.size() + 1, i));
      }
    } else {
      const void* d = i < n ? std::memchr(line.data() + i, delim, n - i) : nullptr;
      size_t end = d ? static_cast<size_t>(static_cast<const char*>(d) - line.data()) : n;
      cell.text = line.substr(i, end - i);
      if (const void* q = std::memchr(cell.text.data(), '"', cell.text.size()); q != nullptr) {
        return absl::InvalidArgumentError(
            fmt::format("CSV: stray '\"' inside unquoted field {} at byte {} (quote the whole field and double the quote)",
                        cells_.size() + 1, static_cast<const char*>(q) - line.data()));
      }
      i = end;
    }
    cells_.push_back(cell);
    if (i >= n) break;
    ++i;  // the delimiter; a line ending in one has an empty last field
    if (i == n) {
      cells_.push_back(Cell{});
      break;
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<Row> CsvRowParser::Parse(std::string_view line, bool* is_header) {
  if (is_header != nullptr) *is_header = false;
  if (options_.header && !header_seen_) {
    if (line.starts_with("\xEF\xBB\xBF")) line.remove_prefix(3);  // a UTF-8 byte order mark
    CAIRN_RETURN_IF_ERROR(Split(line));
    std::vector<std::string> names;
    names.reserve(cells_.size());
    for (size_t k = 0; k < cells_.size(); ++k) {
      std::string name(CellText(cells_[k]));
      if (name.empty()) name = fmt::format("col{}", k);
      for (size_t j = 0; j < names.size(); ++j) {
        if (names[j] == name) {
          return absl::InvalidArgumentError(
              fmt::format("CSV header: column name \"{}\" appears twice (columns {} and {})", Excerpt(name), j + 1, k + 1));
        }
      }
      names.push_back(std::move(name));
    }
    columns_ = std::move(names);
    header_seen_ = true;
    if (is_header != nullptr) *is_header = true;
    return Row();
  }
  CAIRN_RETURN_IF_ERROR(Split(line));
  const bool fixed = options_.header || !options_.columns.empty();
  if (fixed && cells_.size() != columns_.size()) {
    return absl::InvalidArgumentError(fmt::format("CSV: {} fields, expected {} ({})", cells_.size(), columns_.size(),
                                                  options_.header ? "the header's columns" : "the configured columns"));
  }
  while (columns_.size() < cells_.size()) columns_.push_back(fmt::format("col{}", columns_.size()));
  Row row;
  std::vector<Field>& fields = row.mutable_fields();
  fields.reserve(cells_.size());
  for (size_t k = 0; k < cells_.size(); ++k) {
    std::string_view text = CellText(cells_[k]);
    Value v = cells_[k].quoted || !options_.infer_types ? Value(std::string(text)) : InferValue(text);
    fields.push_back(Field{columns_[k], std::move(v)});
  }
  return row;
}

std::string_view CsvRowParser::CellText(const Cell& c) const {
  return c.in_scratch ? std::string_view(scratch_).substr(c.scratch_begin, c.scratch_size) : c.text;
}

std::string FormatCsvRow(const Row& row, char delimiter) {
  std::string out;
  bool first = true;
  for (const Field& f : row.fields()) {
    if (!first) out += delimiter;
    first = false;
    switch (f.value.index()) {
      case 0:
        break;
      case 1:
        out += std::get<bool>(f.value) ? "true" : "false";
        break;
      case 2:
        fmt::format_to(std::back_inserter(out), "{}", std::get<int64_t>(f.value));
        break;
      case 3:
        AppendDouble(out, std::get<double>(f.value), "NaN", "inf");
        break;
      default: {
        const std::string& s = std::get<std::string>(f.value);
        // Strings that an inferring reader would type otherwise are quoted, so
        // the line reads back as the same row.
        if (CsvNeedsQuotes(s, delimiter) || InferValue(s).index() != 4) {
          AppendCsvQuoted(out, s);
        } else {
          out += s;
        }
      }
    }
  }
  return out;
}

std::string FormatCsvHeader(const Row& row, char delimiter) {
  std::string out;
  bool first = true;
  for (const Field& f : row.fields()) {
    if (!first) out += delimiter;
    first = false;
    if (CsvNeedsQuotes(f.name, delimiter)) {
      AppendCsvQuoted(out, f.name);
    } else {
      out += f.name;
    }
  }
  return out;
}

absl::Status CheckEventTimeFormat(std::string_view format) {
  if (format == "epoch_ms" || format == "epoch_s" || format == "iso8601" || format == "auto") return absl::OkStatus();
  return absl::InvalidArgumentError(fmt::format(
      "unknown event time format \"{}\" (expected epoch_ms, epoch_s, iso8601 or auto)", Excerpt(format)));
}

absl::StatusOr<EventTime> ParseEventTime(const Value& v, std::string_view format) {
  CAIRN_RETURN_IF_ERROR(CheckEventTimeFormat(format));
  const bool ms = format == "epoch_ms";
  const bool s = format == "epoch_s";
  const bool iso = format == "iso8601";
  const bool automatic = format == "auto";
  Value number = v;
  if (const std::string* str = std::get_if<std::string>(&v)) {
    std::optional<Value> parsed = (iso ? std::nullopt : NumberFromString(*str));
    if (!parsed) {
      if (ms || s) return TimeError(v, format, "not a number");
      absl::StatusOr<EventTime> t = ParseIso8601(*str);
      if (!t.ok()) return TimeError(v, format, std::string(t.status().message()));
      return t;
    }
    number = *parsed;
  } else if (iso) {
    return TimeError(v, format, "not a string");
  }
  if (const int64_t* i = std::get_if<int64_t>(&number)) {
    bool seconds = s || (automatic && *i > -static_cast<int64_t>(kSecondsThreshold) &&
                         *i < static_cast<int64_t>(kSecondsThreshold));
    return FromInt(v, *i, seconds ? kMsPerSecond : 1, format);
  }
  if (const double* d = std::get_if<double>(&number)) {
    bool seconds = s || (automatic && std::fabs(*d) < kSecondsThreshold);
    return FromDouble(v, *d, seconds ? 1000.0 : 1.0, format);
  }
  return TimeError(v, format, "not a number or a timestamp string");
}

std::string PrintableExcerpt(std::string_view s, size_t max) {
  std::string out;
  for (size_t i = 0; i < s.size() && i < max; ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7f) {
      out += fmt::format("\\x{:02x}", c);
    } else {
      out += static_cast<char>(c);
    }
  }
  if (s.size() > max) out += "...";
  return out;
}

}  // namespace cairn::stream
