// A private mosquitto broker on a free loopback port, for tests and for
// `cairn demo`: nothing outside this machine can reach it.
//
// Start() writes a config (listener <port> 127.0.0.1, anonymous, no
// persistence) into a fresh temporary folder, runs `mosquitto -c` (the binary
// from /usr/sbin, /usr/local/sbin or $PATH; scripts/setup installs it), and
// waits until the port accepts connections. Stop() kills the broker and reaps
// it; Restart() stops it and starts it again on the same port. The destructor
// stops it and removes the folder; the child also dies with this process
// (PR_SET_PDEATHSIG) if that crashes.
//
// Thread-safety: one thread drives an instance.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace cairn::connect {

// A TCP port on 127.0.0.1 that was free a moment ago (-1 when none).
int PickFreeLoopbackPort();
// Whether something accepts TCP connections on 127.0.0.1:port.
bool LoopbackPortAccepts(int port);
// The mosquitto binary's path, or "" when it is not installed.
std::string FindMosquitto();

class LocalMosquitto {
 public:
  // Starts a broker on `port` (0: a free one). FailedPrecondition when the
  // binary is missing.
  static absl::StatusOr<std::unique_ptr<LocalMosquitto>> Start(int port = 0);
  ~LocalMosquitto();
  LocalMosquitto(const LocalMosquitto&) = delete;
  LocalMosquitto& operator=(const LocalMosquitto&) = delete;

  int port() const { return port_; }
  bool running() const { return pid_ > 0; }
  const std::string& binary() const { return binary_; }

  // Kills the broker (SIGKILL: no clean shutdown, like a crash) and reaps it.
  void Stop();
  // Stops the broker and starts it again on the same port.
  absl::Status Restart();

 private:
  LocalMosquitto(std::string binary, int port) : binary_(std::move(binary)), port_(port) {}
  absl::Status WriteConfig();
  absl::Status Launch();

  std::string binary_;
  int port_;
  pid_t pid_ = -1;
  std::string dir_;
  std::string config_;
};

}  // namespace cairn::connect
