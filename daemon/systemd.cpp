#include "daemon/systemd.hpp"

#include <fcntl.h>
#include <systemd/sd-daemon.h>
#include <time.h>

#include <cstdlib>

#include <fmt/format.h>

namespace portico {

namespace asio = boost::asio;
using namespace std::chrono_literals;

SystemdNotifier::SystemdNotifier(asio::io_context& io, std::function<std::string()> status)
    : timer_(io), status_(std::move(status)), enabled_(std::getenv("NOTIFY_SOCKET") != nullptr) {
  std::uint64_t usec = 0;
  if (enabled_ && sd_watchdog_enabled(0, &usec) > 0) watchdog_ = std::chrono::microseconds(usec);
}

void SystemdNotifier::send(const std::string& message) {
  if (enabled_) sd_notify(0, message.c_str());
}

void SystemdNotifier::ready() {
  send("READY=1\nSTATUS=" + status_());
  if (enabled_ && !stopped_) {
    next_status_ = std::chrono::steady_clock::now() + 5s;
    tick();
  }
}

void SystemdNotifier::reloading() {
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  const auto usec = static_cast<std::uint64_t>(now.tv_sec) * 1'000'000 + static_cast<std::uint64_t>(now.tv_nsec) / 1000;
  send(fmt::format("RELOADING=1\nMONOTONIC_USEC={}", usec));
}

void SystemdNotifier::stopping() {
  stopped_ = true;
  timer_.cancel();
  send("STOPPING=1\nSTATUS=" + status_());
}

void SystemdNotifier::status() { send("STATUS=" + status_()); }

// One timer serves both duties: a watchdog ping at half the interval
// systemd asked for, and a fresh STATUS= line every five seconds.
void SystemdNotifier::tick() {
  const auto now = std::chrono::steady_clock::now();
  std::string message;
  if (watchdog_.count() > 0) message = "WATCHDOG=1";
  if (now >= next_status_) {
    if (!message.empty()) message += '\n';
    message += "STATUS=" + status_();
    next_status_ = now + 5s;
  }
  if (!message.empty()) send(message);
  const auto interval = watchdog_.count() > 0 ? std::min<std::chrono::steady_clock::duration>(watchdog_ / 2, 5s)
                                              : std::chrono::steady_clock::duration(5s);
  timer_.expires_after(interval);
  timer_.async_wait([this](boost::system::error_code ec) {
    if (!ec && !stopped_) tick();
  });
}

std::vector<int> inherited_listen_fds() {
  std::vector<int> fds;
  const int n = sd_listen_fds(1);
  for (int i = 0; i < n; ++i) {
    const int fd = SD_LISTEN_FDS_START + i;
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    fds.push_back(fd);
  }
  return fds;
}

}  // namespace portico
