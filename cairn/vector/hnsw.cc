// HNSW index: see hnsw.h for the contract. Notes on why things are the way they are:
//
// Memory layout. Every node owns one fixed-size, 64-byte aligned slot in a single
// level-0 block:  [vector data | u64 id | u32 count | u32 links[2M]]. The data comes
// first so that a float vector of a multiple of 16 dimensions covers whole cache
// lines (128 dims = exactly 8 lines), the links of the node being expanded are in
// the same slot, and a neighbour's data is one prefetchable contiguous range.
// Upper levels (few nodes) keep per-node arrays [count | links[M]] per level.
//
// Concurrency. `storage_mu_` (shared_mutex) protects the *shape* of storage: the
// block pointer, capacity, per-slot arrays. Searches and inserts hold it shared;
// growth, Remove, Compact, Train and Save hold it exclusively. Link lists change
// under shared mode, so every link and count is accessed through std::atomic_ref:
// writers (holding a striped spin lock for the node) store links with release
// order, readers load with acquire order — plain moves on x86, and a search sees
// either the old or the new neighbour, each a fully written node (a node's data is
// written before any link to it is published).
//
// Search. Level 0 without filter uses a single sorted candidate pool of size ef
// (insertion by binary search + memmove, cursor to the first unexpanded entry),
// which is cheaper than hnswlib's pair of binary heaps; unvisited neighbours are
// first collected and prefetched, then measured. The visited set is a per-thread
// bitset (N/8 bytes, stays in L2 for 1M nodes) cleared through the list of words it
// touched, so no per-query allocation and no O(N) clear. Filtered searches and
// indexes with removed-but-not-yet-swept nodes use the general two-heap search
// where non-matching nodes still navigate but never enter the results.
//
// Deletion. Remove() repairs the removed node's neighbours at once; links to it
// from non-neighbours are swept in batches (see hnsw.h); until swept, a removed
// slot keeps its links so that such dangling links still lead somewhere useful.
#include "cairn/vector/hnsw.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <mutex>
#include <new>
#include <optional>
#include <queue>
#include <shared_mutex>
#include <thread>

#include "absl/hash/hash.h"
#include "cairn/base/codec.h"
#include "cairn/base/hash.h"
#include "cairn/base/random.h"
#include "cairn/base/status.h"
#include "cairn/vector/distance.h"
#include "cairn/vector/internal/hnsw_format.h"
#include "cairn/vector/internal/slot_table.h"
#include "cairn/vector/quantize.h"
#include "fmt/format.h"

namespace cairn::vector {
namespace {

constexpr uint32_t kNone = std::numeric_limits<uint32_t>::max();
constexpr uint32_t kExpanded = 0x80000000u;
constexpr uint32_t kMaxSlots = 0x7fffffffu;
constexpr int kMaxLevel = 30;
constexpr uint32_t kMagic = MakeMagic("CHNS");
constexpr uint16_t kVersion = 1;
constexpr size_t kLockStripes = 4096;
// Planner. A filtered graph search must walk past non-matching nodes until ef
// matching ones are found: it visits about kGraphVisitsPerEf * ef / selectivity
// nodes (measured: 100K x 128 clustered, ef 64, selectivity 1/200..1/10 took
// 0.25-8 ms). An exact search over a listed matching set costs one distance per
// match. So with a listed set, exact wins when
//   selectivity * n < kGraphVisitsPerEf * ef / selectivity,
// i.e. below ~11% selectivity at 100K points and ~3.6% at 1M (ef 64); and always
// below kExactMaxMatches matches. Without a list, an exact search is a scan of
// every slot, only worth it for small selectivities on small indexes.
constexpr double kGraphVisitsPerEf = 20;
constexpr double kExactMaxMatches = 2000;
constexpr double kScanMaxSelectivity = 0.02;

enum : uint8_t { kFree = 0, kInserting = 1, kLive = 2, kRemoved = 3 };

struct Cand {
  float d;
  uint32_t s;
};
struct CandLess {
  bool operator()(const Cand& a, const Cand& b) const { return a.d < b.d; }
};
struct CandGreater {
  bool operator()(const Cand& a, const Cand& b) const { return a.d > b.d; }
};

inline uint32_t LoadA(const uint32_t& x) {
  return std::atomic_ref<uint32_t>(const_cast<uint32_t&>(x)).load(std::memory_order_acquire);
}
inline void StoreR(uint32_t& x, uint32_t v) {
  std::atomic_ref<uint32_t>(x).store(v, std::memory_order_release);
}

class SpinLock {
 public:
  void lock() {
    for (;;) {
      if (!flag_.exchange(true, std::memory_order_acquire)) return;
      while (flag_.load(std::memory_order_relaxed)) {
#if defined(__x86_64__)
        __builtin_ia32_pause();
#endif
      }
    }
  }
  void unlock() { flag_.store(false, std::memory_order_release); }

 private:
  std::atomic<bool> flag_{false};
};

// A shared mutex that does not starve writers: glibc's rwlock prefers readers, so
// a steady stream of searches would keep Remove/Grow waiting forever. New shared
// lockers step aside while a writer is waiting.
class StorageMutex {
 public:
  void lock_shared() {
    while (writers_.load(std::memory_order_acquire) != 0) std::this_thread::yield();
    mu_.lock_shared();
  }
  void unlock_shared() { mu_.unlock_shared(); }
  void lock() {
    writers_.fetch_add(1, std::memory_order_acq_rel);
    mu_.lock();
    writers_.fetch_sub(1, std::memory_order_acq_rel);
  }
  void unlock() { mu_.unlock(); }

 private:
  std::shared_mutex mu_;
  std::atomic<int> writers_{0};
};

// Per-thread visited bitset with a list of touched words for an O(touched) reset.
struct Visited {
  std::vector<uint64_t> bits;
  std::vector<uint32_t> touched;
  void Reset(size_t n) {
    for (uint32_t w : touched) bits[w] = 0;
    touched.clear();
    const size_t words = (n + 63) / 64;
    if (bits.size() < words) bits.resize(words, 0);
  }
  // Returns true when s was already set.
  bool TestSet(uint32_t s) {
    const uint32_t w = s >> 6;
    const uint64_t m = uint64_t{1} << (s & 63);
    const uint64_t old = bits[w];
    if (old & m) return true;
    if (old == 0) touched.push_back(w);
    bits[w] = old | m;
    return false;
  }
};

struct Scratch {
  Visited visited;
  std::vector<Cand> pool;
  std::vector<Cand> cands;
  std::vector<uint32_t> fresh;
  std::vector<float> qbuf;
  std::vector<float> vbuf;   // decode buffers
  std::vector<float> sel;    // decoded selected vectors (SQ8 heuristic)
  Sq8Quantizer::Query sq;
};
Scratch& TlsScratch() {
  thread_local Scratch s;
  return s;
}

inline void Prefetch(const void* p) { __builtin_prefetch(p, 0, 3); }

bool Normalize(float* v, size_t dim) {
  double n = 0;
  for (size_t i = 0; i < dim; ++i) n += double{v[i]} * v[i];
  if (!(n > 0) || !std::isfinite(n)) return false;
  const float inv = static_cast<float>(1.0 / std::sqrt(n));
  for (size_t i = 0; i < dim; ++i) v[i] *= inv;
  return true;
}

absl::Status ValidateOptions(const HnswOptions& o) {
  if (o.dim == 0 || o.dim > 65536)
    return absl::InvalidArgumentError(fmt::format("hnsw: dim {} is out of range 1..65536", o.dim));
  if (o.M < 2 || o.M > 64)
    return absl::InvalidArgumentError(fmt::format("hnsw: M {} is out of range 2..64", o.M));
  if (o.ef_construction == 0) return absl::InvalidArgumentError("hnsw: ef_construction must be > 0");
  if (static_cast<uint8_t>(o.metric) > 2) return absl::InvalidArgumentError("hnsw: unknown metric");
  if (static_cast<uint8_t>(o.storage) > 1) return absl::InvalidArgumentError("hnsw: unknown storage");
  return absl::OkStatus();
}

// An unlinked temporary file (or the named one, truncated) for SQ8 full vectors.
absl::StatusOr<int> OpenVectorFile(const std::string& path) {
  if (!path.empty()) {
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
      return absl::InternalError(fmt::format("hnsw: cannot create '{}': {}", path, strerror(errno)));
    return fd;
  }
  const char* tmp = std::getenv("TMPDIR");
  std::string dir = tmp && *tmp ? tmp : "/tmp";
  int fd = -1;
#ifdef O_TMPFILE
  fd = ::open(dir.c_str(), O_RDWR | O_TMPFILE | O_CLOEXEC, 0600);
  if (fd >= 0) return fd;
#endif
  std::string templ = dir + "/cairn-hnsw-XXXXXX";
  fd = ::mkstemp(templ.data());
  if (fd < 0)
    return absl::InternalError(
        fmt::format("hnsw: cannot create a vector file in '{}': {}", dir, strerror(errno)));
  ::unlink(templ.c_str());
  return fd;
}

bool PwriteAll(int fd, const void* p, size_t n, off_t off) {
  const char* c = static_cast<const char*>(p);
  while (n > 0) {
    ssize_t w = ::pwrite(fd, c, n, off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    c += w;
    n -= static_cast<size_t>(w);
    off += w;
  }
  return true;
}
bool PreadAll(int fd, void* p, size_t n, off_t off) {
  char* c = static_cast<char*>(p);
  while (n > 0) {
    ssize_t r = ::pread(fd, c, n, off);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    c += r;
    n -= static_cast<size_t>(r);
    off += r;
  }
  return true;
}

}  // namespace

// Upper-level link lists (about 1 node in M has any), in chunks that never move, so
// a list stays where it is while other threads insert: each node keeps a 4-byte
// word offset instead of an 8-byte pointer to its own allocation (which also cost
// a malloc header each). Chunk c holds words [2^(c+B) - 2^B, 2^(c+1+B) - 2^B): the
// first is small, each next one doubles. Freed lists are kept by size for reuse.
class UpperArena {
 public:
  static constexpr uint32_t kNil = std::numeric_limits<uint32_t>::max();
  UpperArena() = default;
  ~UpperArena() {
    for (auto& c : chunks_) delete[] c.load(std::memory_order_relaxed);
  }
  UpperArena(const UpperArena&) = delete;
  UpperArena& operator=(const UpperArena&) = delete;

  // A zeroed list of `words` words; kNil when the arena is full.
  uint32_t Alloc(size_t words) {
    std::lock_guard<std::mutex> g(mu_);
    uint64_t off;
    if (words < free_.size() && !free_[words].empty()) {
      off = free_[words].back();
      free_[words].pop_back();
    } else {
      int c = ChunkOf(next_);
      if (next_ + words > ChunkEnd(c)) next_ = ChunkEnd(c++);  // a list never straddles chunks
      if (c >= kChunks || words > ChunkWords(c) || next_ + words >= kNil) return kNil;
      if (chunks_[c].load(std::memory_order_relaxed) == nullptr) {
        // Left uninitialized: pages the lists never reach are never made resident.
        chunks_[c].store(new uint32_t[ChunkWords(c)], std::memory_order_release);
      }
      off = next_;
      next_ += words;
    }
    std::memset(At(static_cast<uint32_t>(off)), 0, words * sizeof(uint32_t));
    return static_cast<uint32_t>(off);
  }
  void Free(uint32_t off, size_t words) {
    if (off == kNil || words == 0) return;
    std::lock_guard<std::mutex> g(mu_);
    if (free_.size() <= words) free_.resize(words + 1);
    free_[words].push_back(off);
  }
  uint32_t* At(uint32_t off) const {
    const uint64_t x = uint64_t{off} + kFirst;
    const int c = 63 - std::countl_zero(x) - kFirstBits;
    return chunks_[c].load(std::memory_order_acquire) + (x - (kFirst << c));
  }
  // Words handed out (resident), plus the free lists' bookkeeping.
  size_t Bytes() const {
    std::lock_guard<std::mutex> g(mu_);
    size_t b = next_ * sizeof(uint32_t) + sizeof(*this);
    for (const auto& f : free_) b += f.capacity() * sizeof(uint32_t);
    return b;
  }

 private:
  static constexpr int kFirstBits = 10;  // first chunk: 4 KiB
  static constexpr uint64_t kFirst = uint64_t{1} << kFirstBits;
  static constexpr int kChunks = 32 - kFirstBits;
  static int ChunkOf(uint64_t off) { return 63 - std::countl_zero(off + kFirst) - kFirstBits; }
  static uint64_t ChunkWords(int c) { return kFirst << c; }
  static uint64_t ChunkEnd(int c) { return (kFirst << (c + 1)) - kFirst; }
  std::array<std::atomic<uint32_t*>, kChunks> chunks_{};
  mutable std::mutex mu_;
  uint64_t next_ = 0;
  std::vector<std::vector<uint32_t>> free_;  // by size in words
};

class HnswIndex::Impl {
 public:
  explicit Impl(const HnswOptions& o) : opt_(o) {
    dim_ = o.dim;
    M_ = o.M;
    maxM0_ = 2 * o.M;
    sq8_ = o.storage == HnswStorage::kSq8;
    l2_ = o.metric == Metric::kL2;
    level_mult_ = 1.0 / std::log(static_cast<double>(M_));
    data_bytes_ = sq8_ ? dim_ : dim_ * sizeof(float);
    id_off_ = (data_bytes_ + 7) & ~size_t{7};
    links_off_ = id_off_ + 8;
    // Float slots are padded to whole cache lines (a 128-d vector then starts and
    // ends on line boundaries); SQ8 slots only keep the links 4-byte aligned (the id
    // is read with memcpy), since there padding would be a large share of the memory
    // the codes are meant to save. Files may carry another (larger) slot size: see Open.
    const size_t align = sq8_ ? 4 : 64;
    slot_bytes_ = (links_off_ + 4 * (1 + maxM0_) + align - 1) & ~(align - 1);
    upper_stride_ = 1 + M_;
    const KernelTable& k = Kernels();
    kl2_ = k.l2sq;
    kdot_ = k.dot;
    rng_ = std::make_unique<SplitMix64>(o.seed);
    locks_ = std::make_unique<SpinLock[]>(kLockStripes);
  }
  ~Impl() {
    FreeStorage();
    if (vec_fd_ >= 0) ::close(vec_fd_);
  }

  absl::Status Init() {
    if (sq8_) {
      CAIRN_ASSIGN_OR_RETURN(vec_fd_, OpenVectorFile(opt_.sq8_vector_path));
    }
    Grow(std::max<size_t>(opt_.initial_capacity, 16));
    return absl::OkStatus();
  }

  // ---------------------------------------------------------------- storage
  char* SlotPtr(uint32_t s) const { return block_ + size_t{s} * slot_bytes_; }
  const float* FData(uint32_t s) const { return reinterpret_cast<const float*>(SlotPtr(s)); }
  const uint8_t* Code(uint32_t s) const { return reinterpret_cast<const uint8_t*>(SlotPtr(s)); }
  uint64_t IdOf(uint32_t s) const {
    uint64_t id;
    std::memcpy(&id, SlotPtr(s) + id_off_, 8);
    return id;
  }
  uint32_t* Links(uint32_t s, int level) const {
    if (level == 0) return reinterpret_cast<uint32_t*>(SlotPtr(s) + links_off_);
    return upper_.At(upper_at_[s]) + size_t(level - 1) * upper_stride_;
  }
  size_t MaxLinks(int level) const { return level == 0 ? maxM0_ : M_; }
  uint8_t State(uint32_t s) const { return state_[s].load(std::memory_order_acquire); }

  void FreeStorage() {
    FreeBlock();
  }

  // The level-0 block is its own anonymous mapping, with transparent huge pages
  // requested when large: searches hop randomly across it, and with 4 KiB pages
  // nearly every neighbour visit is also a TLB miss (hnswlib uses plain malloc).
  // Fresh pages are zero.
  char* AllocBlock(size_t slots, size_t* bytes_out) const {
    const size_t bytes = (std::max<size_t>(1, slots * slot_bytes_) + 4095) & ~size_t{4095};
    void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
#ifdef MADV_HUGEPAGE
    if (bytes >= (size_t{4} << 20)) ::madvise(p, bytes, MADV_HUGEPAGE);
#endif
    *bytes_out = bytes;
    return static_cast<char*>(p);
  }
  void FreeBlock() {
    if (block_) ::munmap(block_, block_bytes_);
    block_ = nullptr;
    block_bytes_ = 0;
  }

  // Exclusive lock held (or construction).
  void Grow(size_t new_cap) {
    new_cap = std::min<size_t>(new_cap, kMaxSlots);
    size_t nbytes = 0;
    char* nb = AllocBlock(new_cap, &nbytes);
    if (block_) std::memcpy(nb, block_, num_slots_ * slot_bytes_);
    FreeBlock();
    block_ = nb;
    block_bytes_ = nbytes;
    upper_at_.resize(new_cap, UpperArena::kNil);
    levels_.resize(new_cap, 0);
    auto ns = std::make_unique<std::atomic<uint8_t>[]>(new_cap);
    for (size_t i = 0; i < new_cap; ++i)
      ns[i].store(i < capacity_ ? state_[i].load() : uint8_t{kFree}, std::memory_order_relaxed);
    state_ = std::move(ns);
    capacity_ = new_cap;
    slot_set_.Reserve(new_cap);  // the map grows with the slots, never during inserts
  }

  // ---------------------------------------------------------------- distances
  // Query-to-node distance: `q` is the (normalized) float query, `sq` its SQ8 form.
  float Dist(const float* q, const Sq8Quantizer::Query& sq, uint32_t s) const {
    if (sq8_) return quant_->Distance(sq, Code(s));
    const float* v = FData(s);
    return l2_ ? kl2_(q, v, dim_) : 1.0f - kdot_(q, v, dim_);
  }
  float FloatDist(const float* a, const float* b) const {
    return l2_ ? kl2_(a, b, dim_) : 1.0f - kdot_(a, b, dim_);
  }
  // A node's vector as floats: in place for float storage, decoded into buf for SQ8.
  const float* VecOf(uint32_t s, float* buf) const {
    if (!sq8_) return FData(s);
    quant_->Decode(Code(s), buf);
    return buf;
  }
  void PrepareQuery(const float* q, Sq8Quantizer::Query* sq) const {
    if (sq8_) quant_->PrepareQuery(q, opt_.metric, sq);
  }
  bool ReadFull(uint32_t s, float* out) const {
    return PreadAll(vec_fd_, out, dim_ * sizeof(float), off_t(s) * off_t(dim_ * sizeof(float)));
  }

  // ---------------------------------------------------------------- search pieces
  uint32_t GreedyDescend(const float* q, const Sq8Quantizer::Query& sq, uint32_t ep, int from,
                         int to) const {
    float best = Dist(q, sq, ep);
    for (int l = from; l > to; --l) {
      bool changed = true;
      while (changed) {
        changed = false;
        const uint32_t* lk = Links(ep, l);
        uint32_t n = std::min<uint32_t>(LoadA(lk[0]), uint32_t(M_));
        for (uint32_t j = 0; j < n; ++j) {
          uint32_t c = LoadA(lk[1 + j]);
          float d = Dist(q, sq, c);
          if (d < best) {
            best = d;
            ep = c;
            changed = true;
          }
        }
      }
    }
    return ep;
  }

  // Level-0 beam search with a sorted pool; no filter, no removed nodes. Result in
  // sc.pool[0..n) ascending (slot bits only).
  size_t SearchL0Fast(const float* q, const Sq8Quantizer::Query& sq, uint32_t ep, size_t ef,
                      Scratch& sc) const {
    Visited& vis = sc.visited;
    vis.Reset(capacity_);
    sc.pool.resize(ef + 1);
    Cand* pool = sc.pool.data();
    size_t n = 1;
    pool[0] = {Dist(q, sq, ep), ep};
    vis.TestSet(ep);
    sc.fresh.resize(maxM0_);
    uint32_t* fresh = sc.fresh.data();
    const size_t lines = (data_bytes_ + 63) / 64;
    size_t cur = 0;
    while (cur < n) {
      const uint32_t s = pool[cur].s;
      pool[cur].s = s | kExpanded;
      const uint32_t* lk = Links(s, 0);
      const uint32_t cnt = std::min<uint32_t>(LoadA(lk[0]), uint32_t(maxM0_));
      size_t nf = 0;
      for (uint32_t j = 0; j < cnt; ++j) {
        const uint32_t c = LoadA(lk[1 + j]);
        if (vis.TestSet(c)) continue;
        fresh[nf++] = c;
        Prefetch(SlotPtr(c));
      }
      size_t lowest = n;
      for (size_t j = 0; j < nf; ++j) {
        if (j + 1 < nf) {
          const char* p = SlotPtr(fresh[j + 1]);
          for (size_t L = 1; L < lines; ++L) Prefetch(p + 64 * L);
        }
        const uint32_t c = fresh[j];
        const float d = Dist(q, sq, c);
        if (n == ef && d >= pool[n - 1].d) continue;
        // insert sorted
        size_t lo = 0, hi = n;
        while (lo < hi) {
          size_t mid = (lo + hi) >> 1;
          if (pool[mid].d <= d) lo = mid + 1; else hi = mid;
        }
        const size_t moved = (n == ef ? n - 1 : n) - lo;
        std::memmove(pool + lo + 1, pool + lo, moved * sizeof(Cand));
        pool[lo] = {d, c};
        if (n < ef) ++n;
        if (lo < lowest) lowest = lo;
      }
      if (lowest <= cur) {
        cur = lowest;
      } else {
        ++cur;
      }
      while (cur < n && (pool[cur].s & kExpanded)) ++cur;
    }
    for (size_t i = 0; i < n; ++i) pool[i].s &= ~kExpanded;
    return n;
  }

  // General search of one level: `allowed` decides which nodes may enter the result
  // (others still navigate). Result in *out ascending, at most ef entries.
  template <typename Allowed>
  void SearchLayer(const float* q, const Sq8Quantizer::Query& sq, uint32_t ep, int level,
                   size_t ef, const Allowed& allowed, Scratch& sc, std::vector<Cand>* out) const {
    Visited& vis = sc.visited;
    vis.Reset(capacity_);
    std::priority_queue<Cand, std::vector<Cand>, CandGreater> cand;  // closest first
    std::priority_queue<Cand, std::vector<Cand>, CandLess> top;      // farthest first
    const float d0 = Dist(q, sq, ep);
    vis.TestSet(ep);
    cand.push({d0, ep});
    if (allowed(ep)) top.push({d0, ep});
    const size_t maxl = MaxLinks(level);
    while (!cand.empty()) {
      const Cand c = cand.top();
      if (top.size() >= ef && c.d > top.top().d) break;
      cand.pop();
      const uint32_t* lk = Links(c.s, level);
      const uint32_t cnt = std::min<uint32_t>(LoadA(lk[0]), uint32_t(maxl));
      for (uint32_t j = 0; j < cnt; ++j) {
        const uint32_t x = LoadA(lk[1 + j]);
        if (j + 1 < cnt) Prefetch(SlotPtr(LoadA(lk[2 + j])));
        if (vis.TestSet(x)) continue;
        const float d = Dist(q, sq, x);
        if (top.size() < ef || d < top.top().d) {
          cand.push({d, x});
          if (allowed(x)) {
            top.push({d, x});
            if (top.size() > ef) top.pop();
          }
        }
      }
    }
    out->resize(top.size());
    for (size_t i = top.size(); i-- > 0;) {
      (*out)[i] = top.top();
      top.pop();
    }
  }

  // HNSW neighbour selection heuristic: keep a candidate only if it is closer to the
  // base than to every already kept one. `c` ascending by distance to the base.
  void SelectHeuristic(std::vector<Cand>& c, size_t m, Scratch& sc, std::vector<Cand>* out) const {
    out->clear();
    if (c.size() <= m) {
      *out = c;
      return;
    }
    if (sq8_) sc.sel.resize(m * dim_);
    sc.vbuf.resize(dim_);
    std::vector<const float*> kept;
    kept.reserve(m);
    for (const Cand& x : c) {
      if (out->size() >= m) break;
      const float* xv = VecOf(x.s, sc.vbuf.data());
      bool good = true;
      for (const float* kv : kept) {
        if (FloatDist(xv, kv) < x.d) {
          good = false;
          break;
        }
      }
      if (good) {
        if (sq8_) {
          float* dst = sc.sel.data() + out->size() * dim_;
          std::memcpy(dst, xv, dim_ * sizeof(float));
          kept.push_back(dst);
        } else {
          kept.push_back(xv);
        }
        out->push_back(x);
      }
    }
  }

  void WriteLinks(uint32_t s, int level, const std::vector<Cand>& nb) {
    uint32_t* lk = Links(s, level);
    for (size_t j = 0; j < nb.size(); ++j) StoreR(lk[1 + j], nb[j].s);
    StoreR(lk[0], uint32_t(nb.size()));
  }

  // Adds `s` (at distance d) to `n`'s list at `level`, pruning when full. Locks n.
  void AddLink(uint32_t n, uint32_t s, int level, Scratch& sc) {
    std::lock_guard<SpinLock> g(locks_[n & (kLockStripes - 1)]);
    uint32_t* lk = Links(n, level);
    const uint32_t cnt = LoadA(lk[0]);
    const size_t maxl = MaxLinks(level);
    for (uint32_t j = 0; j < cnt; ++j)
      if (LoadA(lk[1 + j]) == s) return;
    if (cnt < maxl) {
      StoreR(lk[1 + cnt], s);
      StoreR(lk[0], cnt + 1);
      return;
    }
    sc.vbuf.resize(dim_);
    std::vector<float> nvec(dim_);
    const float* nv = VecOf(n, nvec.data());
    std::vector<Cand> c;
    c.reserve(cnt + 1);
    for (uint32_t j = 0; j < cnt; ++j) {
      uint32_t x = LoadA(lk[1 + j]);
      c.push_back({FloatDist(nv, VecOf(x, sc.vbuf.data())), x});
    }
    c.push_back({FloatDist(nv, VecOf(s, sc.vbuf.data())), s});
    std::sort(c.begin(), c.end(), CandLess());
    std::vector<Cand> kept;
    SelectHeuristic(c, maxl, sc, &kept);
    WriteLinks(n, level, kept);
  }

  // ---------------------------------------------------------------- insert
  int RandomLevel() {
    // called under map_mu_
    double u = rng_->NextDouble();
    if (u <= 0) u = 1e-12;
    int l = static_cast<int>(-std::log(u) * level_mult_);
    return std::min(l, kMaxLevel);
  }

  // Links slot s (data, id, level already written) into the graph. Shared lock held.
  void Link(uint32_t s, const float* v, Scratch& sc) {
    const int level = levels_[s];
    std::unique_lock<std::mutex> entry_lock(entry_mu_, std::defer_lock);
    if (level > max_level_.load(std::memory_order_acquire)) entry_lock.lock();
    uint32_t ep = entry_.load(std::memory_order_acquire);
    const int maxl = ep == kNone ? -1 : std::min<int>(max_level_.load(std::memory_order_acquire),
                                                     levels_[ep]);
    if (ep == kNone) {
      if (!entry_lock.owns_lock()) entry_lock.lock();
      ep = entry_.load();
      if (ep == kNone) {
        entry_.store(s, std::memory_order_release);
        max_level_.store(level, std::memory_order_release);
        return;
      }
    }
    Sq8Quantizer::Query& sq = sc.sq;
    PrepareQuery(v, &sq);
    if (level < maxl) ep = GreedyDescend(v, sq, ep, maxl, level);
    const bool removed = pending_count_.load(std::memory_order_acquire) > 0;
    auto usable = [&](uint32_t x) { return x != s && State(x) != kRemoved; };
    std::vector<Cand> found, kept;
    for (int l = std::min(level, maxl); l >= 0; --l) {
      if (l == 0 && !removed) {
        size_t n = SearchL0Fast(v, sq, ep, opt_.ef_construction, sc);
        found.assign(sc.pool.begin(), sc.pool.begin() + n);
        found.erase(std::remove_if(found.begin(), found.end(),
                                   [&](const Cand& c) { return c.s == s; }),
                    found.end());
      } else {
        SearchLayer(v, sq, ep, l, opt_.ef_construction, usable, sc, &found);
      }
      if (found.empty()) continue;
      SelectHeuristic(found, M_, sc, &kept);
      {
        std::lock_guard<SpinLock> g(locks_[s & (kLockStripes - 1)]);
        // Another insert may already have linked itself into s's list (it found s
        // through the entry of a higher level): merge rather than overwrite, or its
        // only link to the graph could be lost.
        const uint32_t* lk = Links(s, l);
        const uint32_t have = LoadA(lk[0]);
        if (have > 0) {
          std::vector<Cand> merged = kept;
          for (uint32_t j = 0; j < have; ++j) {
            const uint32_t x = LoadA(lk[1 + j]);
            bool dup = false;
            for (const Cand& c : kept) dup |= c.s == x;
            if (!dup) merged.push_back({Dist(v, sq, x), x});
          }
          std::sort(merged.begin(), merged.end(), CandLess());
          if (merged.size() > MaxLinks(l)) {
            SelectHeuristic(merged, MaxLinks(l), sc, &kept);
          } else {
            kept = merged;
          }
        }
        WriteLinks(s, l, kept);
      }
      for (const Cand& c : kept) AddLink(c.s, s, l, sc);
      ep = found[0].s;
    }
    if (level > maxl) {
      entry_.store(s, std::memory_order_release);
      max_level_.store(level, std::memory_order_release);
    }
  }

  absl::Status CheckVector(std::span<const float> v) const {
    if (v.size() != dim_)
      return absl::InvalidArgumentError(
          fmt::format("hnsw: vector has {} values; index has dimension {}", v.size(), dim_));
    for (size_t i = 0; i < dim_; ++i)
      if (!std::isfinite(v[i]))
        return absl::InvalidArgumentError(fmt::format("hnsw: value {} is not finite", i));
    return absl::OkStatus();
  }

  // `v` is validated and normalized.
  absl::Status Insert(uint64_t id, const float* v) {
    Scratch& sc = TlsScratch();
    for (;;) {
      std::shared_lock<StorageMutex> sh(storage_mu_);
      if (sq8_ && !quant_)
        return absl::FailedPreconditionError(
            "hnsw: SQ8 index is not trained; call Train(sample) or AddBatch first");
      uint32_t s = kNone;
      bool exists = false, full = false;
      int level = 0;
      {
        std::lock_guard<std::mutex> g(map_mu_);
        if (FindSlot(id) != kNone) {
          exists = true;
        } else if (!free_.empty()) {
          s = free_.back();
          free_.pop_back();
        } else if (num_slots_ < capacity_) {
          s = uint32_t(num_slots_);
          num_slots_ = num_slots_ + 1;
        } else {
          full = true;
        }
        if (s != kNone) {
          std::memcpy(SlotPtr(s) + id_off_, &id, 8);  // the map keys slots by this id
          slot_set_.Insert(s);
          level = RandomLevel();
          state_[s].store(kInserting, std::memory_order_relaxed);
        }
      }
      if (exists) {
        sh.unlock();
        std::unique_lock<StorageMutex> ex(storage_mu_);
        const uint32_t old = FindSlot(id);
        if (old != kNone) RemoveSlot(old);
        continue;
      }
      if (full) {
        sh.unlock();
        std::unique_lock<StorageMutex> ex(storage_mu_);
        if (capacity_ >= kMaxSlots) return absl::ResourceExhaustedError("hnsw: index is full");
        if (num_slots_ >= capacity_ && free_.empty()) {
          // Reuse removed slots before growing.
          if (pending_.size() > 0) {
            Sweep();
          } else {
            Grow(capacity_ * 2);
          }
        }
        continue;
      }
      char* p = SlotPtr(s);
      if (sq8_) {
        quant_->Encode(v, reinterpret_cast<uint8_t*>(p));
        if (!PwriteAll(vec_fd_, v, dim_ * sizeof(float), off_t(s) * off_t(dim_ * sizeof(float)))) {
          std::lock_guard<std::mutex> g(map_mu_);
          slot_set_.Erase(s);
          state_[s].store(kFree);
          free_.push_back(s);
          return absl::InternalError(
              fmt::format("hnsw: writing the SQ8 vector file failed: {}", strerror(errno)));
        }
      } else {
        std::memcpy(p, v, dim_ * sizeof(float));
      }
      StoreR(*reinterpret_cast<uint32_t*>(p + links_off_), 0);
      upper_.Free(upper_at_[s], UpperWords(s));  // a slot's old lists (normally none left)
      upper_at_[s] = UpperArena::kNil;
      levels_[s] = static_cast<uint8_t>(level);
      if (level > 0) {
        upper_at_[s] = upper_.Alloc(UpperWords(s));  // zeroed: every level starts with no links
        if (upper_at_[s] == UpperArena::kNil) {
          levels_[s] = 0;
          std::lock_guard<std::mutex> g(map_mu_);
          slot_set_.Erase(s);
          state_[s].store(kFree);
          free_.push_back(s);
          return absl::ResourceExhaustedError("hnsw: no room for more upper-level links");
        }
      }
      Link(s, v, sc);
      state_[s].store(kLive, std::memory_order_release);
      live_.fetch_add(1, std::memory_order_relaxed);
      return absl::OkStatus();
    }
  }

  // ---------------------------------------------------------------- remove
  bool IsLive(uint32_t s) const {
    const uint8_t st = state_[s].load(std::memory_order_relaxed);
    return st == kLive || st == kInserting;
  }

  // Rebuilds n's list at `level` without its dead links. Every live link n had is
  // kept (dropping one could take away some node's only way in); the freed places
  // are filled from the dead nodes' own links, chosen by the usual heuristic and
  // topped up with the closest so that repaired nodes keep half their degree.
  // Exclusive lock held.
  void Repair(uint32_t n, int level, Scratch& sc) {
    uint32_t* lk = Links(n, level);
    const uint32_t cnt = lk[0];
    bool any_dead = false;
    for (uint32_t j = 0; j < cnt; ++j)
      if (!IsLive(lk[1 + j])) any_dead = true;
    if (!any_dead) return;
    std::vector<uint32_t> live_ids, cand_ids;
    for (uint32_t j = 0; j < cnt; ++j) {
      const uint32_t x = lk[1 + j];
      if (IsLive(x)) {
        live_ids.push_back(x);
        cand_ids.push_back(x);
      } else if (levels_[x] >= level) {
        const uint32_t* xl = Links(x, level);
        for (uint32_t k = 0; k < xl[0]; ++k) {
          const uint32_t y = xl[1 + k];
          if (y != n && IsLive(y)) cand_ids.push_back(y);
        }
      }
    }
    std::sort(cand_ids.begin(), cand_ids.end());
    cand_ids.erase(std::unique(cand_ids.begin(), cand_ids.end()), cand_ids.end());
    std::vector<float> nvec(dim_);
    sc.vbuf.resize(dim_);
    const float* nv = VecOf(n, nvec.data());
    std::vector<Cand> c;
    for (uint32_t x : cand_ids) c.push_back({FloatDist(nv, VecOf(x, sc.vbuf.data())), x});
    std::sort(c.begin(), c.end(), CandLess());
    std::vector<Cand> selected;
    const size_t maxl = MaxLinks(level);
    SelectHeuristic(c, maxl, sc, &selected);
    auto has = [](const std::vector<Cand>& v, uint32_t x) {
      for (const Cand& k : v)
        if (k.s == x) return true;
      return false;
    };
    std::vector<Cand> kept;
    for (const Cand& x : c)
      if (std::find(live_ids.begin(), live_ids.end(), x.s) != live_ids.end()) kept.push_back(x);
    for (const Cand& x : selected)
      if (kept.size() < maxl && !has(kept, x.s)) kept.push_back(x);
    for (const Cand& x : c) {
      if (kept.size() >= maxl / 2) break;
      if (!has(kept, x.s)) kept.push_back(x);
    }
    std::sort(kept.begin(), kept.end(), CandLess());
    WriteLinks(n, level, kept);
  }

  // Makes every live node reachable again at level 0 from the entry point after a
  // sweep dropped the links into removed nodes: a node (or a whole cluster) whose
  // ways in all went through removed nodes is linked from its closest reachable
  // node, into a free place or in place of a link whose target has another way in.
  // Exclusive lock held; O(N * M) per sweep.
  void Reconnect() {
    const uint32_t ep = entry_.load();
    if (ep == kNone) return;
    Scratch& sc = TlsScratch();
    std::vector<uint8_t> seen(num_slots_, 0);
    std::vector<uint32_t> indeg(num_slots_, 0);
    for (uint32_t n = 0; n < num_slots_; ++n) {
      if (!IsLive(n)) continue;
      const uint32_t* lk = Links(n, 0);
      for (uint32_t j = 0; j < lk[0]; ++j) ++indeg[lk[1 + j]];
    }
    std::vector<uint32_t> stack;
    auto flood = [&](uint32_t from) {
      seen[from] = 1;
      stack.push_back(from);
      while (!stack.empty()) {
        const uint32_t s = stack.back();
        stack.pop_back();
        const uint32_t* lk = Links(s, 0);
        for (uint32_t j = 0; j < lk[0]; ++j) {
          const uint32_t x = lk[1 + j];
          if (!seen[x] && IsLive(x)) {
            seen[x] = 1;
            stack.push_back(x);
          }
        }
      }
    };
    flood(ep);
    const size_t maxl = maxM0_;
    std::vector<float> uvec(dim_);
    std::vector<Cand> found;
    for (uint32_t u = 0; u < num_slots_; ++u) {
      if (!IsLive(u) || seen[u]) continue;
      const float* uv = VecOf(u, uvec.data());
      PrepareQuery(uv, &sc.sq);
      uint32_t e = GreedyDescend(uv, sc.sq, ep, std::min<int>(max_level_.load(), levels_[ep]), 0);
      auto reachable = [&](uint32_t x) { return x != u && seen[x] && IsLive(x); };
      if (!reachable(e)) e = ep;
      SearchLayer(uv, sc.sq, e, 0, std::max<size_t>(opt_.ef_construction, 16), reachable, sc, &found);
      bool linked = false;
      for (const Cand& c : found) {  // closest first: a free place
        uint32_t* lk = Links(c.s, 0);
        if (lk[0] < maxl) {
          lk[1 + lk[0]] = u;
          ++lk[0];
          linked = true;
          break;
        }
      }
      for (size_t i = 0; !linked && i < found.size(); ++i) {  // or a link with another way in
        uint32_t* lk = Links(found[i].s, 0);
        for (uint32_t j = lk[0]; j-- > 0;) {
          const uint32_t w = lk[1 + j];
          if (indeg[w] >= 2 && seen[w]) {
            --indeg[w];
            lk[1 + j] = u;
            linked = true;
            break;
          }
        }
      }
      if (!linked) continue;
      ++indeg[u];
      flood(u);
    }
  }

  void FixEntry() {
    uint32_t ep = entry_.load();
    if (ep != kNone && IsLive(ep)) return;
    uint32_t best = kNone;
    int bl = -1;
    for (uint32_t s = 0; s < num_slots_; ++s)
      if (IsLive(s) && levels_[s] > bl) {
        bl = levels_[s];
        best = s;
      }
    entry_.store(best);
    max_level_.store(best == kNone ? -1 : bl);
  }

  // Exclusive lock held.
  void RemoveSlot(uint32_t x) {
    Scratch& sc = TlsScratch();
    slot_set_.Erase(x);
    state_[x].store(kRemoved);
    live_.fetch_sub(1);
    for (int l = 0; l <= levels_[x]; ++l) {
      const uint32_t* lk = Links(x, l);
      for (uint32_t j = 0; j < lk[0]; ++j) {
        const uint32_t n = lk[1 + j];
        if (IsLive(n)) Repair(n, l, sc);
      }
    }
    FixEntry();
    pending_.push_back(x);
    pending_count_.store(pending_.size());
    if (pending_.size() >= std::max<size_t>(64, live_.load() / 16)) Sweep();
  }

  // Drops every link into removed nodes and frees their slots. Exclusive lock held.
  void Sweep() {
    if (pending_.empty()) return;
    Scratch& sc = TlsScratch();
    for (uint32_t n = 0; n < num_slots_; ++n) {
      if (!IsLive(n)) continue;
      for (int l = 0; l <= levels_[n]; ++l) Repair(n, l, sc);
    }
    for (uint32_t x : pending_) {
      state_[x].store(kFree);
      upper_.Free(upper_at_[x], UpperWords(x));
      upper_at_[x] = UpperArena::kNil;
      levels_[x] = 0;
      free_.push_back(x);
    }
    pending_.clear();
    pending_count_.store(0);
    Reconnect();
  }

  // ---------------------------------------------------------------- search
  absl::StatusOr<std::vector<Neighbor>> Search(std::span<const float> query,
                                               const SearchParams& p) const {
    CAIRN_RETURN_IF_ERROR(CheckVector(query));
    Scratch& sc = TlsScratch();
    sc.qbuf.assign(query.begin(), query.end());
    if (opt_.metric == Metric::kCosine && !Normalize(sc.qbuf.data(), dim_))
      return absl::InvalidArgumentError("hnsw: a zero query cannot be searched with cosine");
    const float* q = sc.qbuf.data();
    std::vector<Neighbor> res;
    if (p.k == 0) return res;
    std::shared_lock<StorageMutex> sh(storage_mu_);
    uint32_t ep = entry_.load(std::memory_order_acquire);
    if (ep == kNone) return res;
    const size_t ef = std::max(p.ef ? p.ef : opt_.ef_search, p.k);
    PrepareQuery(q, &sc.sq);

    std::vector<Cand> found;
    const Filter* f = p.filter;
    bool exact = false;
    if (f) {
      const double sel = f->EstimatedSelectivity();
      const double nlive = double(live_.load());
      const double matches = sel * nlive;
      const double graph_cost = sel > 0 ? kGraphVisitsPerEf * double(ef) / sel : 1e300;
      std::vector<uint64_t> ids;
      const bool listed =
          sel >= 0 && (matches < kExactMaxMatches || matches < graph_cost) && f->ListAllowed(&ids);
      if (listed || (sel >= 0 && matches < kExactMaxMatches && sel < kScanMaxSelectivity)) {
        if (listed) {
          ExactAmongIds(q, sc, ids, &found);
        } else {
          for (uint32_t s = 0; s < num_slots_; ++s) {
            if (State(s) != kLive || !f->Allows(IdOf(s))) continue;
            found.push_back({Dist(q, sc.sq, s), s});
          }
        }
        exact = true;
      }
    }
    if (!exact) {
      const int maxl = std::min<int>(max_level_.load(std::memory_order_acquire), levels_[ep]);
      ep = GreedyDescend(q, sc.sq, ep, maxl, 0);
      if (!f && pending_count_.load(std::memory_order_acquire) == 0) {
        const size_t n = SearchL0Fast(q, sc.sq, ep, ef, sc);
        found.assign(sc.pool.begin(), sc.pool.begin() + n);
      } else {
        auto allowed = [&](uint32_t s) {
          const uint8_t st = State(s);
          if (st != kLive && st != kInserting) return false;
          return !f || f->Allows(IdOf(s));
        };
        SearchLayer(q, sc.sq, ep, 0, ef, allowed, sc, &found);
      }
    }
    // SQ8: each re-ranked candidate costs one pread (~1-2 us), so re-rank only a
    // small multiple of k; measured on 128-d clustered data, 2k candidates keep
    // recall@10 within 0.002 of the float index at ef >= 32.
    const size_t keep =
        sq8_ ? std::max(p.k, opt_.rerank ? opt_.rerank : std::max<size_t>(2 * p.k, 10)) : p.k;
    if (found.size() > keep) {
      std::nth_element(found.begin(), found.begin() + keep, found.end(), CandLess());
      found.resize(keep);
    }
    if (sq8_) {
      sc.vbuf.resize(dim_);
      for (Cand& c : found) {
        if (!ReadFull(c.s, sc.vbuf.data()))
          return absl::InternalError(
              fmt::format("hnsw: reading the SQ8 vector file failed: {}", strerror(errno)));
        c.d = FloatDist(q, sc.vbuf.data());
      }
    }
    res.reserve(found.size());
    for (const Cand& c : found) res.push_back({IdOf(c.s), c.d});
    std::sort(res.begin(), res.end(), [](const Neighbor& a, const Neighbor& b) {
      return a.distance < b.distance || (a.distance == b.distance && a.id < b.id);
    });
    if (res.size() > p.k) res.resize(p.k);
    return res;
  }

  // Exact distances to the live slots of `ids`. Two passes, since each id is two
  // dependent cache misses (hash group, then the slot holding the id) and each vector
  // another: ids -> slots with the hash groups prefetched a few ids ahead, then the
  // slots in address order with their vectors prefetched, so the misses overlap and
  // the hardware prefetcher sees a mostly ascending walk.
  void ExactAmongIds(const float* q, Scratch& sc, const std::vector<uint64_t>& ids,
                     std::vector<Cand>* found) const {
    constexpr size_t kAhead = 8;
    std::vector<uint32_t>& slots = sc.fresh;
    slots.clear();
    slots.reserve(ids.size());
    {
      std::lock_guard<std::mutex> g(map_mu_);
      for (size_t i = 0; i < ids.size(); ++i) {
        if (i + kAhead < ids.size()) slot_set_.Prefetch(ids[i + kAhead]);
        const uint32_t s = FindSlot(ids[i]);
        if (s != kNone && State(s) == kLive) slots.push_back(s);
      }
    }
    std::sort(slots.begin(), slots.end());
    const size_t lines = (data_bytes_ + 63) / 64;
    found->reserve(found->size() + slots.size());
    for (size_t i = 0; i < slots.size(); ++i) {
      if (i + kAhead < slots.size()) {
        const char* p = SlotPtr(slots[i + kAhead]);
        for (size_t L = 0; L < lines; ++L) Prefetch(p + 64 * L);
      }
      found->push_back({Dist(q, sc.sq, slots[i]), slots[i]});
    }
  }

  // ---------------------------------------------------------------- misc
  size_t CountReachable() const {
    std::shared_lock<StorageMutex> sh(storage_mu_);
    uint32_t ep = entry_.load();
    if (ep == kNone) return 0;
    std::vector<uint8_t> seen(num_slots_, 0);
    std::vector<uint32_t> stack{ep};
    seen[ep] = 1;
    size_t live = 0;
    while (!stack.empty()) {
      uint32_t s = stack.back();
      stack.pop_back();
      if (IsLive(s)) ++live;
      const uint32_t* lk = Links(s, 0);
      for (uint32_t j = 0; j < LoadA(lk[0]); ++j) {
        uint32_t x = LoadA(lk[1 + j]);
        // Searches pass through removed nodes that are not swept yet; so does this.
        if (!seen[x] && State(x) != kFree) {
          seen[x] = 1;
          stack.push_back(x);
        }
      }
    }
    return live;
  }

  size_t MemoryBytes() const {
    std::shared_lock<StorageMutex> sh(storage_mu_);
    size_t b = capacity_ * slot_bytes_ + capacity_ * (sizeof(uint32_t) + 2) + upper_.Bytes();
    std::lock_guard<std::mutex> g(map_mu_);
    b += slot_set_.Bytes() + kLockStripes * sizeof(SpinLock);
    return b;
  }

  // Exclusive lock held. Renumbers live nodes densely in their current order.
  absl::Status CompactLocked() {
    Sweep();
    Scratch& sc = TlsScratch();
    std::vector<uint32_t> remap(num_slots_, kNone);
    uint32_t n = 0;
    for (uint32_t s = 0; s < num_slots_; ++s)
      if (IsLive(s)) remap[s] = n++;
    const size_t new_cap = std::max<size_t>(n + n / 8, 16);
    size_t nbytes = 0;
    char* nb = AllocBlock(new_cap, &nbytes);
    std::vector<uint32_t> nup(new_cap, UpperArena::kNil);
    std::vector<uint8_t> nlev(new_cap, 0);
    std::vector<float> buf(dim_);
    for (uint32_t s = 0; s < num_slots_; ++s) {
      const uint32_t t = remap[s];
      if (t == kNone) {
        upper_.Free(upper_at_[s], UpperWords(s));
        continue;
      }
      std::memcpy(nb + size_t(t) * slot_bytes_, SlotPtr(s), slot_bytes_);
      nup[t] = upper_at_[s];
      nlev[t] = levels_[s];
      if (sq8_ && t != s) {
        if (!ReadFull(s, buf.data()) ||
            !PwriteAll(vec_fd_, buf.data(), dim_ * 4, off_t(t) * off_t(dim_ * 4)))
          return absl::InternalError("hnsw: rewriting the SQ8 vector file failed");
      }
    }
    const size_t old_slots = num_slots_;
    FreeBlock();
    block_ = nb;
    block_bytes_ = nbytes;
    upper_at_ = std::move(nup);
    levels_ = std::move(nlev);
    state_ = std::make_unique<std::atomic<uint8_t>[]>(new_cap);
    for (size_t i = 0; i < new_cap; ++i) state_[i].store(i < n ? kLive : kFree);
    capacity_ = new_cap;
    num_slots_ = n;
    free_.clear();
    for (uint32_t t = 0; t < n; ++t) {
      for (int l = 0; l <= levels_[t]; ++l) {
        uint32_t* lk = Links(t, l);
        for (uint32_t j = 0; j < lk[0]; ++j) lk[1 + j] = remap[lk[1 + j]];
      }
    }
    slot_set_.Clear();
    for (uint32_t t = 0; t < n; ++t) slot_set_.Insert(t);
    uint32_t ep = entry_.load();
    entry_.store(ep == kNone || ep >= old_slots ? kNone : remap[ep]);
    FixEntry();
    if (sq8_ && ::ftruncate(vec_fd_, off_t(n) * off_t(dim_ * 4)) != 0)
      return absl::InternalError("hnsw: truncating the SQ8 vector file failed");
    Reattach(sc);
    return absl::OkStatus();
  }

  // Links every live node unreachable from the entry point (over level 0) to its
  // nearest reachable node, in both directions. Exclusive lock held.
  void Reattach(Scratch& sc) {
    uint32_t ep = entry_.load();
    if (ep == kNone) return;
    for (int round = 0; round < 4; ++round) {
      std::vector<uint8_t> seen(num_slots_, 0);
      std::vector<uint32_t> stack{ep};
      seen[ep] = 1;
      while (!stack.empty()) {
        uint32_t s = stack.back();
        stack.pop_back();
        const uint32_t* lk = Links(s, 0);
        for (uint32_t j = 0; j < lk[0]; ++j)
          if (!seen[lk[1 + j]]) {
            seen[lk[1 + j]] = 1;
            stack.push_back(lk[1 + j]);
          }
      }
      bool all = true;
      std::vector<float> v(dim_);
      std::vector<Cand> found;
      for (uint32_t s = 0; s < num_slots_; ++s) {
        if (seen[s] || !IsLive(s)) continue;
        all = false;
        const float* sv = VecOf(s, v.data());
        std::vector<float> vcopy(sv, sv + dim_);
        PrepareQuery(vcopy.data(), &sc.sq);
        uint32_t e = GreedyDescend(vcopy.data(), sc.sq, ep, max_level_.load(), 0);
        auto allowed = [&](uint32_t x) { return x != s && seen[x]; };
        SearchLayer(vcopy.data(), sc.sq, e, 0, 16, allowed, sc, &found);
        if (found.empty()) continue;
        const uint32_t t = found[0].s;
        // t -> s: replace t's worst link when full.
        uint32_t* tl = Links(t, 0);
        if (tl[0] < maxM0_) {
          tl[1 + tl[0]] = s;
          tl[0]++;
        } else {
          tl[tl[0]] = s;
        }
        uint32_t* sl = Links(s, 0);
        if (sl[0] < maxM0_) {
          sl[1 + sl[0]] = t;
          sl[0]++;
        }
        seen[s] = 1;
      }
      if (all) break;
    }
  }

  // ---------------------------------------------------------------- persistence
  absl::Status Save(const std::string& path) const;
  static absl::StatusOr<std::unique_ptr<Impl>> Decode(std::string_view bytes, int src_fd,
                                                       uint64_t src_offset);

  HnswOptions opt_;
  size_t dim_ = 0, M_ = 0, maxM0_ = 0;
  bool sq8_ = false, l2_ = true;
  double level_mult_ = 0;
  size_t data_bytes_ = 0, id_off_ = 0, links_off_ = 0, slot_bytes_ = 0, upper_stride_ = 0;
  float (*kl2_)(const float*, const float*, size_t) = nullptr;
  float (*kdot_)(const float*, const float*, size_t) = nullptr;

  mutable StorageMutex storage_mu_;
  char* block_ = nullptr;
  size_t block_bytes_ = 0;
  size_t capacity_ = 0;
  std::atomic<size_t> num_slots_{0};  // high-water mark of used slots; grows under map_mu_
  UpperArena upper_;
  std::vector<uint32_t> upper_at_;  // per slot: its upper lists in upper_, or kNil
  std::vector<uint8_t> levels_;
  size_t UpperWords(uint32_t s) const { return size_t(levels_[s]) * upper_stride_; }
  std::unique_ptr<std::atomic<uint8_t>[]> state_;
  std::unique_ptr<SpinLock[]> locks_;

  mutable std::mutex map_mu_;
  // id -> slot: a set of slots keyed by the id kept in the slot itself (internal/
  // slot_table.h: 5 bytes per entry). Needs the storage lock (for block_) and map_mu_.
  struct SlotId {
    const Impl* m;
    uint64_t operator()(uint32_t s) const { return m->IdOf(s); }
  };
  internal::SlotTable<SlotId> slot_set_{SlotId{this}};
  uint32_t FindSlot(uint64_t id) const { return slot_set_.Find(id); }
  std::vector<uint32_t> free_;
  std::unique_ptr<SplitMix64> rng_;

  std::vector<uint32_t> pending_;  // removed, links into them not yet swept
  std::atomic<size_t> pending_count_{0};
  std::mutex entry_mu_;
  std::atomic<uint32_t> entry_{kNone};
  std::atomic<int> max_level_{-1};
  std::atomic<size_t> live_{0};

  std::optional<Sq8Quantizer> quant_;
  int vec_fd_ = -1;
};

// ------------------------------------------------------------------ file format
//
// An envelope (base/codec.h: magic "CHNS", version, payload size, XXH3 trailer)
// whose payload is:
//   u32 dim, u8 metric, u8 storage, u16 reserved, u32 M, u32 ef_construction,
//   u32 ef_search, u32 rerank, u64 seed, u64 num_slots, u32 entry, i32 max_level,
//   u64 slot_bytes, string quantizer (SQ8; empty otherwise),
//   u8 state[num_slots], u8 level[num_slots],
//   zero padding to a multiple of 64 bytes from the file start,
//   level-0 block  num_slots * slot_bytes,
//   upper links    for each slot with level > 0: level * (1 + M) u32,
//   SQ8 only: full-precision vectors num_slots * dim f32.
// Written by streaming (no in-memory copy of the whole index), hashed on the way.

namespace {

class HashingWriter {
 public:
  explicit HashingWriter(int fd) : fd_(fd) { XXH3_64bits_reset(&st_); }
  bool Write(const void* p, size_t n) {
    XXH3_64bits_update(&st_, p, n);
    pos_ += n;
    return PwriteAll(fd_, p, n, off_t(pos_ - n));
  }
  uint64_t Digest() { return XXH3_64bits_digest(&st_); }
  uint64_t pos() const { return pos_; }

 private:
  int fd_;
  XXH3_state_t st_;
  uint64_t pos_ = 0;
};

}  // namespace

absl::Status HnswIndex::Impl::Save(const std::string& path) const {
  const std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    return absl::InternalError(fmt::format("hnsw: cannot create '{}': {}", tmp, strerror(errno)));
  auto fail = [&](std::string what) {
    ::close(fd);
    ::unlink(tmp.c_str());
    return absl::InternalError(fmt::format("hnsw: saving '{}': {}", path, what));
  };
  ByteWriter h;
  h.U32(uint32_t(dim_));
  h.U8(uint8_t(opt_.metric));
  h.U8(uint8_t(opt_.storage));
  h.U16(0);
  h.U32(uint32_t(M_));
  h.U32(uint32_t(opt_.ef_construction));
  h.U32(uint32_t(opt_.ef_search));
  h.U32(uint32_t(opt_.rerank));
  h.U64(opt_.seed);
  h.U64(num_slots_);
  h.U32(entry_.load());
  h.U32(uint32_t(max_level_.load()));
  h.U64(slot_bytes_);
  h.String(quant_ ? quant_->Serialize() : std::string());
  std::vector<uint8_t> st(num_slots_);
  for (size_t s = 0; s < num_slots_; ++s) st[s] = state_[s].load();
  h.Array<uint8_t>(st);
  h.Array<uint8_t>(std::span<const uint8_t>(levels_.data(), num_slots_));
  while ((kEnvelopeHeaderSize + h.size()) % 64) h.U8(0);
  uint64_t upper_words = 0;
  for (size_t s = 0; s < num_slots_; ++s)
    if (st[s] != kFree) upper_words += uint64_t(levels_[s]) * upper_stride_;
  const uint64_t payload = h.size() + num_slots_ * slot_bytes_ + upper_words * 4 +
                           (sq8_ ? num_slots_ * dim_ * 4 : 0);
  ByteWriter env;
  env.U32(kMagic);
  env.U16(kVersion);
  env.U16(0);
  env.U64(payload);
  HashingWriter w(fd);
  if (!w.Write(env.data().data(), env.size()) || !w.Write(h.data().data(), h.size()) ||
      !w.Write(block_, num_slots_ * slot_bytes_))
    return fail(strerror(errno));
  for (size_t s = 0; s < num_slots_; ++s) {
    if (st[s] == kFree || levels_[s] == 0) continue;
    if (!w.Write(upper_.At(upper_at_[s]), UpperWords(s) * 4)) return fail(strerror(errno));
  }
  if (sq8_) {
    std::vector<char> buf(1 << 20);
    uint64_t left = uint64_t(num_slots_) * dim_ * 4, off = 0;
    while (left > 0) {
      size_t n = std::min<uint64_t>(left, buf.size());
      if (!PreadAll(vec_fd_, buf.data(), n, off_t(off)) || !w.Write(buf.data(), n))
        return fail("copying the SQ8 vectors failed");
      left -= n;
      off += n;
    }
  }
  uint64_t sum = w.Digest();
  if (!PwriteAll(fd, &sum, 8, off_t(w.pos()))) return fail(strerror(errno));
  if (::fsync(fd) != 0) return fail(strerror(errno));
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    return absl::InternalError(fmt::format("hnsw: renaming to '{}': {}", path, strerror(errno)));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<HnswIndex::Impl>> HnswIndex::Impl::Decode(std::string_view bytes,
                                                                         int src_fd,
                                                                         uint64_t src_offset) {
  CAIRN_ASSIGN_OR_RETURN(Envelope env, OpenEnvelope(bytes, kMagic, kVersion, "HNSW index"));
  ByteReader r(env.payload, "HNSW index");
  HnswOptions o;
  o.dim = r.U32();
  o.metric = static_cast<Metric>(r.U8());
  o.storage = static_cast<HnswStorage>(r.U8());
  r.U16();
  o.M = r.U32();
  o.ef_construction = r.U32();
  o.ef_search = r.U32();
  o.rerank = r.U32();
  o.seed = r.U64();
  const uint64_t num_slots = r.U64();
  const uint32_t entry = r.U32();
  const int32_t max_level = static_cast<int32_t>(r.U32());
  const uint64_t slot_bytes = r.U64();
  const std::string_view qblob = r.String();
  CAIRN_RETURN_IF_ERROR(r.status());
  CAIRN_RETURN_IF_ERROR(ValidateOptions(o));
  if (o.ef_search == 0) o.ef_search = 64;
  if (num_slots > kMaxSlots || num_slots > r.remaining())
    return absl::InvalidArgumentError(fmt::format("HNSW index: {} slots is more than the file holds", num_slots));
  o.initial_capacity = std::max<size_t>(num_slots, 16);
  auto impl = std::make_unique<Impl>(o);
  // SQ8 files written before slots were packed to 4 bytes pad them to 8: any slot
  // at least as large as the layout needs, 4-byte aligned, reads the same way.
  if (slot_bytes != impl->slot_bytes_) {
    const bool padded = impl->sq8_ && slot_bytes > impl->slot_bytes_ && slot_bytes % 4 == 0 &&
                        slot_bytes <= impl->slot_bytes_ + 64;
    if (!padded)
      return absl::InvalidArgumentError(fmt::format(
          "HNSW index: slot size {} does not match {} for these options", slot_bytes, impl->slot_bytes_));
    impl->slot_bytes_ = slot_bytes;
  }
  if (impl->sq8_) {
    if (qblob.empty()) return absl::InvalidArgumentError("HNSW index: SQ8 index without a quantizer");
    CAIRN_ASSIGN_OR_RETURN(Sq8Quantizer q, Sq8Quantizer::Deserialize(qblob));
    if (q.dim() != o.dim) return absl::InvalidArgumentError("HNSW index: quantizer dimension mismatch");
    impl->quant_.emplace(std::move(q));
  }
  std::vector<uint8_t> st, lev;
  r.Array<uint8_t>(num_slots, &st);
  r.Array<uint8_t>(num_slots, &lev);
  while (r.ok() && (kEnvelopeHeaderSize + r.position()) % 64) r.U8();
  CAIRN_RETURN_IF_ERROR(r.status());
  if (num_slots && r.remaining() / num_slots < slot_bytes)
    return absl::InvalidArgumentError("HNSW index: level-0 block runs past the end");
  std::string_view blk = r.Bytes(num_slots * slot_bytes);
  CAIRN_RETURN_IF_ERROR(r.status());
  CAIRN_RETURN_IF_ERROR(impl->Init());
  impl->num_slots_ = num_slots;
  if (num_slots) std::memcpy(impl->block_, blk.data(), blk.size());
  const uint32_t M = uint32_t(o.M);
  for (size_t s = 0; s < num_slots; ++s) {
    if (st[s] > kRemoved || st[s] == kInserting)
      return absl::InvalidArgumentError(fmt::format("HNSW index: slot {} has a bad state", s));
    if (lev[s] > kMaxLevel)
      return absl::InvalidArgumentError(fmt::format("HNSW index: slot {} has level {}", s, lev[s]));
    impl->state_[s].store(st[s]);
    if (st[s] == kFree) continue;
    impl->levels_[s] = lev[s];
    if (lev[s] > 0) {
      const size_t words = size_t(lev[s]) * impl->upper_stride_;
      const std::string_view up = r.Bytes(words * 4);
      if (!r.ok()) return r.status();
      impl->upper_at_[s] = impl->upper_.Alloc(words);
      if (impl->upper_at_[s] == UpperArena::kNil)
        return absl::InvalidArgumentError("HNSW index: more upper-level links than an index can hold");
      std::memcpy(impl->upper_.At(impl->upper_at_[s]), up.data(), words * 4);
    }
  }
  // Check every link, so a bad file cannot make a search read out of bounds.
  for (uint32_t s = 0; s < num_slots; ++s) {
    if (st[s] == kFree) continue;
    for (int l = 0; l <= lev[s]; ++l) {
      const uint32_t* lk = impl->Links(s, l);
      const uint32_t maxl = l == 0 ? 2 * M : M;
      if (lk[0] > maxl)
        return absl::InvalidArgumentError(
            fmt::format("HNSW index: node {} has {} links at level {}", s, lk[0], l));
      for (uint32_t j = 0; j < lk[0]; ++j) {
        const uint32_t x = lk[1 + j];
        if (x >= num_slots || st[x] == kFree || lev[x] < l)
          return absl::InvalidArgumentError(
              fmt::format("HNSW index: node {} links to invalid node {} at level {}", s, x, l));
      }
    }
  }
  size_t live = 0;
  // Sized once: growing rehashes every entry, and each hash reads its id from the block.
  impl->slot_set_.Reserve(size_t(std::count(st.begin(), st.end(), uint8_t{kLive})));
  for (uint32_t s = 0; s < num_slots; ++s) {
    if (st[s] == kFree) {
      impl->free_.push_back(s);
    } else if (st[s] == kRemoved) {
      impl->pending_.push_back(s);
    } else {
      ++live;
      if (!impl->slot_set_.Insert(s))
        return absl::InvalidArgumentError(
            fmt::format("HNSW index: id {} is stored twice", impl->IdOf(s)));
    }
  }
  std::reverse(impl->free_.begin(), impl->free_.end());
  impl->pending_count_.store(impl->pending_.size());
  impl->live_.store(live);
  if (live == 0) {
    if (entry != kNone)
      return absl::InvalidArgumentError("HNSW index: empty index with an entry point");
  } else if (entry >= num_slots || st[entry] != kLive || lev[entry] != max_level) {
    return absl::InvalidArgumentError("HNSW index: bad entry point");
  }
  impl->entry_.store(live ? entry : kNone);
  impl->max_level_.store(live ? max_level : -1);
  if (impl->sq8_) {
    const uint64_t vbytes = num_slots * o.dim * 4;
    if (r.remaining() != vbytes)
      return absl::InvalidArgumentError(
          fmt::format("HNSW index: vector section has {} bytes, expected {}", r.remaining(), vbytes));
    const uint64_t off = r.position() + kEnvelopeHeaderSize;
    std::string_view vecs = r.Bytes(vbytes);
    if (src_fd >= 0) {
      // Kernel-side copy into the side file; falls back to a plain write.
      loff_t in = loff_t(src_offset + off), outp = 0;
      uint64_t left = vbytes;
      while (left > 0) {
        ssize_t n = ::copy_file_range(src_fd, &in, impl->vec_fd_, &outp, left, 0);
        if (n <= 0) break;
        left -= uint64_t(n);
      }
      if (left > 0 && !PwriteAll(impl->vec_fd_, vecs.data() + (vbytes - left), left, off_t(vbytes - left)))
        return absl::InternalError("hnsw: writing the SQ8 vector file failed");
    } else if (!PwriteAll(impl->vec_fd_, vecs.data(), vbytes, 0)) {
      return absl::InternalError("hnsw: writing the SQ8 vector file failed");
    }
  }
  CAIRN_RETURN_IF_ERROR(r.Finish());
  return impl;
}

// ------------------------------------------------------------------ public API

HnswIndex::HnswIndex(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HnswIndex::~HnswIndex() = default;

absl::StatusOr<std::unique_ptr<HnswIndex>> HnswIndex::Create(const HnswOptions& options) {
  CAIRN_RETURN_IF_ERROR(ValidateOptions(options));
  auto impl = std::make_unique<Impl>(options);
  CAIRN_RETURN_IF_ERROR(impl->Init());
  return std::unique_ptr<HnswIndex>(new HnswIndex(std::move(impl)));
}

absl::StatusOr<std::unique_ptr<HnswIndex>> HnswIndex::Open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return absl::NotFoundError(fmt::format("hnsw: no index file '{}'", path));
    return absl::InternalError(fmt::format("hnsw: cannot open '{}': {}", path, strerror(errno)));
  }
  struct stat sb;
  if (::fstat(fd, &sb) != 0) {
    ::close(fd);
    return absl::InternalError(fmt::format("hnsw: cannot stat '{}'", path));
  }
  const size_t size = size_t(sb.st_size);
  void* map = nullptr;
  if (size > 0) {
    int flags = MAP_PRIVATE;
#ifdef MAP_POPULATE
    flags |= MAP_POPULATE;  // one bulk fault-in instead of one fault per page
#endif
    map = ::mmap(nullptr, size, PROT_READ, flags, fd, 0);
    if (map == MAP_FAILED) {
      ::close(fd);
      return absl::InternalError(fmt::format("hnsw: cannot map '{}': {}", path, strerror(errno)));
    }
    ::madvise(map, size, MADV_SEQUENTIAL);
  }
  auto r = Impl::Decode(std::string_view(static_cast<const char*>(map), size), fd, 0);
  if (map) ::munmap(map, size);
  ::close(fd);
  if (!r.ok())
    return absl::Status(r.status().code(), std::string(r.status().message()) + " (" + path + ")");
  return std::unique_ptr<HnswIndex>(new HnswIndex(std::move(*r)));
}

absl::StatusOr<std::unique_ptr<HnswIndex>> HnswDecodeForTesting(std::string_view bytes) {
  CAIRN_ASSIGN_OR_RETURN(auto impl, HnswIndex::Impl::Decode(bytes, -1, 0));
  return HnswIndex::FromImpl(std::move(impl));
}

std::unique_ptr<HnswIndex> HnswIndex::FromImpl(std::unique_ptr<Impl> impl) {
  return std::unique_ptr<HnswIndex>(new HnswIndex(std::move(impl)));
}

size_t HnswIndex::dim() const { return impl_->dim_; }
Metric HnswIndex::metric() const { return impl_->opt_.metric; }
size_t HnswIndex::size() const { return impl_->live_.load(); }
size_t HnswIndex::MemoryBytes() const { return impl_->MemoryBytes(); }
const HnswOptions& HnswIndex::options() const { return impl_->opt_; }
size_t HnswIndex::CountReachable() const { return impl_->CountReachable(); }
size_t HnswIndex::capacity() const {
  std::shared_lock<StorageMutex> sh(impl_->storage_mu_);
  return impl_->capacity_;
}

bool HnswIndex::trained() const {
  std::shared_lock<StorageMutex> sh(impl_->storage_mu_);
  return !impl_->sq8_ || impl_->quant_.has_value();
}

absl::Status HnswIndex::Train(std::span<const float> sample) {
  Impl& m = *impl_;
  if (!m.sq8_) return absl::FailedPreconditionError("hnsw: Train is for SQ8 storage only");
  if (sample.empty() || sample.size() % m.dim_)
    return absl::InvalidArgumentError(fmt::format(
        "hnsw: training sample has {} values, not a positive multiple of dimension {}",
        sample.size(), m.dim_));
  std::vector<float> rows(sample.begin(), sample.end());
  for (size_t i = 0; i < rows.size(); i += m.dim_) {
    CAIRN_RETURN_IF_ERROR(m.CheckVector(std::span<const float>(rows.data() + i, m.dim_)));
    if (m.opt_.metric == Metric::kCosine && !Normalize(rows.data() + i, m.dim_))
      return absl::InvalidArgumentError("hnsw: a zero vector cannot be used with cosine");
  }
  std::unique_lock<StorageMutex> ex(m.storage_mu_);
  if (m.live_.load() > 0 || m.num_slots_ > 0)
    return absl::FailedPreconditionError("hnsw: Train must come before the first vector");
  CAIRN_ASSIGN_OR_RETURN(Sq8Quantizer q, Sq8Quantizer::Train(rows, m.dim_));
  m.quant_.emplace(std::move(q));
  return absl::OkStatus();
}

absl::Status HnswIndex::Add(uint64_t id, std::span<const float> v) {
  CAIRN_RETURN_IF_ERROR(impl_->CheckVector(v));
  std::vector<float> buf(v.begin(), v.end());
  if (impl_->opt_.metric == Metric::kCosine && !Normalize(buf.data(), buf.size()))
    return absl::InvalidArgumentError("hnsw: a zero vector cannot be stored with cosine");
  return impl_->Insert(id, buf.data());
}

absl::Status HnswIndex::AddBatch(std::span<const uint64_t> ids, std::span<const float> rows,
                                 size_t threads) {
  Impl& m = *impl_;
  if (rows.size() != ids.size() * m.dim_)
    return absl::InvalidArgumentError(fmt::format(
        "hnsw: batch has {} ids and {} values; dimension {} needs {} values", ids.size(),
        rows.size(), m.dim_, ids.size() * m.dim_));
  // Rows are checked up front and used in place (a copy would linger in the heap).
  const bool cosine = m.opt_.metric == Metric::kCosine;
  std::vector<float> unit(m.dim_);
  for (size_t i = 0; i < ids.size(); ++i) {
    const std::span<const float> r = rows.subspan(i * m.dim_, m.dim_);
    absl::Status st = m.CheckVector(r);
    if (!st.ok()) return absl::InvalidArgumentError(fmt::format("row {}: ", i) + std::string(st.message()));
    if (cosine && !Normalize(std::copy(r.begin(), r.end(), unit.data()) - m.dim_, m.dim_))
      return absl::InvalidArgumentError(fmt::format("row {}: a zero vector cannot be stored with cosine", i));
  }
  if (ids.empty()) return absl::OkStatus();
  if (m.sq8_ && !trained()) {
    const size_t n = std::min<size_t>(ids.size(), 100000);
    CAIRN_RETURN_IF_ERROR(Train(rows.first(n * m.dim_)));
  }
  {
    std::unique_lock<StorageMutex> ex(m.storage_mu_);
    size_t need = m.num_slots_ + ids.size();
    if (need > m.capacity_) m.Grow(std::max(need, m.capacity_ * 2));
  }
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  threads = std::min(threads, ids.size());
  std::atomic<size_t> next{0};
  std::mutex err_mu;
  absl::Status err;
  auto work = [&] {
    std::vector<float> row(cosine ? m.dim_ : 0);
    for (;;) {
      size_t i = next.fetch_add(1);
      if (i >= ids.size()) return;
      const float* v = rows.data() + i * m.dim_;
      if (cosine && Normalize(std::copy(v, v + m.dim_, row.data()) - m.dim_, m.dim_)) v = row.data();
      absl::Status st = m.Insert(ids[i], v);
      if (!st.ok()) {
        std::lock_guard<std::mutex> g(err_mu);
        if (err.ok()) err = st;
        next.store(ids.size());
        return;
      }
    }
  };
  std::vector<std::thread> ts;
  for (size_t t = 1; t < threads; ++t) ts.emplace_back(work);
  work();
  for (auto& t : ts) t.join();
  return err;
}

absl::Status HnswIndex::Remove(uint64_t id) {
  std::unique_lock<StorageMutex> ex(impl_->storage_mu_);
  const uint32_t s = impl_->FindSlot(id);
  if (s == kNone) return absl::NotFoundError(fmt::format("hnsw: id {} is not in the index", id));
  impl_->RemoveSlot(s);
  return absl::OkStatus();
}

bool HnswIndex::Contains(uint64_t id) const {
  std::shared_lock<StorageMutex> sh(impl_->storage_mu_);
  std::lock_guard<std::mutex> g(impl_->map_mu_);
  return impl_->FindSlot(id) != kNone;
}

size_t HnswIndex::CountPresent(std::span<const uint64_t> ids) const {
  std::shared_lock<StorageMutex> sh(impl_->storage_mu_);
  std::lock_guard<std::mutex> g(impl_->map_mu_);
  size_t n = 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i + 8 < ids.size()) impl_->slot_set_.Prefetch(ids[i + 8]);
    n += impl_->FindSlot(ids[i]) != kNone;
  }
  return n;
}

absl::StatusOr<std::vector<float>> HnswIndex::Get(uint64_t id) const {
  Impl& m = *impl_;
  std::shared_lock<StorageMutex> sh(m.storage_mu_);
  uint32_t s;
  {
    std::lock_guard<std::mutex> g(m.map_mu_);
    s = m.FindSlot(id);
    if (s == kNone || m.State(s) != kLive)
      return absl::NotFoundError(fmt::format("hnsw: id {} is not in the index", id));
  }
  std::vector<float> out(m.dim_);
  if (m.sq8_) {
    if (!m.ReadFull(s, out.data())) return absl::InternalError("hnsw: reading the SQ8 vector file failed");
  } else {
    std::memcpy(out.data(), m.FData(s), m.dim_ * 4);
  }
  return out;
}

absl::StatusOr<std::vector<Neighbor>> HnswIndex::Search(std::span<const float> query,
                                                        const SearchParams& params) const {
  return impl_->Search(query, params);
}

absl::Status HnswIndex::Compact() {
  std::unique_lock<StorageMutex> ex(impl_->storage_mu_);
  return impl_->CompactLocked();
}

absl::Status HnswIndex::Save(const std::string& path) const {
  std::unique_lock<StorageMutex> ex(impl_->storage_mu_);
  return impl_->Save(path);
}

}  // namespace cairn::vector
