// Fuzzes KllSketch<float|double>::Deserialize. The first input byte picks the
// item type and whether the rest is a whole blob or a payload to be sealed in a
// valid envelope (so that the fuzzer reaches the payload checks behind the
// checksum). Whatever decodes must answer queries, keep accepting updates and
// merges, and re-serialize to a blob that decodes again.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/base/codec.h"
#include "cairn/sketch/kll.h"

namespace {

template <typename T>
void Exercise(std::string_view bytes) {
  using cairn::sketch::KllSketch;
  absl::StatusOr<KllSketch<T>> decoded = KllSketch<T>::Deserialize(bytes);
  if (!decoded.ok()) return;
  KllSketch<T>& s = *decoded;

  const T lo = s.min();
  const T hi = s.max();
  for (double r : {0.0, 0.001, 0.25, 0.5, 0.75, 0.999, 1.0}) {
    const T q = s.Quantile(r);
    if (!s.empty() && !(q >= lo && q <= hi)) std::abort();
  }
  if (!s.empty()) {
    const double mid = s.Rank(static_cast<T>((lo / 2) + (hi / 2)));
    if (!(mid >= 0.0 && mid <= 1.0)) std::abort();
    std::vector<T> splits = {lo, hi};
    if (!(lo < hi)) splits.pop_back();
    absl::StatusOr<std::vector<double>> pmf = s.Pmf(splits);
    if (!pmf.ok() || pmf->size() != splits.size() + 1) std::abort();
  }

  std::string again = s.Serialize();
  if (!KllSketch<T>::Deserialize(again).ok()) std::abort();

  // Keep using it: updates that force compactions, merges both ways.
  KllSketch<T> copy = s;
  for (int i = 0; i < 300; ++i) s.Update(static_cast<T>(i % 17));
  if (s.Merge(copy).ok()) {
    absl::StatusOr<KllSketch<T>> fresh = KllSketch<T>::Create(8);
    if (!fresh.ok() || !fresh->Merge(s).ok()) std::abort();
    if (!KllSketch<T>::Deserialize(fresh->Serialize()).ok()) std::abort();
  }
  // (Update may carry a blob decoded at the n limit past it; such a sketch
  // serializes to a blob that is refused, as documented.)
  if (s.n() <= KllSketch<T>::kMaxN && !KllSketch<T>::Deserialize(s.Serialize()).ok()) {
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t mode = data[0];
  std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  std::string sealed;
  if (mode & 2) {
    sealed = cairn::SealEnvelope(cairn::MakeMagic("CKLL"), 1, rest);
    rest = sealed;
  }
  if (mode & 1) {
    Exercise<double>(rest);
  } else {
    Exercise<float>(rest);
  }
  return 0;
}
