#pragma once
// A connected stream socket as handlers use it: awaitable reads and writes
// with timeouts, one-call non-blocking reads and writes for copy loops, and
// the counters and state the server reports. A Connection (the client) is a
// Stream; a handler that talks to another server (the proxy's upstream)
// makes one of its own from a connected socket.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/system/error_code.hpp>

#include <portico/duration.hpp>
#include <portico/tls.hpp>

namespace portico {

namespace detail {
class TlsSession;
}

// The outcome of one I/O step. `ec` is empty on success, boost::asio::
// error::eof when the peer closed, timed_out when a deadline passed, or what
// the OS said.
struct IoResult {
  boost::system::error_code ec;
  std::size_t bytes = 0;

  bool ok() const { return !ec; }
  bool timed_out() const;
};

// Every member runs on the thread of the stream's executor. Nothing throws
// for network errors. A Stream may be destroyed at any time; operations
// still waiting on it then complete with operation_aborted.
//
// Timeouts: each awaitable step takes an optional timeout of its own (zero:
// none), and every step also honours the stream's idle timeout (no byte
// moved for that long) and its deadline (an absolute end for the whole
// session). Whichever comes first ends the step with timed_out, and
// expired() says which it was.
class Stream {
 public:
  using executor_type = boost::asio::any_io_executor;
  using socket_type = boost::asio::generic::stream_protocol::socket;
  using clock = std::chrono::steady_clock;

  // Takes over a connected socket (for instance one a handler connected to
  // an upstream server) and makes it non-blocking.
  explicit Stream(socket_type socket);
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  ~Stream();

  executor_type executor() const { return const_cast<socket_type&>(socket_).get_executor(); }
  // False once close() ran (by the handler, a timeout or the server).
  bool is_open() const { return unregistered_fd_ >= 0 || socket_.is_open(); }

  // Reads what is available, at most buffer.size() bytes (>= 1 on success).
  // The buffer is written only while the call runs, not while it waits, so
  // one buffer may serve many streams.
  boost::asio::awaitable<IoResult> read_some(boost::asio::mutable_buffer buffer, Duration timeout = {});
  // Like read_some(), for a buffer the caller owns for the whole call: the
  // event loop reads into it when data arrives, which spares one system
  // call per wait. The buffer must stay valid and unused by anything else
  // until the call returns.
  boost::asio::awaitable<IoResult> receive(boost::asio::mutable_buffer buffer, Duration timeout = {});
  // Writes the whole buffer.
  boost::asio::awaitable<IoResult> write(boost::asio::const_buffer buffer, Duration timeout = {});
  // Wait until try_read() / try_write() can make progress, holding no
  // buffer meanwhile (over TLS, that may mean waiting for the other
  // direction of the socket).
  boost::asio::awaitable<IoResult> wait_readable(Duration timeout = {});
  boost::asio::awaitable<IoResult> wait_writable(Duration timeout = {});

  // One non-blocking step: at most one system call, never a wait. Returns
  // the bytes moved; `ec` is set instead on EOF, on a failure, or to
  // would_block (see portico::would_block) when the step would have to
  // wait. try_write may take fewer bytes than offered; after it returned
  // would_block, the next write must start with the same bytes.
  std::size_t try_read(boost::asio::mutable_buffer buffer, boost::system::error_code& ec);
  std::size_t try_write(boost::asio::const_buffer buffer, boost::system::error_code& ec);

  // Sends EOF to the peer (a half-close): it can go on sending to us.
  void shutdown_send();
  // Keeps at most about `bytes` queued in the kernel for the peer
  // (SO_SNDBUF): a handler that produces data on its own (chargen) is then
  // paced by the peer's reading instead of filling the kernel's buffers,
  // which grow to megabytes by default.
  void limit_send_queue(std::size_t bytes);
  // Makes the close abortive: the peer sees a reset instead of an EOF, as
  // when passing on a reset from elsewhere.
  void reset_on_close();
  // Ends every operation waiting on the stream with operation_aborted; the
  // stream stays open.
  void cancel();
  // Closes the socket; later I/O fails with bad_descriptor. Runs the
  // on_close callback, if any, once.
  void close();
  // Called once when the stream is closed, by whoever closes it (a
  // handler, a timeout, the server's shutdown): a handler waiting on
  // something else (an upstream, a child process) can end that wait too.
  // Setting another callback replaces it; nullptr removes it.
  void on_close(std::function<void()> callback) { on_close_ = std::move(callback); }

  void set_idle_timeout(Duration idle) { idle_timeout_ = idle; }
  Duration idle_timeout() const { return idle_timeout_; }
  void set_deadline(clock::time_point deadline) { deadline_ = deadline; }
  clock::time_point deadline() const { return deadline_; }
  // Which deadline ended the stream's I/O, if one did.
  enum class Deadline : std::uint8_t { none, call, idle, session };
  Deadline expired() const { return expired_; }
  // Ends the waiting operations with timed_out as if `kind` had passed: for
  // a caller that watches a deadline itself (the proxy watches idleness
  // across both of its streams).
  void expire(Deadline kind);

  // Bytes moved so far, in each direction.
  std::uint64_t bytes_received() const { return bytes_received_; }
  std::uint64_t bytes_sent() const { return bytes_sent_; }
  // What the stream waits for at the moment.
  enum class Activity : std::uint8_t { none, reading, writing };
  Activity activity() const { return activity_; }

  // The socket's descriptor, for a child process to inherit as its stdin
  // and stdout. Calling it costs one more system call when the stream
  // closes (the event loop must forget the descriptor explicitly, since a
  // copy may outlive ours). The stream keeps ownership. -1 for a TLS
  // stream, whose bytes on the socket are encrypted: relay through a
  // socket pair instead.
  int share_descriptor();

  // What the stream's TLS session negotiated; nullptr for plain TCP.
  const TlsInfo* tls() const;
  // Runs the client side of a TLS handshake over the connected stream,
  // checking the server's certificate against `context`'s CAs and
  // `server_name` (a host name, sent as SNI, or an IP address) unless the
  // context does not verify. From then on every read and write of the
  // stream is over TLS. Fails with timed_out after `timeout`, or with
  // OpenSSL's reason (category boost::asio::error::get_ssl_category()).
  boost::asio::awaitable<IoResult> start_tls(const TlsClientContext& context, std::string_view server_name,
                                             Duration timeout = {});

 protected:
  // For the server: `accepted_fd` is a connected socket accepted with
  // SOCK_NONBLOCK, taken without registering it with the event loop. Steps
  // that do not wait run on the descriptor directly; it is registered only
  // when a step first has to wait, so a client served without waiting (the
  // usual greeting) costs the event loop nothing.
  Stream(const executor_type& executor, int family, int accepted_fd);

  // The socket, registered with the event loop on the first call for an
  // accepted descriptor. When that fails (out of epoll watches or memory)
  // the stream is closed and `ec` says why.
  socket_type& registered_socket(boost::system::error_code& ec) {
    ec.clear();
    if (unregistered_fd_ >= 0) register_socket(ec);
    return socket_;
  }
  // The descriptor, registered or not; -1 once closed.
  int fd() { return unregistered_fd_ >= 0 ? unregistered_fd_ : socket_.native_handle(); }
  // True when a read would not block (bytes, an EOF or an error wait), for
  // a descriptor not registered yet; looks without taking anything.
  bool readable_now() const;
  // Starts the deadline for one step; false when none applies.
  bool arm(Duration timeout);
  void disarm();
  // Runs the server side of a TLS handshake with `session`, made for this
  // stream's socket; the stream is TLS from then on, whatever the outcome.
  boost::asio::awaitable<IoResult> accept_tls(std::unique_ptr<detail::TlsSession> session, Duration timeout);

 private:
  void register_socket(boost::system::error_code& ec);
  IoResult finish(boost::system::error_code ec, std::size_t bytes);
  boost::asio::awaitable<IoResult> handshake(Duration timeout);
  std::size_t tls_read(boost::asio::mutable_buffer buffer, boost::system::error_code& ec);
  std::size_t tls_write(boost::asio::const_buffer buffer, boost::system::error_code& ec);
  void tls_close_notify();
  void note(const boost::system::error_code& ec);
  boost::asio::awaitable<IoResult> wait(socket_type::wait_type type, Duration timeout);

  socket_type socket_;
  int unregistered_fd_ = -1;  // the descriptor until it is registered
  int family_ = AF_UNSPEC;
  boost::asio::steady_timer timer_;
  // Timer completions reach the stream through this, so that a stream
  // destroyed with a completion still queued is not touched by it.
  std::shared_ptr<Stream*> timer_target_;
  std::function<void()> on_close_;
  std::unique_ptr<detail::TlsSession> tls_;
  Duration idle_timeout_{0};
  clock::time_point deadline_ = clock::time_point::max();
  std::uint64_t bytes_received_ = 0;
  std::uint64_t bytes_sent_ = 0;
  std::uint32_t timer_generation_ = 0;
  Deadline armed_for_ = Deadline::none;
  Deadline expired_ = Deadline::none;
  Activity activity_ = Activity::none;
  bool timed_out_ = false;
  bool shared_ = false;  // share_descriptor() was called: a copy may exist
  // receive() asked epoll to report the peer's end (EPOLLRDHUP) apart
  // from plain readability: tried once, and whether that worked.
  bool peer_end_asked_ = false;
  bool peer_end_reported_ = false;

 protected:
  // How the stream's I/O went, for the server's account of a connection:
  // whether the peer's EOF was read, and the first failure other than
  // would_block, EOF, a timeout or a cancellation.
  bool eof_received_ = false;
  boost::system::error_code failure_;
};

}  // namespace portico
