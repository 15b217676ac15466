// cairn/infer/gguf_writer.h — writing GGUF version 3 files.
//
// All metadata and every tensor's name, type and shape are declared first; Begin then
// writes the header and tensor infos, and the tensor data follows in declaration order,
// streamed in pieces of any size (Append), so a file larger than memory can be written.
// The writer inserts the alignment padding between tensors. Finish checks that every
// tensor got exactly its bytes; for a file, it flushes, fsyncs and renames the
// temporary "<path>.tmp" into place, so a file at `path` is always complete.
//
// Not thread-safe. A writer abandoned before Finish removes its temporary file.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "cairn/infer/gguf.h"
#include "cairn/infer/tensor_type.h"

namespace cairn::infer {

class GgufWriter {
 public:
  explicit GgufWriter(uint32_t alignment = 32);
  ~GgufWriter();
  GgufWriter(const GgufWriter&) = delete;
  GgufWriter& operator=(const GgufWriter&) = delete;

  // ---- metadata (before Begin). A key set twice is an error reported by Begin. ----
  void SetU8(std::string_view key, uint8_t v);
  void SetI8(std::string_view key, int8_t v);
  void SetU16(std::string_view key, uint16_t v);
  void SetI16(std::string_view key, int16_t v);
  void SetU32(std::string_view key, uint32_t v);
  void SetI32(std::string_view key, int32_t v);
  void SetU64(std::string_view key, uint64_t v);
  void SetI64(std::string_view key, int64_t v);
  void SetF32(std::string_view key, float v);
  void SetF64(std::string_view key, double v);
  void SetBool(std::string_view key, bool v);
  void SetString(std::string_view key, std::string_view v);
  void SetStringArray(std::string_view key, const std::vector<std::string>& v);
  void SetF32Array(std::string_view key, const std::vector<float>& v);
  void SetI32Array(std::string_view key, const std::vector<int32_t>& v);
  // Copies a value read from another file, nested arrays included.
  void SetValue(std::string_view key, const GgufValue& v);
  // Writes general.alignment when it is not the default 32 (done by the constructor).

  // ---- tensors (before Begin) ----
  // ne has 1 to 4 positive dimensions, ne[0] a multiple of the type's block size
  // (checked by Begin). Returns the tensor's byte size.
  uint64_t AddTensor(std::string_view name, TensorType type, const std::vector<int64_t>& ne);
  uint64_t total_data_bytes() const { return data_bytes_; }

  // ---- writing ----
  // Starts writing to `path` (through "<path>.tmp"), or into `*buffer` (cleared first).
  absl::Status Begin(const std::string& path);
  absl::Status Begin(std::string* buffer);
  // The next bytes of the current tensor's data (tensors in AddTensor order).
  absl::Status Append(const void* data, size_t n);
  absl::Status Finish();

 private:
  struct TensorDecl {
    std::string name;
    TensorType type;
    std::vector<int64_t> ne;
    uint64_t offset;
    uint64_t size;
  };
  void Key(std::string_view key, GgufType type);
  void PutValue(const GgufValue& v);
  absl::Status Write(const void* data, size_t n);
  absl::Status WritePadding(uint64_t position);
  absl::Status BeginCommon();

  uint32_t alignment_;
  std::string meta_;  // encoded key-value pairs
  uint64_t n_kv_ = 0;
  std::unordered_set<std::string> keys_;
  std::vector<TensorDecl> tensors_;
  uint64_t data_bytes_ = 0;
  std::string error_;  // first declaration error, reported by Begin

  std::FILE* file_ = nullptr;
  std::string path_, tmp_path_;
  std::string* buffer_ = nullptr;
  uint64_t written_ = 0;       // bytes written so far
  uint64_t data_start_ = 0;    // file offset of the data section
  size_t current_ = 0;         // tensor being written
  uint64_t current_done_ = 0;  // its bytes written
  bool begun_ = false, finished_ = false;
};

}  // namespace cairn::infer
