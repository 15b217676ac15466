// Test fixture: a real mosquitto broker on a free loopback port. The broker
// itself is cairn/connect/local_broker.h (`cairn demo` runs one too); these
// names keep the tests' spelling.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "cairn/connect/local_broker.h"
#include "fmt/format.h"  // the tests format their payloads

namespace cairn::connect::testing {

using MosquittoBroker = ::cairn::connect::LocalMosquitto;
using ::cairn::connect::LoopbackPortAccepts;
using ::cairn::connect::PickFreeLoopbackPort;

}  // namespace cairn::connect::testing
