#include "daemon/control_server.hpp"

#include <grp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <optional>
#include <set>
#include <stdexcept>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/basic_socket_acceptor.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <fmt/format.h>

#include <portico/io.hpp>
#include <portico/log_throttle.hpp>
#include <portico/stream.hpp>
#include <portico/text.hpp>

namespace portico {

namespace asio = boost::asio;
using boost::system::error_code;
using control::Status;

namespace {

using Protocol = asio::generic::stream_protocol;

std::string group_name(gid_t gid) {
  std::vector<char> buffer(1024);
  group entry{};
  group* found = nullptr;
  int rc = 0;
  while ((rc = getgrgid_r(gid, &entry, buffer.data(), buffer.size(), &found)) == ERANGE && buffer.size() < 65536) {
    buffer.resize(buffer.size() * 2);
  }
  if (rc != 0 || found == nullptr) return std::to_string(gid);
  return fmt::format("{} ({})", escape_text(entry.gr_name), gid);
}

// The peer's supplementary groups (Linux 4.13 and later); empty when the
// kernel cannot tell.
std::vector<gid_t> peer_groups(int fd) {
  std::vector<gid_t> groups(64);
  for (int attempt = 0; attempt < 2; ++attempt) {
    socklen_t length = static_cast<socklen_t>(groups.size() * sizeof(gid_t));
    if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups.data(), &length) == 0) {
      groups.resize(length / sizeof(gid_t));
      return groups;
    }
    if (errno != ERANGE) break;
    groups.resize(length / sizeof(gid_t) + 1);
  }
  return {};
}

// What a client that is not served gets before the close, without
// waiting: the socket's buffer is empty, a line always fits.
void refuse(int fd, int code, const std::string& message) {
  const std::string answer = control::format_answer(Status{code, message}, {});
  [[maybe_unused]] const ssize_t sent = ::send(fd, answer.data(), answer.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
}

}  // namespace

std::string ControlServer::Peer::describe() const { return fmt::format("uid {} (pid {})", uid, pid); }

// What the accept loop and each client's coroutine share: held by each
// coroutine, so that a frame destroyed with the io_context after the
// server is gone touches nothing freed.
struct ControlServer::Shared {
  Shared(asio::io_context& io, std::shared_ptr<spdlog::logger> log, Handler handler)
      : io(io), acceptor(io), log(std::move(log)), handler(std::move(handler)), flush_timer(io) {}

  asio::io_context& io;
  asio::basic_socket_acceptor<Protocol> acceptor;
  std::shared_ptr<spdlog::logger> log;
  Handler handler;
  gid_t group = 0;
  std::string group_text;
  std::set<Stream*> clients;
  LogThrottle busy_log;
  bool stopped = false;
  // Answers given by the handler and not yet written, and who waits for
  // them all to be (after_answers()).
  std::size_t unsent = 0;
  std::function<void()> flushed;
  asio::steady_timer flush_timer;

  void sent() {
    if (--unsent > 0 || !flushed) return;
    flush_timer.cancel();
    std::exchange(flushed, nullptr)();
  }
};

namespace {

// A client's place among the open ones, for as long as its coroutine runs.
template <typename S>
class Slot {
 public:
  // Taken when the client is accepted: the coroutine that serves it only
  // starts later, after the accept loop may have accepted others.
  Slot(std::shared_ptr<S> shared, Stream* stream) : shared_(std::move(shared)), stream_(stream) {
    shared_->clients.insert(stream_);
  }
  ~Slot() { shared_->clients.erase(stream_); }
  Slot(const Slot&) = delete;
  Slot& operator=(const Slot&) = delete;

 private:
  std::shared_ptr<S> shared_;
  Stream* stream_;
};

// An answer given and not yet written, from the handler's reply until the
// write is over.
template <typename S>
class Unsent {
 public:
  explicit Unsent(std::shared_ptr<S> shared) : shared_(std::move(shared)) {}
  ~Unsent() { shared_->sent(); }
  Unsent(const Unsent&) = delete;
  Unsent& operator=(const Unsent&) = delete;

 private:
  std::shared_ptr<S> shared_;
};

// Waits for the handler's answer, which may come at once or much later;
// nullopt when none came (the daemon stops).
template <typename S>
asio::awaitable<std::optional<ControlServer::Answer>> ask(std::shared_ptr<S> shared, const control::Request& request,
                                                          const ControlServer::Peer& peer) {
  struct Pending {
    explicit Pending(asio::io_context& io) : timer(io) {}
    asio::steady_timer timer;
    std::optional<ControlServer::Answer> answer;
  };
  auto pending = std::make_shared<Pending>(shared->io);
  shared->handler(request, peer, [pending, shared](ControlServer::Answer answer) {
    if (pending->answer) return;
    pending->answer = std::move(answer);
    ++shared->unsent;
    pending->timer.cancel();
  });
  if (!pending->answer) {
    pending->timer.expires_at(asio::steady_timer::time_point::max());
    co_await pending->timer.async_wait(use_tuple);
  }
  co_return std::move(pending->answer);
}

// Writes one answer; false when the client is gone or does not read it.
// The text is the coroutine's own: GCC 12 mishandles temporaries that
// live across a co_await (it destroys them twice).
asio::awaitable<bool> send_answer(Stream& stream, std::string text) {
  const IoResult written = co_await stream.write(asio::buffer(text), ControlServer::write_timeout);
  co_return written.ok();
}

template <typename S>
asio::awaitable<void> serve_client(std::shared_ptr<S> shared, std::unique_ptr<Stream> stream,
                                   [[maybe_unused]] std::unique_ptr<Slot<S>> slot, ControlServer::Peer peer) {
  using clock = Stream::clock;
  std::string pending;  // received, not yet taken as a request
  for (;;) {
    std::size_t newline = pending.find('\n');
    std::optional<clock::time_point> line_began;
    if (!pending.empty()) line_began = clock::now();
    bool eof = false;
    while (newline == std::string::npos) {
      if (pending.size() >= control::max_request_line) {
        shared->log->warn("control socket: {}: request line longer than {} bytes; closing the connection",
                          peer.describe(), control::max_request_line);
        std::string answer = control::format_answer(
            Status{control::exit_usage, fmt::format("request line longer than {} bytes", control::max_request_line)},
            {});
        co_await send_answer(*stream, std::move(answer));
        co_return;
      }
      Duration wait = ControlServer::idle_timeout;
      if (line_began) {
        wait = std::chrono::duration_cast<Duration>(*line_began + ControlServer::line_timeout - clock::now());
        if (wait.count() <= 0) wait = Duration(1);
      }
      std::array<char, 1024> chunk;
      const std::size_t room = std::min(chunk.size(), control::max_request_line - pending.size());
      const IoResult read = co_await stream->read_some(asio::buffer(chunk.data(), room), wait);
      if (read.timed_out()) {
        if (!line_began) co_return;  // idle: closed without a word, as a server closes idle clients
        shared->log->warn("control socket: {}: request line not finished within {}; closing the connection",
                          peer.describe(), format_duration(ControlServer::line_timeout));
        std::string answer = control::format_answer(
            Status{control::exit_usage,
                   fmt::format("request line not finished within {}", format_duration(ControlServer::line_timeout))},
            {});
        co_await send_answer(*stream, std::move(answer));
        co_return;
      }
      if (read.ec == asio::error::eof) {
        eof = true;
        break;
      }
      if (!read.ok()) co_return;
      if (!line_began) line_began = clock::now();
      const std::size_t before = pending.size();
      pending.append(chunk.data(), read.bytes);
      newline = pending.find('\n', before);
    }
    std::string line;
    if (newline == std::string::npos) {
      // A last request without its newline (printf status | socat ...).
      if (pending.empty()) co_return;
      line = std::exchange(pending, {});
    } else {
      line = pending.substr(0, newline);
      pending.erase(0, newline + 1);
    }
    auto request = control::parse_request(line);
    std::string text;
    std::optional<Unsent<S>> unsent;
    if (!request) {
      shared->log->info("control socket: {}: {}", peer.describe(), request.error().message());
      text = control::format_answer(Status{control::exit_usage, request.error().message()}, {});
    } else if (auto answer = co_await ask(shared, *request, peer); answer) {
      unsent.emplace(shared);
      text = control::format_answer(answer->status, answer->body);
    } else {
      text = control::format_answer(Status{control::exit_runtime, "porticod is stopping"}, {});
    }
    const bool written = co_await send_answer(*stream, std::move(text));
    unsent.reset();
    if (!written) co_return;
    if (eof) co_return;
  }
}

template <typename S>
asio::awaitable<void> accept_loop(std::shared_ptr<S> shared) {
  for (;;) {
    auto [ec, socket] = co_await shared->acceptor.async_accept(use_tuple);
    if (shared->stopped) co_return;
    if (ec) {
      if (ec == asio::error::operation_aborted) co_return;
      shared->log->warn("control socket: accept failed: {}", ec.message());
      // Out of descriptors, the next accept fails at once: wait a little.
      asio::steady_timer pause(shared->io, std::chrono::milliseconds(100));
      co_await pause.async_wait(use_tuple);
      continue;
    }
    const int fd = socket.native_handle();
    ucred cred{};
    socklen_t length = sizeof cred;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &length) != 0) {
      shared->log->warn("control socket: cannot tell who connected: {}; closing the connection",
                        std::strerror(errno));
      continue;
    }
    const ControlServer::Peer peer{cred.pid, cred.uid, cred.gid};
    const std::vector<gid_t> groups = peer_groups(fd);
    const bool allowed = cred.uid == 0 || cred.gid == shared->group ||
                         std::find(groups.begin(), groups.end(), shared->group) != groups.end();
    if (!allowed) {
      shared->log->warn("control socket: refused uid {} gid {} (pid {}): neither root nor in group {}", cred.uid,
                        cred.gid, cred.pid, shared->group_text);
      refuse(fd, control::exit_denied,
             fmt::format("permission denied: uid {} is neither root nor in group {}", cred.uid, shared->group_text));
      continue;
    }
    if (shared->clients.size() >= ControlServer::max_control_clients) {
      std::uint64_t suppressed = 0;
      if (shared->busy_log.allow(suppressed)) {
        shared->log->warn("control socket: {} clients already connected; refused {}{}",
                          ControlServer::max_control_clients, peer.describe(),
                          suppressed ? fmt::format(" ({} more since the last report)", suppressed) : "");
      }
      refuse(fd, control::exit_runtime,
             fmt::format("busy: {} control clients are connected already; try again",
                         ControlServer::max_control_clients));
      continue;
    }
    auto stream = std::make_unique<Stream>(std::move(socket));
    auto slot = std::make_unique<Slot<S>>(shared, stream.get());
    asio::co_spawn(shared->io, serve_client(shared, std::move(stream), std::move(slot), peer), asio::detached);
  }
}

}  // namespace

ControlServer::ControlServer(asio::io_context& io, std::shared_ptr<spdlog::logger> log, Handler handler)
    : shared_(std::make_shared<Shared>(io, std::move(log), std::move(handler))) {}

ControlServer::~ControlServer() { stop(); }

void ControlServer::bind(const std::string& path, uid_t owner, gid_t group, bool replace_live) {
  const auto fail = [&path](const std::string& why) {
    return std::runtime_error(fmt::format("[daemon] control_socket {}: {}", quote_text(path), why));
  };
  asio::local::stream_protocol::endpoint local;
  try {
    local = asio::local::stream_protocol::endpoint(path);
  } catch (const std::exception& e) {
    throw fail(e.what());
  }
  // A socket file left by a porticod that died is replaced; one a live
  // process listens on, or a file that is not a socket, is not.
  struct stat st {};
  if (lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) throw fail("the path exists and is not a socket");
    asio::io_context probe_io;
    asio::local::stream_protocol::socket probe(probe_io);
    error_code ec;
    probe.connect(local, ec);
    if (!ec && !replace_live) throw fail("another process is listening on it (is porticod running already?)");
    if (!ec || ec == asio::error::connection_refused) ::unlink(path.c_str());
  }
  auto& acceptor = shared_->acceptor;
  error_code ec;
  acceptor.open(Protocol(AF_UNIX, 0), ec);
  if (ec) throw fail(ec.message());
  // Made 0600 by bind(), opened to the group once the group is right: no
  // moment where others could connect.
  const mode_t old_mask = ::umask(0177);
  acceptor.bind(Protocol::endpoint(local), ec);
  ::umask(old_mask);
  if (ec) {
    acceptor.close();
    throw fail(fmt::format("cannot bind: {}{}", ec.message(),
                           ec == boost::system::errc::no_such_file_or_directory
                               ? "; its directory must exist (the packaged unit makes /run/portico)"
                               : ""));
  }
  const auto undo = [&](const std::string& step) {
    const std::string why = fmt::format("cannot {}: {}", step, std::strerror(errno));
    ::unlink(path.c_str());
    acceptor.close();
    return fail(why);
  };
  // lchown: the file just made, not whatever a link there would point to.
  if (::lchown(path.c_str(), geteuid() == 0 ? owner : uid_t(-1), group) != 0) throw undo("set its group");
  if (::chmod(path.c_str(), 0660) != 0) throw undo("set its mode");
  // A few clients may wait while the loop is busy; more than that is a
  // flood, whose clients then get ECONNREFUSED/EAGAIN from connect().
  acceptor.listen(64, ec);
  if (ec) {
    errno = ec.value();
    throw undo("listen on it");
  }
  if (lstat(path.c_str(), &st) != 0) throw undo("stat it");
  shared_->group = st.st_gid;
  shared_->group_text = group_name(st.st_gid);
  path_ = path;
}

void ControlServer::start() {
  if (!shared_->acceptor.is_open()) return;
  asio::co_spawn(shared_->io, accept_loop(shared_), asio::detached);
}

void ControlServer::after_answers(std::function<void()> done) {
  auto& shared = *shared_;
  if (shared.unsent == 0) return done();
  shared.flushed = std::move(done);
  shared.flush_timer.expires_after(write_timeout);
  shared.flush_timer.async_wait([shared = shared_](const error_code& ec) {
    if (ec || !shared->flushed) return;
    std::exchange(shared->flushed, nullptr)();
  });
}

void ControlServer::stop() {
  shared_->stopped = true;
  error_code ignored;
  shared_->acceptor.close(ignored);
  for (Stream* client : shared_->clients) client->close();
}

}  // namespace portico
