#pragma once
// Cache prefetch hints that the compiler keeps.
//
// Prefetch(p) asks for the cache line holding p to be brought into every cache
// level: a hint with no effect on results, never a fault (p may be any
// address). It is an asm statement on x86-64 and AArch64 because GCC 12 drops
// __builtin_prefetch in some code it cannot prove reachable the way it wants
// (a prefetch behind a branch on a member, with a shift by a member, inlined
// into a loop: the whole prefetch vanished from the detectors' batch loops);
// other targets fall back to the builtin.
//
// Thread-safety: stateless.

namespace cairn {

inline void Prefetch(const void* p) {
#if defined(__x86_64__) && defined(__GNUC__)
  asm volatile("prefetcht0 (%0)" : : "r"(p));
#elif defined(__aarch64__) && defined(__GNUC__)
  asm volatile("prfm pldl1keep, [%0]" : : "r"(p));
#else
  __builtin_prefetch(p, 0, 3);
#endif
}

}  // namespace cairn
