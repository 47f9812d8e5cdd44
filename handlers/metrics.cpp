#include "metrics.hpp"
#include "metrics_http.hpp"

#include <algorithm>
#include <chrono>
#include <sstream>
#include <string>

#include <boost/asio/buffer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <portico/connection.hpp>
#include <portico/metrics.hpp>
#include <portico/server.hpp>

namespace portico::handlers {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using clock = Connection::clock;
using spdlog::level::debug;
using metrics_http::max_buffer;
using metrics_http::read_size;

constexpr std::string_view content_type = "text/plain; version=0.0.4; charset=utf-8";

class Metrics final : public Handler {
 public:
  explicit Metrics(const Options& options)
      : request_timeout_(options.duration("request_timeout")),
        keepalive_timeout_(options.duration("keepalive_timeout")) {}

  // A scraper speaks first: until its request comes, the connection waits
  // without a coroutine.
  std::optional<Duration> client_speaks_first() const override { return request_timeout_; }

  asio::awaitable<void> serve(Connection& conn) override {
    beast::flat_buffer buffer(max_buffer);
    // The first request's header counts from the accept; later ones from
    // their first byte.
    auto deadline = conn.accepted_at() + request_timeout_;
    for (bool first = true;; first = false) {
      metrics_http::RequestReader reader;
      bool started = first || buffer.size() > 0;
      if (!first && started) deadline = clock::now() + request_timeout_;
      for (;;) {
        beast::error_code ec;
        const auto parsed = metrics_http::parse(buffer, reader, ec);
        if (parsed == metrics_http::Parsed::complete) break;
        if (parsed != metrics_http::Parsed::need_more) {
          // A named response: GCC 12 destroys temporaries that live
          // across a co_await twice.
          if (parsed == metrics_http::Parsed::bad) conn.log(debug, "bad request: {}", ec.message());
          const auto refusal = parsed == metrics_http::Parsed::bad ? metrics_http::bad_request_response()
                                                                   : metrics_http::too_large_response();
          co_await send(conn, refusal);
          co_return;
        }
        const Duration timeout = started ? time_left(deadline) : keepalive_timeout_;
        const IoResult read =
            co_await conn.read_some(buffer.prepare(std::min(read_size, max_buffer - buffer.size())), timeout);
        // An EOF between requests, a timeout or an error: done.
        if (!read.ok()) co_return;
        buffer.commit(read.bytes);
        if (!started) {
          started = true;
          deadline = clock::now() + request_timeout_;
        }
      }
      const auto& request = reader.parser.get();
      const bool keep = request.keep_alive() && keepalive_timeout_.count() > 0;
      const auto response = metrics_http::answer(request, keep, [&conn] {
        MetricsWriter writer;
        conn.server().write_metrics(writer);
        return writer.text();
      });
      if (!co_await send(conn, response) || !keep) co_return;
    }
  }

 private:
  // Time left until `deadline`, at least a moment.
  static Duration time_left(clock::time_point deadline) {
    return std::max<Duration>(std::chrono::duration_cast<Duration>(deadline - clock::now()), Duration(1));
  }

  asio::awaitable<bool> send(Connection& conn, const metrics_http::Response& response) const {
    const std::string bytes = metrics_http::serialize(response);
    const IoResult written = co_await conn.write(asio::buffer(bytes), request_timeout_);
    co_return written.ok();
  }

  Duration request_timeout_;
  Duration keepalive_timeout_;
};

}  // namespace

namespace metrics_http {

RequestReader::RequestReader() {
  parser.header_limit(max_header);
  parser.eager(true);
}

Parsed parse(beast::flat_buffer& buffer, RequestReader& reader, beast::error_code& error) {
  Parser& parser = reader.parser;
  while (!parser.is_done()) {
    if (buffer.size() == 0) return Parsed::need_more;
    error = {};
    const bool header_done = parser.is_header_done();
    const std::size_t used = parser.put(buffer.data(), error);
    buffer.consume(used);
    if (!header_done) reader.header_bytes += used;
    if (error == http::error::header_limit || reader.header_bytes > max_header) return Parsed::too_large;
    if (error && error != http::error::need_more) return Parsed::bad;
    if (error) {
      // need_more: what the buffer holds is more of the header (or of a
      // body, which is refused once it comes), and must fit in the buffer.
      error = {};
      if (!parser.is_header_done() && reader.header_bytes + buffer.size() > max_header) return Parsed::too_large;
      return buffer.size() >= max_buffer ? Parsed::too_large : Parsed::need_more;
    }
  }
  return Parsed::complete;
}

Response answer(const Request& request, bool keep, const std::function<std::string()>& metrics_text) {
  Response response{http::status::ok, request.version()};
  const bool head = request.method() == http::verb::head;
  const std::string_view target(request.target().data(), request.target().size());
  const std::string_view path = target.substr(0, target.find('?'));
  if (request.method() != http::verb::get && !head) {
    response.result(http::status::method_not_allowed);
    response.set(http::field::allow, "GET, HEAD");
    response.set(http::field::content_type, "text/plain; charset=utf-8");
    response.body() = "method not allowed: use GET\n";
  } else if (path != "/metrics") {
    response.result(http::status::not_found);
    response.set(http::field::content_type, "text/plain; charset=utf-8");
    response.body() = "not found: the metrics are at /metrics\n";
  } else {
    response.set(http::field::content_type, content_type);
    response.body() = metrics_text();
  }
  response.keep_alive(keep);
  response.prepare_payload();
  if (head) response.body().clear();  // Content-Length stays the GET's
  return response;
}

namespace {

Response refusal(http::status status, std::string_view text) {
  Response response{status, 11};
  response.set(http::field::content_type, "text/plain; charset=utf-8");
  response.body() = std::string(text);
  response.keep_alive(false);
  response.prepare_payload();
  return response;
}

}  // namespace

Response too_large_response() {
  return refusal(http::status::request_header_fields_too_large, "request header too large\n");
}

Response bad_request_response() { return refusal(http::status::bad_request, "bad request\n"); }

std::string serialize(const Response& response) {
  std::ostringstream out;
  out << response.base() << response.body();
  return out.str();
}

}  // namespace metrics_http

HandlerType metrics_type() {
  using namespace std::chrono_literals;
  return HandlerType{
      .name = "metrics",
      .doc = "answer HTTP GET /metrics with the server's counters in Prometheus' text format",
      .options =
          {
              {.name = "request_timeout",
               .type = OptionType::duration,
               .default_value = Duration(10s),
               .doc = "how long a request's header may take to arrive (from its first byte; the first request's "
                      "from the accept), and its answer to be sent; more than 0s"},
              {.name = "keepalive_timeout",
               .type = OptionType::duration,
               .default_value = Duration(60s),
               .doc = "how long a connection may wait for its next request; 0s closes it after each answer"},
          },
      .create = [](const Options& options) { return std::make_unique<Metrics>(options); },
      .validate =
          [](const Options& options, Diagnostics& errors) {
            // Without a bound, a client sending its header a byte a minute
            // would hold the connection for ever.
            if (options.duration("request_timeout").count() == 0) {
              errors.error(options.position("request_timeout"),
                           "\"request_timeout\" must be longer than 0s: a request has to arrive in some time");
            }
          },
  };
}

}  // namespace portico::handlers
