// Records that flow through cairn pipelines, and how they are serialized into
// state and checkpoints.
//
// Two kinds of records travel through the same engine:
//  * typed C++ values (any copyable T with a `Serde<T>`), used by programs that
//    embed cairn and by the Nexmark queries;
//  * `Row`: a dynamic record of named fields, used by connectors and by pipelines
//    defined in YAML (`cairn run pipeline.yaml`).
//
// Event time is milliseconds since the Unix epoch (`EventTime`), as in Flink and
// Nexmark. `kMinTime`/`kMaxTime` bound it; a watermark of kMaxTime means "no more
// records will ever arrive".
//
// Thread-safety: plain values; no shared state.
#pragma once

#include <concepts>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "cairn/base/codec.h"

namespace cairn::stream {

using EventTime = int64_t;  // milliseconds since the Unix epoch
inline constexpr EventTime kMinTime = std::numeric_limits<int64_t>::min();
inline constexpr EventTime kMaxTime = std::numeric_limits<int64_t>::max();

// One field value of a Row. Null is std::monostate.
using Value = std::variant<std::monostate, bool, int64_t, double, std::string>;

// Human form of a value: "null", "true", "42", "4.5", or the string itself.
std::string ValueToString(const Value& v);
// Numeric view: int64 and double convert, bool is 0/1, strings are parsed when
// they hold a whole number; otherwise nullopt.
std::optional<double> ValueToDouble(const Value& v);

struct Field {
  std::string name;
  Value value;
  bool operator==(const Field&) const = default;
};

// A dynamic record: an ordered list of named fields (small; lookups are linear).
class Row {
 public:
  Row() = default;
  Row(std::initializer_list<Field> fields) : fields_(fields) {}

  // Sets (adds or replaces) a field.
  void Set(std::string_view name, Value v);
  // The field's value, or nullptr when the row has no such field.
  const Value* Get(std::string_view name) const;
  bool Has(std::string_view name) const { return Get(name) != nullptr; }
  // Removes a field; returns whether it existed.
  bool Erase(std::string_view name);

  const std::vector<Field>& fields() const { return fields_; }
  std::vector<Field>& mutable_fields() { return fields_; }
  size_t size() const { return fields_.size(); }
  bool operator==(const Row&) const = default;

 private:
  std::vector<Field> fields_;
};

// ---------------------------------------------------------------------------
// Serde<T>: how a value is written into state and checkpoints.
//
// Provided for arithmetic types, enums, std::string, Value, Row, std::pair,
// std::tuple, std::vector, std::optional. A user type either specializes
// Serde<T> or has members
//     void Encode(cairn::ByteWriter&) const;
//     static bool Decode(cairn::ByteReader&, T*);   // false (or a failed reader) = bad input
template <class T, class Enable = void>
struct Serde;

template <class T>
concept HasMemberCodec = requires(const T& t, T* out, ByteWriter& w, ByteReader& r) {
  t.Encode(w);
  { T::Decode(r, out) } -> std::convertible_to<bool>;
};

template <class T>
struct Serde<T, std::enable_if_t<std::is_arithmetic_v<T> || std::is_enum_v<T>>> {
  static void Write(ByteWriter& w, const T& v) {
    if constexpr (std::is_same_v<T, bool>) {
      w.U8(v ? 1 : 0);
    } else {
      static_assert(std::is_trivially_copyable_v<T>);
      w.Bytes(std::string_view(reinterpret_cast<const char*>(&v), sizeof(T)));
    }
  }
  static bool Read(ByteReader& r, T* v) {
    if constexpr (std::is_same_v<T, bool>) {
      *v = r.U8() != 0;
    } else {
      std::string_view b = r.Bytes(sizeof(T));
      if (!r.ok()) return false;
      std::memcpy(v, b.data(), sizeof(T));
    }
    return r.ok();
  }
};

template <>
struct Serde<std::string> {
  static void Write(ByteWriter& w, const std::string& v) { w.String(v); }
  static bool Read(ByteReader& r, std::string* v) {
    std::string_view s = r.String();
    v->assign(s.data(), s.size());
    return r.ok();
  }
};

template <>
struct Serde<Value> {
  static void Write(ByteWriter& w, const Value& v);
  static bool Read(ByteReader& r, Value* v);
};

template <>
struct Serde<Row> {
  static void Write(ByteWriter& w, const Row& v);
  static bool Read(ByteReader& r, Row* v);
};

template <class A, class B>
struct Serde<std::pair<A, B>> {
  static void Write(ByteWriter& w, const std::pair<A, B>& v) {
    Serde<A>::Write(w, v.first);
    Serde<B>::Write(w, v.second);
  }
  static bool Read(ByteReader& r, std::pair<A, B>* v) {
    return Serde<A>::Read(r, &v->first) && Serde<B>::Read(r, &v->second);
  }
};

template <class... Ts>
struct Serde<std::tuple<Ts...>> {
  static void Write(ByteWriter& w, const std::tuple<Ts...>& v) {
    std::apply([&](const auto&... e) { (Serde<std::decay_t<decltype(e)>>::Write(w, e), ...); }, v);
  }
  static bool Read(ByteReader& r, std::tuple<Ts...>* v) {
    return std::apply([&](auto&... e) { return (Serde<std::decay_t<decltype(e)>>::Read(r, &e) && ...); },
                      *v);
  }
};

template <class T>
struct Serde<std::vector<T>> {
  static void Write(ByteWriter& w, const std::vector<T>& v) {
    w.Varint(v.size());
    for (const T& e : v) Serde<T>::Write(w, e);
  }
  static bool Read(ByteReader& r, std::vector<T>* v) {
    uint64_t n = r.Varint();
    if (!r.ok()) return false;
    if (n > r.remaining()) {  // every element takes at least one byte
      r.Fail("vector length " + std::to_string(n) + " exceeds the remaining input");
      return false;
    }
    v->clear();
    v->resize(n);
    for (T& e : *v)
      if (!Serde<T>::Read(r, &e)) return false;
    return true;
  }
};

template <class T>
struct Serde<std::optional<T>> {
  static void Write(ByteWriter& w, const std::optional<T>& v) {
    w.U8(v.has_value() ? 1 : 0);
    if (v) Serde<T>::Write(w, *v);
  }
  static bool Read(ByteReader& r, std::optional<T>* v) {
    uint8_t has = r.U8();
    if (!r.ok()) return false;
    if (!has) {
      v->reset();
      return true;
    }
    T t{};
    if (!Serde<T>::Read(r, &t)) return false;
    *v = std::move(t);
    return true;
  }
};

template <class T>
struct Serde<T, std::enable_if_t<HasMemberCodec<T>>> {
  static void Write(ByteWriter& w, const T& v) { v.Encode(w); }
  static bool Read(ByteReader& r, T* v) { return T::Decode(r, v) && r.ok(); }
};

// Convenience: value <-> bytes.
template <class T>
std::string EncodeToString(const T& v) {
  ByteWriter w;
  Serde<T>::Write(w, v);
  return w.Take();
}
template <class T>
bool DecodeFromString(std::string_view bytes, T* v) {
  ByteReader r(bytes);
  return Serde<T>::Read(r, v) && r.ok() && r.remaining() == 0;
}

}  // namespace cairn::stream
