#pragma once
// The single-threaded event loop every mode runs on: raw edge-triggered epoll
// over non-blocking sockets, one Conn object per connection slot.

#include <sys/epoll.h>

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "net.hpp"
#include "options.hpp"
#include "stats.hpp"

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
};

// One connection slot. A slot outlives its connections: when one ends it opens
// the next, so the pointer epoll hands back always points at a live object.
class Conn {
 public:
  explicit Conn(Context& ctx) : ctx_(ctx) {}
  virtual ~Conn() { close_fd(); }
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

 protected:
  // Starts a non-blocking connect. On failure records the error, schedules
  // a retry and returns false.
  bool open();
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

  Context& ctx_;
  int fd_ = -1;
  bool connecting_ = false;
  bool retry_ = true;  // idle mode turns this off: one attempt per slot
  bool yielded_ = false;
  Clock::time_point connect_start_{};
  Clock::time_point deadline_ = kNever;
  Clock::time_point retry_at_ = kNever;
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
