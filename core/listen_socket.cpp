#include "core/listen_socket.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <fmt/format.h>


namespace portico {

namespace asio = boost::asio;
using boost::system::error_code;

namespace {

asio::generic::stream_protocol::endpoint endpoint_of(const Address& address) {
  if (address.kind == Address::Kind::unix_path) return asio::local::stream_protocol::endpoint(address.path);
  return asio::ip::tcp::endpoint(asio::ip::make_address(address.host), address.port);
}

Error describe(const ListenerConfig& config, std::string_view step, const std::string& why) {
  return portico::fail("listener \"{}\": cannot {} {}: {}", config.name, step, config.address.to_string(), why);
}

// For a socket being set up: closes it, so that nothing stays open.
Error fail(Acceptor& acceptor, const ListenerConfig& config, std::string_view step, const std::string& why) {
  error_code ignored;
  acceptor.close(ignored);
  return describe(config, step, why);
}

Result<void> close_on_error(Acceptor& acceptor, Result<void> result) {
  if (!result) {
    error_code ignored;
    acceptor.close(ignored);
  }
  return result;
}

// A socket file left behind by a process that died is replaced; one that a
// live process still listens on, or a file that is not a socket, is not.
Result<void> clear_stale_unix_socket(Acceptor& acceptor, const ListenerConfig& config) {
  const std::string& path = config.address.path;
  struct stat st {};
  if (lstat(path.c_str(), &st) != 0) return {};
  if (!S_ISSOCK(st.st_mode)) return fail(acceptor, config, "bind to", "the path exists and is not a socket");
  asio::io_context probe_io;
  asio::local::stream_protocol::socket probe(probe_io);
  error_code ec;
  probe.connect(asio::local::stream_protocol::endpoint(path), ec);
  if (!ec) return fail(acceptor, config, "bind to", "another process is listening on it");
  if (ec == asio::error::connection_refused) {
    ::unlink(path.c_str());
  }
  return {};
}

// socket_user and socket_group as written apply always (they fail when not
// root, unless they name the current user and one of its groups); the
// defaults, the user porticod drops to, only when root, as that drop does.
Result<void> set_socket_owner(Acceptor& acceptor, const ListenerConfig& config) {
  const bool root = geteuid() == 0;
  const uid_t uid = config.socket_uid && (root || !config.socket_user.empty()) ? *config.socket_uid : uid_t(-1);
  const gid_t gid = config.socket_gid && (root || !config.socket_group.empty()) ? *config.socket_gid : gid_t(-1);
  if (uid == uid_t(-1) && gid == gid_t(-1)) return {};
  // lchown: the file just made, not whatever a link there would point to.
  if (::lchown(config.address.path.c_str(), uid, gid) != 0) {
    const std::string why = std::strerror(errno);
    ::unlink(config.address.path.c_str());
    return fail(acceptor, config, "set the owner of", why);
  }
  return {};
}

}  // namespace

std::chrono::seconds defer_accept_of(const ListenerConfig& config, bool client_first) {
  if (!config.address.is_ip()) return std::chrono::seconds(0);
  if (config.defer_accept) return std::chrono::ceil<std::chrono::seconds>(*config.defer_accept);
  return std::chrono::seconds(client_first ? 1 : 0);
}

Result<void> apply_listen_options(Acceptor& acceptor, const ListenerConfig& config, std::chrono::seconds defer_accept) {
  error_code ec;
  if (config.address.is_ip()) {
    acceptor.set_option(asio::ip::tcp::no_delay(config.nodelay), ec);
    if (ec) return describe(config, "set TCP_NODELAY on", ec.message());
    acceptor.set_option(asio::socket_base::keep_alive(config.keepalive), ec);
    if (ec) return describe(config, "set SO_KEEPALIVE on", ec.message());
    // Set every time, zero included, so that a reload can turn it off.
    const int seconds = static_cast<int>(defer_accept.count());
    if (setsockopt(acceptor.native_handle(), IPPROTO_TCP, TCP_DEFER_ACCEPT, &seconds, sizeof seconds) != 0) {
      return describe(config, "set TCP_DEFER_ACCEPT on", std::strerror(errno));
    }
  }
  acceptor.listen(config.backlog, ec);
  if (ec) return describe(config, "listen on", ec.message());
  return {};
}

Result<void> bind_listen_socket(Acceptor& acceptor, const ListenerConfig& config, std::chrono::seconds defer_accept) {
  const auto endpoint = endpoint_of(config.address);
  error_code ec;
  acceptor.open(endpoint.protocol(), ec);
  if (ec) return fail(acceptor, config, "open a socket for", ec.message());
  if (config.address.is_ip()) {
    // Restarting must not wait for the previous run's TIME_WAIT sockets.
    acceptor.set_option(asio::socket_base::reuse_address(true), ec);
    if (ec) return fail(acceptor, config, "set SO_REUSEADDR on", ec.message());
    if (config.reuse_port) {
      const int on = 1;
      if (setsockopt(acceptor.native_handle(), SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) != 0) {
        return fail(acceptor, config, "set SO_REUSEPORT on", std::strerror(errno));
      }
    }
    if (config.address.kind == Address::Kind::ipv6) {
      acceptor.set_option(asio::ip::v6_only(config.v6only), ec);
      if (ec) return fail(acceptor, config, "set IPV6_V6ONLY on", ec.message());
    }
  } else if (auto cleared = clear_stale_unix_socket(acceptor, config); !cleared) {
    return cleared;
  }
  acceptor.bind(endpoint, ec);
  if (ec) return fail(acceptor, config, "bind to", ec.message());
  if (config.socket_mode && ::chmod(config.address.path.c_str(), *config.socket_mode) != 0) {
    const std::string why = std::strerror(errno);
    ::unlink(config.address.path.c_str());
    return fail(acceptor, config, "set the mode of", why);
  }
  if (!config.address.is_ip()) {
    if (auto owned = set_socket_owner(acceptor, config); !owned) return owned;
  }
  auto applied = close_on_error(acceptor, apply_listen_options(acceptor, config, defer_accept));
  if (!applied && !config.address.is_ip()) ::unlink(config.address.path.c_str());
  return applied;
}

Result<void> adopt_listen_socket(Acceptor& acceptor, const ListenerConfig& config, int fd, std::chrono::seconds defer_accept) {
  const auto endpoint = endpoint_of(config.address);
  error_code ec;
  acceptor.assign(endpoint.protocol(), fd, ec);
  if (ec) return fail(acceptor, config, "take over the inherited socket for", ec.message());
  return close_on_error(acceptor, apply_listen_options(acceptor, config, defer_accept));
}

std::string bound_address(const Acceptor& acceptor, const ListenerConfig& config) {
  if (!config.address.is_ip()) return config.address.to_string();
  error_code ec;
  const auto local = acceptor.local_endpoint(ec);
  asio::ip::tcp::endpoint ip;
  std::memcpy(ip.data(), local.data(), std::min<std::size_t>(local.size(), ip.capacity()));
  Address real = config.address;
  real.port = ip.port();
  return real.to_string();
}

bool socket_matches(int fd, const Address& address) {
  int type = 0;
  socklen_t len = sizeof type;
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_STREAM) return false;
  int listening = 0;
  len = sizeof listening;
  if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 || !listening) return false;
  sockaddr_storage storage{};
  len = sizeof storage;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&storage), &len) != 0) return false;
  const auto want = endpoint_of(address);
  if (storage.ss_family != want.data()->sa_family) return false;
  if (storage.ss_family == AF_UNIX) {
    const auto* un = reinterpret_cast<const sockaddr_un*>(&storage);
    return address.path == un->sun_path;
  }
  asio::ip::tcp::endpoint got;
  std::memcpy(got.data(), &storage, std::min<std::size_t>(len, got.capacity()));
  return got.address() == asio::ip::make_address(address.host) && (address.port == 0 || got.port() == address.port);
}

}  // namespace portico
