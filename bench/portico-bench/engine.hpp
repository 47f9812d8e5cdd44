#pragma once
// The single-threaded event loop every mode runs on: raw edge-triggered epoll
// over non-blocking sockets, one Conn object per connection slot.

#include <sys/epoll.h>
#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "net.hpp"
#include "options.hpp"
#include "stats.hpp"
#include "tls.hpp"

namespace bench {

inline constexpr auto kNever = Clock::time_point::max();

class Engine;

// What all slots of one run share. Single-threaded, so one read buffer does.
struct Context {
  const Options& options;
  Endpoint target;
  SourcePicker sources;
  Engine& engine;
  Stats stats;
  std::vector<char> scratch = std::vector<char>(64 * 1024);
  TlsClient* tls = nullptr;  // set with --tls: every connection speaks TLS
};

// One connection slot. A slot outlives its connections: when one ends it opens
// the next, so the pointer epoll hands back always points at a live object.
class Conn {
 public:
  explicit Conn(Context& ctx) : ctx_(ctx) {}
  virtual ~Conn();
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  // Starts the slot's work: first connect, or again after a retry pause.
  virtual void start(Clock::time_point now) = 0;
  // Events epoll reported for our fd.
  void handle(std::uint32_t events);
  // The engine calling back a slot that yielded.
  void resume();
  // Timeouts and retry pauses; the engine's tick calls it every few ms.
  void check(Clock::time_point now);
  void close_fd();
  bool is_open() const { return fd_ >= 0; }
  // --tls-resume: the newest session ticket the server sent on this slot's
  // connections; the slot's next connection offers it. Takes the reference.
  void keep_session(SSL_SESSION* session);

 protected:
  // Starts a non-blocking connect. On failure records the error, schedules
  // a retry and returns false.
  bool open();
  // The connection is up (with --tls: the handshake is done too).
  virtual void on_connected(Clock::time_point now) = 0;
  virtual void on_io(std::uint32_t events) = 0;
  virtual void on_timeout(Clock::time_point now) { fail(ErrorKind::timeout, now); }
  // Told of every failure, just before the slot closes.
  virtual void on_fail() {}
  // Records the error, closes, and starts again after a short pause, so a
  // server that refuses everything is not hammered in a tight loop.
  void fail(ErrorKind kind, Clock::time_point now);
  void fail_errno(int err, Clock::time_point now) { fail(classify_errno(err), now); }
  // Stops early to let other slots run: edge-triggered epoll would not tell
  // us again about data we left unread, so the engine calls on_io() back.
  void yield();

  // The modes' I/O: ::send and ::recv on a plain connection, SSL_write and
  // SSL_read on a TLS one, with send's and recv's contract either way: the
  // bytes moved, 0 at the server's end (its FIN or close_notify), or -1 with
  // errno set; EAGAIN when the socket must become readable or writable
  // first, EPROTO when TLS failed.
  ssize_t send_some(const void* data, std::size_t len) {
    return ssl_ ? tls_send(data, len) : ::send(fd_, data, len, MSG_NOSIGNAL);
  }
  ssize_t recv_some(void* buf, std::size_t len) { return ssl_ ? tls_recv(buf, len) : ::recv(fd_, buf, len, 0); }
  // A plain recv() short of what was asked has emptied the socket, and
  // edge-triggered epoll will report anything newer. A short SSL_read has
  // not: the rest of the last read(2) can wait in OpenSSL's buffer, or a
  // record end cut the read short. TLS reads go on until EAGAIN.
  bool short_read_drains() const { return ssl_ == nullptr; }

  Context& ctx_;
  int fd_ = -1;
  bool connecting_ = false;
  bool retry_ = true;  // idle mode turns this off: one attempt per slot
  bool yielded_ = false;
  Clock::time_point connect_start_{};
  Clock::time_point deadline_ = kNever;
  Clock::time_point retry_at_ = kNever;

 private:
  // Runs the TLS handshake as far as the socket lets it; on_connected() once done.
  void handshake(Clock::time_point now);
  ssize_t tls_send(const void* data, std::size_t len);
  ssize_t tls_recv(void* buf, std::size_t len);
  ssize_t tls_result(int rc);

  SSL* ssl_ = nullptr;
  SSL_SESSION* session_ = nullptr;
  bool handshaking_ = false;
};

using Conns = std::vector<std::unique_ptr<Conn>>;

class Engine {
 public:
  Engine();
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Registers fd for in, out and peer-close, edge-triggered: one epoll_ctl
  // per connection and none after, whatever the connection does.
  bool add(int fd, Conn* conn);
  void defer(Conn* conn) { deferred_.push_back(conn); }

  // Runs until `until`, a stop signal, or `done` returning true; calls
  // `tick` every few milliseconds for timeouts and retries.
  void run(Clock::time_point until, const std::function<void(Clock::time_point)>& tick,
           const std::function<bool()>& done = nullptr);

 private:
  int epfd_ = -1;
  std::vector<Conn*> deferred_, resuming_;
  std::array<epoll_event, 512> events_{};
};

// SIGINT and SIGTERM end the run early; results so far are still printed.
void install_stop_handlers();
bool stop_requested();

void check_all(Conns& conns, Clock::time_point now);

// Warm-up, then the measurement window, for the modes that repeat an
// operation (all but idle). Closes every connection at the end.
void run_timed(Context& ctx, Conns& conns);

}  // namespace bench
