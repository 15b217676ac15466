// Fuzzes Sq8Quantizer::Deserialize and PqQuantizer::Deserialize. The first input
// byte picks the decoder and whether the rest is a whole blob or a payload sealed
// in a valid envelope (so the fuzzer reaches the payload checks behind the
// checksum). Whatever decodes must encode, decode and answer distances with finite
// results for finite inputs, and re-serialize to a blob that decodes to the same bytes.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/base/codec.h"
#include "cairn/vector/quantize.h"

namespace {

using cairn::vector::Metric;

template <typename Q>
void Exercise(std::string_view bytes) {
  absl::StatusOr<Q> decoded = Q::Deserialize(bytes);
  if (!decoded.ok()) return;
  const Q& q = *decoded;
  const size_t dim = q.dim();
  if (dim == 0 || q.code_size() == 0) std::abort();
  // Keep huge-but-valid dimensions cheap.
  if (dim > 4096) return;
  std::vector<float> x(dim), back(dim);
  for (size_t i = 0; i < dim; ++i) x[i] = static_cast<float>(i % 7) - 3.0f;
  std::vector<uint8_t> code(q.code_size());
  q.Encode(x.data(), code.data());
  q.Decode(code.data(), back.data());
  for (float v : back) {
    if (!std::isfinite(v)) std::abort();
  }
  for (Metric m : {Metric::kL2, Metric::kInnerProduct, Metric::kCosine}) {
    typename Q::Query prepared;
    q.PrepareQuery(x.data(), m, &prepared);
    // Extreme but valid ranges may overflow a distance to inf; it must not crash.
    volatile float d = q.Distance(prepared, code.data());
    (void)d;
  }
  const std::string again = q.Serialize();
  absl::StatusOr<Q> reread = Q::Deserialize(again);
  if (!reread.ok() || reread->Serialize() != again) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t mode = data[0];
  std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  const bool pq = mode & 1;
  std::string sealed;
  if (mode & 2) {
    sealed = cairn::SealEnvelope(cairn::MakeMagic(pq ? "CPQ8" : "CSQ8"), 1, rest);
    rest = sealed;
  }
  if (pq) {
    Exercise<cairn::vector::PqQuantizer>(rest);
  } else {
    Exercise<cairn::vector::Sq8Quantizer>(rest);
  }
  return 0;
}
