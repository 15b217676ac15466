// Test fixture: a real mosquitto broker on a free loopback port.
//
// Start() writes a config (listener <port> 127.0.0.1, anonymous, no
// persistence) into a fresh temporary folder, runs `/usr/sbin/mosquitto -c`,
// and waits until the port accepts connections. Stop() kills the broker and
// reaps it; Restart() stops it and starts it again on the same port. The
// destructor stops it, so a failing test leaves no broker behind; the child
// also dies with the test process (PR_SET_PDEATHSIG) if that crashes.
//
// Thread-safety: one thread drives an instance.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "fmt/format.h"

namespace cairn::connect::testing {

// A TCP port on 127.0.0.1 that was free a moment ago.
inline int PickFreeLoopbackPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  int port = -1;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0)
    port = ntohs(addr.sin_port);
  ::close(fd);
  return port;
}

// Whether something accepts TCP connections on 127.0.0.1:port.
inline bool LoopbackPortAccepts(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  ::close(fd);
  return ok;
}

class MosquittoBroker {
 public:
  static constexpr const char* kBinary = "/usr/sbin/mosquitto";

  // Starts a broker on `port` (0: a free one).
  static absl::StatusOr<std::unique_ptr<MosquittoBroker>> Start(int port = 0) {
    if (::access(kBinary, X_OK) != 0)
      return absl::FailedPreconditionError(fmt::format("{} not found: run scripts/setup", kBinary));
    if (port == 0) port = PickFreeLoopbackPort();
    if (port <= 0) return absl::InternalError("no free loopback port");
    std::unique_ptr<MosquittoBroker> broker(new MosquittoBroker(port));
    absl::Status s = broker->WriteConfig();
    if (s.ok()) s = broker->Launch();
    if (!s.ok()) return s;
    return broker;
  }

  ~MosquittoBroker() {
    Stop();
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }
  MosquittoBroker(const MosquittoBroker&) = delete;
  MosquittoBroker& operator=(const MosquittoBroker&) = delete;

  int port() const { return port_; }
  bool running() const { return pid_ > 0; }

  // Kills the broker (SIGKILL: no clean shutdown, like a crash) and reaps it.
  void Stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }

  // Stops the broker and starts it again on the same port.
  absl::Status Restart() {
    Stop();
    return Launch();
  }

 private:
  explicit MosquittoBroker(int port) : port_(port) {}

  absl::Status WriteConfig() {
    char tmpl[] = "/tmp/cairn-mosquitto-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) return absl::InternalError("cannot create a temporary folder for mosquitto");
    dir_ = tmpl;
    // Run as root, mosquitto drops to its own user, which must be able to write the log.
    std::error_code ec;
    std::filesystem::permissions(dir_, std::filesystem::perms::all, std::filesystem::perm_options::replace, ec);
    config_ = dir_ + "/mosquitto.conf";
    std::ofstream conf(config_);
    conf << "listener " << port_ << " 127.0.0.1\n"
         << "allow_anonymous true\n"
         << "persistence false\n"
         << "log_dest file " << dir_ << "/mosquitto.log\n"
         << "max_queued_messages 100000\n";
    conf.close();
    if (!conf) return absl::InternalError(fmt::format("cannot write {}", config_));
    return absl::OkStatus();
  }

  absl::Status Launch() {
    pid_t parent = ::getpid();
    pid_t pid = ::fork();
    if (pid < 0) return absl::InternalError("fork failed");
    if (pid == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(1);
      ::execl(kBinary, kBinary, "-c", config_.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    pid_ = pid;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (std::chrono::steady_clock::now() < deadline) {
      if (LoopbackPortAccepts(port_)) return absl::OkStatus();
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return absl::InternalError(
            fmt::format("mosquitto exited at start (status {}); see {}/mosquitto.log", status, dir_));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    Stop();
    return absl::DeadlineExceededError(fmt::format("mosquitto did not accept on port {} within 5 s", port_));
  }

  int port_;
  pid_t pid_ = -1;
  std::string dir_;
  std::string config_;
};

}  // namespace cairn::connect::testing
