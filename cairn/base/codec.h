// cairn/base/codec.h — the one binary format every serialized thing in cairn uses.
//
// A blob is an envelope around a payload:
//
//   offset  size  field
//   0       4     magic        four ASCII bytes naming the format, e.g. "CHLL"
//   4       2     version      format version, starting at 1
//   6       2     flags        reserved, must be 0
//   8       8     payload_size number of payload bytes
//   16      n     payload      written with ByteWriter, read with ByteReader
//   16+n    8     checksum     XXH3-64 of bytes [0, 16+n)
//
// All integers are little-endian. Floats are IEEE-754 bit patterns.
// OpenEnvelope rejects truncated, corrupted and foreign blobs with a message that
// says which check failed; ByteReader never reads past its input. Both are
// stateless or single-owner: not thread-safe per instance, safe across instances.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace cairn {

// Builds a magic number from four ASCII characters: MakeMagic("CHLL").
constexpr uint32_t MakeMagic(const char (&s)[5]) {
  return static_cast<uint32_t>(static_cast<unsigned char>(s[0])) |
         static_cast<uint32_t>(static_cast<unsigned char>(s[1])) << 8 |
         static_cast<uint32_t>(static_cast<unsigned char>(s[2])) << 16 |
         static_cast<uint32_t>(static_cast<unsigned char>(s[3])) << 24;
}

inline constexpr size_t kEnvelopeHeaderSize = 16;
inline constexpr size_t kEnvelopeTrailerSize = 8;

// Appends little-endian values to a byte string.
class ByteWriter {
 public:
  ByteWriter() = default;
  void U8(uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void U16(uint16_t v) { Raw(&v, 2); }
  void U32(uint32_t v) { Raw(&v, 4); }
  void U64(uint64_t v) { Raw(&v, 8); }
  void I64(int64_t v) { Raw(&v, 8); }
  void F32(float v) { Raw(&v, 4); }
  void F64(double v) { Raw(&v, 8); }
  // Unsigned LEB128.
  void Varint(uint64_t v);
  // Length-prefixed (varint) byte string.
  void String(std::string_view s);
  // Raw bytes of a trivially copyable array, no length prefix.
  template <typename T>
  void Array(std::span<const T> values) {
    static_assert(std::is_trivially_copyable_v<T>);
    Raw(values.data(), values.size_bytes());
  }
  void Bytes(std::string_view s) { out_.append(s); }

  size_t size() const { return out_.size(); }
  const std::string& data() const { return out_; }
  std::string Take() { return std::move(out_); }

 private:
  void Raw(const void* p, size_t n) { out_.append(static_cast<const char*>(p), n); }
  std::string out_;
};

// Reads little-endian values from a byte string. The first failure latches:
// later reads return zero values and status() names the first problem, so a
// decoder can read a whole record and check once, but must check before it
// trusts any value (for example before allocating by a decoded count).
class ByteReader {
 public:
  explicit ByteReader(std::string_view in, std::string_view what = "blob") : in_(in), what_(what) {}

  uint8_t U8() { return Fixed<uint8_t>(); }
  uint16_t U16() { return Fixed<uint16_t>(); }
  uint32_t U32() { return Fixed<uint32_t>(); }
  uint64_t U64() { return Fixed<uint64_t>(); }
  int64_t I64() { return Fixed<int64_t>(); }
  float F32() { return Fixed<float>(); }
  double F64() { return Fixed<double>(); }
  uint64_t Varint();
  std::string_view String();
  std::string_view Bytes(size_t n);

  // Reads `count` raw values into `out`. Fails (without allocating) when fewer
  // than count * sizeof(T) bytes remain, so a corrupt count cannot exhaust memory.
  template <typename T>
  bool Array(uint64_t count, std::vector<T>* out) {
    static_assert(std::is_trivially_copyable_v<T>);
    if (!ok_) return false;
    if (count > remaining() / sizeof(T)) {
      Fail("array of " + std::to_string(count) + " elements of " + std::to_string(sizeof(T)) +
           " bytes runs past the end");
      return false;
    }
    out->resize(count);
    if (count) std::memcpy(out->data(), in_.data() + pos_, count * sizeof(T));
    pos_ += count * sizeof(T);
    return true;
  }

  // Records a decoding failure (e.g. a value out of range) found by the caller.
  void Fail(std::string message);

  bool ok() const { return ok_; }
  size_t remaining() const { return in_.size() - pos_; }
  size_t position() const { return pos_; }
  // OK, or InvalidArgument("<what>: <first problem> at byte <offset>").
  absl::Status status() const;
  // status(), plus an error if bytes remain unread.
  absl::Status Finish() const;

 private:
  template <typename T>
  T Fixed() {
    T v{};
    if (!ok_) return v;
    if (remaining() < sizeof(T)) {
      Fail("truncated: need " + std::to_string(sizeof(T)) + " bytes, have " +
           std::to_string(remaining()));
      return v;
    }
    std::memcpy(&v, in_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }

  std::string_view in_;
  std::string_view what_;
  size_t pos_ = 0;
  bool ok_ = true;
  std::string error_;
  size_t error_pos_ = 0;
};

// Wraps a payload in the envelope described above.
std::string SealEnvelope(uint32_t magic, uint16_t version, std::string_view payload);

struct Envelope {
  uint16_t version;
  std::string_view payload;  // points into the bytes given to OpenEnvelope
};

// Checks size, magic, version (1..max_version), flags and checksum, and returns
// the payload. `what` names the format in error messages ("HyperLogLog").
absl::StatusOr<Envelope> OpenEnvelope(std::string_view bytes, uint32_t magic,
                                      uint16_t max_version, std::string_view what);

// Renders a magic number as its four characters (non-printables as '?').
std::string MagicToString(uint32_t magic);

// Lower-case hexadecimal of bytes ("\x01\xab" -> "01ab"), for golden blobs and diagnostics.
std::string HexEncode(std::string_view bytes);
// The bytes of a hexadecimal string (either case); InvalidArgument for an odd
// length or a non-hex character.
absl::StatusOr<std::string> HexDecode(std::string_view hex);

}  // namespace cairn
