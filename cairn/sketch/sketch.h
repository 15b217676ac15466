// cairn/sketch/sketch.h — the sketch subsystem's contract, and one include for all of it.
//
// Probabilistic summaries of streams in small, bounded memory:
//
//   BloomFilter        set membership, no false negatives, tunable false positives
//   CuckooFilter       set membership with deletion
//   CountMinSketch     frequency of a key, over-estimate bounded by epsilon * N
//   HyperLogLog        number of distinct keys, relative error 1.04 / sqrt(2^p)
//   TopK<Key>          heavy hitters with per-item error bounds (SpaceSaving)
//   KllSketch<T>       quantiles, ranks, CDF and PMF of numbers
//   TimeWindowed<S>    any mergeable sketch over a sliding event-time window
//
// Shared rules:
//   - Factories (`Create`) validate parameters and return absl::StatusOr.
//   - Keys are uint64_t or std::string_view and are hashed inside the call with
//     cairn::Hash64 and a per-sketch seed; `AddHash` takes a precomputed hash.
//   - `Merge(other)` combines two sketches of the same shape; the result answers for
//     the union of both streams within the same bounds. Mismatched shapes are an
//     InvalidArgument error, never a silent approximation.
//   - `Serialize()` writes a cairn/base/codec.h envelope with the sketch's magic;
//     `Deserialize()` validates every field and returns a clear error for
//     truncated, corrupted or foreign bytes. The formats are pinned by golden tests.
//   - `MemoryBytes()` is the memory the object holds.
//   - Not thread-safe: one writer at a time. To use several threads, give each its
//     own sketch and merge.
#pragma once

#include "cairn/sketch/bloom_filter.h"
#include "cairn/sketch/count_min.h"
#include "cairn/sketch/cuckoo_filter.h"
#include "cairn/sketch/hyperloglog.h"
#include "cairn/sketch/kll.h"
#include "cairn/sketch/top_k.h"
#include "cairn/sketch/windowed.h"
