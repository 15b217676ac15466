#include "bench/nexmark/source.h"

#include "cairn/base/codec.h"
#include "fmt/format.h"

namespace cairn::nexmark {
namespace {

// Position bytes: version, next event number, subtask, parallelism.
constexpr uint8_t kPositionVersion = 1;

}  // namespace

absl::Status NexmarkSource::Open(const stream::SourceContext& ctx, std::optional<std::string> restored) {
  absl::StatusOr<Generator> gen = Generator::Create(config_, ctx.subtask, ctx.parallelism);
  if (!gen.ok()) {
    return absl::InvalidArgumentError(fmt::format("source '{}': {}", ctx.name, std::string(gen.status().message())));
  }
  generator_.emplace(std::move(*gen));
  emitted_ = 0;
  if (!restored) return absl::OkStatus();

  ByteReader r(*restored, "nexmark source position");
  const uint8_t version = r.U8();
  const uint64_t next = r.U64();
  const uint32_t subtask = r.U32();
  const uint32_t parallelism = r.U32();
  if (absl::Status s = r.Finish(); !s.ok()) {
    return absl::InvalidArgumentError(fmt::format("source '{}': {}", ctx.name, std::string(s.message())));
  }
  if (version != kPositionVersion) {
    return absl::InvalidArgumentError(
        fmt::format("source '{}': position version {} is not {}", ctx.name, version, kPositionVersion));
  }
  if (parallelism != static_cast<uint32_t>(ctx.parallelism) || subtask != static_cast<uint32_t>(ctx.subtask)) {
    return absl::FailedPreconditionError(fmt::format(
        "source '{}': the checkpoint holds the position of subtask {} of {}, but this is subtask {} of {}; restore "
        "with the parallelism the checkpoint was taken with",
        ctx.name, subtask, parallelism, ctx.subtask, ctx.parallelism));
  }
  if (absl::Status s = generator_->Seek(next); !s.ok()) {
    return absl::InvalidArgumentError(fmt::format("source '{}': {}", ctx.name, std::string(s.message())));
  }
  return absl::OkStatus();
}

absl::StatusOr<stream::PollStatus> NexmarkSource::Poll(stream::SourceBatch<Event>& out, size_t max_records,
                                                       std::chrono::milliseconds /*max_wait*/) {
  if (!generator_) return absl::FailedPreconditionError("nexmark source: Poll before Open");
  if (!generator_->HasNext()) return stream::PollStatus::kEndOfInput;
  const size_t first = out.records.size();
  const size_t n = generator_->NextBatch(&out.records, max_records);
  out.times.reserve(out.times.size() + n);
  for (size_t i = first; i < first + n; ++i) out.times.push_back(out.records[i].date_time());
  emitted_ += n;
  return n > 0 ? stream::PollStatus::kRecords : stream::PollStatus::kIdle;
}

std::string NexmarkSource::Position() {
  ByteWriter w;
  w.U8(kPositionVersion);
  w.U64(generator_ ? generator_->next_event_number() : 0);
  w.U32(generator_ ? static_cast<uint32_t>(generator_->subtask()) : 0);
  w.U32(generator_ ? static_cast<uint32_t>(generator_->parallelism()) : 1);
  return w.Take();
}

}  // namespace cairn::nexmark
