// The control socket's commands (ctl/protocol.hpp): what porticoctl asks of
// a running porticod, answered from the Runtime's state.

#include <sys/stat.h>
#include <unistd.h>

#include <ctime>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <fmt/format.h>

#include <portico/io.hpp>
#include <portico/text.hpp>
#include <portico/version.hpp>

#include "daemon/privileges.hpp"
#include "daemon/runtime.hpp"

namespace portico {

namespace asio = boost::asio;
using control::JsonWriter;
using control::Request;
using control::Status;
using Answer = ControlServer::Answer;

namespace {

// How long one listener's probe may take, connecting included.
constexpr Duration probe_timeout = std::chrono::seconds(5);

Answer json_answer(const JsonWriter& json) { return {Status{}, {json.str()}}; }

// An error: the message in the status line; the details as body lines, or
// with --json as {"error": ..., "code": ..., "details": [...]}.
Answer error_answer(bool json, int code, const std::string& message, const std::vector<std::string>& details = {}) {
  if (!json) return {Status{code, message}, details};
  JsonWriter out;
  out.begin_object().field("error", message).field("code", code).key("details").begin_array();
  for (const auto& line : details) out.value(line);
  out.end_array().end_object();
  return {Status{code, message}, {out.str()}};
}

std::string_view state_name(Server::ListenerState state) {
  switch (state) {
    case Server::ListenerState::serving: return "serving";
    case Server::ListenerState::paused: return "paused";
    case Server::ListenerState::disabled: return "disabled";
    case Server::ListenerState::draining: return "draining";
  }
  return "serving";
}

std::string_view activity_name(Stream::Activity activity) {
  switch (activity) {
    case Stream::Activity::reading: return "reading";
    case Stream::Activity::writing: return "writing";
    case Stream::Activity::none: break;
  }
  return "other";  // waiting for something else: an upstream, a child, its turn
}

// "850ms", "4.2s", "12m03s", "5h02m", "3d04h": short, and exact enough to
// tell an old connection from a new one.
std::string format_age(Duration age) {
  const auto ms = age.count();
  if (ms < 1000) return fmt::format("{}ms", ms);
  if (ms < 60'000) return fmt::format("{}.{}s", ms / 1000, (ms % 1000) / 100);
  const auto s = ms / 1000;
  if (s < 3600) return fmt::format("{}m{:02}s", s / 60, s % 60);
  if (s < 86400) return fmt::format("{}h{:02}m", s / 3600, (s % 3600) / 60);
  return fmt::format("{}d{:02}h", s / 86400, (s % 86400) / 3600);
}

std::string format_time(std::chrono::system_clock::time_point when) {
  const std::time_t t = std::chrono::system_clock::to_time_t(when);
  std::tm tm{};
  gmtime_r(&t, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                     tm.tm_hour, tm.tm_min, tm.tm_sec);
}

Duration since(std::chrono::system_clock::time_point when) {
  return std::chrono::duration_cast<Duration>(std::chrono::system_clock::now() - when);
}

// Rows as columns, each as wide as its widest cell, two spaces apart.
std::vector<std::string> table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> widths;
  for (const auto& row : rows) {
    widths.resize(std::max(widths.size(), row.size()), 0);
    for (std::size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  std::vector<std::string> lines;
  for (const auto& row : rows) {
    std::string line;
    for (std::size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(widths[i] - row[i].size() + 2, ' ');
    }
    lines.push_back(std::move(line));
  }
  return lines;
}

void write_listener(JsonWriter& out, const ConfigDiff::Listener& listener) {
  out.begin_object()
      .field("name", listener.name)
      .field("address", listener.address)
      .field("handler", listener.handler)
      .end_object();
}

void write_diff(JsonWriter& out, const ConfigDiff& diff, bool with_kept) {
  const std::pair<const char*, const std::vector<ConfigDiff::Listener>*> groups[] = {
      {"kept", &diff.kept}, {"added", &diff.added}, {"removed", &diff.removed}};
  for (const auto& [name, list] : groups) {
    if (!with_kept && list == &diff.kept) continue;
    out.key(name).begin_array();
    for (const auto& listener : *list) write_listener(out, listener);
    out.end_array();
  }
  out.key("changes").begin_array();
  for (const auto& c : diff.changes) {
    out.begin_object().field("scope", c.scope).field("key", c.key);
    out.key("before");
    c.before.empty() ? out.null() : out.value(c.before);
    out.key("after");
    c.after.empty() ? out.null() : out.value(c.after);
    out.field("restart", c.restart).end_object();
  }
  out.end_array();
}

std::vector<std::string> diagnostic_lines(const Diagnostics& errors) {
  std::vector<std::string> lines;
  for (const auto& error : errors.all()) lines.push_back(error.to_string());
  if (errors.omitted() > 0) lines.push_back(errors.omitted_line());
  return lines;
}

// Where a probe connects to reach a listener bound to `address`.
std::optional<Endpoint> probe_endpoint(const std::string& address) {
  const auto parsed = parse_address(address);
  if (!parsed) return std::nullopt;
  Endpoint endpoint;
  if (!parsed->is_ip()) {
    endpoint.is_unix = true;
    endpoint.path = parsed->path;
    return endpoint;
  }
  boost::system::error_code ec;
  endpoint.ip = asio::ip::make_address(parsed->host, ec);
  if (ec) return std::nullopt;
  // A wildcard listener is reached on the loopback, as a local client would.
  if (endpoint.ip.is_unspecified()) {
    endpoint.ip = endpoint.ip.is_v4() ? asio::ip::address(asio::ip::address_v4::loopback())
                                      : asio::ip::address(asio::ip::address_v6::loopback());
  }
  endpoint.port = parsed->port;
  return endpoint;
}

}  // namespace

void Runtime::bind_control_socket(const Config& config) {
  const std::string& path = config.daemon.control_socket;
  if (path.empty()) return;
  // The new process of an upgrade takes the path over from the old one,
  // which goes on answering on its socket until it exits.
  control_->bind(path, serving_uid(config.daemon), serving_gid(config.daemon), upgrade_notification_ >= 0);
  struct stat st {};
  if (lstat(path.c_str(), &st) == 0) {
    control_path_ = path;
    control_file_ = {st.st_dev, st.st_ino};
  }
  log_->info("control socket on {}", escape_text(path));
}

void Runtime::answer(const Request& request, const ControlServer::Peer& peer, ControlServer::Reply reply) {
  const std::string line = control::format_request(request);
  const bool changes_something = request.command == "reload" || request.command == "disable" ||
                                 request.command == "enable" || request.command == "drain" ||
                                 request.command == "upgrade";
  log_->log(changes_something ? spdlog::level::info : spdlog::level::debug, "control socket: {}: {}",
            peer.describe(), escape_controls(line));
  const auto& command = request.command;
  if (command == "help") {
    if (!request.json) return reply({Status{}, control::command_synopsis()});
    JsonWriter out;
    out.begin_object().key("commands").begin_array();
    for (const auto& synopsis : control::command_synopsis()) out.value(synopsis);
    out.end_array().end_object();
    return reply(json_answer(out));
  }
  if (command == "status") return reply(status_answer(request.json));
  if (command == "connections") return reply(connections_answer(request));
  if (command == "reload") return reload_request(request, peer, std::move(reply));
  if (command == "upgrade") return upgrade_request(request, peer, std::move(reply));
  if (command == "diff") return diff_request(request, std::move(reply));
  if (command == "drain") return drain_request(request, peer, std::move(reply));
  if (command == "probe") return probe_request(request, std::move(reply));
  if (command == "disable" || command == "enable") {
    const std::string& name = request.args.at(0);
    const bool disable = command == "disable";
    if (auto done = disable ? server_.disable(name) : server_.enable(name); !done) {
      return reply(error_answer(request.json, control::exit_runtime,
                                fmt::format("no listener named {}", quote_text(name))));
    }
    log_->info("listener {} {} by {}", quote_text(name), disable ? "disabled" : "enabled", peer.describe());
    std::size_t open = 0;
    for (const auto& status : server_.listener_status()) {
      if (status.name == name) open = status.open;
    }
    if (request.json) {
      JsonWriter out;
      out.begin_object().field("listener", name).field("state", disable ? "disabled" : "serving").field("open", open);
      out.end_object();
      return reply(json_answer(out));
    }
    return reply({Status{},
                  {disable ? fmt::format("listener {} disabled: new clients wait in its backlog; {} open "
                                         "connection(s) go on",
                                         quote_text(name), open)
                           : fmt::format("listener {} enabled: accepting again", quote_text(name))}});
  }
  reply(error_answer(request.json, control::exit_usage, fmt::format("unknown command {}", quote_text(command))));
}

std::string_view Runtime::upgrade_state() const {
  if (successor_) return "starting";
  if (upgrade_waiting_) return "waiting_for_reload";
  return "none";
}

Answer Runtime::status_answer(bool json) const {
  const auto listeners = server_.listener_status();
  const std::string file = source_.name();
  if (json) {
    JsonWriter out;
    out.begin_object()
        .field("version", version())
        .field("pid", static_cast<std::int64_t>(getpid()))
        .field("started", format_time(started_at_))
        .field("uptime_seconds", static_cast<std::int64_t>(since(started_at_).count() / 1000))
        .field("config", file)
        .field("loaded", format_time(loaded_at_))
        .field("stopping", stopping_)
        .key("upgrade")
        .begin_object()
        .field("state", upgrade_state())
        .field("new_pid", static_cast<std::int64_t>(successor_ ? successor_->pid() : 0))
        .end_object()
        .key("reloads")
        .begin_object()
        .field("ok", reloads_ok_)
        .field("failed", reloads_failed_)
        .end_object()
        .field("connections", static_cast<std::uint64_t>(server_.connection_count()))
        .key("listeners")
        .begin_array();
    for (const auto& l : listeners) {
      const auto& c = l.counters;
      out.begin_object()
          .field("name", l.name)
          .field("address", l.address)
          .field("handler", l.handler)
          .field("state", state_name(l.state))
          .field("open", static_cast<std::uint64_t>(l.open))
          .field("accepted", c.accepted)
          .field("ended", c.ended)
          .key("refused")
          .begin_object();
      out.field("total", c.refused_total());
      for (std::size_t i = 0; i < refusal_kinds; ++i) out.field(to_string(static_cast<Refusal>(i)), c.refused[i]);
      out.end_object()
          .field("idle_timeouts", c.idle_timeouts)
          .field("session_timeouts", c.session_timeouts)
          .field("bytes_received", c.bytes_received)
          .field("bytes_sent", c.bytes_sent)
          .key("handler_status")
          .begin_array();
      for (const auto& line : l.handler_status) out.value(line);
      out.end_array().end_object();
    }
    out.end_array().end_object();
    return json_answer(out);
  }
  std::vector<std::string> body;
  std::string state = stopping_ ? ", stopping" : "";
  if (successor_) {
    state += fmt::format(", upgrading (new process {})", successor_->pid());
  } else if (upgrade_waiting_) {
    state += ", upgrading (waiting for the reload to be applied)";
  }
  body.push_back(fmt::format("porticod {}, pid {}, up {}{}", version(), getpid(), format_age(since(started_at_)), state));
  body.push_back(fmt::format("config {}, loaded {} ({} ago); reloads: {} ok, {} failed", escape_text(file),
                             format_time(loaded_at_), format_age(since(loaded_at_)), reloads_ok_, reloads_failed_));
  body.push_back(fmt::format("{} listener(s), {} open connection(s)", listeners.size(), server_.connection_count()));
  std::vector<std::vector<std::string>> rows = {
      {"LISTENER", "ADDRESS", "HANDLER", "STATE", "OPEN", "ACCEPTED", "REFUSED", "IN", "OUT"}};
  for (const auto& l : listeners) {
    rows.push_back({escape_text(l.name), escape_text(l.address), escape_text(l.handler), std::string(state_name(l.state)),
                    std::to_string(l.open), std::to_string(l.counters.accepted),
                    std::to_string(l.counters.refused_total()), std::to_string(l.counters.bytes_received),
                    std::to_string(l.counters.bytes_sent)});
  }
  const auto lines = table(rows);
  body.push_back(lines[0]);
  for (std::size_t i = 0; i < listeners.size(); ++i) {
    body.push_back(lines[i + 1]);
    for (const auto& line : listeners[i].handler_status) body.push_back("  " + escape_controls(line));
  }
  return {Status{}, std::move(body)};
}

Answer Runtime::connections_answer(const Request& request) const {
  const std::string name = request.args.empty() ? std::string() : request.args[0];
  if (!name.empty()) {
    bool known = false;
    for (const auto& l : server_.listener_status()) known = known || l.name == name;
    // Connections of a listener a reload removed are still listed.
    if (!known && server_.connections(name).empty()) {
      return error_answer(request.json, control::exit_runtime, fmt::format("no listener named {}", quote_text(name)));
    }
  }
  const auto connections = server_.connections(name);
  if (request.json) {
    JsonWriter out;
    out.begin_object().key("connections").begin_array();
    for (const auto& c : connections) {
      out.begin_object()
          .field("listener", c.listener)
          .field("peer", c.peer.to_string())
          .field("age_seconds", std::chrono::duration<double>(c.age).count())
          .field("bytes_received", c.bytes_received)
          .field("bytes_sent", c.bytes_sent)
          .field("state", activity_name(c.activity))
          .end_object();
    }
    out.end_array().end_object();
    return json_answer(out);
  }
  if (connections.empty()) return {Status{}, {"no open connections"}};
  std::vector<std::vector<std::string>> rows = {{"LISTENER", "PEER", "AGE", "IN", "OUT", "STATE"}};
  for (const auto& c : connections) {
    rows.push_back({escape_text(c.listener), escape_text(c.peer.to_string()), format_age(c.age),
                    std::to_string(c.bytes_received), std::to_string(c.bytes_sent),
                    std::string(activity_name(c.activity))});
  }
  return {Status{}, table(rows)};
}

void Runtime::reload_request(const Request& request, const ControlServer::Peer& peer, ControlServer::Reply reply) {
  reload(fmt::format("porticoctl reload by {}", peer.describe()),
         [json = request.json, reply = std::move(reply)](const ReloadOutcome& outcome) {
           using Outcome = ReloadOutcome::Status;
           const std::string file = escape_text(outcome.file);
           switch (outcome.result) {
             case Outcome::stopping:
               return reply(error_answer(json, control::exit_runtime, "porticod is stopping: no reload"));
             case Outcome::upgrading:
               return reply(error_answer(json, control::exit_tempfail, outcome.message));
             case Outcome::invalid:
               return reply(error_answer(
                   json, control::exit_config,
                   fmt::format("reload failed: {} error(s) in {}; still serving the previous configuration",
                               outcome.errors.size(), file),
                   diagnostic_lines(outcome.errors)));
             case Outcome::failed:
               return reply(error_answer(
                   json, control::exit_runtime,
                   fmt::format("reload failed: {}; still serving the previous configuration", outcome.message)));
             case Outcome::ok:
               break;
           }
           if (json) {
             JsonWriter out;
             out.begin_object().field("file", outcome.file).field("summary", outcome.message);
             write_diff(out, outcome.diff, true);
             out.key("notes").begin_array();
             for (const auto& note : outcome.notes) out.value(note);
             out.end_array().end_object();
             return reply(json_answer(out));
           }
           std::vector<std::string> body = {fmt::format("reloaded {}: {}", file, outcome.message)};
           for (const auto& l : outcome.diff.kept) {
             body.push_back(fmt::format("= listener {} {} ({})", quote_text(l.name), escape_text(l.address),
                                        escape_text(l.handler)));
           }
           for (auto& line : outcome.diff.lines()) body.push_back(std::move(line));
           if (outcome.diff.empty()) body.push_back("no setting changed");
           for (const auto& note : outcome.notes) body.push_back("note: " + note);
           reply({Status{}, std::move(body)});
         });
}

void Runtime::upgrade_request(const Request& request, const ControlServer::Peer& peer, ControlServer::Reply reply) {
  upgrade(fmt::format("porticoctl upgrade by {}", peer.describe()),
          request.timeout.value_or(control::default_upgrade_timeout),
          [this, json = request.json, reply = std::move(reply)](const UpgradeOutcome& outcome) {
            using Outcome = UpgradeOutcome::Status;
            switch (outcome.result) {
              case Outcome::stopping:
                return reply(error_answer(json, control::exit_runtime, outcome.message));
              case Outcome::busy:
                return reply(error_answer(json, control::exit_tempfail, outcome.message));
              case Outcome::failed:
                // 78: the new process found errors in the configuration
                // (it logged them; porticod --check shows them too).
                return reply(error_answer(json,
                                          outcome.exit_status == control::exit_config ? control::exit_config
                                                                                      : control::exit_runtime,
                                          outcome.message));
              case Outcome::ok:
                break;
            }
            const auto timeout = format_duration(config_.daemon.shutdown_timeout);
            if (json) {
              JsonWriter out;
              out.begin_object()
                  .field("new_pid", static_cast<std::int64_t>(outcome.pid))
                  .field("old_pid", static_cast<std::int64_t>(getpid()))
                  .field("connections", static_cast<std::uint64_t>(outcome.connections))
                  .field("shutdown_timeout", timeout)
                  .end_object();
              return reply(json_answer(out));
            }
            reply({Status{},
                   {fmt::format("upgraded: the new process (pid {}) serves every listener; the old one (pid {}) "
                                "drains its {} connection(s) for up to {} and exits",
                                outcome.pid, getpid(), outcome.connections, timeout)}});
          });
}

void Runtime::diff_request(const Request& request, ControlServer::Reply reply) {
  if (stopping_) return reply(error_answer(request.json, control::exit_runtime, "porticod is stopping"));
  std::string path = request.args.empty() ? source_.path : request.args[0];
  if (!request.args.empty() && !path.starts_with('/')) {
    return reply(error_answer(request.json, control::exit_usage,
                              fmt::format("diff: {} is not an absolute path (porticod's working directory is not "
                                          "yours)",
                                          quote_text(path))));
  }
  const bool own = path == source_.path;
  const std::string shown = path.empty() ? std::string(embedded_default_name) : path;
  load(LoadJob{path, own, nullptr, [this, json = request.json, shown, reply = std::move(reply)](LoadResult loaded) {
                 if (!loaded.config) {
                   return reply(error_answer(json, control::exit_config,
                                             fmt::format("{} error(s) in {}", loaded.errors.size(), escape_text(shown)),
                                             diagnostic_lines(loaded.errors)));
                 }
                 const ConfigDiff diff = diff_configs(config_, *loaded.config, registry_);
                 if (json) {
                   JsonWriter out;
                   out.begin_object().field("file", shown);
                   write_diff(out, diff, false);
                   out.end_object();
                   return reply(json_answer(out));
                 }
                 auto lines = diff.lines();
                 if (lines.empty()) lines.push_back(fmt::format("no changes: {} is what porticod runs", escape_text(shown)));
                 reply({Status{}, std::move(lines)});
               }});
}

void Runtime::drain_request(const Request& request, const ControlServer::Peer& peer, ControlServer::Reply reply) {
  const std::string& name = request.args.at(0);
  const Duration timeout = request.timeout.value_or(control::default_drain_timeout);
  const auto began = std::chrono::steady_clock::now();
  auto shared_reply = std::make_shared<ControlServer::Reply>(std::move(reply));
  auto drained = server_.drain(name, timeout, [this, name, json = request.json, timeout, began,
                                                 shared_reply](std::size_t count) {
    const auto took = std::chrono::duration_cast<Duration>(std::chrono::steady_clock::now() - began);
    // Before its time, connections still open: an `enable` or another
    // drain of the listener ended this one, and cut nothing.
    const bool interrupted = count > 0 && took < timeout;
    const std::size_t cut = interrupted ? 0 : count;
    if (interrupted) {
      log_->info("listener {}: drain ended after {} by enable or another drain; {} connection(s) still open",
                 quote_text(name), format_age(took), count);
    } else {
      log_->info("listener {} drained in {}: {} connection(s) cut", quote_text(name), format_age(took), cut);
    }
    if (json) {
      JsonWriter out;
      out.begin_object()
          .field("listener", name)
          .field("cut", static_cast<std::uint64_t>(cut))
          .field("interrupted", interrupted)
          .field("open", static_cast<std::uint64_t>(interrupted ? count : 0))
          .field("seconds", std::chrono::duration<double>(took).count())
          .end_object();
      return (*shared_reply)(json_answer(out));
    }
    if (interrupted) {
      return (*shared_reply)(
          {Status{}, {fmt::format("listener {}: the drain ended after {} by enable or another drain; {} connection(s) "
                                  "still open, none cut",
                                  quote_text(name), format_age(took), count)}});
    }
    (*shared_reply)({Status{},
                     {cut == 0 ? fmt::format("listener {} drained: every connection ended within {}", quote_text(name),
                                             format_age(took))
                               : fmt::format("listener {} drained: {} connection(s) still open after {} were cut",
                                             quote_text(name), cut, format_duration(timeout)),
                      fmt::format("it stays disabled; porticoctl enable {} serves again", control::quote_word(name))}});
  });
  if (!drained) {
    return (*shared_reply)(error_answer(request.json, control::exit_runtime,
                                        fmt::format("no listener named {}", quote_text(name))));
  }
  log_->info("listener {} draining for up to {}, by {}", quote_text(name), format_duration(timeout),
             peer.describe());
}

void Runtime::probe_request(const Request& request, ControlServer::Reply reply) {
  const std::string name = request.args.empty() ? std::string() : request.args[0];
  // Plugin types are added by the loader thread: look them up only while
  // no load runs.
  if (loading_) {
    after_load_.push_back([this, request, reply = std::move(reply)]() mutable {
      probe_request(request, std::move(reply));
    });
    return;
  }
  struct Outcome {
    std::string listener;
    std::string address;
    std::string handler;
    std::string verdict;  // ok, failed, skipped
    std::string detail;
  };
  struct Round {
    std::vector<Outcome> outcomes;
    std::size_t waiting = 0;
    bool json = false;
    ControlServer::Reply reply;
    void finish() {
      std::size_t failed = 0;
      std::vector<std::string> names;
      for (const auto& o : outcomes) {
        if (o.verdict == "failed") {
          ++failed;
          names.push_back(quote_text(o.listener));
        }
      }
      const Status status = failed == 0 ? Status{}
                                        : Status{control::exit_runtime,
                                                 fmt::format("probe failed: {} of {} listener(s): {}", failed,
                                                             outcomes.size(), fmt::join(names, ", "))};
      if (json) {
        JsonWriter out;
        out.begin_object().field("ok", failed == 0).key("listeners").begin_array();
        for (const auto& o : outcomes) {
          out.begin_object()
              .field("name", o.listener)
              .field("address", o.address)
              .field("handler", o.handler)
              .field("result", o.verdict)
              .field("detail", o.detail)
              .end_object();
        }
        out.end_array().end_object();
        return reply({status, {out.str()}});
      }
      std::vector<std::vector<std::string>> rows;
      for (const auto& o : outcomes) {
        rows.push_back({o.verdict == "ok" ? "ok" : o.verdict == "failed" ? "FAILED" : "-", escape_text(o.listener),
                        escape_text(o.address), escape_text(o.handler), escape_controls(o.detail)});
      }
      reply({status, rows.empty() ? std::vector<std::string>{"no listener to probe"} : table(rows)});
    }
  };
  auto round = std::make_shared<Round>();
  round->json = request.json;
  round->reply = std::move(reply);
  const auto statuses = server_.listener_status();
  // The running listeners and their configs are in the same order.
  for (std::size_t i = 0; i < statuses.size() && i < config_.listeners.size(); ++i) {
    const auto& status = statuses[i];
    if (!name.empty() && status.name != name) continue;
    round->outcomes.push_back({status.name, status.address, status.handler, "skipped", ""});
    Outcome& outcome = round->outcomes.back();
    const ListenerConfig& listener = config_.listeners[i];
    const HandlerType* type = registry_.find(listener.handler);
    const auto endpoint = probe_endpoint(status.address);
    if (status.state == Server::ListenerState::disabled || status.state == Server::ListenerState::draining) {
      outcome.detail = fmt::format("not probed: the listener is {}", state_name(status.state));
    } else if (type == nullptr || !type->probe) {
      outcome.detail = "not probed: the handler type has no probe";
    } else if (listener.tls && listener.tls->verify_client == TlsVerifyClient::require) {
      outcome.detail = "not probed: tls_verify_client = \"require\" wants a client certificate";
    } else if (!endpoint) {
      outcome.verdict = "failed";
      outcome.detail = fmt::format("cannot tell where to connect from {}", quote_text(status.address));
    } else {
      outcome.verdict = "running";
      ++round->waiting;
    }
  }
  if (!name.empty() && round->outcomes.empty()) {
    return round->reply(error_answer(request.json, control::exit_runtime,
                                     fmt::format("no listener named {}", quote_text(name))));
  }
  if (round->waiting == 0) return round->finish();
  std::size_t index = 0;
  for (std::size_t i = 0; i < statuses.size() && i < config_.listeners.size(); ++i) {
    if (!name.empty() && statuses[i].name != name) continue;
    const std::size_t slot = index++;
    if (round->outcomes[slot].verdict != "running") continue;
    // The probe keeps its own copy: a reload may replace config_ meanwhile.
    auto listener = std::make_shared<ListenerConfig>(config_.listeners[i]);
    const HandlerProbe probe = registry_.find(listener->handler)->probe;
    const Endpoint endpoint = *probe_endpoint(statuses[i].address);
    auto run = [round, slot, listener, probe, endpoint, executor = io_.get_executor()]() -> asio::awaitable<void> {
      using namespace asio::experimental::awaitable_operators;
      ProbeTarget target{executor,
                         endpoint,
                         listener->options,
                         probe_timeout,
                         listener->tls.has_value(),
                         listener->tls ? listener->tls->alpn : std::vector<std::string>{},
                         listener->proxy_protocol};
      Outcome& outcome = round->outcomes[slot];
      try {
        // A probe that overstays its time (a name that does not resolve)
        // is given up on.
        asio::steady_timer guard(executor, probe_timeout + std::chrono::seconds(1));
        auto result = co_await (probe(target) || guard.async_wait(use_tuple));
        if (result.index() == 1) {
          outcome.verdict = "failed";
          outcome.detail = fmt::format("no result within {}", format_duration(probe_timeout));
        } else if (auto& r = std::get<0>(result); r) {
          outcome.verdict = "ok";
          outcome.detail = *r;
        } else {
          outcome.verdict = "failed";
          outcome.detail = r.error().message();
        }
      } catch (const std::exception& e) {
        outcome.verdict = "failed";
        outcome.detail = fmt::format("the probe failed: {}", e.what());
      }
      if (--round->waiting == 0) round->finish();
    };
    asio::co_spawn(io_, std::move(run), asio::detached);
  }
}

}  // namespace portico
