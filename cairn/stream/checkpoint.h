// Checkpoint directories: atomic, checksummed, the newest N kept.
//
// Layout under the pipeline's checkpoint directory:
//   chk-<id>.inprogress/...   being written by the subtasks (ignored on restore)
//   chk-<id>/...              complete: every file, plus `_metadata`
// `_metadata` (codec envelope "CCHK") holds the pipeline's metadata blob and the
// size and XXH3 checksum of every other file of the checkpoint. Complete()
// writes it, fsyncs every file and directory, then renames the directory into
// place: a crash at any moment leaves either the previous set of complete
// checkpoints or the new one. FindLatest() verifies checkpoints newest first and
// skips (with a warning) any that is partial or corrupt.
//
// Thread-safety: Begin/Complete/Abort/FindLatest from one thread (the
// coordinator); subtasks write files inside the directory Begin returned.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/base/status.h"

namespace cairn::stream {

class CheckpointStore {
 public:
  // Creates `dir` if needed. `keep` >= 1 complete checkpoints are kept.
  static absl::StatusOr<CheckpointStore> Open(std::string dir, int keep);

  // Creates (emptied) chk-<id>.inprogress and returns its path.
  absl::StatusOr<std::string> Begin(int64_t id);
  // Seals checkpoint `id` (see above), then deletes complete checkpoints beyond
  // the newest `keep`, and stray in-progress directories older than `id`.
  // Returns the total bytes of the checkpoint.
  absl::StatusOr<uint64_t> Complete(int64_t id, std::string_view metadata);
  void Abort(int64_t id);

  struct Restorable {
    int64_t id = 0;
    std::string path;
    std::string metadata;
  };
  // The newest checkpoint that verifies, or nullopt when there is none. Each
  // skipped checkpoint adds a line to `warnings` saying why.
  std::optional<Restorable> FindLatest(std::vector<std::string>* warnings) const;
  // Ids of the complete checkpoint directories present (not verified), ascending.
  std::vector<int64_t> CompleteIds() const;
  const std::string& dir() const { return dir_; }

 private:
  CheckpointStore(std::string dir, int keep) : dir_(std::move(dir)), keep_(keep) {}
  absl::StatusOr<std::string> Verify(const std::string& path) const;
  std::string dir_;
  int keep_;
};

}  // namespace cairn::stream
