#include "cairn/infer/gguf_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

namespace cairn::infer {
namespace {

template <typename T>
void Put(std::string& out, T v) {
  char buf[sizeof(T)];
  std::memcpy(buf, &v, sizeof(T));
  out.append(buf, sizeof(T));
}

void PutString(std::string& out, std::string_view s) {
  Put<uint64_t>(out, s.size());
  out.append(s.data(), s.size());
}

uint64_t AlignUp(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

}  // namespace

GgufWriter::GgufWriter(uint32_t alignment) : alignment_(alignment) {
  if (alignment_ == 0 || (alignment_ & (alignment_ - 1)) != 0) {
    error_ = fmt::format("alignment {} is not a power of two", alignment_);
  } else if (alignment_ != 32) {
    SetU32("general.alignment", alignment_);
  }
}

GgufWriter::~GgufWriter() {
  if (file_ != nullptr) {
    std::fclose(file_);
    ::unlink(tmp_path_.c_str());
  }
}

void GgufWriter::Key(std::string_view key, GgufType type) {
  if (!keys_.emplace(key).second && error_.empty()) error_ = fmt::format("metadata key '{}' set twice", key);
  if (key.empty() && error_.empty()) error_ = "empty metadata key";
  PutString(meta_, key);
  Put<uint32_t>(meta_, static_cast<uint32_t>(type));
  ++n_kv_;
}

void GgufWriter::SetU8(std::string_view key, uint8_t v) {
  Key(key, GgufType::kU8);
  Put(meta_, v);
}
void GgufWriter::SetI8(std::string_view key, int8_t v) {
  Key(key, GgufType::kI8);
  Put(meta_, v);
}
void GgufWriter::SetU16(std::string_view key, uint16_t v) {
  Key(key, GgufType::kU16);
  Put(meta_, v);
}
void GgufWriter::SetI16(std::string_view key, int16_t v) {
  Key(key, GgufType::kI16);
  Put(meta_, v);
}
void GgufWriter::SetU32(std::string_view key, uint32_t v) {
  Key(key, GgufType::kU32);
  Put(meta_, v);
}
void GgufWriter::SetI32(std::string_view key, int32_t v) {
  Key(key, GgufType::kI32);
  Put(meta_, v);
}
void GgufWriter::SetU64(std::string_view key, uint64_t v) {
  Key(key, GgufType::kU64);
  Put(meta_, v);
}
void GgufWriter::SetI64(std::string_view key, int64_t v) {
  Key(key, GgufType::kI64);
  Put(meta_, v);
}
void GgufWriter::SetF32(std::string_view key, float v) {
  Key(key, GgufType::kF32);
  Put(meta_, v);
}
void GgufWriter::SetF64(std::string_view key, double v) {
  Key(key, GgufType::kF64);
  Put(meta_, v);
}
void GgufWriter::SetBool(std::string_view key, bool v) {
  Key(key, GgufType::kBool);
  Put<uint8_t>(meta_, v ? 1 : 0);
}
void GgufWriter::SetString(std::string_view key, std::string_view v) {
  Key(key, GgufType::kString);
  PutString(meta_, v);
}

void GgufWriter::SetStringArray(std::string_view key, const std::vector<std::string>& v) {
  Key(key, GgufType::kArray);
  Put<uint32_t>(meta_, static_cast<uint32_t>(GgufType::kString));
  Put<uint64_t>(meta_, v.size());
  for (const std::string& s : v) PutString(meta_, s);
}

void GgufWriter::SetF32Array(std::string_view key, const std::vector<float>& v) {
  Key(key, GgufType::kArray);
  Put<uint32_t>(meta_, static_cast<uint32_t>(GgufType::kF32));
  Put<uint64_t>(meta_, v.size());
  for (float f : v) Put(meta_, f);
}

void GgufWriter::SetI32Array(std::string_view key, const std::vector<int32_t>& v) {
  Key(key, GgufType::kArray);
  Put<uint32_t>(meta_, static_cast<uint32_t>(GgufType::kI32));
  Put<uint64_t>(meta_, v.size());
  for (int32_t i : v) Put(meta_, i);
}

void GgufWriter::SetValue(std::string_view key, const GgufValue& v) {
  Key(key, v.type());
  PutValue(v);
}

void GgufWriter::PutValue(const GgufValue& v) {
  std::visit(
      [this](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, bool>) {
          Put<uint8_t>(meta_, x ? 1 : 0);
        } else if constexpr (std::is_same_v<T, std::string_view>) {
          PutString(meta_, x);
        } else if constexpr (std::is_same_v<T, GgufArray>) {
          Put<uint32_t>(meta_, static_cast<uint32_t>(x.type));
          Put<uint64_t>(meta_, x.size);
          if (x.type == GgufType::kString) {
            for (std::string_view s : x.Strings()) PutString(meta_, s);
          } else if (x.type == GgufType::kArray) {
            for (const GgufValue& inner : x.arrays) PutValue(inner);
          } else {
            // Fixed-width elements are still the file's little-endian bytes.
            const size_t width = x.type == GgufType::kU8 || x.type == GgufType::kI8 || x.type == GgufType::kBool ? 1
                                 : x.type == GgufType::kU16 || x.type == GgufType::kI16                         ? 2
                                 : x.type == GgufType::kU64 || x.type == GgufType::kI64 ||
                                         x.type == GgufType::kF64
                                     ? 8
                                     : 4;
            meta_.append(reinterpret_cast<const char*>(x.raw), width * x.size);
          }
        } else {
          Put(meta_, x);
        }
      },
      v.storage());
}

uint64_t GgufWriter::AddTensor(std::string_view name, TensorType type, const std::vector<int64_t>& ne) {
  TensorDecl t{std::string(name), type, ne, 0, 0};
  uint64_t rows = 1;
  bool ok = !ne.empty() && ne.size() <= 4;
  for (size_t i = 0; ok && i < ne.size(); ++i) {
    ok = ne[i] > 0;
    if (i > 0 && ok) rows *= static_cast<uint64_t>(ne[i]);
  }
  absl::StatusOr<uint64_t> row = ok ? RowBytes(type, ne[0]) : absl::InvalidArgumentError("bad shape");
  if (!row.ok()) {
    if (error_.empty()) error_ = fmt::format("tensor '{}': invalid shape for type {}", name, TensorTypeName(type));
    t.size = 0;
  } else {
    t.size = *row * rows;
  }
  for (const TensorDecl& other : tensors_) {
    if (other.name == name && error_.empty()) error_ = fmt::format("tensor '{}' added twice", name);
  }
  data_bytes_ = AlignUp(data_bytes_, alignment_);
  t.offset = data_bytes_;
  data_bytes_ += t.size;
  tensors_.push_back(std::move(t));
  return tensors_.back().size;
}

absl::Status GgufWriter::Write(const void* data, size_t n) {
  if (buffer_ != nullptr) {
    buffer_->append(static_cast<const char*>(data), n);
  } else if (std::fwrite(data, 1, n, file_) != n) {
    return absl::InternalError(fmt::format("gguf: writing {}: {}", tmp_path_, std::strerror(errno)));
  }
  written_ += n;
  return absl::OkStatus();
}

absl::Status GgufWriter::WritePadding(uint64_t position) {
  static const char kZeros[256] = {};
  while (written_ < position) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(position - written_, sizeof kZeros));
    if (absl::Status s = Write(kZeros, n); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status GgufWriter::Begin(const std::string& path) {
  if (begun_) return absl::FailedPreconditionError("gguf writer: Begin called twice");
  path_ = path;
  tmp_path_ = path + ".tmp";
  if (!error_.empty()) return absl::InvalidArgumentError("gguf writer: " + error_);
  file_ = std::fopen(tmp_path_.c_str(), "wb");
  if (file_ == nullptr) {
    return absl::InvalidArgumentError(fmt::format("gguf: cannot create {}: {}", tmp_path_, std::strerror(errno)));
  }
  return BeginCommon();
}

absl::Status GgufWriter::Begin(std::string* buffer) {
  if (begun_) return absl::FailedPreconditionError("gguf writer: Begin called twice");
  if (!error_.empty()) return absl::InvalidArgumentError("gguf writer: " + error_);
  buffer->clear();
  buffer_ = buffer;
  return BeginCommon();
}

absl::Status GgufWriter::BeginCommon() {
  begun_ = true;
  std::string head;
  head.append("GGUF", 4);
  Put<uint32_t>(head, 3);
  Put<uint64_t>(head, tensors_.size());
  Put<uint64_t>(head, n_kv_);
  head += meta_;
  for (const TensorDecl& t : tensors_) {
    PutString(head, t.name);
    Put<uint32_t>(head, static_cast<uint32_t>(t.ne.size()));
    for (int64_t d : t.ne) Put<uint64_t>(head, static_cast<uint64_t>(d));
    Put<uint32_t>(head, static_cast<uint32_t>(t.type));
    Put<uint64_t>(head, t.offset);
  }
  if (absl::Status s = Write(head.data(), head.size()); !s.ok()) return s;
  data_start_ = AlignUp(written_, alignment_);
  if (absl::Status s = WritePadding(data_start_); !s.ok()) return s;
  current_ = 0;
  current_done_ = 0;
  return absl::OkStatus();
}

absl::Status GgufWriter::Append(const void* data, size_t n) {
  if (!begun_ || finished_) return absl::FailedPreconditionError("gguf writer: Append outside Begin..Finish");
  const auto* p = static_cast<const uint8_t*>(data);
  while (n > 0) {
    // Skip zero-size tensors and move past finished ones.
    while (current_ < tensors_.size() && current_done_ == tensors_[current_].size) {
      ++current_;
      current_done_ = 0;
    }
    if (current_ >= tensors_.size()) {
      return absl::FailedPreconditionError(fmt::format("gguf writer: {} bytes beyond the last tensor", n));
    }
    const TensorDecl& t = tensors_[current_];
    if (current_done_ == 0) {
      if (absl::Status s = WritePadding(data_start_ + t.offset); !s.ok()) return s;
    }
    const size_t take = static_cast<size_t>(std::min<uint64_t>(n, t.size - current_done_));
    if (absl::Status s = Write(p, take); !s.ok()) return s;
    current_done_ += take;
    p += take;
    n -= take;
  }
  return absl::OkStatus();
}

absl::Status GgufWriter::Finish() {
  if (!begun_ || finished_) return absl::FailedPreconditionError("gguf writer: Finish without Begin");
  while (current_ < tensors_.size() && current_done_ == tensors_[current_].size) {
    ++current_;
    current_done_ = 0;
  }
  if (current_ < tensors_.size()) {
    return absl::FailedPreconditionError(fmt::format("gguf writer: tensor '{}' got {} of its {} bytes",
                                                     tensors_[current_].name, current_done_,
                                                     tensors_[current_].size));
  }
  finished_ = true;
  if (buffer_ != nullptr) return absl::OkStatus();
  std::FILE* f = file_;
  file_ = nullptr;
  const bool ok = std::fflush(f) == 0 && ::fsync(::fileno(f)) == 0;
  const int err = errno;
  std::fclose(f);
  if (!ok || std::rename(tmp_path_.c_str(), path_.c_str()) != 0) {
    const std::string reason = std::strerror(ok ? errno : err);
    ::unlink(tmp_path_.c_str());
    return absl::InternalError(fmt::format("gguf: cannot write {}: {}", path_, reason));
  }
  return absl::OkStatus();
}

}  // namespace cairn::infer
