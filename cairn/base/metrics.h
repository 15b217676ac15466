// cairn/base/metrics.h — the process's metrics, in Prometheus form.
//
// Subsystems register counters, gauges and histograms here; the node server
// exposes Serialize() at /metrics. Registration and updates are thread-safe
// (prometheus-cpp's guarantees). Metric references stay valid for the lifetime
// of the registry.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

namespace cairn {

using MetricLabels = std::map<std::string, std::string>;

class MetricsRegistry {
 public:
  MetricsRegistry();
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;

  // Returns the metric with this name and labels, creating it on first use.
  // Names follow Prometheus conventions: cairn_<subsystem>_<what>_<unit>.
  prometheus::Counter& Counter(const std::string& name, const std::string& help,
                               const MetricLabels& labels = {});
  prometheus::Gauge& Gauge(const std::string& name, const std::string& help,
                           const MetricLabels& labels = {});
  prometheus::Histogram& Histogram(const std::string& name, const std::string& help,
                                   const std::vector<double>& buckets,
                                   const MetricLabels& labels = {});

  // Prometheus text exposition format (version 0.0.4).
  std::string Serialize() const;

  prometheus::Registry& registry() { return *registry_; }

  // The process-wide registry.
  static MetricsRegistry& Default();

 private:
  std::shared_ptr<prometheus::Registry> registry_;
};

}  // namespace cairn
