// The collection snapshot file (points.snap): every live point's id, vector and
// attributes, plus the last WAL sequence it includes.
//
// Format: one base-codec envelope (magic "CVSN", version 2; version 1 is still read),
// written streaming (the checksum is computed as the bytes go out, so a large collection
// is never held twice in memory) and read through mmap (the checksum is one pass over
// the mapping). Payload:
//   u64 seq | u32 dim | u8 metric | u8 vectors_inline | u64 count
//   | v2: zero bytes up to an 8-byte file offset
//   | count x u64 ids (ascending)
//   | v2: zero bytes up to a 64-byte file offset
//   | count x dim x f32 vectors (only when vectors_inline; otherwise the index keeps its
//     own file, e.g. HnswIndex::Save) | count x attributes (filter.h EncodeAttributes)
// Version 2 aligns the ids and the vector block so that an index can use them in place
// from the mapping (FlatIndex::Adopt) instead of copying them at open.
// Decoding rejects truncated, bit-flipped and inconsistent files with an error naming
// the file and the offset of the problem; attributes are decoded (and checked) by
// DecodeAttributes, separately, so that work can run on another thread.
//
// Thread-safety: SnapshotFile is immutable after Open except for the rows handed out by
// MutableVectors (their single user owns them); the writer function is stateless.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "cairn/vector/filter.h"
#include "cairn/vector/index.h"

namespace cairn::vector {

struct SnapshotHeader {
  uint64_t seq = 0;
  uint32_t dim = 0;
  Metric metric = Metric::kL2;
  bool vectors_inline = true;
  uint64_t count = 0;
};

// Supplies point i's attributes (pointer valid until the next call) and, when `vector`
// is not empty, its dim floats. Called twice per point: attributes, then the vector.
using SnapshotPointSource =
    std::function<absl::Status(size_t i, std::span<float> vector, const Attributes** attributes)>;

// Writes `path` atomically (tmp file, fsync, rename, directory fsync). `ids` ascending.
absl::Status WriteSnapshot(const std::string& path, const SnapshotHeader& header,
                           std::span<const uint64_t> ids, const SnapshotPointSource& source);

// A verified snapshot, mapped read-only.
class SnapshotFile {
 public:
  // NotFound when the file does not exist; DataLoss naming the file and offset when it
  // is damaged. With `deferred_verify` only the envelope header and the layout are
  // checked, so that DecodeAttributes (bounds-checked, safe on any bytes) can run on
  // another thread while the caller runs Verify(): nothing else may be used before
  // Verify() returned OK.
  static absl::StatusOr<std::unique_ptr<SnapshotFile>> Open(const std::string& path,
                                                            bool deferred_verify = false);
  // Verifies and parses bytes already in memory (used by Open and the fuzz target).
  // The returned object references `bytes`, which must outlive it.
  static absl::StatusOr<std::unique_ptr<SnapshotFile>> Parse(std::string_view bytes,
                                                             std::string_view file);
  // The checks Parse makes beyond the layout: the checksum, ascending ids, finite
  // vector values. Thread-safe against a concurrent DecodeAttributes.
  absl::Status Verify() const;
  ~SnapshotFile();
  SnapshotFile(const SnapshotFile&) = delete;
  SnapshotFile& operator=(const SnapshotFile&) = delete;

  const SnapshotHeader& header() const { return header_; }
  uint64_t id(size_t i) const;
  // Every id, ascending, straight from the mapping when 8-byte aligned there (version
  // 2 files); else empty (use id(i)).
  std::span<const uint64_t> Ids() const;
  // Copies point i's vector into `out` (header().dim floats); vectors_inline only.
  void Vector(size_t i, std::span<float> out) const;
  // Every point's vector in one row-major block, straight from the mapping, when the
  // block is float-aligned there (version 2 files); else empty.
  std::span<const float> Vectors() const;
  // The same block, writable: a file opened with Open() is mapped copy-on-write, so a
  // write copies only the touched page into the process and never reaches the file.
  // Empty for Parse()d bytes, and where Vectors() is empty. For one owner (an index
  // adopting the rows): the mapping must outlive its use.
  std::span<float> MutableVectors();
  // All points' attributes, in id order, decoded and validated (DataLoss naming the file
  // and offset on damage). Call at most once.
  absl::StatusOr<std::vector<Attributes>> DecodeAttributes();

 private:
  SnapshotFile() = default;
  static absl::StatusOr<std::unique_ptr<SnapshotFile>> ParseLayout(std::string_view bytes, std::string_view file);
  SnapshotHeader header_;
  void* map_ = nullptr;
  size_t map_size_ = 0;
  const char* ids_ = nullptr;
  const char* vectors_ = nullptr;
  std::string_view bytes_;  // the whole file
  size_t ids_offset_ = 0, vectors_offset_ = 0;  // in the payload
  std::string_view attributes_;
  size_t attributes_offset_ = 0;  // of attributes_ in the file, for error messages
  std::string file_;
  bool writable_ = false;
};

}  // namespace cairn::vector
