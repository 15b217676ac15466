#include "bench/vector_workload.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <queue>
#include <thread>
#include <utility>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cairn/base/hash.h"
#include "cairn/base/random.h"
#include "cairn/vector/distance.h"
#include "cairn/vector/flat.h"

namespace cairn::bench {
namespace {

// Standard normal pairs by Box-Muller; deterministic given the SplitMix64 stream.
class Gaussian {
 public:
  explicit Gaussian(uint64_t seed) : rng_(seed) {}
  double Next() {
    if (have_spare_) {
      have_spare_ = false;
      return spare_;
    }
    double u1 = rng_.NextDouble();
    if (u1 < 1e-300) u1 = 1e-300;
    const double u2 = rng_.NextDouble();
    const double r = std::sqrt(-2.0 * std::log(u1));
    spare_ = r * std::sin(2 * M_PI * u2);
    have_spare_ = true;
    return r * std::cos(2 * M_PI * u2);
  }
  double Uniform() { return rng_.NextDouble(); }

 private:
  SplitMix64 rng_;
  double spare_ = 0;
  bool have_spare_ = false;
};

absl::StatusOr<std::string> ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(fmt::format("cannot open '{}': {}", path, std::strerror(errno)));
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  if (size < 0) return absl::DataLossError(fmt::format("cannot read '{}'", path));
  std::string bytes(static_cast<size_t>(size), '\0');
  in.seekg(0);
  in.read(bytes.data(), size);
  if (!in) return absl::DataLossError(fmt::format("cannot read '{}'", path));
  return bytes;
}

// Parses the shared layout of .fvecs/.bvecs/.ivecs: int32 dim, then dim elements of
// `elem` bytes, per row. Calls `emit(row, pointer to the row's elements)`.
template <typename Emit>
absl::Status ParseVecs(const std::string& path, const std::string& bytes, size_t elem, size_t max_rows,
                       size_t* dim_out, Emit emit) {
  if (bytes.empty()) return absl::InvalidArgumentError(fmt::format("'{}' is empty", path));
  size_t pos = 0, row = 0;
  int32_t dim0 = -1;
  while (pos < bytes.size() && (max_rows == 0 || row < max_rows)) {
    if (bytes.size() - pos < 4) {
      return absl::InvalidArgumentError(
          fmt::format("'{}': row {} is truncated ({} bytes left where a 4-byte dimension was expected)", path,
                      row, bytes.size() - pos));
    }
    int32_t dim;
    std::memcpy(&dim, bytes.data() + pos, 4);
    if (dim <= 0 || dim > 65536) {
      return absl::InvalidArgumentError(fmt::format(
          "'{}': row {} (byte offset {}) declares dimension {}; not a .fvecs/.bvecs/.ivecs file?", path, row, pos,
          dim));
    }
    if (dim0 < 0) dim0 = dim;
    if (dim != dim0) {
      return absl::InvalidArgumentError(
          fmt::format("'{}': row {} has dimension {}, the rows before have {}", path, row, dim, dim0));
    }
    pos += 4;
    const size_t need = static_cast<size_t>(dim) * elem;
    if (bytes.size() - pos < need) {
      return absl::InvalidArgumentError(fmt::format("'{}': row {} is truncated ({} of {} bytes)", path, row,
                                                    bytes.size() - pos, need));
    }
    emit(row, bytes.data() + pos);
    pos += need;
    ++row;
  }
  *dim_out = static_cast<size_t>(dim0);
  return absl::OkStatus();
}

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

bool ParseFloat(std::string_view text, float* out) {
  text = Trim(text);
  if (text.empty()) return false;
  std::string tmp(text);
  char* end = nullptr;
  errno = 0;
  const float v = std::strtof(tmp.c_str(), &end);
  if (end != tmp.c_str() + tmp.size() || !std::isfinite(v)) return false;
  *out = v;
  return true;
}

bool ParseUint64(std::string_view text, uint64_t* out) {
  text = Trim(text);
  if (text.empty()) return false;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return ec == std::errc() && p == text.data() + text.size();
}

std::string BaseName(const std::string& path) { return std::filesystem::path(path).filename().string(); }

absl::StatusOr<std::vector<VectorRecord>> ReadNpy(const std::string& path) {
  auto bytes = ReadWholeFile(path);
  if (!bytes.ok()) return bytes.status();
  const std::string& b = *bytes;
  const std::string name = BaseName(path);
  if (b.size() < 10 || b.compare(0, 6, "\x93NUMPY") != 0) {
    return absl::InvalidArgumentError(fmt::format("{}: not a .npy file (no \\x93NUMPY magic)", name));
  }
  const int major = static_cast<unsigned char>(b[6]);
  size_t header_len, header_at;
  if (major == 1) {
    header_len = static_cast<unsigned char>(b[8]) | (static_cast<size_t>(static_cast<unsigned char>(b[9])) << 8);
    header_at = 10;
  } else if (major == 2 || major == 3) {
    if (b.size() < 12) return absl::InvalidArgumentError(fmt::format("{}: truncated .npy header", name));
    uint32_t len;
    std::memcpy(&len, b.data() + 8, 4);
    header_len = len;
    header_at = 12;
  } else {
    return absl::InvalidArgumentError(fmt::format("{}: unsupported .npy version {}", name, major));
  }
  if (b.size() < header_at + header_len) {
    return absl::InvalidArgumentError(fmt::format("{}: truncated .npy header", name));
  }
  std::string header = b.substr(header_at, header_len);
  header.erase(std::remove(header.begin(), header.end(), ' '), header.end());
  if (header.find("'descr':'<f4'") == std::string::npos && header.find("'descr':'=f4'") == std::string::npos) {
    return absl::InvalidArgumentError(
        fmt::format("{}: .npy dtype must be little-endian float32 ('<f4'); header is {}", name, header));
  }
  if (header.find("'fortran_order':False") == std::string::npos) {
    return absl::InvalidArgumentError(fmt::format("{}: .npy array must be in C order (fortran_order False)", name));
  }
  const size_t s = header.find("'shape':(");
  if (s == std::string::npos) return absl::InvalidArgumentError(fmt::format("{}: .npy header has no shape", name));
  const size_t e = header.find(')', s);
  std::string shape = header.substr(s + 9, e - s - 9);
  std::vector<uint64_t> dims;
  size_t start = 0;
  while (start < shape.size()) {
    size_t comma = shape.find(',', start);
    if (comma == std::string::npos) comma = shape.size();
    if (comma > start) {
      uint64_t v;
      if (!ParseUint64(std::string_view(shape).substr(start, comma - start), &v)) {
        return absl::InvalidArgumentError(fmt::format("{}: bad .npy shape ({})", name, shape));
      }
      dims.push_back(v);
    }
    start = comma + 1;
  }
  if (dims.size() != 2 || dims[1] == 0) {
    return absl::InvalidArgumentError(
        fmt::format("{}: .npy array must be 2-D (rows, dim) with dim >= 1; shape is ({})", name, shape));
  }
  const size_t data_at = header_at + header_len;
  const uint64_t need = dims[0] * dims[1] * 4;
  if (b.size() - data_at < need) {
    return absl::InvalidArgumentError(fmt::format("{}: .npy data is truncated ({} of {} bytes for shape ({}, {}))",
                                                  name, b.size() - data_at, need, dims[0], dims[1]));
  }
  std::vector<VectorRecord> out(dims[0]);
  for (uint64_t r = 0; r < dims[0]; ++r) {
    out[r].id = r;
    out[r].vector.resize(dims[1]);
    std::memcpy(out[r].vector.data(), b.data() + data_at + r * dims[1] * 4, dims[1] * 4);
    for (float v : out[r].vector) {
      if (!std::isfinite(v)) {
        return absl::InvalidArgumentError(fmt::format("{}: row {} has a non-finite value", name, r));
      }
    }
  }
  return out;
}

absl::Status ParseJsonLine(const std::string& where, const std::string& line, VectorRecord* rec) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(line);
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(fmt::format("{}: invalid JSON: {}", where, e.what()));
  }
  if (!j.is_object()) return absl::InvalidArgumentError(fmt::format("{}: expected a JSON object", where));
  auto id = j.find("id");
  if (id == j.end() || !id->is_number_integer() || (id->is_number_integer() && id->get<int64_t>() < 0 &&
                                                    !id->is_number_unsigned())) {
    return absl::InvalidArgumentError(fmt::format("{}: \"id\" must be a non-negative integer", where));
  }
  rec->id = id->get<uint64_t>();
  auto vec = j.find("vector");
  if (vec == j.end() || !vec->is_array()) {
    return absl::InvalidArgumentError(fmt::format("{}: \"vector\" must be an array of numbers", where));
  }
  rec->vector.clear();
  rec->vector.reserve(vec->size());
  for (size_t i = 0; i < vec->size(); ++i) {
    const auto& v = (*vec)[i];
    if (!v.is_number() || !std::isfinite(v.get<double>())) {
      return absl::InvalidArgumentError(fmt::format("{}: \"vector\"[{}] is not a finite number", where, i));
    }
    rec->vector.push_back(v.get<float>());
  }
  if (auto t = j.find("text"); t != j.end() && !t->is_null()) {
    if (!t->is_string()) return absl::InvalidArgumentError(fmt::format("{}: \"text\" must be a string", where));
    rec->text = t->get<std::string>();
  }
  if (auto a = j.find("attributes"); a != j.end() && !a->is_null()) {
    if (!a->is_object()) {
      return absl::InvalidArgumentError(fmt::format("{}: \"attributes\" must be an object", where));
    }
    for (auto it = a->begin(); it != a->end(); ++it) rec->attributes[it.key()] = it.value().dump();
  }
  return absl::OkStatus();
}

}  // namespace

VectorSet GenerateEmbeddings(const EmbeddingOptions& o, size_t count, uint64_t stream) {
  const size_t dim = o.dim, r = std::max<size_t>(1, std::min(o.intrinsic_dim, dim));
  const size_t clusters = std::max<size_t>(1, o.clusters);
  // The model: centres, per-cluster bases and log-normal cluster weights.
  Gaussian model(Hash64(o.seed, 0x6d6f64656cULL));
  std::vector<float> centres(clusters * dim), bases(clusters * dim * r);
  std::vector<double> cdf(clusters);
  double total = 0;
  for (size_t c = 0; c < clusters; ++c) {
    for (size_t i = 0; i < dim; ++i) centres[c * dim + i] = static_cast<float>(model.Next());
    for (size_t i = 0; i < dim * r; ++i) bases[c * dim * r + i] = static_cast<float>(model.Next());
    total += std::exp(0.8 * model.Next());
    cdf[c] = total;
  }
  // Axis scales decay geometrically; their squares sum to spread^2 so a point lies
  // about `spread` (per coordinate) from its centre, as B has unit-variance entries.
  std::vector<double> scale(r);
  double sum_sq = 0;
  for (size_t j = 0; j < r; ++j) {
    scale[j] = std::pow(0.85, static_cast<double>(j));
    sum_sq += scale[j] * scale[j];
  }
  for (double& s : scale) s *= o.spread / std::sqrt(sum_sq);

  VectorSet out;
  out.n = count;
  out.dim = dim;
  out.data.resize(count * dim);
  std::vector<double> z(r);
  for (size_t p = 0; p < count; ++p) {
    Gaussian g(Hash64(p, Hash64(stream, o.seed)));
    const double u = g.Uniform() * total;
    const size_t c = std::min<size_t>(clusters - 1, std::upper_bound(cdf.begin(), cdf.end(), u) - cdf.begin());
    for (size_t j = 0; j < r; ++j) z[j] = g.Next() * scale[j];
    float* x = out.row(p);
    const float* b = bases.data() + c * dim * r;
    for (size_t i = 0; i < dim; ++i) {
      double v = centres[c * dim + i] + o.noise * g.Next();
      for (size_t j = 0; j < r; ++j) v += b[i * r + j] * z[j];
      x[i] = static_cast<float>(v);
    }
  }
  if (o.normalize) NormalizeRows(&out);
  return out;
}

void NormalizeRows(VectorSet* set) {
  for (size_t i = 0; i < set->n; ++i) {
    float* x = set->row(i);
    double s = 0;
    for (size_t j = 0; j < set->dim; ++j) s += double{x[j]} * x[j];
    if (s <= 0) continue;
    const float inv = static_cast<float>(1.0 / std::sqrt(s));
    for (size_t j = 0; j < set->dim; ++j) x[j] *= inv;
  }
}

absl::StatusOr<VectorSet> ReadFvecs(const std::string& path, size_t max_rows) {
  auto bytes = ReadWholeFile(path);
  if (!bytes.ok()) return bytes.status();
  VectorSet set;
  std::vector<float> data;
  absl::Status bad = absl::OkStatus();
  auto st = ParseVecs(path, *bytes, 4, max_rows, &set.dim, [&](size_t row, const char* p) {
    const size_t at = data.size();
    int32_t d;
    std::memcpy(&d, p - 4, 4);
    data.resize(at + d);
    std::memcpy(data.data() + at, p, static_cast<size_t>(d) * 4);
    if (bad.ok()) {
      for (int32_t i = 0; i < d; ++i) {
        if (!std::isfinite(data[at + i])) {
          bad = absl::InvalidArgumentError(fmt::format("'{}': row {} has a non-finite value", path, row));
          break;
        }
      }
    }
  });
  if (!st.ok()) return st;
  if (!bad.ok()) return bad;
  set.data = std::move(data);
  set.n = set.data.size() / set.dim;
  return set;
}

absl::StatusOr<VectorSet> ReadBvecs(const std::string& path, size_t max_rows) {
  auto bytes = ReadWholeFile(path);
  if (!bytes.ok()) return bytes.status();
  VectorSet set;
  std::vector<float> data;
  auto st = ParseVecs(path, *bytes, 1, max_rows, &set.dim, [&](size_t, const char* p) {
    int32_t d;
    std::memcpy(&d, p - 4, 4);
    for (int32_t i = 0; i < d; ++i) data.push_back(static_cast<float>(static_cast<uint8_t>(p[i])));
  });
  if (!st.ok()) return st;
  set.data = std::move(data);
  set.n = set.data.size() / set.dim;
  return set;
}

absl::StatusOr<VectorSet> ReadVecs(const std::string& path, size_t max_rows) {
  if (EndsWith(Lower(path), ".bvecs")) return ReadBvecs(path, max_rows);
  return ReadFvecs(path, max_rows);
}

absl::StatusOr<std::vector<std::vector<uint32_t>>> ReadIvecs(const std::string& path, size_t max_rows) {
  auto bytes = ReadWholeFile(path);
  if (!bytes.ok()) return bytes.status();
  std::vector<std::vector<uint32_t>> rows;
  size_t dim = 0;
  absl::Status bad = absl::OkStatus();
  auto st = ParseVecs(path, *bytes, 4, max_rows, &dim, [&](size_t row, const char* p) {
    int32_t d;
    std::memcpy(&d, p - 4, 4);
    std::vector<uint32_t> r(d);
    for (int32_t i = 0; i < d; ++i) {
      int32_t v;
      std::memcpy(&v, p + 4 * i, 4);
      if (v < 0 && bad.ok()) {
        bad = absl::InvalidArgumentError(fmt::format("'{}': row {} holds a negative id {}", path, row, v));
      }
      r[i] = static_cast<uint32_t>(v);
    }
    rows.push_back(std::move(r));
  });
  if (!st.ok()) return st;
  if (!bad.ok()) return bad;
  return rows;
}

absl::Status WriteFvecs(const std::string& path, const VectorSet& set) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  const int32_t d = static_cast<int32_t>(set.dim);
  for (size_t i = 0; i < set.n && out; ++i) {
    out.write(reinterpret_cast<const char*>(&d), 4);
    out.write(reinterpret_cast<const char*>(set.row(i)), static_cast<std::streamsize>(set.dim * 4));
  }
  out.close();
  if (!out) return absl::InternalError(fmt::format("cannot write '{}': {}", path, std::strerror(errno)));
  return absl::OkStatus();
}

absl::Status WriteIvecs(const std::string& path, const std::vector<std::vector<uint32_t>>& rows) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  for (size_t i = 0; i < rows.size() && out; ++i) {
    const int32_t d = static_cast<int32_t>(rows[i].size());
    out.write(reinterpret_cast<const char*>(&d), 4);
    out.write(reinterpret_cast<const char*>(rows[i].data()), static_cast<std::streamsize>(rows[i].size() * 4));
  }
  out.close();
  if (!out) return absl::InternalError(fmt::format("cannot write '{}': {}", path, std::strerror(errno)));
  return absl::OkStatus();
}

std::vector<std::vector<uint32_t>> ExactGroundTruth(const VectorSet& base, const VectorSet& queries,
                                                    vector::Metric metric, size_t k, int threads,
                                                    std::span<const uint8_t> allowed) {
  std::vector<std::vector<uint32_t>> out(queries.n);
  const std::span<const float> qs(queries.data);
  const size_t nthreads = static_cast<size_t>(std::max(1, threads));
  if (allowed.empty()) {
    auto knn = vector::ExactKnn(base.data, base.dim, qs, metric, k, nthreads);
    for (size_t q = 0; q < knn.size(); ++q) {
      for (const auto& nb : knn[q]) out[q].push_back(static_cast<uint32_t>(nb.id));
    }
    return out;
  }
  // Filtered: exact search over the allowed rows, gathered, then mapped back to ids.
  std::vector<uint32_t> ids;
  std::vector<float> rows;
  for (size_t i = 0; i < base.n && i < allowed.size(); ++i) {
    if (!allowed[i]) continue;
    ids.push_back(static_cast<uint32_t>(i));
    rows.insert(rows.end(), base.row(i), base.row(i) + base.dim);
  }
  if (ids.empty()) return out;
  auto knn = vector::ExactKnn(rows, base.dim, qs, metric, k, nthreads);
  for (size_t q = 0; q < knn.size(); ++q) {
    for (const auto& nb : knn[q]) out[q].push_back(ids[nb.id]);
  }
  return out;
}

uint64_t GroundTruthKey(const VectorSet& base, const VectorSet& queries, vector::Metric metric, size_t k) {
  auto bytes = [](const VectorSet& s) {
    return std::string_view(reinterpret_cast<const char*>(s.data.data()), s.data.size() * sizeof(float));
  };
  const uint64_t parts[6] = {Hash64(bytes(base)), Hash64(bytes(queries)), base.dim,
                             static_cast<uint64_t>(metric), k, 1 /* format version */};
  return Hash64(std::string_view(reinterpret_cast<const char*>(parts), sizeof(parts)));
}

absl::StatusOr<std::vector<std::vector<uint32_t>>> CachedGroundTruth(const VectorSet& base,
                                                                     const VectorSet& queries,
                                                                     vector::Metric metric, size_t k,
                                                                     int threads, const std::string& cache_dir,
                                                                     bool* cached) {
  const std::string path =
      fmt::format("{}/gt-{:016x}.ivecs", cache_dir, GroundTruthKey(base, queries, metric, k));
  const size_t want = std::min(k, base.n);
  if (std::filesystem::exists(path)) {
    auto rows = ReadIvecs(path);
    if (rows.ok() && rows->size() == queries.n &&
        std::all_of(rows->begin(), rows->end(), [&](const auto& r) { return r.size() == want; })) {
      if (cached) *cached = true;
      return rows;
    }
  }
  if (cached) *cached = false;
  auto gt = ExactGroundTruth(base, queries, metric, k, threads);
  std::error_code ec;
  std::filesystem::create_directories(cache_dir, ec);
  const std::string tmp = path + ".tmp";
  if (WriteIvecs(tmp, gt).ok()) std::filesystem::rename(tmp, path, ec);  // a cache: failure is not an error
  return gt;
}

double RecallAtK(std::span<const uint64_t> found, std::span<const uint32_t> truth, size_t k) {
  const size_t kt = std::min(k, truth.size());
  if (kt == 0) return 1.0;
  size_t hits = 0;
  for (size_t i = 0; i < found.size() && i < k; ++i) {
    for (size_t j = 0; j < kt; ++j) {
      if (truth[j] == found[i]) {
        ++hits;
        break;
      }
    }
  }
  return static_cast<double>(hits) / static_cast<double>(kt);
}

uint32_t FilterAttribute(uint64_t id, uint64_t seed) { return static_cast<uint32_t>(Hash64(id, seed) >> 32); }

std::vector<uint8_t> AllowedMask(size_t n, double selectivity, uint64_t seed) {
  const double limit = std::clamp(selectivity, 0.0, 1.0) * 4294967296.0;
  std::vector<uint8_t> mask(n);
  for (size_t i = 0; i < n; ++i) mask[i] = static_cast<double>(FilterAttribute(i, seed)) < limit;
  return mask;
}

absl::StatusOr<RecordFormat> ParseRecordFormat(const std::string& name) {
  const std::string n = Lower(name);
  if (n == "auto" || n.empty()) return RecordFormat::kAuto;
  if (n == "fvecs") return RecordFormat::kFvecs;
  if (n == "npy") return RecordFormat::kNpy;
  if (n == "csv") return RecordFormat::kCsv;
  if (n == "jsonl" || n == "ndjson" || n == "json") return RecordFormat::kJsonLines;
  return absl::InvalidArgumentError(fmt::format("unknown input format '{}' (expected fvecs, npy, csv or jsonl)", name));
}

RecordFormat DetectRecordFormat(const std::string& path) {
  const std::string p = Lower(path);
  if (EndsWith(p, ".fvecs")) return RecordFormat::kFvecs;
  if (EndsWith(p, ".npy")) return RecordFormat::kNpy;
  if (EndsWith(p, ".jsonl") || EndsWith(p, ".ndjson") || EndsWith(p, ".json")) return RecordFormat::kJsonLines;
  return RecordFormat::kCsv;
}

absl::StatusOr<std::vector<VectorRecord>> ReadRecords(const std::string& path, RecordFormat format,
                                                      const std::function<void(uint64_t)>& progress) {
  if (format == RecordFormat::kAuto) format = DetectRecordFormat(path);
  if (format == RecordFormat::kNpy) return ReadNpy(path);
  if (format == RecordFormat::kFvecs) {
    auto set = ReadFvecs(path);
    if (!set.ok()) return set.status();
    std::vector<VectorRecord> out(set->n);
    for (size_t i = 0; i < set->n; ++i) {
      out[i].id = i;
      out[i].vector.assign(set->row(i), set->row(i) + set->dim);
    }
    return out;
  }
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(fmt::format("cannot open '{}': {}", path, std::strerror(errno)));
  const std::string name = BaseName(path);
  std::vector<VectorRecord> out;
  std::string line;
  uint64_t line_no = 0, bytes = 0;
  size_t dim = 0;
  while (std::getline(in, line)) {
    ++line_no;
    bytes += line.size() + 1;
    if (progress && line_no % 65536 == 0) progress(bytes);
    if (Trim(line).empty()) continue;
    const std::string where = fmt::format("{}:{}", name, line_no);
    VectorRecord rec;
    if (format == RecordFormat::kJsonLines) {
      absl::Status st = ParseJsonLine(where, line, &rec);
      if (!st.ok()) return st;
    } else {
      std::string_view rest(line);
      size_t comma = rest.find(',');
      const std::string_view id_text = rest.substr(0, comma);
      if (!ParseUint64(id_text, &rec.id)) {
        if (out.empty() && line_no == 1) continue;  // a header line
        return absl::InvalidArgumentError(
            fmt::format("{}: id '{}' is not a non-negative integer", where, std::string(Trim(id_text))));
      }
      size_t field = 1;
      while (comma != std::string_view::npos) {
        rest.remove_prefix(comma + 1);
        comma = rest.find(',');
        const std::string_view v = rest.substr(0, comma);
        float f;
        if (!ParseFloat(v, &f)) {
          return absl::InvalidArgumentError(
              fmt::format("{}: column {}: '{}' is not a finite number", where, field + 1, std::string(Trim(v))));
        }
        rec.vector.push_back(f);
        ++field;
      }
    }
    if (rec.vector.empty()) return absl::InvalidArgumentError(fmt::format("{}: the vector is empty", where));
    if (dim == 0) dim = rec.vector.size();
    if (rec.vector.size() != dim) {
      return absl::InvalidArgumentError(fmt::format("{}: has {} values, expected {} (as on the first record)",
                                                    where, rec.vector.size(), dim));
    }
    out.push_back(std::move(rec));
  }
  if (in.bad()) return absl::DataLossError(fmt::format("cannot read '{}'", path));
  if (progress) progress(bytes);
  if (out.empty()) return absl::InvalidArgumentError(fmt::format("{}: no records", name));
  return out;
}

absl::StatusOr<std::vector<float>> ParseVectorText(const std::string& text) {
  std::vector<float> out;
  std::string_view rest = Trim(text);
  if (!rest.empty() && rest.front() == '[') rest.remove_prefix(1);
  if (!rest.empty() && rest.back() == ']') rest.remove_suffix(1);
  size_t i = 0;
  while (true) {
    const size_t comma = rest.find(',');
    const std::string_view v = rest.substr(0, comma);
    float f;
    if (!ParseFloat(v, &f)) {
      return absl::InvalidArgumentError(
          fmt::format("value {} ('{}') is not a finite number", i + 1, std::string(Trim(v))));
    }
    out.push_back(f);
    ++i;
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  return out;
}

void ParallelFor(size_t n, int threads, const std::function<void(size_t)>& fn,
                 const std::function<void(size_t)>& progress) {
  std::atomic<size_t> next{0}, done{0};
  constexpr size_t kChunk = 64;
  auto worker = [&] {
    for (;;) {
      const size_t b = next.fetch_add(kChunk);
      if (b >= n) break;
      const size_t e = std::min(n, b + kChunk);
      for (size_t i = b; i < e; ++i) fn(i);
      const size_t now = done.fetch_add(e - b) + (e - b);
      if (progress) progress(now);
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < std::max(1, threads); ++t) pool.emplace_back(worker);
  worker();
  for (auto& t : pool) t.join();
}

}  // namespace cairn::bench
