// Test fixture: librdkafka's built-in mock Kafka cluster, in this process.
//
// Start() creates a cluster of `brokers` mock brokers listening on loopback
// ports; bootstraps() is its bootstrap.servers. CreateTopic() makes a topic and
// Produce() writes messages synchronously (waits for every delivery report).
// Everything is torn down in the destructor. No external broker is involved.
//
// Thread-safety: one thread drives an instance.
#pragma once

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "fmt/format.h"

namespace cairn::connect::testing {

class KafkaMockCluster {
 public:
  struct Message {
    std::string payload;
    std::optional<std::string> key;
    int32_t partition = RD_KAFKA_PARTITION_UA;  // any
  };

  static absl::StatusOr<std::unique_ptr<KafkaMockCluster>> Start(int brokers = 1) {
    std::unique_ptr<KafkaMockCluster> c(new KafkaMockCluster());
    char err[512];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "3", err, sizeof(err));
    c->owner_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    if (c->owner_ == nullptr) {
      rd_kafka_conf_destroy(conf);
      return absl::InternalError(fmt::format("mock cluster handle: {}", err));
    }
    c->cluster_ = rd_kafka_mock_cluster_new(c->owner_, brokers);
    if (c->cluster_ == nullptr) return absl::InternalError("rd_kafka_mock_cluster_new failed");
    c->bootstraps_ = rd_kafka_mock_cluster_bootstraps(c->cluster_);

    conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", c->bootstraps_.c_str(), err, sizeof(err));
    rd_kafka_conf_set(conf, "log_level", "3", err, sizeof(err));
    rd_kafka_conf_set_opaque(conf, c.get());
    rd_kafka_conf_set_dr_msg_cb(conf, [](rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
      auto* self = static_cast<KafkaMockCluster*>(opaque);
      if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR && self->delivery_error_.empty())
        self->delivery_error_ = rd_kafka_err2str(m->err);
    });
    c->producer_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    if (c->producer_ == nullptr) {
      rd_kafka_conf_destroy(conf);
      return absl::InternalError(fmt::format("mock cluster producer: {}", err));
    }
    return c;
  }

  ~KafkaMockCluster() {
    if (producer_) rd_kafka_destroy(producer_);
    if (cluster_) rd_kafka_mock_cluster_destroy(cluster_);
    if (owner_) rd_kafka_destroy(owner_);
  }
  KafkaMockCluster(const KafkaMockCluster&) = delete;
  KafkaMockCluster& operator=(const KafkaMockCluster&) = delete;

  const std::string& bootstraps() const { return bootstraps_; }

  absl::Status CreateTopic(const std::string& topic, int partitions) {
    rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(cluster_, topic.c_str(), partitions, 1);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
      return absl::InternalError(fmt::format("create topic {}: {}", topic, rd_kafka_err2str(err)));
    return absl::OkStatus();
  }

  // The next `n` Produce requests (Kafka ApiKey 0) fail with `err`.
  void FailNextProduceRequests(size_t n, rd_kafka_resp_err_t err) {
    std::vector<rd_kafka_resp_err_t> errs(n, err);
    rd_kafka_mock_push_request_errors_array(cluster_, 0, n, errs.data());
  }

  absl::Status Produce(const std::string& topic, const std::vector<Message>& messages) {
    for (const Message& m : messages) {
      rd_kafka_resp_err_t err = rd_kafka_producev(
          producer_, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_PARTITION(m.partition),
          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
          RD_KAFKA_V_VALUE(const_cast<char*>(m.payload.data()), m.payload.size()),
          RD_KAFKA_V_KEY((m.key ? m.key->data() : nullptr), (m.key ? m.key->size() : 0)), RD_KAFKA_V_END);
      if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
        return absl::InternalError(fmt::format("produce to {}: {}", topic, rd_kafka_err2str(err)));
    }
    if (rd_kafka_flush(producer_, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR)
      return absl::DeadlineExceededError("mock cluster: flush timed out");
    if (!delivery_error_.empty()) return absl::InternalError("mock cluster delivery: " + delivery_error_);
    return absl::OkStatus();
  }

 private:
  KafkaMockCluster() = default;
  rd_kafka_t* owner_ = nullptr;
  rd_kafka_mock_cluster_t* cluster_ = nullptr;
  rd_kafka_t* producer_ = nullptr;
  std::string bootstraps_;
  std::string delivery_error_;
};

}  // namespace cairn::connect::testing
