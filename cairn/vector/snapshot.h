// The collection snapshot file (points.snap): every live point's id, vector and
// attributes, plus the last WAL sequence it includes.
//
// Format: one base-codec envelope (magic "CVSN", version 1), written streaming (the
// checksum is computed as the bytes go out, so a large collection is never held twice
// in memory) and read through mmap (the checksum is one pass over the mapping). Payload:
//   u64 seq | u32 dim | u8 metric | u8 vectors_inline | u64 count
//   | count x u64 ids (ascending)
//   | count x dim x f32 vectors (only when vectors_inline; otherwise the index keeps its
//     own file, e.g. HnswIndex::Save) | count x attributes (filter.h EncodeAttributes)
// Decoding rejects truncated, bit-flipped and inconsistent files with an error naming
// the file and the offset of the problem.
//
// Thread-safety: SnapshotFile is immutable after Open; the writer function is stateless.
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
  // is damaged.
  static absl::StatusOr<std::unique_ptr<SnapshotFile>> Open(const std::string& path);
  // Verifies and parses bytes already in memory (used by Open and the fuzz target).
  // The returned object references `bytes`, which must outlive it.
  static absl::StatusOr<std::unique_ptr<SnapshotFile>> Parse(std::string_view bytes,
                                                             std::string_view file);
  ~SnapshotFile();
  SnapshotFile(const SnapshotFile&) = delete;
  SnapshotFile& operator=(const SnapshotFile&) = delete;

  const SnapshotHeader& header() const { return header_; }
  uint64_t id(size_t i) const;
  // Copies point i's vector into `out` (header().dim floats); vectors_inline only.
  void Vector(size_t i, std::span<float> out) const;
  // All points' attributes, in id order (decoded and validated by Parse); once.
  std::vector<Attributes> TakeAttributes();

 private:
  SnapshotFile() = default;
  SnapshotHeader header_;
  void* map_ = nullptr;
  size_t map_size_ = 0;
  const char* ids_ = nullptr;
  const char* vectors_ = nullptr;
  std::string_view attributes_;
  std::vector<Attributes> decoded_;
};

}  // namespace cairn::vector
