#pragma once
// A fresh, empty directory under the system's temporary directory (TMPDIR, else
// /tmp), removed with everything in it when the object goes away: for tests and
// tools that need scratch files and must not leave them behind.
//
// Each object makes its own directory (mkdtemp: a unique name, mode 0700), so
// tests running in parallel never share one. A directory that cannot be made
// leaves ok() false and error() saying why; path() is then empty.
//
// Thread-safety: an object is used by one thread at a time; distinct objects are
// independent.

#include <string>
#include <string_view>

namespace cairn {

class TempDir {
 public:
  // "<tmp>/<prefix>-XXXXXX".
  explicit TempDir(std::string_view prefix = "cairn");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  TempDir(TempDir&& o) noexcept;
  TempDir& operator=(TempDir&& o) noexcept;

  bool ok() const { return !path_.empty(); }
  const std::string& error() const { return error_; }
  const std::string& path() const { return path_; }
  // path()/name, made empty (whatever was there is removed first); nested names
  // ("a/b") make the parents too. "" when the directory could not be made.
  std::string Fresh(std::string_view name) const;

 private:
  void Remove();
  std::string path_;
  std::string error_;
};

}  // namespace cairn
