// Fuzzes the Kafka source's checkpointed position: no input may crash, and
// whatever decodes must decode the same after encoding it again.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "cairn/base/codec.h"
#include "cairn/connect/kafka.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  std::string topic;
  cairn::connect::KafkaOffsets offsets;
  (void)cairn::connect::DecodeKafkaPosition(bytes, &topic, &offsets);
  // The checksum keeps random bytes out of the payload decoder: seal them first.
  std::string sealed = cairn::SealEnvelope(cairn::MakeMagic("CKFP"), 1, bytes);
  if (cairn::connect::DecodeKafkaPosition(sealed, &topic, &offsets).ok()) {
    std::string topic2;
    cairn::connect::KafkaOffsets offsets2;
    if (!cairn::connect::DecodeKafkaPosition(cairn::connect::EncodeKafkaPosition(topic, offsets), &topic2, &offsets2)
             .ok() ||
        topic2 != topic || offsets2 != offsets)
      std::abort();
  }
  return 0;
}
