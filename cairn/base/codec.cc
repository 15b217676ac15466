#include "cairn/base/codec.h"

#include <fmt/format.h>

#include "cairn/base/hash.h"

namespace cairn {

void ByteWriter::Varint(uint64_t v) {
  while (v >= 0x80) {
    U8(static_cast<uint8_t>(v | 0x80));
    v >>= 7;
  }
  U8(static_cast<uint8_t>(v));
}

void ByteWriter::String(std::string_view s) {
  Varint(s.size());
  Bytes(s);
}

uint64_t ByteReader::Varint() {
  uint64_t v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    uint8_t b = U8();
    if (!ok_) return 0;
    if (shift == 63 && (b & 0x7e)) break;  // would overflow 64 bits
    v |= static_cast<uint64_t>(b & 0x7f) << shift;
    if (!(b & 0x80)) return v;
  }
  Fail("malformed varint");
  return 0;
}

std::string_view ByteReader::String() {
  uint64_t n = Varint();
  return Bytes(n);
}

std::string_view ByteReader::Bytes(size_t n) {
  if (!ok_) return {};
  if (n > remaining()) {
    Fail(fmt::format("truncated: need {} bytes, have {}", n, remaining()));
    return {};
  }
  std::string_view s = in_.substr(pos_, n);
  pos_ += n;
  return s;
}

void ByteReader::Fail(std::string message) {
  if (!ok_) return;
  ok_ = false;
  error_ = std::move(message);
  error_pos_ = pos_;
}

absl::Status ByteReader::status() const {
  if (ok_) return absl::OkStatus();
  return absl::InvalidArgumentError(fmt::format("{}: {} at byte {}", what_, error_, error_pos_));
}

absl::Status ByteReader::Finish() const {
  if (!ok_) return status();
  if (remaining() != 0) {
    return absl::InvalidArgumentError(
        fmt::format("{}: {} unexpected trailing bytes at byte {}", what_, remaining(), pos_));
  }
  return absl::OkStatus();
}

std::string SealEnvelope(uint32_t magic, uint16_t version, std::string_view payload) {
  ByteWriter w;
  w.U32(magic);
  w.U16(version);
  w.U16(0);
  w.U64(payload.size());
  w.Bytes(payload);
  w.U64(Hash64(w.data()));
  return w.Take();
}

std::string MagicToString(uint32_t magic) {
  std::string s(4, '?');
  for (int i = 0; i < 4; ++i) {
    char c = static_cast<char>((magic >> (8 * i)) & 0xff);
    if (c >= 0x20 && c < 0x7f) s[i] = c;
  }
  return s;
}

std::string HexEncode(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  return out;
}

absl::StatusOr<std::string> HexDecode(std::string_view hex) {
  if (hex.size() % 2 != 0) {
    return absl::InvalidArgumentError(fmt::format("hex string has odd length {}", hex.size()));
  }
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out(hex.size() / 2, '\0');
  for (size_t i = 0; i < out.size(); ++i) {
    int hi = nibble(hex[2 * i]), lo = nibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      return absl::InvalidArgumentError(fmt::format("not a hex digit at offset {}", 2 * i));
    }
    out[i] = static_cast<char>(hi << 4 | lo);
  }
  return out;
}

absl::StatusOr<Envelope> OpenEnvelope(std::string_view bytes, uint32_t magic,
                                      uint16_t max_version, std::string_view what) {
  if (bytes.size() < kEnvelopeHeaderSize + kEnvelopeTrailerSize) {
    return absl::InvalidArgumentError(fmt::format(
        "{}: blob of {} bytes is too short (a valid one has at least {}): truncated?", what,
        bytes.size(), kEnvelopeHeaderSize + kEnvelopeTrailerSize));
  }
  ByteReader r(bytes, what);
  uint32_t got_magic = r.U32();
  uint16_t version = r.U16();
  uint16_t flags = r.U16();
  uint64_t payload_size = r.U64();
  if (got_magic != magic) {
    return absl::InvalidArgumentError(fmt::format(
        "{}: not a {} blob (magic '{}', expected '{}')", what, what, MagicToString(got_magic),
        MagicToString(magic)));
  }
  if (version == 0 || version > max_version) {
    return absl::InvalidArgumentError(fmt::format(
        "{}: format version {} is not supported (this build reads 1..{}); upgrade cairn", what,
        version, max_version));
  }
  if (flags != 0) {
    return absl::InvalidArgumentError(fmt::format("{}: unknown flags 0x{:04x}", what, flags));
  }
  const uint64_t expected_size = bytes.size() - kEnvelopeHeaderSize - kEnvelopeTrailerSize;
  if (payload_size != expected_size) {
    return absl::InvalidArgumentError(fmt::format(
        "{}: header says {} payload bytes but the blob holds {}: truncated or padded", what,
        payload_size, expected_size));
  }
  const size_t body = kEnvelopeHeaderSize + payload_size;
  uint64_t stored;
  std::memcpy(&stored, bytes.data() + body, 8);
  uint64_t actual = Hash64(bytes.substr(0, body));
  if (stored != actual) {
    return absl::InvalidArgumentError(fmt::format(
        "{}: checksum mismatch (stored {:016x}, computed {:016x}): the blob is corrupted", what,
        stored, actual));
  }
  return Envelope{version, bytes.substr(kEnvelopeHeaderSize, payload_size)};
}

}  // namespace cairn
