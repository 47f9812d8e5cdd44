#include "greeting.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <optional>
#include <string_view>

#include <boost/asio/buffer.hpp>
#include <fmt/format.h>

#include <portico/connection.hpp>
#include <portico/probe.hpp>

namespace portico::handlers {

namespace {

namespace asio = boost::asio;
using spdlog::level::debug;

constexpr std::int64_t max_read_limit = 65536;

class Greeting final : public Handler {
 public:
  explicit Greeting(const Options& options)
      : message_(options.string("message")),
        read_limit_(static_cast<std::size_t>(options.integer("read_limit"))),
        read_timeout_(options.duration("read_timeout")),
        on_connect_(options.string("mode") == "on-connect") {}

  // The answer comes after the client's request: until it arrives the
  // connection waits without a coroutine, at most read_timeout.
  std::optional<Duration> client_speaks_first() const override {
    if (on_connect_) return std::nullopt;
    return read_timeout_;
  }

  asio::awaitable<void> serve(Connection& conn) override {
    conn.log(debug, "connection from {}", conn.peer());
    if (!on_connect_) {
      // What the client sends is only logged, so one buffer per thread
      // serves every connection and none holds memory while it waits.
      thread_local std::array<char, max_read_limit> scratch;
      const IoResult read = co_await conn.read_some(asio::buffer(scratch.data(), read_limit_), time_left(conn));
      if (read.timed_out()) {
        conn.log(spdlog::level::info, "timed out: nothing received within {}", format_duration(read_timeout_));
        co_return;
      }
      // An EOF still gets the answer: the client may have shut down its
      // sending side after its request, as `nc -N` does.
      if (!read.ok() && read.ec != asio::error::eof) {
        conn.log(debug, "read failed: {}", read.ec.message());
        co_return;
      }
      conn.log(debug, "received {:?}", std::string_view(scratch.data(), read.bytes));
    }
    conn.log(debug, "sending {:?}", message_);
    const IoResult written = co_await conn.write(asio::buffer(message_), read_timeout_);
    if (!written.ok()) {
      conn.log(debug, "write failed: {}", written.timed_out() ? "timed out" : written.ec.message());
      co_return;
    }
    conn.log(debug, "closing the connection");
  }

 private:
  // read_timeout counts from the accept: the server may have waited for the
  // request already. At least a moment remains, for one more read.
  Duration time_left(const Connection& conn) const {
    if (read_timeout_.count() == 0) return read_timeout_;
    const auto spent = std::chrono::duration_cast<Duration>(Connection::clock::now() - conn.accepted_at());
    return std::max<Duration>(read_timeout_ - spent, std::chrono::milliseconds(1));
  }

  std::string message_;
  std::size_t read_limit_;
  Duration read_timeout_;
  bool on_connect_;
};

// Asks as a client does (one byte, within any read_limit) unless the
// greeting is a banner, and expects the message, all of it.
asio::awaitable<Result<std::string>> probe(const ProbeTarget& target) {
  const std::string& message = target.options.string("message");
  auto stream = co_await connect_probe(target);
  if (!stream) co_return stream.error();
  if (target.options.string("mode") != "on-connect") {
    const IoResult sent = co_await (*stream)->write(asio::buffer("\n", 1));
    if (!sent.ok()) co_return fail("cannot send a request: {}", sent.ec.message());
  }
  auto got = co_await probe_read_exactly(**stream, message.size());
  if (!got) co_return fail("expected {}: {}", probe_excerpt(message), got.error().message());
  if (*got != message) co_return fail("expected {}, got {}", probe_excerpt(message), probe_excerpt(*got));
  co_return fmt::format("answered {}", probe_excerpt(message));
}

}  // namespace

HandlerType greeting_type() {
  using namespace std::chrono_literals;
  return HandlerType{
      .name = "greeting",
      .doc = "read what the client sends, answer with a fixed message, close",
      .options =
          {
              {.name = "message",
               .type = OptionType::string,
               .default_value = std::string("Hello from server!\n"),
               .doc = "bytes sent to the client",
               .bytes = true},
              {.name = "read_limit",
               .type = OptionType::integer,
               .default_value = std::int64_t{100},
               .doc = "most bytes read from the client before answering",
               .min = 1,
               .max = max_read_limit},
              {.name = "read_timeout",
               .type = OptionType::duration,
               .default_value = Duration(10s),
               .doc = "how long to wait for the client to send (and to take the answer); 0s waits forever"},
              {.name = "mode",
               .type = OptionType::string,
               .default_value = std::string("after-read"),
               .doc = "answer after reading, or send at once as a banner",
               .choices = {"after-read", "on-connect"}},
          },
      .create = [](const Options& options) { return std::make_unique<Greeting>(options); },
      .probe = probe,
  };
}

}  // namespace portico::handlers
