#pragma once
// The proxy's upstream servers as a balanced set: which one a new client
// goes to (the policy, the weights, backups), what is known of each one's
// health (active checks, failed client connects), and what it reports.
// Everything runs on the server's one io_context thread.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/system/error_code.hpp>
#include <spdlog/common.h>

#include <portico/duration.hpp>
#include <portico/endpoint.hpp>
#include <portico/handler.hpp>
#include <portico/metrics.hpp>
#include <portico/options.hpp>
#include <portico/tls.hpp>

#include "balance.hpp"
#include "upstream.hpp"

namespace portico::handlers {

enum class SendProxy { none, v1, v2 };

// What is known of one upstream server. Shared by the handler that checks
// it and the connections that use it, and handed from handler to handler
// across reloads while the server stays in the list (keyed by its address
// as written canonically: Upstream::text).
struct UpstreamState {
  using clock = std::chrono::steady_clock;

  // Client connections: made, failed (connect, PROXY header or TLS), open
  // now (being made included).
  std::uint64_t connects = 0;
  std::uint64_t failures = 0;
  std::uint64_t active = 0;

  // Active checks: up until `fall` checks in a row fail, then down until
  // `rise` in a row succeed. `streak` counts the results in a row that
  // disagree with `checked_up`.
  bool checked_up = true;
  std::int64_t streak = 0;
  std::string check_error;  // why the last failed check failed

  // Passive: client connects that failed since `fails_since`; `max_fails`
  // of them within fail_timeout eject the upstream until `ejected_until`.
  std::int64_t recent_fails = 0;
  clock::time_point fails_since{};
  clock::time_point ejected_until{};
  bool ejected = false;  // an ejection not yet seen to end
  std::string eject_error;

  bool up(clock::time_point now) const { return checked_up && now >= ejected_until; }
};

struct HealthSettings {
  Duration interval{0};  // zero: no active checks
  Duration timeout{0};   // of one check, connect to answer
  std::string send;
  std::string expect;
  std::int64_t fall = 3;
  std::int64_t rise = 2;
};

struct PoolSettings {
  Balance balance = Balance::round_robin;
  HealthSettings health;
  std::int64_t max_fails = 1;  // zero: no passive ejection
  Duration fail_timeout{std::chrono::seconds(10)};
  // How the proxy reaches an upstream, which checks do the same way.
  SendProxy send_proxy = SendProxy::none;
  std::shared_ptr<const TlsClientContext> tls;
  std::string tls_server_name;
};

class UpstreamPool {
 public:
  using clock = std::chrono::steady_clock;

  struct Member {
    Upstream target;
    std::int64_t weight = 1;
    bool backup = false;
    std::shared_ptr<UpstreamState> state;
  };

  // Throws std::invalid_argument for an address parse_upstream() refuses
  // (validate() reports those with their position first).
  UpstreamPool(const UpstreamList& list, PoolSettings settings);
  ~UpstreamPool();
  UpstreamPool(const UpstreamPool&) = delete;
  UpstreamPool& operator=(const UpstreamPool&) = delete;

  const std::vector<Member>& members() const { return members_; }
  const PoolSettings& settings() const { return settings_; }

  // Where the next attempt for `client` goes: the policy's choice among
  // the primaries that are up and not in `tried`, or when there is none,
  // among the backups likewise. nullopt when nothing is left: with nothing
  // tried yet, every upstream is down.
  std::optional<std::size_t> choose(const Endpoint& client, const std::vector<bool>& tried);

  // An attempt's outcome; `why` is describe_failure()'s. The attempt counts
  // as active while the caller holds a Lease on the upstream's state.
  void connected(std::size_t index);
  void failed(std::size_t index, const std::string& why);

  // Takes over the state of the upstreams `previous` also has; stops its
  // checks.
  void take_over(UpstreamPool& previous);
  // Starts the health checks, when configured, one per upstream.
  void start(const HandlerContext& context);
  // Ends every check at once (its connection is closed).
  void stop_checks();

  // Clients closed without an upstream: every one down (refused at once),
  // or none reachable.
  struct Refusals {
    std::uint64_t all_down = 0;
    std::uint64_t unreachable = 0;
  };
  Refusals& refusals() { return *refusals_; }

  std::vector<std::string> status() const;
  void write_metrics(MetricsWriter& out, std::string_view listener) const;

 private:
  struct Checker;
  static boost::asio::awaitable<void> check_loop(std::shared_ptr<Checker> checker);
  static boost::asio::awaitable<std::string> check_once(Checker& checker);
  // A check's steps after the connect: PROXY header, TLS, send, expect.
  static boost::asio::awaitable<std::string> exchange(Checker& checker, const std::function<Duration()>& left);
  void log(spdlog::level::level_enum level, const std::string& text) const;
  // Notices ejections that ended, and says so once.
  void refresh(clock::time_point now);

  std::vector<Member> members_;
  PoolSettings settings_;
  std::vector<std::int64_t> weights_;
  WeightedRoundRobin rotation_;
  std::optional<HashRing> ring_;
  std::mt19937_64 rng_;
  std::shared_ptr<Refusals> refusals_ = std::make_shared<Refusals>();
  std::vector<std::shared_ptr<Checker>> checkers_;
  std::shared_ptr<spdlog::logger> logger_;
  std::string listener_;
};

// Holds one unit of an upstream's active count for as long as the
// connection (or the attempt) to it lasts.
class Lease {
 public:
  Lease() = default;
  explicit Lease(std::shared_ptr<UpstreamState> state) : state_(std::move(state)) { ++state_->active; }
  Lease(Lease&& other) noexcept = default;
  Lease& operator=(Lease&& other) noexcept {
    release();
    state_ = std::move(other.state_);
    return *this;
  }
  ~Lease() { release(); }
  void release() {
    if (state_) --state_->active;
    state_.reset();
  }

 private:
  std::shared_ptr<UpstreamState> state_;
};

// Why an attempt failed, for a log line: the system's words ("Connection
// refused"), "timed out after 2s", or "TLS: ..." for a TLS failure.
std::string describe_failure(const boost::system::error_code& ec, Duration timeout);

}  // namespace portico::handlers
