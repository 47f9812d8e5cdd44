#include "upstream_pool.hpp"

#include <cctype>
#include <stdexcept>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <fmt/format.h>
#include <spdlog/logger.h>

#include <portico/io.hpp>
#include <portico/proxy_protocol.hpp>
#include <portico/stream.hpp>
#include <portico/text.hpp>

namespace portico::handlers {

namespace asio = boost::asio;
using boost::system::error_code;

std::string describe_failure(const error_code& ec, Duration timeout) {
  if (ec == asio::error::timed_out) return fmt::format("timed out after {}", format_duration(timeout));
  // A TLS failure says so: "TLS: hostname mismatch".
  if (ec.category() != boost::system::system_category() && ec.category() != asio::error::get_misc_category() &&
      ec.category() != asio::error::get_netdb_category() && ec.category() != asio::error::get_addrinfo_category()) {
    return "TLS: " + ec.message();
  }
  return ec.message();
}

namespace {

// Health lines speak in lowercase: "3 checks failed (connection refused)".
std::string lowercase_first(std::string text) {
  if (text.size() > 1 && std::isupper(static_cast<unsigned char>(text[0])) &&
      std::islower(static_cast<unsigned char>(text[1]))) {
    text[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(text[0])));
  }
  return text;
}

std::string plural(std::int64_t n, std::string_view word) {
  return fmt::format("{} {}{}", n, word, n == 1 ? "" : "s");
}

// The bytes a client is hashed by: its IP address (not its port, which
// changes with every connection); a client without one (a Unix socket)
// hashes as empty.
std::string client_key(const Endpoint& client) {
  if (client.is_unix) return {};
  if (client.ip.is_v4()) {
    const auto bytes = client.ip.to_v4().to_bytes();
    return std::string(bytes.begin(), bytes.end());
  }
  const auto bytes = client.ip.to_v6().to_bytes();
  return std::string(bytes.begin(), bytes.end());
}

}  // namespace

// One upstream's checks: a coroutine that connects (as clients are
// connected: PROXY header, TLS), optionally sends and compares, closes,
// waits `interval`, and again. One check at a time, so at most one
// connection per upstream. It keeps copies of what it needs: the pool may
// go first, and stop() ends it at any step.
struct UpstreamPool::Checker {
  Checker(const asio::any_io_executor& executor, Upstream target, std::shared_ptr<UpstreamState> state,
          const PoolSettings& settings, std::shared_ptr<spdlog::logger> logger, std::string listener)
      : timer(executor),
        socket(executor),
        target(std::move(target)),
        state(std::move(state)),
        health(settings.health),
        send_proxy(settings.send_proxy),
        tls(settings.tls),
        tls_server_name(settings.tls_server_name),
        logger(std::move(logger)),
        listener(std::move(listener)) {}

  void stop() {
    stopped = true;
    timer.cancel();
    error_code ignored;
    socket.close(ignored);
    if (stream) stream->close();
  }

  void log(spdlog::level::level_enum level, const std::string& text) const {
    if (logger) logger->log(level, "listener \"{}\": {}", listener, text);
  }

  // Counts a check's outcome ("" when it passed) and says when the
  // upstream's state changes.
  void record(const std::string& error) {
    UpstreamState& s = *state;
    const bool passed = error.empty();
    if (!passed) s.check_error = error;
    if (passed == s.checked_up) {
      s.streak = 0;
      return;
    }
    if (++s.streak < (passed ? health.rise : health.fall)) return;
    s.checked_up = passed;
    s.streak = 0;
    if (passed) {
      log(spdlog::level::info, fmt::format("upstream {} up after {}", target.text, plural(health.rise, "check")));
    } else {
      log(spdlog::level::warn,
          fmt::format("upstream {} down: {} failed ({})", target.text, plural(health.fall, "check"), error));
    }
  }

  asio::steady_timer timer;
  UpstreamSocket socket;
  std::optional<Stream> stream;
  bool stopped = false;
  Upstream target;
  std::shared_ptr<UpstreamState> state;
  HealthSettings health;
  SendProxy send_proxy;
  std::shared_ptr<const TlsClientContext> tls;
  std::string tls_server_name;
  std::shared_ptr<spdlog::logger> logger;
  std::string listener;
};

UpstreamPool::UpstreamPool(const UpstreamList& list, PoolSettings settings)
    : settings_(std::move(settings)), rotation_({}), rng_(std::random_device{}()) {
  std::vector<HashRing::Member> ring;
  for (const auto& entry : list) {
    auto upstream = parse_upstream(entry.address);
    if (!upstream) throw std::invalid_argument(upstream.error().message());
    ring.push_back({upstream->text, entry.weight});
    weights_.push_back(entry.weight);
    members_.push_back({std::move(*upstream), entry.weight, entry.backup, std::make_shared<UpstreamState>()});
  }
  if (members_.empty()) throw std::invalid_argument("\"upstream\" lists no address");
  rotation_ = WeightedRoundRobin(weights_);
  if (settings_.balance == Balance::source_hash) ring_.emplace(ring);
}

UpstreamPool::~UpstreamPool() { stop_checks(); }

void UpstreamPool::log(spdlog::level::level_enum level, const std::string& text) const {
  if (logger_) logger_->log(level, "listener \"{}\": {}", listener_, text);
}

void UpstreamPool::refresh(clock::time_point now) {
  for (const auto& m : members_) {
    UpstreamState& s = *m.state;
    if (!s.ejected || now < s.ejected_until) continue;
    s.ejected = false;
    log(spdlog::level::info, fmt::format("upstream {}: trying it again after {} down", m.target.text,
                                         format_duration(settings_.fail_timeout)));
  }
}

std::optional<std::size_t> UpstreamPool::choose(const Endpoint& client, const std::vector<bool>& tried) {
  const auto now = clock::now();
  refresh(now);
  std::vector<bool> usable(members_.size(), false);
  bool any = false;
  for (const bool backups : {false, true}) {
    for (std::size_t i = 0; i < members_.size(); ++i) {
      usable[i] = members_[i].backup == backups && !tried[i] && members_[i].state->up(now);
      any = any || usable[i];
    }
    if (any) break;
  }
  if (!any) return std::nullopt;
  const auto active = [&] {
    std::vector<std::uint64_t> out;
    out.reserve(members_.size());
    for (const auto& m : members_) out.push_back(m.state->active);
    return out;
  };
  switch (settings_.balance) {
    case Balance::round_robin: return rotation_.pick(usable);
    case Balance::least_conn: return pick_least_loaded(usable, weights_, active(), rotation_);
    case Balance::source_hash: return ring_->pick(hash_bytes(client_key(client)), usable);
    case Balance::random_two: return pick_two(usable, weights_, active(), rng_);
  }
  return std::nullopt;
}

void UpstreamPool::connected(std::size_t index) {
  UpstreamState& s = *members_[index].state;
  ++s.connects;
  s.recent_fails = 0;
}

void UpstreamPool::failed(std::size_t index, const std::string& why) {
  const Member& m = members_[index];
  UpstreamState& s = *m.state;
  ++s.failures;
  // A lone upstream is never ejected: there would be nowhere else to go,
  // and refusing its clients for fail_timeout would outlast a restart.
  if (settings_.max_fails == 0 || members_.size() < 2) return;
  const auto now = clock::now();
  if (now < s.ejected_until) return;  // ejected already, by an attempt that ended first
  if (s.recent_fails == 0 || now - s.fails_since >= settings_.fail_timeout) {
    s.recent_fails = 0;
    s.fails_since = now;
  }
  if (++s.recent_fails < settings_.max_fails) return;
  s.ejected_until = now + settings_.fail_timeout;
  s.ejected = true;
  s.eject_error = lowercase_first(why);
  log(spdlog::level::warn, fmt::format("upstream {} down for {}: {} failed ({})", m.target.text,
                                       format_duration(settings_.fail_timeout),
                                       plural(s.recent_fails, "client connect"), s.eject_error));
  s.recent_fails = 0;
}

void UpstreamPool::take_over(UpstreamPool& previous) {
  for (auto& m : members_) {
    for (const auto& p : previous.members_) {
      if (p.target.text == m.target.text) {
        m.state = p.state;
        break;
      }
    }
    if (settings_.health.interval.count() == 0) {
      // Checks are off now: what they found last no longer holds.
      m.state->checked_up = true;
      m.state->streak = 0;
    }
  }
  refusals_ = previous.refusals_;
  previous.stop_checks();
}

void UpstreamPool::start(const HandlerContext& context) {
  logger_ = context.logger;
  listener_ = context.listener;
  if (settings_.health.interval.count() == 0) return;
  for (const auto& m : members_) {
    auto checker = std::make_shared<Checker>(context.executor, m.target, m.state, settings_, logger_, listener_);
    checkers_.push_back(checker);
    asio::co_spawn(context.executor, check_loop(std::move(checker)), asio::detached);
  }
}

void UpstreamPool::stop_checks() {
  for (auto& checker : checkers_) checker->stop();
  checkers_.clear();
}

asio::awaitable<void> UpstreamPool::check_loop(std::shared_ptr<Checker> checker) {
  for (;;) {
    const std::string error = co_await check_once(*checker);
    if (checker->stopped) co_return;
    checker->record(error);
    checker->timer.expires_after(checker->health.interval);
    co_await checker->timer.async_wait(use_tuple);
    if (checker->stopped) co_return;
  }
}

asio::awaitable<std::string> UpstreamPool::check_once(Checker& c) {
  const Duration timeout = c.health.timeout;
  const auto deadline = clock::now() + timeout;
  // What is left of the check's time for its next step (at least 1ms: zero
  // would mean no limit).
  const auto left = [&] {
    return std::max(Duration(1), std::chrono::duration_cast<Duration>(deadline - clock::now()));
  };
  const auto failure = [&](const error_code& ec) { return lowercase_first(describe_failure(ec, timeout)); };

  if (const error_code ec = co_await connect_upstream(c.target, c.socket, timeout)) {
    co_return c.stopped ? std::string() : failure(ec);
  }
  if (c.stopped) co_return std::string();
  c.stream.emplace(std::move(c.socket));
  std::string outcome = co_await exchange(c, left);
  // The check's connection closes when the check ends, whichever way.
  c.stream.reset();
  co_return outcome;
}

asio::awaitable<std::string> UpstreamPool::exchange(Checker& c, const std::function<Duration()>& left) {
  const auto failure = [&](const error_code& ec) { return lowercase_first(describe_failure(ec, c.health.timeout)); };
  if (c.send_proxy != SendProxy::none) {
    // A check is the proxy's own connection: no client to name.
    const auto header = c.send_proxy == SendProxy::v1 ? build_proxy_v1({}, {})
                                                      : build_proxy_v2({}, {}, ProxyCommand::local);
    const IoResult sent = co_await c.stream->write(asio::buffer(header), left());
    if (c.stopped) co_return std::string();
    if (!sent.ok()) co_return failure(sent.ec);
  }
  if (c.tls) {
    const std::string& name = c.tls_server_name.empty() ? c.target.host : c.tls_server_name;
    const IoResult shook = co_await c.stream->start_tls(*c.tls, name, left());
    if (c.stopped) co_return std::string();
    if (!shook.ok()) co_return failure(shook.ec);
  }
  if (!c.health.send.empty()) {
    const IoResult sent = co_await c.stream->write(asio::buffer(c.health.send), left());
    if (c.stopped) co_return std::string();
    if (!sent.ok()) co_return failure(sent.ec);
  }
  const std::string& expect = c.health.expect;
  std::string got;
  std::string buffer(std::min<std::size_t>(expect.size(), 512), '\0');
  while (got.size() < expect.size()) {
    const std::size_t want = std::min(buffer.size(), expect.size() - got.size());
    const IoResult r = co_await c.stream->read_some(asio::buffer(buffer.data(), want), left());
    if (c.stopped) co_return std::string();
    if (r.ec == asio::error::eof) {
      co_return got.empty() ? "closed without answering" : fmt::format("answered {} and closed", quote_text(got));
    }
    if (!r.ok()) co_return failure(r.ec);
    got.append(buffer.data(), r.bytes);
    if (!expect.starts_with(got)) {
      co_return fmt::format("answered {}, expected {}", quote_text(got), quote_text(expect.substr(0, got.size())));
    }
  }
  co_return std::string();
}

std::vector<std::string> UpstreamPool::status() const {
  const auto now = clock::now();
  std::vector<std::string> out;
  for (const auto& m : members_) {
    const UpstreamState& s = *m.state;
    std::string state = "up";
    if (!s.checked_up) {
      state = fmt::format("down (checks failing: {})", s.check_error);
    } else if (now < s.ejected_until) {
      const auto left = std::chrono::duration_cast<std::chrono::seconds>(s.ejected_until - now) + std::chrono::seconds(1);
      state = fmt::format("down for {}s more (client connects failed: {})", left.count(), s.eject_error);
    }
    std::string role;
    if (m.backup) role += ", backup";
    if (m.weight != 1) role += fmt::format(", weight {}", m.weight);
    out.push_back(fmt::format("upstream {}: {}{}; {} active, {} connects, {} failed", m.target.text, state, role,
                              s.active, s.connects, s.failures));
  }
  return out;
}

void UpstreamPool::write_metrics(MetricsWriter& out, std::string_view listener) const {
  const auto now = clock::now();
  for (const auto& m : members_) {
    const UpstreamState& s = *m.state;
    const MetricsWriter::Labels labels = {{"listener", listener}, {"upstream", m.target.text}};
    out.gauge("portico_upstream_up", "Whether the upstream takes new clients (1) or is down (0)", labels,
              s.up(now) ? 1 : 0);
    out.counter("portico_upstream_connects_total", "Client connections made to the upstream", labels,
                static_cast<double>(s.connects));
    out.counter("portico_upstream_connect_failures_total",
                "Client connections to the upstream that failed (connect, PROXY header or TLS)", labels,
                static_cast<double>(s.failures));
    out.gauge("portico_upstream_active_connections", "Client connections open to the upstream (or being opened)",
              labels, static_cast<double>(s.active));
  }
  const char* help = "Clients closed without an upstream: every upstream down (refused at once), or none reachable";
  out.counter("portico_proxy_no_upstream_total", help, {{"listener", listener}, {"reason", "all_down"}},
              static_cast<double>(refusals_->all_down));
  out.counter("portico_proxy_no_upstream_total", help, {{"listener", listener}, {"reason", "unreachable"}},
              static_cast<double>(refusals_->unreachable));
}

}  // namespace portico::handlers
