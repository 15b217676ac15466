#include "cairn/stream/internal/sealed_file.h"

#include <fstream>
#include <iterator>

#include "cairn/base/codec.h"
#include "fmt/format.h"

namespace cairn::stream::internal {

absl::Status WriteSealedFile(const std::string& path, uint32_t magic, std::string_view payload) {
  std::string blob = SealEnvelope(magic, 1, payload);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(blob.data(), static_cast<std::streamsize>(blob.size()));
  out.close();
  if (!out) return absl::InternalError(fmt::format("cannot write {}", path));
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadSealedFile(const std::string& path, uint32_t magic, std::string_view what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(fmt::format("{} is missing", path));
  std::string blob((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CAIRN_ASSIGN_OR_RETURN(Envelope env, OpenEnvelope(blob, magic, 1, what));
  return std::string(env.payload);
}

}  // namespace cairn::stream::internal
