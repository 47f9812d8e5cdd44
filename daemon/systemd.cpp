#include "daemon/systemd.hpp"

#include <fcntl.h>
#include <systemd/sd-daemon.h>
#include <time.h>

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>

#include <fmt/format.h>

namespace portico {

namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

// Messages kept while the reader is behind: enough for READY, RELOADING and
// STOPPING to survive a burst of STATUS lines.
constexpr std::size_t max_pending = 16;

}  // namespace

SystemdNotifier::SystemdNotifier(asio::io_context& io, std::function<std::string()> status)
    : timer_(io), retry_(io), status_(std::move(status)) {
  // An absolute path, or "@name" for an abstract socket, as sd_notify(3).
  const char* path = std::getenv("NOTIFY_SOCKET");
  if (path == nullptr) return;
  const std::string_view name(path);
  if ((name.size() < 2 || (name[0] != '/' && name[0] != '@')) || name.size() >= sizeof address_.sun_path) return;
  address_.sun_family = AF_UNIX;
  std::memcpy(address_.sun_path, name.data(), name.size());
  if (name[0] == '@') address_.sun_path[0] = '\0';
  address_size_ = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name.size() + (name[0] == '/' ? 1 : 0));
  fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  enabled_ = fd_ >= 0;
  std::uint64_t usec = 0;
  if (enabled_ && sd_watchdog_enabled(0, &usec) > 0) watchdog_ = std::chrono::microseconds(usec);
}

SystemdNotifier::~SystemdNotifier() {
  for (const auto& message : pending_) {
    if (message.fd >= 0) ::close(message.fd);
  }
  if (fd_ >= 0) ::close(fd_);
}

bool SystemdNotifier::try_send(const Message& message) {
  iovec data{const_cast<char*>(message.text.data()), message.text.size()};
  msghdr header{};
  header.msg_name = &address_;
  header.msg_namelen = address_size_;
  header.msg_iov = &data;
  header.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  if (message.fd >= 0) {
    header.msg_control = control;
    header.msg_controllen = sizeof control;
    cmsghdr* rights = CMSG_FIRSTHDR(&header);
    rights->cmsg_level = SOL_SOCKET;
    rights->cmsg_type = SCM_RIGHTS;
    rights->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(rights), &message.fd, sizeof(int));
  }
  const ssize_t n = ::sendmsg(fd_, &header, MSG_DONTWAIT | MSG_NOSIGNAL);
  // Any other error (no socket there any more) will not pass by waiting.
  const bool done = n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOBUFS);
  if (done && message.fd >= 0) ::close(message.fd);
  return done;
}

void SystemdNotifier::send(std::string text, int fd) {
  if (!enabled_) {
    if (fd >= 0) ::close(fd);
    return;
  }
  Message message{std::move(text), fd};
  if (pending_.empty() && try_send(message)) return;
  if (pending_.size() == max_pending) {
    if (pending_.front().fd >= 0) ::close(pending_.front().fd);
    pending_.pop_front();
  }
  pending_.push_back(std::move(message));
  retry_later();
}

void SystemdNotifier::store_sockets(const std::vector<Server::ListeningSocket>& sockets) {
  if (!enabled_) return;
  std::vector<std::string> now;
  for (const auto& socket : sockets) {
    now.push_back(socket.name);
    if (std::find(stored_.begin(), stored_.end(), socket.name) != stored_.end()) continue;
    // The store gets a descriptor of its own; ours stays the listener's.
    const int copy = ::fcntl(socket.fd, F_DUPFD_CLOEXEC, 3);
    if (copy >= 0) send(fmt::format("FDSTORE=1\nFDNAME={}", socket.name), copy);
  }
  std::vector<std::string> gone;
  for (const auto& name : stored_) {
    if (std::find(now.begin(), now.end(), name) == now.end()) gone.push_back(name);
  }
  stored_ = std::move(now);
  forget_sockets(gone);
}

void SystemdNotifier::forget_sockets(const std::vector<std::string>& names) {
  for (const auto& name : names) send(fmt::format("FDSTOREREMOVE=1\nFDNAME={}", name));
}

void SystemdNotifier::retry_later() {
  if (retrying_) return;
  retrying_ = true;
  retry_.expires_after(50ms);
  retry_.async_wait([this](boost::system::error_code ec) {
    retrying_ = false;
    if (!ec) flush();
  });
}

void SystemdNotifier::flush() {
  while (!pending_.empty() && try_send(pending_.front())) pending_.pop_front();
  if (!pending_.empty()) retry_later();
}

void SystemdNotifier::ready(bool new_main_process) {
  send((new_main_process ? fmt::format("MAINPID={}\n", getpid()) : std::string()) + "READY=1\nSTATUS=" + status_());
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

std::vector<Server::InheritedSocket> inherited_listen_sockets() {
  std::vector<Server::InheritedSocket> sockets;
  char** names = nullptr;
  const int n = sd_listen_fds_with_names(1, &names);
  for (int i = 0; i < n; ++i) {
    const int fd = SD_LISTEN_FDS_START + i;
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    sockets.push_back({fd, names != nullptr && names[i] != nullptr ? names[i] : "unknown"});
  }
  if (names != nullptr) {
    for (int i = 0; i < n; ++i) std::free(names[i]);
    std::free(names);
  }
  return sockets;
}

}  // namespace portico
