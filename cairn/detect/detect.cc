#include "cairn/detect/detect.h"

namespace cairn::detect {

void Anomaly::Encode(ByteWriter& w) const {
  w.String(key);
  w.I64(time);
  w.F64(score);
  w.String(detector);
  w.F64(value);
  w.String(reason);
}

bool Anomaly::Decode(ByteReader& r, Anomaly* out) {
  out->key = std::string(r.String());
  out->time = r.I64();
  out->score = r.F64();
  out->detector = std::string(r.String());
  out->value = r.F64();
  out->reason = std::string(r.String());
  return r.ok();
}

}  // namespace cairn::detect
