#include "bench/nexmark/generator.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <string_view>

#include "cairn/base/hash.h"
#include "cairn/base/random.h"
#include "fmt/format.h"

namespace cairn::nexmark {
namespace {

// Ids this many ahead of the last created person/auction may be picked, so some
// bids and auctions refer to records that appear later in the stream (as in Nexmark).
constexpr int64_t kIdLead = 10;
// Hot ids are the first (sellers, auctions) or second (bidders) of the latest block of this many.
constexpr int64_t kHotBlock = 100;
constexpr uint64_t kNumChannels = 10'000;
constexpr uint64_t kMaxGenerateAll = uint64_t{1} << 27;

constexpr std::array<std::string_view, 11> kFirstNames = {"Peter", "Paul",  "Luke",  "John",   "Saul",  "Vicky",
                                                          "Kate",  "Julie", "Sarah", "Deiter", "Walter"};
constexpr std::array<std::string_view, 9> kLastNames = {"Shultz", "Abrams", "Spencer", "White", "Bartels",
                                                        "Walton", "Smith",  "Jones",   "Noris"};
constexpr std::array<std::string_view, 10> kCities = {"Phoenix", "Los Angeles", "San Francisco", "Boise", "Portland",
                                                      "Bend",    "Redmond",     "Seattle",       "Kent",  "Cheyenne"};
constexpr std::array<std::string_view, 6> kStates = {"AZ", "CA", "ID", "OR", "WA", "WY"};
constexpr std::array<std::string_view, 4> kHotChannels = {"Google", "Facebook", "Baidu", "Apple"};

// Uniform in [0, n) by multiply-shift: one multiplication, no division, and a
// bias below n / 2^64 (immaterial for n far below 2^32).
inline uint64_t Uniform(SplitMix64& rng, uint64_t n) {
  return static_cast<uint64_t>((static_cast<unsigned __int128>(rng.Next()) * n) >> 64);
}

// Replaces the contents of *s. clear() + append() copies straight into the
// existing capacity, where assign() goes through the general replace path with
// its overlap checks: this is the hot path of every generated string.
inline void Set(std::string* s, std::string_view v) {
  s->clear();
  s->append(v.data(), v.size());
}

// Eight random characters from the eight bytes of `x`: lower-case letters, and
// (when `space` is not 0) that character with probability 2/28. Each byte b
// becomes the digit (b * radix) >> 8, computed for four bytes at a time in
// 16-bit lanes of one 64-bit multiply (no lane overflows: 255 * 28 < 2^16), so
// letters are equally likely within 10 %, which names and padding do not mind.
inline uint64_t RandomChars8(uint64_t x, char space) {
  constexpr uint64_t kLow = 0x00ff00ff00ff00ffULL;
  constexpr uint64_t kOnes = 0x0101010101010101ULL;
  const uint64_t radix = space ? 28 : 26;
  const uint64_t even = (((x & kLow) * radix) >> 8) & kLow;
  const uint64_t odd = ((((x >> 8) & kLow) * radix) >> 8) & kLow;
  const uint64_t digits = even | (odd << 8);  // each byte in [0, radix)
  const uint64_t letters = digits + 'a' * kOnes;
  if (!space) return letters;
  // Bytes with digit >= 26 reach bit 7 when 102 is added (digits < 28: no carry out of the byte).
  const uint64_t high = ((digits + 102 * kOnes) & (0x80 * kOnes)) >> 7;
  const uint64_t mask = high * 0xff;
  return (letters & ~mask) | (static_cast<uint64_t>(static_cast<unsigned char>(space)) * high);
}

// Writes `len` random characters at `out` (see RandomChars8).
void FillRandom(SplitMix64& rng, char* out, size_t len, char space) {
  for (; len >= 8; len -= 8, out += 8) {
    const uint64_t chars = RandomChars8(rng.Next(), space);
    std::memcpy(out, &chars, 8);
  }
  if (len > 0) {
    const uint64_t chars = RandomChars8(rng.Next(), space);
    std::memcpy(out, &chars, len);
  }
}

// Nexmark's nextString: 3 .. max_len-1 characters with occasional spaces,
// trimmed at both ends.
void NextText(SplitMix64& rng, size_t max_len, std::string* out) {
  const size_t len = 3 + Uniform(rng, max_len - 3);
  out->resize(len);
  char* p = out->data();
  FillRandom(rng, p, len, ' ');
  size_t begin = 0, end = len;
  while (begin < end && p[begin] == ' ') ++begin;
  while (end > begin && p[end - 1] == ' ') --end;
  if (begin > 0 || end < len) {
    std::memmove(p, p + begin, end - begin);
    out->resize(end - begin);
  }
}

// Nexmark's nextExtra: letters that pad `current_size` to `avg_size` on average
// (uniform within +-20 % of the gap), or nothing when avg_size is 0 or reached.
inline void NextExtra(SplitMix64& rng, size_t current_size, size_t avg_size, std::string* out) {
  if (avg_size == 0 || current_size >= avg_size) {
    out->clear();
    return;
  }
  const size_t gap = avg_size - current_size;
  const size_t delta = (gap + 2) / 5;  // round(gap * 0.2)
  const size_t len = gap - delta + (delta == 0 ? 0 : Uniform(rng, 2 * delta));
  out->resize(len);
  FillRandom(rng, out->data(), len, 0);
}

uint32_t ReverseBits32(uint32_t v) {
  v = ((v >> 1) & 0x55555555u) | ((v & 0x55555555u) << 1);
  v = ((v >> 2) & 0x33333333u) | ((v & 0x33333333u) << 2);
  v = ((v >> 4) & 0x0f0f0f0fu) | ((v & 0x0f0f0f0fu) << 4);
  v = ((v >> 8) & 0x00ff00ffu) | ((v & 0x00ff00ffu) << 8);
  return (v >> 16) | (v << 16);
}

// Writes a decimal number of exactly `digits` digits (zero-padded) at p; returns the end.
char* PutDigits(char* p, uint64_t v, int digits) {
  for (int i = digits - 1; i >= 0; --i) {
    p[i] = static_cast<char>('0' + v % 10);
    v /= 10;
  }
  return p + digits;
}

constexpr std::string_view kUrlHead = "https://www.nexmark.com/";
constexpr std::string_view kUrlTail = "item.htm?query=1";
constexpr std::string_view kUrlChannelId = "&channel_id=";
constexpr std::string_view kChannelPrefix = "channel-";
// Room for the longest URL plus the slack of the fixed-size copies in BuildUrl.
constexpr size_t kUrlBuffer = 96;

// The varying parts of a channel's name and URL, packed so the table of all
// 10,000 cold channels (320 KB) stays in cache: copying these with fixed-size
// moves costs less than a cache miss on a table of full strings, or formatting
// numbers per bid.
struct ChannelParts {
  char path[15];  // "<p>/<q>/<r>/": three random segments of 3-4 characters
  uint8_t path_len;
  char id[10];  // digits of the channel id in the URL
  uint8_t id_len;  // 0 = the URL carries no channel id
  char number[4];  // digits of N in "channel-N"
  uint8_t number_len;
};
static_assert(sizeof(ChannelParts) == 32);

// Channel `index`: 0-3 are the hot channels, 4 + N is "channel-N". Its URL is
// "https://www.nexmark.com/<p>/<q>/<r>/item.htm?query=1", and for 9 in 10 cold
// channels "&channel_id=" and N with its 32 bits reversed, as in Nexmark.
ChannelParts MakeChannelParts(uint64_t index) {
  ChannelParts c{};
  SplitMix64 rng(Mix64(index + 0x6e65786d61726bULL));
  const uint64_t shape = rng.Next();
  char* p = c.path;
  for (int segment = 0; segment < 3; ++segment) {
    const size_t len = 3 + ((shape >> segment) & 1);
    FillRandom(rng, p, len, '_');
    p += len;
    *p++ = '/';
  }
  c.path_len = static_cast<uint8_t>(p - c.path);
  if (index >= kHotChannels.size()) {
    const uint64_t n = index - kHotChannels.size();
    const std::string number = std::to_string(n);
    std::memcpy(c.number, number.data(), number.size());
    c.number_len = static_cast<uint8_t>(number.size());
    if ((shape >> 8) % 10 != 0) {
      const std::string id = std::to_string(ReverseBits32(static_cast<uint32_t>(n)));
      std::memcpy(c.id, id.data(), id.size());
      c.id_len = static_cast<uint8_t>(id.size());
    }
  }
  return c;
}

// Writes the channel's URL at `buf` (kUrlBuffer bytes); returns its length.
size_t BuildUrl(const ChannelParts& c, char* buf) {
  std::memcpy(buf, kUrlHead.data(), kUrlHead.size());
  std::memcpy(buf + kUrlHead.size(), c.path, sizeof(c.path));
  char* p = buf + kUrlHead.size() + c.path_len;
  std::memcpy(p, kUrlTail.data(), kUrlTail.size());
  p += kUrlTail.size();
  if (c.id_len > 0) {
    std::memcpy(p, kUrlChannelId.data(), kUrlChannelId.size());
    std::memcpy(p + kUrlChannelId.size(), c.id, sizeof(c.id));
    p += kUrlChannelId.size() + c.id_len;
  }
  return static_cast<size_t>(p - buf);
}

}  // namespace

// Fixed tables shared by all generators (independent of the seed).
struct GeneratorTables {
  std::array<std::string, kHotChannels.size()> hot_urls;
  std::vector<ChannelParts> cold_channels;  // kNumChannels
  // price_steps[j][i] = 10^(6 * i / 256^(j+1)): a product of one entry of each
  // is 10^(6u) for u = a 24-bit fraction, without calling exp.
  double price_steps[3][256];
};

namespace {

const GeneratorTables* Tables() {
  static const GeneratorTables* const tables = [] {
    auto* t = new GeneratorTables();
    for (size_t i = 0; i < kHotChannels.size(); ++i) {
      char buf[kUrlBuffer];
      t->hot_urls[i].assign(buf, BuildUrl(MakeChannelParts(i), buf));
    }
    t->cold_channels.reserve(kNumChannels);
    for (uint64_t n = 0; n < kNumChannels; ++n) t->cold_channels.push_back(MakeChannelParts(kHotChannels.size() + n));
    for (int j = 0; j < 3; ++j) {
      for (int i = 0; i < 256; ++i) t->price_steps[j][i] = std::pow(10.0, 6.0 * i / std::pow(256.0, j + 1));
    }
    return t;
  }();
  return tables;
}

// Nexmark's price distribution: round(100 * 10^(6u)) for u uniform in [0, 1),
// log-uniform between 100 and 100,000,000 (cents). u = bits / 2^24.
inline int64_t PriceFromBits(uint64_t bits24, const GeneratorTables& t) {
  const double v = 100.0 * t.price_steps[0][(bits24 >> 16) & 255] * t.price_steps[1][(bits24 >> 8) & 255] *
                   t.price_steps[2][bits24 & 255];
  return static_cast<int64_t>(v + 0.5);
}
inline int64_t NextPrice(SplitMix64& rng, const GeneratorTables& t) { return PriceFromBits(rng.Next() >> 40, t); }

// Uniform in [0, n) from 32 random bits (n < 2^32; bias below n / 2^32).
inline uint64_t Scale32(uint64_t bits32, uint64_t n) { return ((bits32 & 0xffffffffu) * n) >> 32; }

}  // namespace

absl::Status GeneratorConfig::Validate() const {
  auto bad = [](std::string msg) { return absl::InvalidArgumentError("nexmark generator: " + msg); };
  if (rate == 0) return bad("rate must be at least 1 event per second");
  if (person_proportion == 0 || auction_proportion == 0 || bid_proportion == 0) {
    return bad(fmt::format("proportions {}:{}:{} must each be at least 1", person_proportion, auction_proportion,
                           bid_proportion));
  }
  if (total_proportion() > 1'000'000) return bad("proportions must add up to at most 1000000");
  if (hot_auction_ratio == 0 || hot_sellers_ratio == 0 || hot_bidders_ratio == 0) {
    return bad("hot_auction_ratio, hot_sellers_ratio and hot_bidders_ratio must each be at least 1");
  }
  if (num_in_flight_auctions == 0) return bad("num_in_flight_auctions must be at least 1");
  if (num_active_people == 0) return bad("num_active_people must be at least 1");
  if (max_out_of_order_ms < 0 || max_out_of_order_ms > int64_t{1} << 40) {
    return bad(fmt::format("max_out_of_order_ms {} is outside [0, 2^40]", max_out_of_order_ms));
  }
  if (!(out_of_order_fraction >= 0.0 && out_of_order_fraction <= 1.0)) {
    return bad(fmt::format("out_of_order_fraction {} is outside [0, 1]", out_of_order_fraction));
  }
  constexpr uint32_t kMaxBytes = 1 << 20;
  if (avg_person_bytes > kMaxBytes || avg_auction_bytes > kMaxBytes || avg_bid_bytes > kMaxBytes) {
    return bad(fmt::format("avg_*_bytes must be at most {}", kMaxBytes));
  }
  // Keep every nominal time and expiry far from int64 overflow.
  const EventTime kLimit = EventTime{1} << 61;
  if (base_time_ms < -kLimit || base_time_ms > kLimit) return bad("base_time_ms is outside [-2^61, 2^61]");
  return absl::OkStatus();
}

Generator::Generator(const GeneratorConfig& config, int subtask, int parallelism)
    : config_(config),
      tables_(Tables()),
      by_total_(config.total_proportion()),
      by_rate_(config.rate),
      seed_key_(Hash64(config.seed, 0x4e45584d41524bULL)),
      next_(static_cast<uint64_t>(subtask)),
      stride_(static_cast<uint64_t>(parallelism)),
      subtask_(subtask) {}

absl::StatusOr<Generator> Generator::Create(const GeneratorConfig& config, int subtask, int parallelism) {
  if (absl::Status s = config.Validate(); !s.ok()) return s;
  if (parallelism < 1 || subtask < 0 || subtask >= parallelism) {
    return absl::InvalidArgumentError(
        fmt::format("nexmark generator: subtask {} of parallelism {} is out of range", subtask, parallelism));
  }
  return Generator(config, subtask, parallelism);
}

absl::Status Generator::Seek(uint64_t n) {
  if (n % stride_ != static_cast<uint64_t>(subtask_)) {
    return absl::InvalidArgumentError(fmt::format(
        "nexmark generator: event {} belongs to subtask {} of {}, not to subtask {}", n, n % stride_, stride_,
        subtask_));
  }
  next_ = n;
  return absl::OkStatus();
}

uint64_t Generator::remaining() const {
  if (config_.events == 0) return std::numeric_limits<uint64_t>::max();
  if (next_ >= config_.events) return 0;
  return (config_.events - next_ + stride_ - 1) / stride_;
}

size_t Generator::NextBatch(std::vector<Event>* out, size_t max) {
  const size_t n = static_cast<size_t>(std::min<uint64_t>(max, remaining()));
  const size_t old = out->size();
  out->resize(old + n);
  for (size_t i = 0; i < n; ++i) {
    Generate(next_, &(*out)[old + i]);
    next_ += stride_;
  }
  return n;
}

EventTime Generator::NominalTime(uint64_t n) const {
  if (n < (uint64_t{1} << 53)) {  // the product fits 64 bits: avoid the slow 128-bit division
    return config_.base_time_ms + static_cast<EventTime>(by_rate_.Div(n * 1000));
  }
  const auto offset = static_cast<unsigned __int128>(n) * 1000 / config_.rate;
  // Past 2^62 ms the stream has run for a hundred million years; saturate rather than wrap.
  return config_.base_time_ms + static_cast<EventTime>(std::min<unsigned __int128>(offset, uint64_t{1} << 62));
}

EventKind Generator::KindOf(uint64_t n) const { return KindAt(n % config_.total_proportion()); }

EventKind Generator::KindAt(uint64_t rem) const {
  if (rem < config_.person_proportion) return EventKind::kPerson;
  if (rem < config_.person_proportion + config_.auction_proportion) return EventKind::kAuction;
  return EventKind::kBid;
}

int64_t Generator::LastPersonIndex(uint64_t epoch, uint64_t offset) const {
  offset = std::min<uint64_t>(offset, config_.person_proportion - 1);
  return static_cast<int64_t>(epoch * config_.person_proportion + offset);
}

int64_t Generator::LastAuctionIndex(uint64_t epoch_u, uint64_t offset_u) const {
  const auto epoch = static_cast<int64_t>(epoch_u);
  const auto offset = static_cast<int64_t>(offset_u);
  const int64_t persons = config_.person_proportion;
  const int64_t auctions = config_.auction_proportion;
  if (offset < persons) return epoch * auctions - 1;           // the last auction of the previous epoch
  if (offset >= persons + auctions) return epoch * auctions + auctions - 1;  // this epoch's last
  return epoch * auctions + (offset - persons);                // this event's own
}

void Generator::Generate(uint64_t n, Event* event) const {
  SplitMix64 rng(Mix64(n ^ seed_key_));
  const uint64_t epoch = by_total_.Div(n);
  const uint64_t offset = n - epoch * config_.total_proportion();
  EventTime time = NominalTime(n);
  if (config_.max_out_of_order_ms > 0 && rng.NextDouble() < config_.out_of_order_fraction) {
    time -= 1 + static_cast<EventTime>(Uniform(rng, static_cast<uint64_t>(config_.max_out_of_order_ms)));
  }

  // A random person among the active ones, or up to kIdLead ahead of the last.
  auto random_person = [&](int64_t last_person) {
    const int64_t people = last_person + 1;
    const int64_t active = std::min<int64_t>(people, config_.num_active_people);
    return people - active + static_cast<int64_t>(Uniform(rng, static_cast<uint64_t>(active + kIdLead)));
  };

  switch (KindAt(offset)) {
    case EventKind::kPerson: {
      Person& p = event->SetPerson();
      p.id = kFirstPersonId + LastPersonIndex(epoch, offset);
      const std::string_view first = kFirstNames[Uniform(rng, kFirstNames.size())];
      const std::string_view last = kLastNames[Uniform(rng, kLastNames.size())];
      Set(&p.name, first);
      p.name += ' ';
      p.name += last;
      char buf[24];
      const size_t user = 3 + Uniform(rng, 4);
      const size_t domain = 3 + Uniform(rng, 2);
      FillRandom(rng, buf, user, 0);
      buf[user] = '@';
      FillRandom(rng, buf + user + 1, domain, 0);
      std::memcpy(buf + user + 1 + domain, ".com", 4);
      Set(&p.email_address, std::string_view(buf, user + domain + 5));
      char* q = buf;
      for (int group = 0; group < 4; ++group) {
        if (group > 0) *q++ = ' ';
        q = PutDigits(q, Uniform(rng, 10000), 4);
      }
      Set(&p.credit_card, std::string_view(buf, static_cast<size_t>(q - buf)));
      Set(&p.city, kCities[Uniform(rng, kCities.size())]);
      Set(&p.state, kStates[Uniform(rng, kStates.size())]);
      p.date_time = time;
      const size_t size = 8 + p.name.size() + p.email_address.size() + p.credit_card.size() + p.city.size() +
                          p.state.size();
      NextExtra(rng, size, config_.avg_person_bytes, &p.extra);
      return;
    }
    case EventKind::kAuction: {
      Auction& a = event->SetAuction();
      a.id = kFirstAuctionId + LastAuctionIndex(epoch, offset);
      const int64_t last_person = LastPersonIndex(epoch, offset);
      int64_t seller;
      if (Uniform(rng, config_.hot_sellers_ratio) > 0) {
        seller = (last_person / kHotBlock) * kHotBlock;
      } else {
        seller = random_person(last_person);
      }
      a.seller = kFirstPersonId + seller;
      a.category = kFirstCategoryId + static_cast<int64_t>(Uniform(rng, kNumCategories));
      a.initial_bid = NextPrice(rng, *tables_);
      a.reserve = a.initial_bid + NextPrice(rng, *tables_);
      a.date_time = time;
      // Nexmark's auction length: the event time until num_in_flight_auctions more
      // auctions exist is the mean, so about that many are open at once.
      const uint64_t events_ahead =
          uint64_t{config_.num_in_flight_auctions} * config_.total_proportion() / config_.auction_proportion;
      const EventTime horizon = NominalTime(n + events_ahead) - time;
      const auto span = static_cast<uint64_t>(std::max<EventTime>(2 * horizon, 1));
      a.expires = time + 1 + static_cast<EventTime>(Uniform(rng, span));
      NextText(rng, 20, &a.item_name);
      NextText(rng, 100, &a.description);
      NextExtra(rng, 8 + a.item_name.size() + a.description.size() + 40, config_.avg_auction_bytes, &a.extra);
      return;
    }
    case EventKind::kBid:
      break;
  }

  // Two draws decide a bid; its random auction and bidder, when taken, one more each.
  Bid& b = event->SetBid();
  const uint64_t decisions = rng.Next();  // bits 0-31: hot auction?, 32-63: hot bidder?
  const uint64_t picks = rng.Next();      // bit 0: hot channel?, 1-2: which, 8-31: cold channel, 40-63: price
  const int64_t last_auction = LastAuctionIndex(epoch, offset);
  int64_t auction;
  if (Scale32(decisions, config_.hot_auction_ratio) > 0) {
    auction = (std::max<int64_t>(last_auction, 0) / kHotBlock) * kHotBlock;
  } else {
    const int64_t max_auction = std::max<int64_t>(last_auction, 0);
    const int64_t min_auction = std::max<int64_t>(max_auction - config_.num_in_flight_auctions, 0);
    auction = min_auction +
              static_cast<int64_t>(Uniform(rng, static_cast<uint64_t>(max_auction - min_auction + 1 + kIdLead)));
  }
  b.auction = kFirstAuctionId + auction;
  const int64_t last_person = LastPersonIndex(epoch, offset);
  int64_t bidder;
  if (Scale32(decisions >> 32, config_.hot_bidders_ratio) > 0) {
    bidder = (last_person / kHotBlock) * kHotBlock + 1;
  } else {
    bidder = random_person(last_person);
  }
  b.bidder = kFirstPersonId + bidder;
  b.price = PriceFromBits(picks >> 40, *tables_);
  if (picks & 1) {
    static_assert(kHotChannels.size() == 4);
    const size_t hot = (picks >> 1) & 3;
    Set(&b.channel, kHotChannels[hot]);
    Set(&b.url, tables_->hot_urls[hot]);
  } else {
    const ChannelParts& c = tables_->cold_channels[(((picks >> 8) & 0xffffff) * kNumChannels) >> 24];
    char buf[kUrlBuffer];
    std::memcpy(buf, kChannelPrefix.data(), kChannelPrefix.size());
    std::memcpy(buf + kChannelPrefix.size(), c.number, sizeof(c.number));
    Set(&b.channel, std::string_view(buf, kChannelPrefix.size() + c.number_len));
    Set(&b.url, std::string_view(buf, BuildUrl(c, buf)));
  }
  b.date_time = time;
  NextExtra(rng, 32, config_.avg_bid_bytes, &b.extra);
}

absl::StatusOr<std::vector<Event>> GenerateAll(const GeneratorConfig& config) {
  if (config.events == 0) return absl::InvalidArgumentError("nexmark GenerateAll: the config's stream is unbounded");
  if (config.events > kMaxGenerateAll) {
    return absl::InvalidArgumentError(
        fmt::format("nexmark GenerateAll: {} events is more than {} (generate in batches instead)", config.events,
                    kMaxGenerateAll));
  }
  absl::StatusOr<Generator> gen = Generator::Create(config);
  if (!gen.ok()) return gen.status();
  std::vector<Event> events;
  gen->NextBatch(&events, config.events);
  return events;
}

}  // namespace cairn::nexmark
