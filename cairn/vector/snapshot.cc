#include "cairn/vector/snapshot.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include <fmt/format.h>

#include "cairn/base/codec.h"
#include "cairn/base/hash.h"
#include "cairn/base/status.h"
#include "cairn/vector/wal.h"

namespace cairn::vector {
namespace {

constexpr uint32_t kSnapshotMagic = MakeMagic("CVSN");
constexpr uint16_t kSnapshotVersion = 2;
constexpr size_t kFixedHead = 8 + 4 + 1 + 1 + 8;
constexpr size_t kVectorAlign = 64;

// Zero bytes that take file offset `at` to a multiple of `align` (version 2 layout).
size_t PadTo(uint64_t at, size_t align) { return static_cast<size_t>((align - at % align) % align); }

// True when every value is finite: one pass of integer tests the compiler vectorizes
// (an all-ones exponent is an infinity or a NaN).
bool AllFinite(const uint32_t* bits, size_t n) {
  uint32_t bad = 0;
  for (size_t i = 0; i < n; ++i) bad |= static_cast<uint32_t>((bits[i] & 0x7f800000u) == 0x7f800000u);
  return bad == 0;
}

// Buffered writer that also feeds the XXH3 state, so the envelope checksum is
// computed on the fly.
class HashingFileWriter {
 public:
  explicit HashingFileWriter(std::FILE* f) : f_(f) { XXH3_64bits_reset(&state_); }
  bool Write(const void* p, size_t n) {
    XXH3_64bits_update(&state_, p, n);
    return std::fwrite(p, 1, n, f_) == n;
  }
  uint64_t digest() { return XXH3_64bits_digest(&state_); }

 private:
  std::FILE* f_;
  XXH3_state_t state_;
};

}  // namespace

absl::Status WriteSnapshot(const std::string& path, const SnapshotHeader& header,
                           std::span<const uint64_t> ids, const SnapshotPointSource& source) {
  // Attributes are encoded up front (they are small next to the vectors) to know the
  // payload size the envelope header needs.
  ByteWriter attrs;
  std::vector<float> vec(header.dim);
  for (size_t i = 0; i < ids.size(); ++i) {
    const Attributes* a = nullptr;
    auto st = source(i, {}, &a);
    if (!st.ok()) return st;
    static const Attributes kNone;
    EncodeAttributes(a ? *a : kNone, &attrs);
  }
  ByteWriter head;
  head.U64(header.seq);
  head.U32(header.dim);
  head.U8(static_cast<uint8_t>(header.metric));
  head.U8(header.vectors_inline ? 1 : 0);
  head.U64(ids.size());
  const uint64_t vector_bytes =
      header.vectors_inline ? static_cast<uint64_t>(ids.size()) * header.dim * sizeof(float) : 0;
  const size_t ids_pad = PadTo(kEnvelopeHeaderSize + head.size(), 8);
  const size_t vectors_pad =
      header.vectors_inline ? PadTo(kEnvelopeHeaderSize + head.size() + ids_pad + ids.size_bytes(), kVectorAlign) : 0;
  static const char kZeros[kVectorAlign] = {};
  const uint64_t payload_size = head.size() + ids_pad + ids.size_bytes() + vectors_pad + vector_bytes + attrs.size();
  ByteWriter env;
  env.U32(kSnapshotMagic);
  env.U16(kSnapshotVersion);
  env.U16(0);
  env.U64(payload_size);

  const std::string tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr) return absl::InternalError(fmt::format("cannot create {}: {}", tmp, std::strerror(errno)));
  std::setvbuf(f, nullptr, _IOFBF, 1 << 20);
  HashingFileWriter w(f);
  bool ok = w.Write(env.data().data(), env.size()) && w.Write(head.data().data(), head.size()) &&
            w.Write(kZeros, ids_pad) && w.Write(ids.data(), ids.size_bytes()) && w.Write(kZeros, vectors_pad);
  for (size_t i = 0; ok && header.vectors_inline && i < ids.size(); ++i) {
    const Attributes* a = nullptr;
    auto st = source(i, vec, &a);
    if (!st.ok()) {
      std::fclose(f);
      std::remove(tmp.c_str());
      return st;
    }
    ok = w.Write(vec.data(), vec.size() * sizeof(float));
  }
  ok = ok && w.Write(attrs.data().data(), attrs.size());
  uint64_t checksum = w.digest();
  ok = ok && std::fwrite(&checksum, 1, 8, f) == 8;
  ok = ok && std::fflush(f) == 0 && ::fsync(::fileno(f)) == 0;
  int err = errno;
  ok = (std::fclose(f) == 0) && ok;
  if (!ok) {
    std::remove(tmp.c_str());
    return absl::InternalError(fmt::format("cannot write {}: {}", tmp, std::strerror(err)));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    return absl::InternalError(fmt::format("cannot rename {} over {}: {}", tmp, path, std::strerror(errno)));
  }
  return SyncDirectory(std::filesystem::path(path).parent_path().string());
}

absl::StatusOr<std::unique_ptr<SnapshotFile>> SnapshotFile::Parse(std::string_view bytes,
                                                                  std::string_view file) {
  CAIRN_ASSIGN_OR_RETURN(auto s, ParseLayout(bytes, file));
  CAIRN_RETURN_IF_ERROR(s->Verify());
  return s;
}

absl::StatusOr<std::unique_ptr<SnapshotFile>> SnapshotFile::ParseLayout(std::string_view bytes,
                                                                        std::string_view file) {
  auto fail = [&](std::string what) { return absl::DataLossError(fmt::format("{}: collection snapshot: {}", file, what)); };
  if (bytes.size() < kEnvelopeHeaderSize + kEnvelopeTrailerSize) {
    return fail(fmt::format("{} bytes is too short for a snapshot: truncated?", bytes.size()));
  }
  // The envelope header as OpenEnvelope checks it; the checksum waits for Verify().
  ByteReader er(bytes, file);
  const uint32_t magic = er.U32();
  const uint16_t version = er.U16();
  const uint16_t flags = er.U16();
  const uint64_t payload_size = er.U64();
  if (magic != kSnapshotMagic) return fail(fmt::format("not a snapshot (magic '{}')", MagicToString(magic)));
  if (version == 0 || version > kSnapshotVersion) {
    return fail(fmt::format("format version {} is not supported (this build reads 1..{}); upgrade cairn", version,
                            kSnapshotVersion));
  }
  if (flags != 0) return fail(fmt::format("unknown flags 0x{:04x}", flags));
  if (payload_size != bytes.size() - kEnvelopeHeaderSize - kEnvelopeTrailerSize) {
    return fail(fmt::format("header says {} payload bytes but the file holds {}: truncated or padded", payload_size,
                            bytes.size() - kEnvelopeHeaderSize - kEnvelopeTrailerSize));
  }
  std::unique_ptr<SnapshotFile> s(new SnapshotFile());
  s->file_ = std::string(file);
  s->bytes_ = bytes;
  std::string_view p = bytes.substr(kEnvelopeHeaderSize, payload_size);
  auto bad = [&](size_t offset, std::string what) {
    return absl::DataLossError(fmt::format("{}: {} at byte {}", file, what, kEnvelopeHeaderSize + offset));
  };
  if (p.size() < kFixedHead) return bad(0, "payload shorter than the snapshot header");
  ByteReader r(p, file);
  s->header_.seq = r.U64();
  s->header_.dim = r.U32();
  uint8_t metric = r.U8();
  uint8_t inline_flag = r.U8();
  s->header_.count = r.U64();
  if (metric > static_cast<uint8_t>(Metric::kCosine)) return bad(12, fmt::format("unknown metric {}", metric));
  if (inline_flag > 1) return bad(13, fmt::format("bad vectors_inline flag {}", inline_flag));
  s->header_.vectors_inline = inline_flag == 1;
  s->header_.metric = static_cast<Metric>(metric);
  if (s->header_.dim == 0 || s->header_.dim > 65536) {
    return bad(8, fmt::format("dimension {} out of range", s->header_.dim));
  }
  const bool v2 = version >= 2;
  const uint64_t count = s->header_.count;
  const size_t ids_off = kFixedHead + (v2 ? PadTo(kEnvelopeHeaderSize + kFixedHead, 8) : 0);
  const uint64_t per_point = 8 + (s->header_.vectors_inline ? static_cast<uint64_t>(s->header_.dim) * 4 : 0);
  if (ids_off > p.size() || count > (p.size() - ids_off) / per_point) {
    return bad(14, fmt::format("{} points of dimension {} do not fit in {} bytes", count, s->header_.dim,
                               p.size() - kFixedHead));
  }
  const size_t vectors_off =
      ids_off + count * 8 +
      (v2 && s->header_.vectors_inline ? PadTo(kEnvelopeHeaderSize + ids_off + count * 8, kVectorAlign) : 0);
  const size_t attr_off = vectors_off + (s->header_.vectors_inline ? count * s->header_.dim * 4 : 0);
  if (attr_off > p.size()) {
    return bad(14, fmt::format("{} points of dimension {} do not fit in {} bytes", count, s->header_.dim,
                               p.size() - kFixedHead));
  }
  s->ids_offset_ = ids_off;
  s->vectors_offset_ = vectors_off;
  s->ids_ = p.data() + ids_off;
  s->vectors_ = p.data() + vectors_off;
  s->attributes_ = p.substr(attr_off);
  s->attributes_offset_ = kEnvelopeHeaderSize + attr_off;
  return s;
}

absl::Status SnapshotFile::Verify() const {
  const size_t body = bytes_.size() - kEnvelopeTrailerSize;
  uint64_t stored;
  std::memcpy(&stored, bytes_.data() + body, 8);
  const uint64_t actual = Hash64(bytes_.substr(0, body));
  if (stored != actual) {
    return absl::DataLossError(fmt::format(
        "{}: collection snapshot: checksum mismatch (stored {:016x}, computed {:016x}): the file is corrupted", file_,
        stored, actual));
  }
  const std::string_view p = bytes_.substr(kEnvelopeHeaderSize, body - kEnvelopeHeaderSize);
  auto bad = [&](size_t offset, std::string what) {
    return absl::DataLossError(fmt::format("{}: {} at byte {}", file_, what, kEnvelopeHeaderSize + offset));
  };
  for (size_t i = kFixedHead; i < ids_offset_; ++i) {
    if (p[i] != 0) return bad(i, "non-zero padding");
  }
  const uint64_t count = header_.count;
  for (size_t i = ids_offset_ + count * 8; i < vectors_offset_; ++i) {
    if (p[i] != 0) return bad(i, "non-zero padding");
  }
  // Ids strictly ascending and vectors finite, so the accessors can trust the mapping.
  uint64_t prev = 0;
  for (uint64_t i = 0; i < count; ++i) {
    uint64_t id = this->id(i);
    if (i > 0 && id <= prev) return bad(ids_offset_ + i * 8, "ids not strictly ascending");
    prev = id;
  }
  const size_t nvalues = header_.vectors_inline ? count * header_.dim : 0;
  const bool aligned = reinterpret_cast<uintptr_t>(vectors_) % alignof(uint32_t) == 0;
  if (!aligned || !AllFinite(reinterpret_cast<const uint32_t*>(vectors_), nvalues)) {
    for (size_t i = 0; i < nvalues; ++i) {
      float v;
      std::memcpy(&v, vectors_ + i * 4, 4);
      if (!std::isfinite(v)) return bad(vectors_offset_ + i * 4, "non-finite vector value");
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<Attributes>> SnapshotFile::DecodeAttributes() {
  const size_t count = static_cast<size_t>(header_.count);
  std::vector<Attributes> out;
  out.reserve(count);
  ByteReader ar(attributes_, file_);
  auto bad = [&](std::string what) {
    return absl::DataLossError(fmt::format("{}: {} at byte {}", file_, what, attributes_offset_ + ar.position()));
  };
  for (size_t i = 0; i < count && ar.ok(); ++i) {
    Attributes a = cairn::vector::DecodeAttributes(&ar);
    if (ar.ok() && !ValidateAttributes(a).ok()) return bad(fmt::format("invalid attributes of point {}", id(i)));
    out.push_back(std::move(a));
  }
  if (!ar.ok() || ar.remaining() != 0) {
    return bad(ar.ok() ? "bytes left after the last point's attributes" : "damaged attributes");
  }
  attributes_ = {};
  return out;
}

absl::StatusOr<std::unique_ptr<SnapshotFile>> SnapshotFile::Open(const std::string& path, bool deferred_verify) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return absl::NotFoundError(fmt::format("{} does not exist", path));
    return absl::InternalError(fmt::format("cannot open {}: {}", path, std::strerror(errno)));
  }
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    return absl::InternalError(fmt::format("cannot stat {}: {}", path, std::strerror(errno)));
  }
  const size_t size = static_cast<size_t>(st.st_size);
  void* map = nullptr;
  if (size > 0) {
    // Populated read-only (one bulk fault-in for the checksum pass); made writable
    // below. Populating a writable private mapping would copy every page.
    int flags = MAP_PRIVATE;
#ifdef MAP_POPULATE
    flags |= MAP_POPULATE;
#endif
    map = ::mmap(nullptr, size, PROT_READ, flags, fd, 0);
    if (map == MAP_FAILED) {
      ::close(fd);
      return absl::InternalError(fmt::format("cannot mmap {}: {}", path, std::strerror(errno)));
    }
  }
  ::close(fd);
  const std::string_view bytes(static_cast<const char*>(map), size);
  auto parsed = deferred_verify ? ParseLayout(bytes, path) : Parse(bytes, path);
  if (!parsed.ok()) {
    if (map) ::munmap(map, size);
    return parsed.status();
  }
  (*parsed)->map_ = map;
  (*parsed)->map_size_ = size;
  // Copy-on-write rows for MutableVectors (private mapping: nothing reaches the file).
  (*parsed)->writable_ = map != nullptr && ::mprotect(map, size, PROT_READ | PROT_WRITE) == 0;
  return parsed;
}

SnapshotFile::~SnapshotFile() {
  if (map_) ::munmap(map_, map_size_);
}

uint64_t SnapshotFile::id(size_t i) const {
  uint64_t v;
  std::memcpy(&v, ids_ + i * 8, 8);
  return v;
}

void SnapshotFile::Vector(size_t i, std::span<float> out) const {
  std::memcpy(out.data(), vectors_ + i * header_.dim * 4, static_cast<size_t>(header_.dim) * 4);
}

std::span<const uint64_t> SnapshotFile::Ids() const {
  if (reinterpret_cast<uintptr_t>(ids_) % alignof(uint64_t) != 0) return {};
  return {reinterpret_cast<const uint64_t*>(ids_), static_cast<size_t>(header_.count)};
}

std::span<const float> SnapshotFile::Vectors() const {
  if (!header_.vectors_inline || reinterpret_cast<uintptr_t>(vectors_) % alignof(float) != 0) return {};
  return {reinterpret_cast<const float*>(vectors_), static_cast<size_t>(header_.count) * header_.dim};
}

std::span<float> SnapshotFile::MutableVectors() {
  std::span<const float> v = Vectors();
  if (!writable_ || v.empty()) return {};
  return {const_cast<float*>(v.data()), v.size()};
}

}  // namespace cairn::vector
