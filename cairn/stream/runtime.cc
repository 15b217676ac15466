// Building a pipeline's tasks (chains of operators, channels, restored state)
// and their run loops: sources, operators with barrier alignment and watermarks.
#include "cairn/stream/internal/runtime.h"

namespace cairn::stream {

absl::Status Pipeline::Runtime::Build(const std::optional<std::string>& restore_path) {
  const size_t nodes = g_.nodes.size();
  if (nodes == 0) return absl::InvalidArgumentError("the pipeline has no operators");
  for (const Node& n : g_.nodes) {
    if (n.parallelism < 1)
      return absl::InvalidArgumentError(fmt::format("operator '{}': parallelism must be at least 1", n.name));
    if (!n.is_source && n.in_edges.empty())
      return absl::InvalidArgumentError(fmt::format("operator '{}' has no input", n.name));
  }
  // Channels: every non-chained input edge contributes one channel per upstream subtask.
  edge_channel_base_.assign(g_.edges.size(), -1);
  std::vector<int> channels(nodes, 0);
  for (size_t e = 0; e < g_.edges.size(); ++e) {
    const Edge& edge = g_.edges[e];
    if (Chained(g_, edge)) continue;
    edge_channel_base_[e] = channels[edge.to];
    channels[edge.to] += g_.nodes[edge.from].parallelism;
  }
  node_gates_.assign(nodes, {});
  for (size_t n = 0; n < nodes; ++n) {
    if (channels[n] == 0) continue;
    for (int s = 0; s < g_.nodes[n].parallelism; ++s) {
      gates_.push_back(std::make_unique<InputGate>(channels[n], opt_.queue_batches));
      node_gates_[n].push_back(gates_.back().get());
    }
  }
  // Chains: a node whose only input is a chained edge runs in its producer's task.
  std::vector<int> head(nodes, -1);
  for (size_t n = 0; n < nodes; ++n) {  // nodes are added in topological order
    const Node& node = g_.nodes[n];
    head[n] = static_cast<int>(n);
    if (node.in_edges.size() == 1 && Chained(g_, g_.edges[node.in_edges[0]])) head[n] = head[g_.edges[node.in_edges[0]].from];
  }
  std::string state_base = opt_.state.rocksdb_dir;
  for (size_t h = 0; h < nodes; ++h) {
    if (head[h] != static_cast<int>(h)) continue;
    for (int s = 0; s < g_.nodes[h].parallelism; ++s) {
      auto task = std::make_unique<Task>();
      task->head = static_cast<int>(h);
      task->subtask = s;
      std::vector<OpInstance*> by_node(nodes, nullptr);
      for (size_t n = h; n < nodes; ++n) {
        if (head[n] != static_cast<int>(h)) continue;
        auto oi = std::make_unique<OpInstance>();
        oi->node = static_cast<int>(n);
        oi->subtask = s;
        const Node& node = g_.nodes[n];
        for (int port = 0; port < std::max(1, node.ports); ++port) oi->ports.push_back(std::make_unique<Port>());
        auto& ctx = oi->ctx;
        ctx.name = node.name;
        ctx.subtask = s;
        ctx.parallelism = node.parallelism;
        ctx.clock = opt_.clock;
        ctx.metrics = opt_.metrics;
        ctx.dead_letter = opt_.dead_letter;
        ctx.batch_size = opt_.batch_size;
        ctx.state = opt_.state;
        if (ctx.state.kind == StateBackendKind::kRocksDb)
          ctx.state.rocksdb_dir = fmt::format("{}/{}-{}", state_base, n, s);
        for (auto& port : oi->ports) ctx.outputs.push_back(port.get());
        by_node[n] = oi.get();
        task->ops.push_back(std::move(oi));
      }
      // Wire every output edge of the chain.
      for (auto& oi : task->ops) {
        const Node& node = g_.nodes[oi->node];
        for (int e : node.out_edges) {
          const Edge& edge = g_.edges[e];
          Downstream* d = nullptr;
          if (Chained(g_, edge)) {
            task->owned.push_back(std::make_unique<ChainedDownstream>(this, by_node[edge.to]));
          } else {
            std::vector<InputGate*> targets = node_gates_[edge.to];
            int sender = s;
            Edge effective = edge;
            if (edge.kind == PartitionKind::kForward && g_.nodes[edge.from].parallelism != g_.nodes[edge.to].parallelism)
              effective.kind = PartitionKind::kRebalance;
            auto nd = std::make_unique<NetworkDownstream>(effective, targets, edge_channel_base_[e] + s, sender,
                                                          opt_.batch_size);
            task->network.push_back(nd.get());
            task->owned.push_back(std::move(nd));
          }
          d = task->owned.back().get();
          oi->ports[edge.port]->targets.push_back(d);
        }
      }
      if (!node_gates_[h].empty()) {
        task->gate = node_gates_[h][s];
        int c = task->gate->channels();
        task->channel_wm.assign(c, kMinTime);
        task->channel_idle.assign(c, false);
        task->channel_ended.assign(c, false);
        task->barrier_seen.assign(c, false);
      }
      tasks_.push_back(std::move(task));
    }
  }
  // Open every operator (restoring its state) and every source (rewinding it).
  for (auto& t : tasks_) {
    for (auto& oi : t->ops) {
      const Node& node = g_.nodes[oi->node];
      std::optional<std::string> dir;
      if (restore_path) dir = SubtaskDir(*restore_path, oi->node, oi->subtask);
      if (node.is_source) {
        t->source = node.make_source();
        std::optional<std::string> position;
        if (dir) {
          CAIRN_ASSIGN_OR_RETURN(std::string bytes,
                                 internal::ReadSealedFile(*dir + "/source.bin", kSourceMagic, "source position"));
          ByteReader r(bytes, "source position");
          t->max_ts = r.I64();
          position = std::string(r.String());
          CAIRN_RETURN_IF_ERROR(r.Finish());
        }
        absl::Status s = t->source->Open(oi->ctx, position);
        if (!s.ok()) return absl::Status(s.code(), fmt::format("source '{}': {}", node.name, std::string(s.message())));
      } else {
        oi->op = node.make_operator();
        absl::Status s = oi->op->Open(oi->ctx, dir);
        if (!s.ok())
          return absl::Status(s.code(), fmt::format("operator '{}': {}", node.name, std::string(s.message())));
      }
    }
  }
  return absl::OkStatus();
}

void Pipeline::Runtime::SnapshotChain(Task& t, int64_t id, const std::string& position) {
  std::string base;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (pending_id_ != id) return;  // aborted
    base = pending_path_;
  }
  absl::Status status;
  for (auto& oi : t.ops) {
    std::string dir = SubtaskDir(base, oi->node, oi->subtask);
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) {
      status = absl::InternalError(fmt::format("cannot create {}: {}", dir, ec.message()));
      break;
    }
    if (g_.nodes[oi->node].is_source) {
      ByteWriter w;
      w.I64(t.max_ts);
      w.String(position);
      status = internal::WriteSealedFile(dir + "/source.bin", kSourceMagic, w.data());
    } else {
      status = oi->op->Snapshot(id, dir);
    }
    if (!status.ok()) break;
  }
  Ack(id, status);
}

void Pipeline::Runtime::Ack(int64_t id, const absl::Status& s) {
  std::lock_guard<std::mutex> lock(mu_);
  if (pending_id_ != id) return;
  if (!s.ok() && pending_status_.ok()) pending_status_ = s;
  if (--pending_acks_ == 0) acked_.notify_all();
}

void Pipeline::Runtime::HandleCompletions(Task& t) {
  std::vector<int64_t> done;
  {
    std::lock_guard<std::mutex> lock(t.mu);
    done.swap(t.completed);
  }
  for (int64_t id : done) {
    if (t.source) t.source->NotifyCheckpointComplete(id);
    for (auto& oi : t.ops)
      if (oi->op) {
        oi->op->NotifyCheckpointComplete(id);
        if (!oi->op->status().ok()) Fail(oi->op->status());
      }
  }
}

void Pipeline::Runtime::FinishChain(Task& t) {
  for (auto& oi : t.ops) {
    if (!oi->op) continue;
    absl::Status s = oi->op->Finish();
    if (!s.ok()) {
      Fail(absl::Status(s.code(), fmt::format("operator '{}': {}", g_.nodes[oi->node].name, std::string(s.message()))));
      return;
    }
  }
  FlushNetwork(t);
  for (auto* n : t.network) n->PushEnd();
}

void Pipeline::Runtime::RunSource(Task& t) {
  const Node& node = g_.nodes[t.head];
  OpInstance& head = *t.ops[0];
  EventTime emitted_wm = kMinTime;
  int64_t ooo = node.max_out_of_orderness.count();
  auto idle_since = std::chrono::steady_clock::now();
  bool idle = false;
  auto started = std::chrono::steady_clock::now();
  uint64_t produced = 0;
  while (!stop_.load(std::memory_order_relaxed)) {
    HandleCompletions(t);
    int64_t want = t.inject.load(std::memory_order_acquire);
    if (want > t.injected) {
      t.injected = want;
      FlushNetwork(t);
      SnapshotChain(t, want, t.source->Position());
      for (auto* n : t.network) n->PushBarrier(want);
    }
    EventTime max_time = kMinTime;
    size_t n = 0;
    auto polled = t.source->PollOnce(opt_.batch_size, opt_.poll_wait, &max_time, &n);
    if (!polled.ok()) {
      Fail(absl::Status(polled.status().code(),
                        fmt::format("source '{}': {}", node.name, std::string(polled.status().message()))));
      break;
    }
    if (n > 0) {
      produced += n;
      head.records_out.fetch_add(n, std::memory_order_relaxed);
      t.max_ts = std::max(t.max_ts, max_time);
      idle = false;
      idle_since = std::chrono::steady_clock::now();
      if (t.max_ts != kMinTime) {
        EventTime wm = t.max_ts - ooo - 1;
        if (wm > emitted_wm) {
          emitted_wm = wm;
          head.watermark.store(wm, std::memory_order_relaxed);
          ForwardWatermark(head, wm);
        }
      }
      FlushNetwork(t);
      if (node.max_records_per_second > 0) {
        auto due = started + std::chrono::duration<double>(static_cast<double>(produced) / node.max_records_per_second);
        std::this_thread::sleep_until(std::chrono::time_point_cast<std::chrono::steady_clock::duration>(due));
      }
    }
    if (*polled == PollStatus::kEndOfInput) {
      FlushNetwork(t);
      ForwardWatermark(head, kMaxTime);
      head.watermark.store(kMaxTime, std::memory_order_relaxed);
      t.ended.store(true);
      ended_sources_.fetch_add(1);
      FinishChain(t);
      t.source->Close();
      return;
    }
    if (*polled == PollStatus::kIdle && n == 0 && node.idle_timeout.count() > 0 && !idle &&
        std::chrono::steady_clock::now() - idle_since >= node.idle_timeout) {
      idle = true;
      FlushNetwork(t);
      for (auto* nd : t.network) nd->PushIdle();
    }
  }
  t.source->Close();
}

void Pipeline::Runtime::RunOperator(Task& t) {
  OpInstance& head = *t.ops[0];
  const int channels = t.gate->channels();
  int ended = 0;
  auto recompute_wm = [&]() {
    EventTime low = kMaxTime;
    bool any = false;
    for (int c = 0; c < channels; ++c) {
      if (t.channel_ended[c] || t.channel_idle[c]) continue;
      any = true;
      low = std::min(low, t.channel_wm[c]);
    }
    if (!any) {
      if (ended == channels) {
        low = kMaxTime;
      } else {
        // Every open input is idle: none holds time back, so time advances to the furthest
        // watermark any of them promised. Otherwise the order in which they went idle would
        // decide whether the windows that the last active one closed ever fire.
        low = kMinTime;
        for (int c = 0; c < channels; ++c)
          if (!t.channel_ended[c]) low = std::max(low, t.channel_wm[c]);
      }
    }
    if (low > t.wm) {
      t.wm = low;
      head.op->OnWatermark(low);
      head.watermark.store(low, std::memory_order_relaxed);
      ForwardWatermark(head, low);
    }
  };
  auto barrier_done = [&]() {
    for (int c = 0; c < channels; ++c)
      if (!t.barrier_seen[c] && !t.channel_ended[c]) return false;
    return true;
  };
  while (!stop_.load(std::memory_order_relaxed)) {
    HandleCompletions(t);
    // Processing-time timers of every operator in the chain.
    int64_t now_ms = opt_.clock->NowNanos() / 1'000'000;
    std::optional<int64_t> next_timer;
    for (auto& oi : t.ops) {
      auto nt = oi->op->NextProcessingTimer();
      if (!nt) continue;
      if (*nt <= now_ms) {
        oi->op->OnProcessingTime(now_ms);
        nt = oi->op->NextProcessingTimer();
      }
      if (nt && (!next_timer || *nt < *next_timer)) next_timer = nt;
    }
    FlushNetwork(t);
    auto wait = std::chrono::milliseconds(50);
    if (next_timer) wait = std::min(wait, std::chrono::milliseconds(std::max<int64_t>(1, *next_timer - now_ms)));
    int c = 0;
    Message m;
    if (!t.gate->Pop(wait, &c, &m)) continue;
    switch (m.kind) {
      case Message::Kind::kData:
        t.channel_idle[c] = false;
        head.records_in.fetch_add(m.batch->size(), std::memory_order_relaxed);
        head.op->ProcessBatch(*m.batch);
        if (!head.op->status().ok()) {
          Fail(head.op->status());
          return;
        }
        FlushNetwork(t);
        break;
      case Message::Kind::kWatermark:
        t.channel_idle[c] = false;
        t.channel_wm[c] = std::max(t.channel_wm[c], m.value);
        recompute_wm();
        FlushNetwork(t);
        break;
      case Message::Kind::kIdle:
        t.channel_idle[c] = true;
        recompute_wm();
        FlushNetwork(t);
        break;
      case Message::Kind::kBarrier:
        if (m.value != t.aligning) {
          t.aligning = m.value;
          std::fill(t.barrier_seen.begin(), t.barrier_seen.end(), false);
        }
        t.barrier_seen[c] = true;
        t.gate->SetBlocked(c, true);
        if (barrier_done()) {
          FlushNetwork(t);
          SnapshotChain(t, m.value, "");
          for (auto* nd : t.network) nd->PushBarrier(m.value);
          for (int k = 0; k < channels; ++k) t.gate->SetBlocked(k, false);
        }
        break;
      case Message::Kind::kEnd:
        t.channel_ended[c] = true;
        ++ended;
        if (t.barrier_seen[c] == false && t.aligning > 0 && barrier_done()) {
          // The channel that ended was the last one a barrier waited for.
          FlushNetwork(t);
          SnapshotChain(t, t.aligning, "");
          for (auto* nd : t.network) nd->PushBarrier(t.aligning);
          for (int k = 0; k < channels; ++k) t.gate->SetBlocked(k, false);
        }
        recompute_wm();
        if (ended == channels) {
          FinishChain(t);
          return;
        }
        break;
    }
    for (auto& oi : t.ops)
      if (oi->op && !oi->op->status().ok()) {
        Fail(oi->op->status());
        return;
      }
  }
}

}  // namespace cairn::stream
