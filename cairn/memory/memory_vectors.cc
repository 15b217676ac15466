// MemoryStore's vector index: the writer thread that embeds points and upserts them
// into the collection after each SQLite commit (and checkpoints the WAL between
// batches), draining it for readers, and catching the collection up after a crash.
#include <map>

#include <spdlog/spdlog.h>

#include "cairn/base/status.h"
#include "cairn/memory/internal/store_impl.h"
#include "cairn/memory/memory.h"

namespace cairn::memory {

using internal::Stmt;

void MemoryStore::Impl::StartVectorWriter() {
  vq_thread = std::thread([this] {
    std::unique_lock<std::mutex> l(vq_mu);
    while (true) {
      vq_cv.wait(l, [this] { return vq_stop || !vq.empty(); });
      if (vq.empty()) return;  // stopping, and nothing left
      std::vector<vector::Point> points = std::move(vq.front());
      vq.pop_front();
      vq_busy = true;
      l.unlock();
      absl::Status s = UpsertVectors(std::move(points));
      ckdb->CheckpointPassive();
      l.lock();
      vq_busy = false;
      if (!s.ok()) {
        spdlog::error("memory store: vector index insert failed (reopen the store to rebuild it): {}", s.ToString());
        if (vq_error.ok()) vq_error = s;
      }
      if (vq.empty()) vq_idle_cv.notify_all();
    }
  });
}

void MemoryStore::Impl::StopVectorWriter() {
  if (!vq_thread.joinable()) return;
  {
    std::lock_guard<std::mutex> l(vq_mu);
    vq_stop = true;
  }
  vq_cv.notify_all();
  vq_thread.join();
}

absl::Status MemoryStore::Impl::EnqueueVectors(std::vector<vector::Point> points) {
  std::lock_guard<std::mutex> l(vq_mu);
  if (!vq_error.ok()) return vq_error;
  if (points.empty()) return absl::OkStatus();
  if (!vq_thread.joinable()) return UpsertVectors(std::move(points));  // not started (Open)
  vq.push_back(std::move(points));
  vq_cv.notify_one();
  return absl::OkStatus();
}

absl::Status MemoryStore::Impl::DrainVectors() {
  std::unique_lock<std::mutex> l(vq_mu);
  vq_idle_cv.wait(l, [this] { return vq.empty() && !vq_busy; });
  return vq_error;
}

// Vectors are written after the SQLite commit, so a crash can leave the newest rows
// without vectors (never the reverse for adds). Walk episodes and facts from the newest
// down until one is found in the collection, re-adding the missing ones.
absl::Status MemoryStore::Impl::SyncVectors() {
  std::vector<vector::Point> points;
  for (int pass = 0; pass < 2; ++pass) {
    const char* sql = pass == 0 ? "SELECT id FROM episodes ORDER BY id DESC" : "SELECT id FROM facts ORDER BY id DESC";
    std::vector<uint64_t> missing;
    {
      CAIRN_ASSIGN_OR_RETURN(Stmt s, wdb->Prepare(sql));
      while (true) {
        CAIRN_ASSIGN_OR_RETURN(bool row, s.Step());
        if (!row) break;
        uint64_t id = static_cast<uint64_t>(s.Int(0)) | (pass == 1 ? kFactBit : 0);
        if (vectors->Get(id).ok()) break;
        missing.push_back(id);
      }
    }
    for (uint64_t id : missing) {
      if (pass == 1) {
        CAIRN_ASSIGN_OR_RETURN(vector::Point p, FactPoint(id & ~kFactBit));
        points.push_back(std::move(p));
        continue;
      }
      CAIRN_ASSIGN_OR_RETURN(Episode e, LoadEpisode(*wdb, id));
      vector::Point p;
      p.id = id;
      p.text = std::move(e.content);
      p.attributes = {{"ns", e.ns}, {"t", e.time_ms}};
      points.push_back(std::move(p));
    }
  }
  if (points.empty()) return absl::OkStatus();
  return UpsertVectors(std::move(points));
}

// Points come with their text and no vector (RememberOne, FactPoint): embedding them here,
// on the vector writer thread, keeps it off the write transaction. The collection indexes
// no text (BM25 is SQLite's), so the text goes once it is embedded.
absl::Status MemoryStore::Impl::UpsertVectors(std::vector<vector::Point> points) {
  size_t kept = 0;
  for (vector::Point& p : points) {
    if (p.vector.empty() && p.text) {
      absl::StatusOr<std::vector<float>> v = embedder->Embed(*p.text);
      if (!v.ok()) continue;  // nothing embeddable: BM25 and the graph still find it
      p.vector = std::move(*v);
    }
    p.text.reset();
    if (&points[kept] != &p) points[kept] = std::move(p);
    ++kept;
  }
  points.resize(kept);
  if (points.empty()) return absl::OkStatus();
  // Within a batch ids must be distinct; a fact confirmed twice keeps its last version.
  std::map<uint64_t, size_t> last;
  for (size_t i = 0; i < points.size(); ++i) last[points[i].id] = i;
  if (last.size() != points.size()) {
    std::vector<vector::Point> unique;
    for (auto& [id, i] : last) unique.push_back(std::move(points[i]));
    points = std::move(unique);
  }
  return vectors->Upsert(points);
}

}  // namespace cairn::memory
