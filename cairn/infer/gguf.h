// cairn/infer/gguf.h — reading GGUF model files (versions 2 and 3).
//
// Layout (ggml docs/gguf.md), all little-endian:
//   "GGUF" | u32 version | u64 tensor_count | u64 metadata_kv_count
//   | metadata_kv_count x (string key, u32 value_type, value)
//   | tensor_count x (string name, u32 n_dims, n_dims x u64 ne, u32 ggml_type, u64 offset)
//   | padding to general.alignment (default 32) | tensor data
// A string is u64 length + bytes (no terminator); an array is u32 element type, u64
// count, elements. Tensor offsets are relative to the start of the data section.
//
// GgufFile::Open maps the file read-only and validates all of it before returning:
// magic and version, counts against the bytes that remain (so a lying count never
// causes a huge allocation), string lengths, value and tensor types, n_dims <= 4,
// every dimension > 0, element counts without overflow, the first dimension a multiple
// of the type's block size, offsets aligned and every tensor's bytes inside the file,
// no duplicate keys or tensor names, general.alignment a power of two. Errors are
// InvalidArgument (or NotFound for a missing file) with a message that names the file,
// the byte offset and what was wrong. Tensors of types cairn cannot run are accepted
// (so they can be inspected); TensorType's IsSupported says which ones run.
//
// Ownership: everything a GgufFile returns by pointer or string_view (keys, string
// values, tensor names, tensor data) points into its mapping and lives as long as the
// GgufFile. The object is immutable after Open, so concurrent reads are safe.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "cairn/infer/tensor_type.h"

namespace cairn::infer {

// GGUF metadata value types, with their ids in the file.
enum class GgufType : uint32_t {
  kU8 = 0,
  kI8 = 1,
  kU16 = 2,
  kI16 = 3,
  kU32 = 4,
  kI32 = 5,
  kF32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kU64 = 10,
  kI64 = 11,
  kF64 = 12,
};
const char* GgufTypeName(GgufType type);  // "u8", ..., "array"

class GgufValue;

// An array value. Elements stay in the file (`raw`, little-endian, possibly unaligned):
// numeric and bool ones are read with At<T>() or the GgufFile getters, strings with
// Strings() (views into the file, listed on each call: nothing per element is kept, which
// for a 150 K-token vocabulary and its merges would be ~5 MB held for the life of the
// file). Nested arrays are parsed.
struct GgufArray {
  GgufType type = GgufType::kU8;  // element type
  uint64_t size = 0;
  const uint8_t* raw = nullptr;            // the first element (numeric, bool or string)
  std::vector<GgufValue> arrays;           // type == kArray

  // The elements of a string array (empty for other types).
  std::vector<std::string_view> Strings() const;

  // Element i of a numeric or bool array, as T (T must have the element's width).
  template <typename T>
  T At(uint64_t i) const {
    T v;
    __builtin_memcpy(&v, raw + i * sizeof(T), sizeof(T));
    return v;
  }
};

// One metadata value. The variant's alternative index equals the GgufType id.
class GgufValue {
 public:
  using Storage = std::variant<uint8_t, int8_t, uint16_t, int16_t, uint32_t, int32_t, float, bool,
                               std::string_view, GgufArray, uint64_t, int64_t, double>;
  GgufValue() = default;
  explicit GgufValue(Storage v) : v_(std::move(v)) {}

  GgufType type() const { return static_cast<GgufType>(v_.index()); }
  const Storage& storage() const { return v_; }
  bool is_string() const { return type() == GgufType::kString; }
  bool is_array() const { return type() == GgufType::kArray; }
  std::string_view string() const { return std::get<std::string_view>(v_); }  // is_string()
  const GgufArray& array() const { return std::get<GgufArray>(v_); }          // is_array()

  // A short human-readable rendering ("42", "\"llama\"", "[f32 x 32000]"); strings are
  // cut at `max_chars`.
  std::string ToString(size_t max_chars = 60) const;

 private:
  Storage v_;
};

struct GgufKeyValue {
  std::string_view key;
  GgufValue value;
};

struct GgufTensor {
  std::string_view name;
  TensorType type = TensorType::kF32;
  uint32_t n_dims = 0;
  std::array<int64_t, 4> ne = {1, 1, 1, 1};  // ne[0] is the contiguous (row) dimension
  uint64_t offset = 0;  // from the start of the data section
  uint64_t size = 0;    // bytes
  const uint8_t* data = nullptr;  // into the mapping

  int64_t n_elements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
  int64_t n_rows() const { return ne[1] * ne[2] * ne[3]; }
  std::string ShapeString() const;  // "[576, 49152]"
};

class GgufFile {
 public:
  // Maps `path` read-only and validates it. NotFound if it does not exist.
  static absl::StatusOr<std::unique_ptr<GgufFile>> Open(const std::string& path);
  // Parses bytes in memory (tests, the fuzz target). The file keeps its own copy.
  // `name` is used in error messages.
  static absl::StatusOr<std::unique_ptr<GgufFile>> FromBuffer(std::string_view bytes,
                                                              std::string name = "<buffer>");
  ~GgufFile();
  GgufFile(const GgufFile&) = delete;
  GgufFile& operator=(const GgufFile&) = delete;

  const std::string& path() const { return path_; }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }  // start of the data section
  uint64_t file_size() const { return size_; }
  const uint8_t* bytes() const { return base_; }  // the whole file
  // Whether the bytes are a read-only mapping of the file (Open), whose pages the kernel
  // can drop and read again; false for FromBuffer.
  bool mapped() const { return map_ != nullptr; }
  // Copies n bytes at `ptr` (inside bytes()) to dst. For a mapped file the bytes are read
  // from the file (pread) rather than through the mapping, so pages the model dropped
  // from the mapping (packed weights) do not come back into this process's memory; from
  // memory otherwise. The range must lie inside the file (a precondition).
  void Read(const uint8_t* ptr, size_t n, uint8_t* dst) const;
  // Drops this process's resident pages of the header and metadata (everything before the
  // tensor data, widened to the next 2 MiB boundary within the file as the page cache may
  // hold it in large pages) from a mapped file; whatever is read from them later (a key
  // lookup, a tensor's name) is read back from the file. For once the model and its
  // tokenizer are built: the tokenizer keeps its own copies, and a large vocabulary's
  // strings are most of those pages (about 2 MiB for Qwen2.5's 151,936 tokens and merges).
  // Nothing happens for FromBuffer.
  void ReleaseMetadataPages() const;

  // ---- metadata ----
  const std::vector<GgufKeyValue>& metadata() const { return kvs_; }  // file order
  const GgufValue* Find(std::string_view key) const;  // nullptr when absent
  bool Has(std::string_view key) const { return Find(key) != nullptr; }

  // Typed getters: NotFound "gguf: metadata key 'K' not found" when absent;
  // InvalidArgument naming the key when the value has another type or does not fit.
  // Integer getters accept any integer type whose value fits the result.
  absl::StatusOr<std::string_view> GetString(std::string_view key) const;
  absl::StatusOr<uint32_t> GetU32(std::string_view key) const;
  absl::StatusOr<int32_t> GetI32(std::string_view key) const;
  absl::StatusOr<uint64_t> GetU64(std::string_view key) const;
  absl::StatusOr<int64_t> GetI64(std::string_view key) const;
  // f32 or f64 (rounded), or an integer type.
  absl::StatusOr<float> GetF32(std::string_view key) const;
  absl::StatusOr<bool> GetBool(std::string_view key) const;
  // Views into the mapping.
  absl::StatusOr<std::vector<std::string_view>> GetStringArray(std::string_view key) const;
  // From an f32 or f64 array.
  absl::StatusOr<std::vector<float>> GetF32Array(std::string_view key) const;
  // From any integer array whose values fit int32.
  absl::StatusOr<std::vector<int32_t>> GetI32Array(std::string_view key) const;
  // Number of elements of an array value.
  absl::StatusOr<uint64_t> GetArraySize(std::string_view key) const;

  // ---- tensors ----
  const std::vector<GgufTensor>& tensors() const { return tensors_; }  // file order
  const GgufTensor* FindTensor(std::string_view name) const;  // nullptr when absent

 private:
  GgufFile() = default;
  absl::Status Parse();

  std::string path_;
  std::string owned_;          // FromBuffer's copy
  void* map_ = nullptr;        // Open's mapping
  int fd_ = -1;                // Open's file, kept for Read
  size_t map_size_ = 0;
  const uint8_t* base_ = nullptr;
  uint64_t size_ = 0;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::vector<GgufKeyValue> kvs_;
  std::unordered_map<std::string_view, size_t> kv_index_;
  std::vector<GgufTensor> tensors_;
  std::unordered_map<std::string_view, size_t> tensor_index_;
};

}  // namespace cairn::infer
