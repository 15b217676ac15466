#include "cairn/detect/operator.h"

namespace cairn::detect {

std::string_view KeyText(const stream::Row& k, std::string& scratch) {
  if (k.size() == 1) {
    if (const auto* s = std::get_if<std::string>(&k.fields()[0].value)) return *s;
  }
  scratch.clear();
  for (size_t i = 0; i < k.size(); ++i) {
    if (i > 0) scratch += '/';
    scratch += stream::ValueToString(k.fields()[i].value);
  }
  return scratch;
}

}  // namespace cairn::detect
