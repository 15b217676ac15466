#include "cairn/infer/gguf.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>

#include <fmt/format.h>

namespace cairn::infer {
namespace {

constexpr uint64_t kDefaultAlignment = 32;
constexpr int kMaxArrayDepth = 8;
constexpr size_t kMaxTensorName = 63;  // GGML_MAX_NAME - 1: llama.cpp refuses longer names
// Smallest encodings, used to bound counts by the bytes that remain.
constexpr uint64_t kMinKvBytes = 8 + 4 + 1;           // empty key, type, u8 value
constexpr uint64_t kMinTensorInfoBytes = 8 + 4 + 8 + 4 + 8;  // empty name, 1 dim

// Size of one element of a fixed-width metadata type; 0 for string and array.
uint64_t ScalarSize(GgufType t) {
  switch (t) {
    case GgufType::kU8:
    case GgufType::kI8:
    case GgufType::kBool:
      return 1;
    case GgufType::kU16:
    case GgufType::kI16:
      return 2;
    case GgufType::kU32:
    case GgufType::kI32:
    case GgufType::kF32:
      return 4;
    case GgufType::kU64:
    case GgufType::kI64:
    case GgufType::kF64:
      return 8;
    case GgufType::kString:
    case GgufType::kArray:
      return 0;
  }
  return 0;
}

bool IsInteger(GgufType t) {
  switch (t) {
    case GgufType::kU8:
    case GgufType::kI8:
    case GgufType::kU16:
    case GgufType::kI16:
    case GgufType::kU32:
    case GgufType::kI32:
    case GgufType::kU64:
    case GgufType::kI64:
      return true;
    default:
      return false;
  }
}

// Element i of an integer array or an integer scalar, widened.
__int128 IntegerAt(GgufType t, const uint8_t* p) {
  auto load = [p](auto v) {
    std::memcpy(&v, p, sizeof v);
    return static_cast<__int128>(v);
  };
  switch (t) {
    case GgufType::kU8: return load(uint8_t{});
    case GgufType::kI8: return load(int8_t{});
    case GgufType::kU16: return load(uint16_t{});
    case GgufType::kI16: return load(int16_t{});
    case GgufType::kU32: return load(uint32_t{});
    case GgufType::kI32: return load(int32_t{});
    case GgufType::kU64: return load(uint64_t{});
    case GgufType::kI64: return load(int64_t{});
    default: return 0;
  }
}

std::string Int128String(__int128 v) {
  if (v >= 0) return std::to_string(static_cast<uint64_t>(v));
  return fmt::format("-{}", static_cast<uint64_t>(-v));
}

// A bounds-checked little-endian cursor over the file.
class Cursor {
 public:
  Cursor(const uint8_t* base, uint64_t size, const std::string& file) : base_(base), size_(size), file_(file) {}

  uint64_t pos() const { return pos_; }
  uint64_t remaining() const { return size_ - pos_; }
  const uint8_t* here() const { return base_ + pos_; }

  absl::Status Error(uint64_t at, const std::string& what) const {
    return absl::InvalidArgumentError(fmt::format("gguf: {}: at offset {}: {}", file_, at, what));
  }

  absl::Status Need(uint64_t n, std::string_view what) const {
    if (n > remaining()) {
      return Error(pos_, fmt::format("{} needs {} bytes but the file ends after {} (file size {})", what, n,
                                     remaining(), size_));
    }
    return absl::OkStatus();
  }

  template <typename T>
  absl::Status Read(T* v, std::string_view what) {
    if (absl::Status s = Need(sizeof(T), what); !s.ok()) return s;
    std::memcpy(v, base_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return absl::OkStatus();
  }

  absl::Status Skip(uint64_t n, std::string_view what) {
    if (absl::Status s = Need(n, what); !s.ok()) return s;
    pos_ += n;
    return absl::OkStatus();
  }

  absl::Status ReadString(std::string_view* out, std::string_view what) {
    return ReadStringNamed(out, [what] { return std::string(what); });
  }

  // The same, naming the value only when there is an error (`what()` makes the name).
  template <typename What>
  absl::Status ReadStringNamed(std::string_view* out, const What& what) {
    const uint64_t at = pos_;
    if (remaining() < sizeof(uint64_t)) return Need(sizeof(uint64_t), what());
    uint64_t len = 0;
    std::memcpy(&len, base_ + pos_, sizeof(len));
    pos_ += sizeof(len);
    if (len > remaining()) {
      return Error(at, fmt::format("{} has length {} but only {} bytes remain in the file", what(), len, remaining()));
    }
    *out = std::string_view(reinterpret_cast<const char*>(base_ + pos_), len);
    pos_ += len;
    return absl::OkStatus();
  }

 private:
  const uint8_t* base_;
  uint64_t size_;
  const std::string& file_;
  uint64_t pos_ = 0;
};

absl::Status ReadType(Cursor& c, GgufType* type, std::string_view what) {
  const uint64_t at = c.pos();
  uint32_t raw = 0;
  if (absl::Status s = c.Read(&raw, what); !s.ok()) return s;
  if (raw > static_cast<uint32_t>(GgufType::kF64)) {
    return c.Error(at, fmt::format("{} has unknown value type {} (known: 0..12)", what, raw));
  }
  *type = static_cast<GgufType>(raw);
  return absl::OkStatus();
}

absl::Status ReadValue(Cursor& c, GgufType type, const std::string& key, int depth, GgufValue* out);

absl::Status ReadArray(Cursor& c, const std::string& key, int depth, GgufArray* arr) {
  if (depth >= kMaxArrayDepth) {
    return c.Error(c.pos(), fmt::format("metadata '{}': arrays nested deeper than {}", key, kMaxArrayDepth));
  }
  if (absl::Status s = ReadType(c, &arr->type, fmt::format("element type of array '{}'", key)); !s.ok()) return s;
  const uint64_t at = c.pos();
  if (absl::Status s = c.Read(&arr->size, fmt::format("length of array '{}'", key)); !s.ok()) return s;
  const uint64_t elem = ScalarSize(arr->type);
  const uint64_t min_elem = elem != 0 ? elem : arr->type == GgufType::kString ? 8 : 12;
  if (arr->size > c.remaining() / min_elem) {
    return c.Error(at, fmt::format("array '{}' claims {} elements of type {} but only {} bytes remain", key,
                                   arr->size, GgufTypeName(arr->type), c.remaining()));
  }
  if (elem != 0) {
    arr->raw = c.here();
    if (arr->type == GgufType::kBool) {
      for (uint64_t i = 0; i < arr->size; ++i) {
        if (arr->raw[i] > 1) {
          return c.Error(c.pos() + i, fmt::format("array '{}' element {}: bool value {} (must be 0 or 1)", key, i,
                                                  arr->raw[i]));
        }
      }
    }
    return c.Skip(arr->size * elem, "array data");
  }
  if (arr->type == GgufType::kString) {
    // Checked here, element by element; kept as the position of the first (GgufArray::Strings).
    arr->raw = c.here();
    for (uint64_t i = 0; i < arr->size; ++i) {
      std::string_view sv;
      if (absl::Status s = c.ReadStringNamed(&sv, [&] { return fmt::format("array '{}' element {}", key, i); });
          !s.ok()) {
        return s;
      }
    }
    return absl::OkStatus();
  }
  arr->arrays.resize(arr->size);
  for (uint64_t i = 0; i < arr->size; ++i) {
    if (absl::Status s = ReadValue(c, GgufType::kArray, key, depth + 1, &arr->arrays[i]); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status ReadValue(Cursor& c, GgufType type, const std::string& key, int depth, GgufValue* out) {
  const std::string what = fmt::format("value of '{}'", key);
  auto scalar = [&](auto v) -> absl::Status {
    if (absl::Status s = c.Read(&v, what); !s.ok()) return s;
    *out = GgufValue(GgufValue::Storage(v));
    return absl::OkStatus();
  };
  switch (type) {
    case GgufType::kU8: return scalar(uint8_t{});
    case GgufType::kI8: return scalar(int8_t{});
    case GgufType::kU16: return scalar(uint16_t{});
    case GgufType::kI16: return scalar(int16_t{});
    case GgufType::kU32: return scalar(uint32_t{});
    case GgufType::kI32: return scalar(int32_t{});
    case GgufType::kF32: return scalar(float{});
    case GgufType::kU64: return scalar(uint64_t{});
    case GgufType::kI64: return scalar(int64_t{});
    case GgufType::kF64: return scalar(double{});
    case GgufType::kBool: {
      const uint64_t at = c.pos();
      uint8_t b = 0;
      if (absl::Status s = c.Read(&b, what); !s.ok()) return s;
      if (b > 1) return c.Error(at, fmt::format("metadata '{}': bool value {} (must be 0 or 1)", key, b));
      *out = GgufValue(GgufValue::Storage(b == 1));
      return absl::OkStatus();
    }
    case GgufType::kString: {
      std::string_view sv;
      if (absl::Status s = c.ReadString(&sv, what); !s.ok()) return s;
      *out = GgufValue(GgufValue::Storage(sv));
      return absl::OkStatus();
    }
    case GgufType::kArray: {
      GgufArray arr;
      if (absl::Status s = ReadArray(c, key, depth, &arr); !s.ok()) return s;
      *out = GgufValue(GgufValue::Storage(std::move(arr)));
      return absl::OkStatus();
    }
  }
  return c.Error(c.pos(), "unreachable value type");
}

}  // namespace

const char* GgufTypeName(GgufType type) {
  static constexpr const char* kNames[] = {"u8",  "i8",   "u16",    "i16",   "u32", "i32", "f32",
                                           "bool", "string", "array", "u64", "i64", "f64"};
  const auto i = static_cast<uint32_t>(type);
  return i < std::size(kNames) ? kNames[i] : "?";
}

std::string GgufValue::ToString(size_t max_chars) const {
  switch (type()) {
    case GgufType::kString: {
      std::string_view s = string();
      std::string out = "\"";
      for (size_t i = 0; i < s.size() && i < max_chars; ++i) {
        const char ch = s[i];
        if (ch == '\n') {
          out += "\\n";
        } else if (ch == '"' || ch == '\\') {
          out += '\\';
          out += ch;
        } else if (static_cast<unsigned char>(ch) < 0x20) {
          out += fmt::format("\\x{:02x}", static_cast<unsigned char>(ch));
        } else {
          out += ch;
        }
      }
      out += s.size() > max_chars ? "\"..." : "\"";
      return out;
    }
    case GgufType::kArray:
      return fmt::format("[{} x {}]", GgufTypeName(array().type), array().size);
    case GgufType::kBool:
      return std::get<bool>(v_) ? "true" : "false";
    case GgufType::kF32:
      return fmt::format("{}", std::get<float>(v_));
    case GgufType::kF64:
      return fmt::format("{}", std::get<double>(v_));
    default: {
      uint8_t buf[8];
      std::visit(
          [&buf](const auto& v) {
            using T = std::decay_t<decltype(v)>;
            if constexpr (std::is_integral_v<T>) std::memcpy(buf, &v, sizeof v);
          },
          v_);
      return Int128String(IntegerAt(type(), buf));
    }
  }
}

std::string GgufTensor::ShapeString() const {
  std::string out = "[";
  for (uint32_t i = 0; i < n_dims; ++i) out += fmt::format("{}{}", i ? ", " : "", ne[i]);
  return out + "]";
}

absl::StatusOr<std::unique_ptr<GgufFile>> GgufFile::Open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    std::string msg = fmt::format("gguf: cannot open {}: {}", path, std::strerror(err));
    return err == ENOENT ? absl::NotFoundError(msg) : absl::InvalidArgumentError(msg);
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return absl::InvalidArgumentError(fmt::format("gguf: {} is not a regular file", path));
  }
  if (st.st_size == 0) {
    ::close(fd);
    return absl::InvalidArgumentError(fmt::format("gguf: {}: the file is empty", path));
  }
  void* map = ::mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
  const int err = errno;
  if (map == MAP_FAILED) {
    ::close(fd);
    return absl::InternalError(fmt::format("gguf: cannot map {}: {}", path, std::strerror(err)));
  }
  std::unique_ptr<GgufFile> file(new GgufFile());
  file->path_ = path;
  file->fd_ = fd;
  file->map_ = map;
  file->map_size_ = static_cast<size_t>(st.st_size);
  file->base_ = static_cast<const uint8_t*>(map);
  file->size_ = static_cast<uint64_t>(st.st_size);
  if (absl::Status s = file->Parse(); !s.ok()) return s;
  return file;
}

absl::StatusOr<std::unique_ptr<GgufFile>> GgufFile::FromBuffer(std::string_view bytes, std::string name) {
  std::unique_ptr<GgufFile> file(new GgufFile());
  file->path_ = std::move(name);
  file->owned_.assign(bytes.data(), bytes.size());
  file->base_ = reinterpret_cast<const uint8_t*>(file->owned_.data());
  file->size_ = file->owned_.size();
  if (absl::Status s = file->Parse(); !s.ok()) return s;
  return file;
}

GgufFile::~GgufFile() {
  if (map_ != nullptr) ::munmap(map_, map_size_);
  if (fd_ >= 0) ::close(fd_);
}

void GgufFile::ReleaseMetadataPages() const {
  if (map_ == nullptr) return;
  constexpr uint64_t kHuge = uint64_t{2} << 20;
  const long page = ::sysconf(_SC_PAGESIZE);
  if (page <= 0) return;
  // The mapping starts page-aligned; its end is rounded down so no partial page is named.
  const uint64_t end = std::min<uint64_t>((data_offset_ + kHuge - 1) / kHuge * kHuge,
                                          size_ / static_cast<uint64_t>(page) * static_cast<uint64_t>(page));
  if (end > 0) ::madvise(map_, static_cast<size_t>(end), MADV_DONTNEED);  // advice: failure is harmless
}

void GgufFile::Read(const uint8_t* ptr, size_t n, uint8_t* dst) const {
  auto off = static_cast<uint64_t>(ptr - base_);
  if (fd_ >= 0) {
    while (n > 0) {
      const ssize_t got = ::pread(fd_, dst, n, static_cast<off_t>(off));
      if (got <= 0) {
        if (got < 0 && errno == EINTR) continue;
        break;  // the file shrank under us or the read failed: the mapping still reads it
      }
      dst += got;
      off += static_cast<uint64_t>(got);
      n -= static_cast<size_t>(got);
    }
  }
  if (n > 0) std::memcpy(dst, base_ + off, n);
}

absl::Status GgufFile::Parse() {
  Cursor c(base_, size_, path_);
  if (size_ < 4 || std::memcmp(base_, "GGUF", 4) != 0) {
    const size_t n = std::min<uint64_t>(size_, 4);
    std::string seen;
    for (size_t i = 0; i < n; ++i) seen += fmt::format("{:02x}", base_[i]);
    return c.Error(0, fmt::format("not a GGUF file (magic is '{}', expected 47475546 \"GGUF\")", seen));
  }
  if (absl::Status s = c.Skip(4, "magic"); !s.ok()) return s;
  if (absl::Status s = c.Read(&version_, "version"); !s.ok()) return s;
  if (version_ != 2 && version_ != 3) {
    if (version_ == 1) return c.Error(4, "GGUF version 1 is not supported (only versions 2 and 3)");
    if ((version_ & 0xFFFF) == 0 && (version_ >> 16) != 0) {
      return c.Error(4, fmt::format("version field {:#x}: a big-endian GGUF file, which is not supported",
                                    version_));
    }
    return c.Error(4, fmt::format("unsupported GGUF version {} (only versions 2 and 3)", version_));
  }
  uint64_t n_tensors = 0, n_kv = 0;
  if (absl::Status s = c.Read(&n_tensors, "tensor count"); !s.ok()) return s;
  if (absl::Status s = c.Read(&n_kv, "metadata count"); !s.ok()) return s;
  if (n_kv > c.remaining() / kMinKvBytes) {
    return c.Error(16, fmt::format("metadata count {} is impossible: only {} bytes remain", n_kv, c.remaining()));
  }
  if (n_tensors > c.remaining() / kMinTensorInfoBytes) {
    return c.Error(8, fmt::format("tensor count {} is impossible: only {} bytes remain", n_tensors, c.remaining()));
  }

  kvs_.reserve(n_kv);
  kv_index_.reserve(n_kv);
  for (uint64_t i = 0; i < n_kv; ++i) {
    const uint64_t at = c.pos();
    GgufKeyValue kv;
    if (absl::Status s = c.ReadString(&kv.key, fmt::format("key of metadata entry {}", i)); !s.ok()) return s;
    if (kv.key.empty()) return c.Error(at, fmt::format("metadata entry {} has an empty key", i));
    const std::string key(kv.key);
    GgufType type;
    if (absl::Status s = ReadType(c, &type, fmt::format("metadata '{}'", key)); !s.ok()) return s;
    if (absl::Status s = ReadValue(c, type, key, 0, &kv.value); !s.ok()) return s;
    if (!kv_index_.emplace(kv.key, kvs_.size()).second) {
      return c.Error(at, fmt::format("duplicate metadata key '{}'", key));
    }
    kvs_.push_back(std::move(kv));
  }

  if (const GgufValue* a = Find("general.alignment"); a != nullptr) {
    if (a->type() != GgufType::kU32) {
      return c.Error(c.pos(), fmt::format("general.alignment has type {}, expected u32", GgufTypeName(a->type())));
    }
    const uint32_t v = std::get<uint32_t>(a->storage());
    if (v == 0 || (v & (v - 1)) != 0) {
      return c.Error(c.pos(), fmt::format("general.alignment {} is not a power of two", v));
    }
    alignment_ = v;
  } else {
    alignment_ = kDefaultAlignment;
  }

  tensors_.reserve(n_tensors);
  tensor_index_.reserve(n_tensors);
  for (uint64_t i = 0; i < n_tensors; ++i) {
    const uint64_t at = c.pos();
    GgufTensor t;
    if (absl::Status s = c.ReadString(&t.name, fmt::format("name of tensor {}", i)); !s.ok()) return s;
    const std::string name(t.name);
    if (t.name.empty()) return c.Error(at, fmt::format("tensor {} has an empty name", i));
    if (t.name.size() > kMaxTensorName) {
      return c.Error(at, fmt::format("tensor {} name is {} bytes long (at most {})", i, t.name.size(), kMaxTensorName));
    }
    const uint64_t dims_at = c.pos();
    if (absl::Status s = c.Read(&t.n_dims, fmt::format("n_dims of tensor '{}'", name)); !s.ok()) return s;
    if (t.n_dims == 0 || t.n_dims > 4) {
      return c.Error(dims_at, fmt::format("tensor '{}' has {} dimensions (must be 1 to 4)", name, t.n_dims));
    }
    int64_t n_elements = 1;
    for (uint32_t d = 0; d < t.n_dims; ++d) {
      uint64_t ne = 0;
      const uint64_t ne_at = c.pos();
      if (absl::Status s = c.Read(&ne, fmt::format("dimension {} of tensor '{}'", d, name)); !s.ok()) return s;
      if (ne == 0 || ne > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return c.Error(ne_at, fmt::format("tensor '{}' dimension {} is {} (must be positive)", name, d,
                                          static_cast<int64_t>(ne)));
      }
      t.ne[d] = static_cast<int64_t>(ne);
      if (__builtin_mul_overflow(n_elements, t.ne[d], &n_elements)) {
        return c.Error(ne_at, fmt::format("tensor '{}' element count overflows 64 bits", name));
      }
    }
    const uint64_t type_at = c.pos();
    uint32_t type_id = 0;
    if (absl::Status s = c.Read(&type_id, fmt::format("type of tensor '{}'", name)); !s.ok()) return s;
    const TensorTypeInfo* info = FindTensorType(type_id);
    if (info == nullptr) return c.Error(type_at, fmt::format("tensor '{}' has unknown type id {}", name, type_id));
    t.type = info->type;
    if (t.ne[0] % info->block_size != 0) {
      return c.Error(type_at, fmt::format("tensor '{}' of type {}: row length {} is not a multiple of the block "
                                          "size {}",
                                          name, info->name, t.ne[0], info->block_size));
    }
    const uint64_t row_bytes = static_cast<uint64_t>(t.ne[0] / info->block_size) * info->block_bytes;
    if (__builtin_mul_overflow(row_bytes, static_cast<uint64_t>(t.n_rows()), &t.size)) {
      return c.Error(type_at, fmt::format("tensor '{}' byte size overflows 64 bits", name));
    }
    if (absl::Status s = c.Read(&t.offset, fmt::format("offset of tensor '{}'", name)); !s.ok()) return s;
    if (t.offset % alignment_ != 0) {
      return c.Error(type_at + 4, fmt::format("tensor '{}' offset {} is not a multiple of the alignment {}", name,
                                              t.offset, alignment_));
    }
    if (!tensor_index_.emplace(t.name, tensors_.size()).second) {
      return c.Error(at, fmt::format("duplicate tensor name '{}'", name));
    }
    tensors_.push_back(t);
  }

  // The data section starts at the next multiple of the alignment. A file without
  // tensors may end before that padding.
  const uint64_t end_of_infos = c.pos();
  data_offset_ = (end_of_infos + alignment_ - 1) / alignment_ * alignment_;
  if (data_offset_ > size_ && !tensors_.empty()) {
    return c.Error(end_of_infos, fmt::format("the data section would start at {}, past the end of the file (size {})",
                                             data_offset_, size_));
  }
  const uint64_t data_size = data_offset_ <= size_ ? size_ - data_offset_ : 0;
  for (GgufTensor& t : tensors_) {
    if (t.offset > data_size || t.size > data_size - t.offset) {
      return absl::InvalidArgumentError(fmt::format(
          "gguf: {}: tensor '{}' data [offset {}, size {}] runs past the end of the file (data section {} bytes "
          "from offset {}, file size {})",
          path_, t.name, t.offset, t.size, data_size, data_offset_, size_));
    }
    t.data = base_ + data_offset_ + t.offset;
  }
  // No two tensors may share bytes.
  std::vector<const GgufTensor*> by_offset;
  by_offset.reserve(tensors_.size());
  for (const GgufTensor& t : tensors_) by_offset.push_back(&t);
  std::sort(by_offset.begin(), by_offset.end(),
            [](const GgufTensor* a, const GgufTensor* b) { return a->offset < b->offset; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    const GgufTensor* prev = by_offset[i - 1];
    const GgufTensor* cur = by_offset[i];
    if (prev->offset + prev->size > cur->offset) {
      return absl::InvalidArgumentError(fmt::format("gguf: {}: tensor '{}' data [offset {}, size {}] overlaps tensor "
                                                    "'{}' [offset {}, size {}]",
                                                    path_, cur->name, cur->offset, cur->size, prev->name,
                                                    prev->offset, prev->size));
    }
  }
  return absl::OkStatus();
}

const GgufValue* GgufFile::Find(std::string_view key) const {
  auto it = kv_index_.find(key);
  return it == kv_index_.end() ? nullptr : &kvs_[it->second].value;
}

const GgufTensor* GgufFile::FindTensor(std::string_view name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

namespace {

absl::Status KeyNotFound(std::string_view key) {
  return absl::NotFoundError(fmt::format("gguf: metadata key '{}' not found", key));
}

absl::Status WrongType(std::string_view key, GgufType got, std::string_view want) {
  return absl::InvalidArgumentError(
      fmt::format("gguf: metadata key '{}' has type {}, expected {}", key, GgufTypeName(got), want));
}

// An integer scalar as a wide value.
absl::StatusOr<__int128> AnyInteger(const GgufValue* v, std::string_view key) {
  if (v == nullptr) return KeyNotFound(key);
  if (!IsInteger(v->type())) return WrongType(key, v->type(), "an integer");
  uint8_t buf[8] = {};
  std::visit(
      [&buf](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_integral_v<T>) std::memcpy(buf, &x, sizeof x);
      },
      v->storage());
  return IntegerAt(v->type(), buf);
}

template <typename T>
absl::StatusOr<T> Narrow(absl::StatusOr<__int128> v, std::string_view key, std::string_view type_name) {
  if (!v.ok()) return v.status();
  if (*v < static_cast<__int128>(std::numeric_limits<T>::min()) ||
      *v > static_cast<__int128>(std::numeric_limits<T>::max())) {
    return absl::InvalidArgumentError(
        fmt::format("gguf: metadata key '{}' value {} does not fit {}", key, Int128String(*v), type_name));
  }
  return static_cast<T>(*v);
}

absl::StatusOr<const GgufArray*> ArrayOf(const GgufValue* v, std::string_view key) {
  if (v == nullptr) return KeyNotFound(key);
  if (!v->is_array()) return WrongType(key, v->type(), "an array");
  return &v->array();
}

}  // namespace

absl::StatusOr<std::string_view> GgufFile::GetString(std::string_view key) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return KeyNotFound(key);
  if (!v->is_string()) return WrongType(key, v->type(), "string");
  return v->string();
}

absl::StatusOr<uint32_t> GgufFile::GetU32(std::string_view key) const {
  return Narrow<uint32_t>(AnyInteger(Find(key), key), key, "u32");
}
absl::StatusOr<int32_t> GgufFile::GetI32(std::string_view key) const {
  return Narrow<int32_t>(AnyInteger(Find(key), key), key, "i32");
}
absl::StatusOr<uint64_t> GgufFile::GetU64(std::string_view key) const {
  return Narrow<uint64_t>(AnyInteger(Find(key), key), key, "u64");
}
absl::StatusOr<int64_t> GgufFile::GetI64(std::string_view key) const {
  return Narrow<int64_t>(AnyInteger(Find(key), key), key, "i64");
}

absl::StatusOr<float> GgufFile::GetF32(std::string_view key) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return KeyNotFound(key);
  if (v->type() == GgufType::kF32) return std::get<float>(v->storage());
  if (v->type() == GgufType::kF64) return static_cast<float>(std::get<double>(v->storage()));
  if (IsInteger(v->type())) {
    absl::StatusOr<__int128> i = AnyInteger(v, key);
    return static_cast<float>(*i);
  }
  return WrongType(key, v->type(), "a number");
}

absl::StatusOr<bool> GgufFile::GetBool(std::string_view key) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return KeyNotFound(key);
  if (v->type() != GgufType::kBool) return WrongType(key, v->type(), "bool");
  return std::get<bool>(v->storage());
}

std::vector<std::string_view> GgufArray::Strings() const {
  std::vector<std::string_view> out;
  if (type != GgufType::kString) return out;
  out.reserve(size);
  const uint8_t* p = raw;
  for (uint64_t i = 0; i < size; ++i) {  // lengths and bounds were checked when the file was read
    uint64_t len = 0;
    std::memcpy(&len, p, sizeof(len));
    out.emplace_back(reinterpret_cast<const char*>(p + sizeof(len)), len);
    p += sizeof(len) + len;
  }
  return out;
}

absl::StatusOr<std::vector<std::string_view>> GgufFile::GetStringArray(std::string_view key) const {
  absl::StatusOr<const GgufArray*> a = ArrayOf(Find(key), key);
  if (!a.ok()) return a.status();
  if ((*a)->type != GgufType::kString) {
    return absl::InvalidArgumentError(fmt::format("gguf: metadata key '{}' is an array of {}, expected string", key,
                                                  GgufTypeName((*a)->type)));
  }
  return (*a)->Strings();
}

absl::StatusOr<std::vector<float>> GgufFile::GetF32Array(std::string_view key) const {
  absl::StatusOr<const GgufArray*> a = ArrayOf(Find(key), key);
  if (!a.ok()) return a.status();
  const GgufArray& arr = **a;
  std::vector<float> out(arr.size);
  if (arr.type == GgufType::kF32) {
    for (uint64_t i = 0; i < arr.size; ++i) out[i] = arr.At<float>(i);
  } else if (arr.type == GgufType::kF64) {
    for (uint64_t i = 0; i < arr.size; ++i) out[i] = static_cast<float>(arr.At<double>(i));
  } else {
    return absl::InvalidArgumentError(
        fmt::format("gguf: metadata key '{}' is an array of {}, expected f32", key, GgufTypeName(arr.type)));
  }
  return out;
}

absl::StatusOr<std::vector<int32_t>> GgufFile::GetI32Array(std::string_view key) const {
  absl::StatusOr<const GgufArray*> a = ArrayOf(Find(key), key);
  if (!a.ok()) return a.status();
  const GgufArray& arr = **a;
  if (!IsInteger(arr.type)) {
    return absl::InvalidArgumentError(fmt::format("gguf: metadata key '{}' is an array of {}, expected integers",
                                                  key, GgufTypeName(arr.type)));
  }
  const uint64_t width = ScalarSize(arr.type);
  std::vector<int32_t> out(arr.size);
  for (uint64_t i = 0; i < arr.size; ++i) {
    const __int128 v = IntegerAt(arr.type, arr.raw + i * width);
    if (v < std::numeric_limits<int32_t>::min() || v > std::numeric_limits<int32_t>::max()) {
      return absl::InvalidArgumentError(
          fmt::format("gguf: metadata key '{}' element {} value {} does not fit i32", key, i, Int128String(v)));
    }
    out[i] = static_cast<int32_t>(v);
  }
  return out;
}

absl::StatusOr<uint64_t> GgufFile::GetArraySize(std::string_view key) const {
  absl::StatusOr<const GgufArray*> a = ArrayOf(Find(key), key);
  if (!a.ok()) return a.status();
  return (*a)->size;
}

}  // namespace cairn::infer
