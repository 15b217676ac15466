#include "cairn/stream/record.h"

#include <charconv>
#include <cmath>

#include "fmt/format.h"

namespace cairn::stream {

std::string ValueToString(const Value& v) {
  switch (v.index()) {
    case 0:
      return "null";
    case 1:
      return std::get<bool>(v) ? "true" : "false";
    case 2:
      return std::to_string(std::get<int64_t>(v));
    case 3:
      return fmt::format("{}", std::get<double>(v));
    default:
      return std::get<std::string>(v);
  }
}

std::optional<double> ValueToDouble(const Value& v) {
  switch (v.index()) {
    case 1:
      return std::get<bool>(v) ? 1.0 : 0.0;
    case 2:
      return static_cast<double>(std::get<int64_t>(v));
    case 3:
      return std::get<double>(v);
    case 4: {
      const std::string& s = std::get<std::string>(v);
      double d = 0;
      auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), d);
      if (ec != std::errc() || p != s.data() + s.size() || s.empty()) return std::nullopt;
      return d;
    }
    default:
      return std::nullopt;
  }
}

void Row::Set(std::string_view name, Value v) {
  for (Field& f : fields_) {
    if (f.name == name) {
      f.value = std::move(v);
      return;
    }
  }
  fields_.push_back(Field{std::string(name), std::move(v)});
}

const Value* Row::Get(std::string_view name) const {
  for (const Field& f : fields_)
    if (f.name == name) return &f.value;
  return nullptr;
}

bool Row::Erase(std::string_view name) {
  for (auto it = fields_.begin(); it != fields_.end(); ++it) {
    if (it->name == name) {
      fields_.erase(it);
      return true;
    }
  }
  return false;
}

void Serde<Value>::Write(ByteWriter& w, const Value& v) {
  w.U8(static_cast<uint8_t>(v.index()));
  switch (v.index()) {
    case 1:
      w.U8(std::get<bool>(v) ? 1 : 0);
      break;
    case 2:
      w.I64(std::get<int64_t>(v));
      break;
    case 3:
      w.F64(std::get<double>(v));
      break;
    case 4:
      w.String(std::get<std::string>(v));
      break;
    default:
      break;
  }
}

bool Serde<Value>::Read(ByteReader& r, Value* v) {
  uint8_t tag = r.U8();
  switch (tag) {
    case 0:
      *v = std::monostate{};
      break;
    case 1:
      *v = r.U8() != 0;
      break;
    case 2:
      *v = r.I64();
      break;
    case 3:
      *v = r.F64();
      break;
    case 4:
      *v = std::string(r.String());
      break;
    default:
      r.Fail(fmt::format("unknown value tag {}", tag));
      return false;
  }
  return r.ok();
}

void Serde<Row>::Write(ByteWriter& w, const Row& row) {
  w.Varint(row.size());
  for (const Field& f : row.fields()) {
    w.String(f.name);
    Serde<Value>::Write(w, f.value);
  }
}

bool Serde<Row>::Read(ByteReader& r, Row* row) {
  uint64_t n = r.Varint();
  if (!r.ok()) return false;
  if (n > r.remaining()) {
    r.Fail(fmt::format("row of {} fields exceeds the remaining input", n));
    return false;
  }
  auto& fields = row->mutable_fields();
  fields.clear();
  fields.resize(n);
  for (Field& f : fields) {
    f.name = std::string(r.String());
    if (!Serde<Value>::Read(r, &f.value)) return false;
  }
  return r.ok();
}

}  // namespace cairn::stream
