#include "cairn/stream/checkpoint.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <fstream>

#include "cairn/base/codec.h"
#include "cairn/base/hash.h"
#include "fmt/format.h"

namespace cairn::stream {
namespace {

namespace fs = std::filesystem;
constexpr uint32_t kMetaMagic = MakeMagic("CCHK");
constexpr uint16_t kMetaVersion = 1;
constexpr const char* kMetaFile = "_metadata";

absl::StatusOr<std::string> ReadAll(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return absl::NotFoundError(fmt::format("cannot read {}", p.string()));
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

absl::Status FsyncPath(const fs::path& p, bool directory) {
  int fd = ::open(p.c_str(), directory ? O_RDONLY | O_DIRECTORY : O_RDONLY);
  if (fd < 0) return absl::InternalError(fmt::format("cannot open {} to sync it", p.string()));
  int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return absl::InternalError(fmt::format("fsync of {} failed", p.string()));
  return absl::OkStatus();
}

// chk-<id> -> id; -1 when the name is not a complete checkpoint directory.
int64_t ParseId(const std::string& name) {
  if (name.rfind("chk-", 0) != 0) return -1;
  int64_t id = -1;
  auto [p, ec] = std::from_chars(name.data() + 4, name.data() + name.size(), id);
  if (ec != std::errc() || p != name.data() + name.size()) return -1;
  return id;
}

}  // namespace

absl::StatusOr<CheckpointStore> CheckpointStore::Open(std::string dir, int keep) {
  if (dir.empty()) return absl::InvalidArgumentError("checkpoint directory is empty");
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return absl::InvalidArgumentError(fmt::format("cannot create checkpoint directory {}: {}", dir, ec.message()));
  return CheckpointStore(std::move(dir), std::max(1, keep));
}

absl::StatusOr<std::string> CheckpointStore::Begin(int64_t id) {
  fs::path p = fs::path(dir_) / fmt::format("chk-{}.inprogress", id);
  std::error_code ec;
  fs::remove_all(p, ec);
  fs::create_directories(p, ec);
  if (ec) return absl::InternalError(fmt::format("cannot create {}: {}", p.string(), ec.message()));
  return p.string();
}

void CheckpointStore::Abort(int64_t id) {
  std::error_code ec;
  fs::remove_all(fs::path(dir_) / fmt::format("chk-{}.inprogress", id), ec);
}

absl::StatusOr<uint64_t> CheckpointStore::Complete(int64_t id, std::string_view metadata) {
  fs::path tmp = fs::path(dir_) / fmt::format("chk-{}.inprogress", id);
  fs::path final_path = fs::path(dir_) / fmt::format("chk-{}", id);
  ByteWriter w;
  w.String(metadata);
  std::vector<std::pair<std::string, std::string>> files;  // relative path, contents hash record
  uint64_t total = 0;
  std::vector<fs::path> dirs{tmp};
  std::vector<std::tuple<std::string, uint64_t, uint64_t>> entries;
  for (auto it = fs::recursive_directory_iterator(tmp); it != fs::recursive_directory_iterator(); ++it) {
    if (it->is_directory()) {
      dirs.push_back(it->path());
      continue;
    }
    CAIRN_ASSIGN_OR_RETURN(std::string bytes, ReadAll(it->path()));
    entries.emplace_back(fs::relative(it->path(), tmp).string(), bytes.size(), Hash64(std::string_view(bytes)));
    total += bytes.size();
    CAIRN_RETURN_IF_ERROR(FsyncPath(it->path(), false));
  }
  std::sort(entries.begin(), entries.end());
  w.Varint(entries.size());
  for (auto& [rel, size, hash] : entries) {
    w.String(rel);
    w.U64(size);
    w.U64(hash);
  }
  std::string meta = SealEnvelope(kMetaMagic, kMetaVersion, w.data());
  {
    std::ofstream out(tmp / kMetaFile, std::ios::binary | std::ios::trunc);
    out.write(meta.data(), static_cast<std::streamsize>(meta.size()));
    if (!out) return absl::InternalError(fmt::format("cannot write {}", (tmp / kMetaFile).string()));
  }
  CAIRN_RETURN_IF_ERROR(FsyncPath(tmp / kMetaFile, false));
  for (auto d = dirs.rbegin(); d != dirs.rend(); ++d) CAIRN_RETURN_IF_ERROR(FsyncPath(*d, true));
  std::error_code ec;
  fs::remove_all(final_path, ec);
  fs::rename(tmp, final_path, ec);
  if (ec) return absl::InternalError(fmt::format("cannot rename {}: {}", tmp.string(), ec.message()));
  CAIRN_RETURN_IF_ERROR(FsyncPath(dir_, true));

  // Keep the newest `keep_` complete checkpoints; drop older in-progress ones.
  std::vector<int64_t> ids = CompleteIds();
  for (size_t i = 0; i + keep_ < ids.size(); ++i) fs::remove_all(fs::path(dir_) / fmt::format("chk-{}", ids[i]), ec);
  for (auto& e : fs::directory_iterator(dir_, ec)) {
    std::string name = e.path().filename().string();
    const std::string suffix = ".inprogress";
    if (name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) {
      int64_t other = ParseId(name.substr(0, name.size() - suffix.size()));
      if (other >= 0 && other < id) fs::remove_all(e.path(), ec);
    }
  }
  return total + meta.size();
}

std::vector<int64_t> CheckpointStore::CompleteIds() const {
  std::vector<int64_t> ids;
  std::error_code ec;
  for (auto& e : fs::directory_iterator(dir_, ec)) {
    if (!e.is_directory()) continue;
    int64_t id = ParseId(e.path().filename().string());
    if (id >= 0) ids.push_back(id);
  }
  std::sort(ids.begin(), ids.end());
  return ids;
}

absl::StatusOr<std::string> CheckpointStore::Verify(const std::string& path) const {
  CAIRN_ASSIGN_OR_RETURN(std::string meta, ReadAll(fs::path(path) / kMetaFile));
  CAIRN_ASSIGN_OR_RETURN(Envelope env, OpenEnvelope(meta, kMetaMagic, kMetaVersion, "checkpoint metadata"));
  ByteReader r(env.payload, "checkpoint metadata");
  std::string user(r.String());
  uint64_t n = r.Varint();
  if (!r.ok() || n > r.remaining()) return absl::DataLossError("checkpoint metadata: bad file count");
  for (uint64_t i = 0; i < n; ++i) {
    std::string rel(r.String());
    uint64_t size = r.U64();
    uint64_t hash = r.U64();
    if (!r.ok()) break;
    auto bytes = ReadAll(fs::path(path) / rel);
    if (!bytes.ok()) return absl::DataLossError(fmt::format("file {} is missing", rel));
    if (bytes->size() != size)
      return absl::DataLossError(fmt::format("file {} has {} bytes, expected {}", rel, bytes->size(), size));
    if (Hash64(std::string_view(*bytes)) != hash) return absl::DataLossError(fmt::format("file {} fails its checksum", rel));
  }
  CAIRN_RETURN_IF_ERROR(r.Finish());
  return user;
}

std::optional<CheckpointStore::Restorable> CheckpointStore::FindLatest(std::vector<std::string>* warnings) const {
  std::vector<int64_t> ids = CompleteIds();
  for (auto it = ids.rbegin(); it != ids.rend(); ++it) {
    std::string path = (fs::path(dir_) / fmt::format("chk-{}", *it)).string();
    auto meta = Verify(path);
    if (meta.ok()) return Restorable{*it, path, *std::move(meta)};
    if (warnings)
      warnings->push_back(fmt::format("checkpoint {} is unusable ({}); trying an older one", path,
                                      std::string(meta.status().message())));
  }
  return std::nullopt;
}

}  // namespace cairn::stream
