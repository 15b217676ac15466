#include "cairn/connect/local_broker.h"

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
#include <string_view>
#include <thread>

#include "fmt/format.h"

namespace cairn::connect {

int PickFreeLoopbackPort() {
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

bool LoopbackPortAccepts(int port) {
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

std::string FindMosquitto() {
  for (const char* p : {"/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"})
    if (::access(p, X_OK) == 0) return p;
  const char* path = std::getenv("PATH");
  if (path == nullptr) return "";
  std::string_view rest(path);
  while (!rest.empty()) {
    size_t colon = rest.find(':');
    std::string_view dir = rest.substr(0, colon);
    rest = colon == std::string_view::npos ? std::string_view() : rest.substr(colon + 1);
    if (dir.empty()) continue;
    std::string candidate = fmt::format("{}/mosquitto", dir);
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

absl::StatusOr<std::unique_ptr<LocalMosquitto>> LocalMosquitto::Start(int port) {
  std::string binary = FindMosquitto();
  if (binary.empty())
    return absl::FailedPreconditionError(
        "mosquitto is not installed (looked in /usr/sbin, /usr/local/sbin and $PATH; scripts/setup installs it)");
  if (port == 0) port = PickFreeLoopbackPort();
  if (port <= 0) return absl::InternalError("no free loopback port");
  std::unique_ptr<LocalMosquitto> broker(new LocalMosquitto(std::move(binary), port));
  absl::Status s = broker->WriteConfig();
  if (s.ok()) s = broker->Launch();
  if (!s.ok()) return s;
  return broker;
}

LocalMosquitto::~LocalMosquitto() {
  Stop();
  std::error_code ec;
  if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
}

void LocalMosquitto::Stop() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
}

absl::Status LocalMosquitto::Restart() {
  Stop();
  return Launch();
}

absl::Status LocalMosquitto::WriteConfig() {
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

absl::Status LocalMosquitto::Launch() {
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) return absl::InternalError("fork failed");
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(1);
    ::execl(binary_.c_str(), binary_.c_str(), "-c", config_.c_str(), static_cast<char*>(nullptr));
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

}  // namespace cairn::connect
