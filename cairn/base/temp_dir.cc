#include "cairn/base/temp_dir.h"

#include <stdlib.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>

namespace cairn {

namespace fs = std::filesystem;

TempDir::TempDir(std::string_view prefix) {
  std::error_code ec;
  const fs::path base = fs::temp_directory_path(ec);
  if (ec) {
    error_ = "no temporary directory: " + ec.message();
    return;
  }
  std::string pattern = (base / (std::string(prefix) + "-XXXXXX")).string();
  if (::mkdtemp(pattern.data()) == nullptr) {
    error_ = "cannot make a directory like " + pattern + ": " + std::strerror(errno);
    return;
  }
  path_ = std::move(pattern);
}

TempDir::~TempDir() { Remove(); }

TempDir::TempDir(TempDir&& o) noexcept : path_(std::move(o.path_)), error_(std::move(o.error_)) { o.path_.clear(); }

TempDir& TempDir::operator=(TempDir&& o) noexcept {
  if (this != &o) {
    Remove();
    path_ = std::move(o.path_);
    error_ = std::move(o.error_);
    o.path_.clear();
  }
  return *this;
}

void TempDir::Remove() {
  if (path_.empty()) return;
  std::error_code ec;
  fs::remove_all(path_, ec);  // best effort: a destructor has nobody to tell
  path_.clear();
}

std::string TempDir::Fresh(std::string_view name) const {
  if (path_.empty()) return "";
  const fs::path p = fs::path(path_) / fs::path(name);
  std::error_code ec;
  fs::remove_all(p, ec);
  fs::create_directories(p, ec);
  return ec ? "" : p.string();
}

}  // namespace cairn
