#include "cairn/vector/wal.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>

#include <fmt/format.h>

#include "cairn/base/codec.h"

namespace cairn::vector {
namespace {

constexpr uint32_t kWalMagic = MakeMagic("CVWR");
constexpr uint16_t kWalVersion = 1;
// Upper bound on a single record's payload: refuses absurd lengths from a damaged
// header before they are trusted (a batch of this size is far above any API limit).
constexpr uint64_t kMaxRecordPayload = 1ull << 34;

absl::Status ErrnoError(std::string_view what, const std::string& path) {
  return absl::InternalError(fmt::format("{} {}: {}", what, path, std::strerror(errno)));
}

}  // namespace

std::string EncodeWalBatch(uint64_t seq, std::span<const WalOp> ops) {
  ByteWriter w;
  w.U64(seq);
  w.Varint(ops.size());
  for (const WalOp& op : ops) {
    w.U8(static_cast<uint8_t>(op.kind));
    w.U64(op.id);
    if (op.kind != WalOp::Kind::kUpsert) continue;
    w.Varint(op.vector.size());
    w.Array(std::span<const float>(op.vector));
    EncodeAttributes(op.attributes, &w);
    w.U8(op.text.has_value() ? 1 : 0);
    if (op.text) w.String(*op.text);
  }
  return w.Take();
}

std::string EncodeWalRecord(uint64_t seq, std::span<const WalOp> ops) {
  return SealEnvelope(kWalMagic, kWalVersion, EncodeWalBatch(seq, ops));
}

absl::StatusOr<WalBatch> DecodeWalBatch(std::string_view payload) {
  ByteReader r(payload, "WAL batch");
  WalBatch batch;
  batch.seq = r.U64();
  uint64_t n = r.Varint();
  // Every op takes at least 9 bytes: a corrupt count fails here, not in reserve().
  if (r.ok() && n > r.remaining() / 9) r.Fail(fmt::format("op count {} too large", n));
  if (r.ok()) batch.ops.reserve(n);
  for (uint64_t i = 0; i < n && r.ok(); ++i) {
    WalOp op;
    uint8_t kind = r.U8();
    op.id = r.U64();
    if (kind == static_cast<uint8_t>(WalOp::Kind::kDelete)) {
      op.kind = WalOp::Kind::kDelete;
    } else if (kind == static_cast<uint8_t>(WalOp::Kind::kUpsert)) {
      op.kind = WalOp::Kind::kUpsert;
      uint64_t dim = r.Varint();
      r.Array(dim, &op.vector);
      for (float v : op.vector) {
        if (!std::isfinite(v)) {
          r.Fail("non-finite vector value");
          break;
        }
      }
      op.attributes = DecodeAttributes(&r);
      uint8_t has_text = r.U8();
      if (has_text > 1) r.Fail("bad text flag");
      if (has_text == 1) op.text = std::string(r.String());
    } else {
      r.Fail(fmt::format("unknown op kind {}", kind));
    }
    batch.ops.push_back(std::move(op));
  }
  auto st = r.Finish();
  if (!st.ok()) return st;
  return batch;
}

absl::StatusOr<WalScan> ScanWal(std::string_view bytes, std::string_view file) {
  WalScan scan;
  uint64_t pos = 0;
  const uint64_t size = bytes.size();
  while (pos < size) {
    const uint64_t left = size - pos;
    auto torn = [&](std::string reason) {
      scan.torn_bytes = left;
      scan.torn_reason = fmt::format("{}: record at offset {}: {}", file, pos, reason);
    };
    if (left < kEnvelopeHeaderSize + kEnvelopeTrailerSize) {
      torn(fmt::format("only {} bytes left, shorter than a record header", left));
      break;
    }
    uint64_t payload_size;
    std::memcpy(&payload_size, bytes.data() + pos + 8, 8);
    if (payload_size > kMaxRecordPayload ||
        payload_size > left - kEnvelopeHeaderSize - kEnvelopeTrailerSize) {
      torn(fmt::format("record of {} payload bytes runs past the end of the file", payload_size));
      break;
    }
    const uint64_t record_size = kEnvelopeHeaderSize + payload_size + kEnvelopeTrailerSize;
    auto env = OpenEnvelope(bytes.substr(pos, record_size), kWalMagic, kWalVersion, "WAL record");
    if (!env.ok()) {
      if (pos + record_size == size) {
        torn(std::string(env.status().message()));
        break;
      }
      return absl::DataLossError(fmt::format(
          "{}: corrupt record at offset {} with {} bytes after it: {}; the log is damaged in the "
          "middle (not a torn write): restore the collection from a backup or move the file away "
          "to drop the records from this offset on",
          file, pos, size - pos - record_size, std::string(env.status().message())));
    }
    scan.records.push_back({pos, env->payload});
    pos += record_size;
    scan.valid_bytes = pos;
  }
  return scan;
}

absl::StatusOr<std::unique_ptr<WalWriter>> WalWriter::Open(const std::string& path, bool sync_each) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoError("cannot open", path);
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    auto err = ErrnoError("cannot stat", path);
    ::close(fd);
    return err;
  }
  return std::unique_ptr<WalWriter>(
      new WalWriter(path, fd, static_cast<uint64_t>(st.st_size), sync_each));
}

WalWriter::~WalWriter() {
  if (fd_ >= 0) ::close(fd_);
}

absl::Status WalWriter::Append(std::string_view record) {
  size_t done = 0;
  while (done < record.size()) {
    ssize_t n = ::write(fd_, record.data() + done, record.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      auto err = ErrnoError("cannot append to", path_);
      // Cut off whatever part of the record made it, so the log stays a sequence of
      // whole records and the failed batch leaves nothing behind.
      if (::ftruncate(fd_, static_cast<off_t>(size_)) != 0) {
        return absl::InternalError(fmt::format("{}; and truncating back failed: {}", std::string(err.message()),
                                               std::strerror(errno)));
      }
      return err;
    }
    done += static_cast<size_t>(n);
  }
  if (sync_each_ && ::fdatasync(fd_) != 0) {
    auto err = ErrnoError("cannot fsync", path_);
    (void)::ftruncate(fd_, static_cast<off_t>(size_));
    return err;
  }
  size_ += record.size();
  return absl::OkStatus();
}

absl::Status WalWriter::Sync() {
  if (::fdatasync(fd_) != 0) return ErrnoError("cannot fsync", path_);
  return absl::OkStatus();
}

absl::Status WalWriter::Reset() {
  if (::ftruncate(fd_, 0) != 0) return ErrnoError("cannot truncate", path_);
  if (::fsync(fd_) != 0) return ErrnoError("cannot fsync", path_);
  size_ = 0;
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadWholeFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return absl::NotFoundError(fmt::format("{} does not exist", path));
    return ErrnoError("cannot open", path);
  }
  std::string out;
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      auto err = ErrnoError("cannot read", path);
      ::close(fd);
      return err;
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

absl::Status SyncDirectory(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoError("cannot open directory", dir);
  int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return ErrnoError("cannot fsync directory", dir);
  return absl::OkStatus();
}

absl::Status WriteFileAtomically(const std::string& path, std::string_view data) {
  const std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoError("cannot create", tmp);
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      auto err = ErrnoError("cannot write", tmp);
      ::close(fd);
      return err;
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    auto err = ErrnoError("cannot fsync", tmp);
    ::close(fd);
    return err;
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) return ErrnoError("cannot rename over", path);
  return SyncDirectory(std::filesystem::path(path).parent_path().string());
}

absl::Status TruncateFile(const std::string& path, uint64_t size) {
  if (::truncate(path.c_str(), static_cast<off_t>(size)) != 0) return ErrnoError("cannot truncate", path);
  return absl::OkStatus();
}

}  // namespace cairn::vector
