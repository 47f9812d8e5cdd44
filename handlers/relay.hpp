#pragma once
// Full-duplex byte relay between two connected stream sockets: the body of
// the proxy handler.

#include <chrono>
#include <cstdint>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/system/error_code.hpp>

#include <portico/duration.hpp>

namespace portico::handlers {

using RelaySocket = boost::asio::generic::stream_protocol::socket;

struct RelayLimits {
  Duration idle{0};  // no byte in either direction for this long ends the relay; 0 = none
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
};

struct RelayResult {
  std::uint64_t client_to_upstream = 0;
  std::uint64_t upstream_to_client = 0;
  bool idle_expired = false;
  bool deadline_passed = false;
  // The first failure other than an orderly EOF (a reset, a write to a closed
  // peer, the sockets closed from outside); empty when both sides finished.
  boost::system::error_code error;
};

// Relays until both directions reached EOF (each EOF is passed on as a
// shutdown of the other socket's sending side, so half-closed protocols keep
// working), until either side fails (then both stop; a reset is passed on as
// a reset), or until a limit passes. Both sockets must be non-blocking.
//
// Memory stays bounded whatever the speed difference: a direction never
// reads while it still has bytes to write, and holds at most one buffer of
// them, allocated only once its receiver first falls behind; bytes that can
// be passed on at once go through one buffer shared by all connections. An
// idle direction holds nothing. (splice(2) through a pipe was measured and
// did not beat this on TCP; see relay.cpp.) The caller closes the sockets afterwards; closing either
// one meanwhile ends the relay.
boost::asio::awaitable<RelayResult> relay(RelaySocket& client, RelaySocket& upstream, RelayLimits limits);

// Writes all of `data` to a non-blocking socket.
boost::asio::awaitable<boost::system::error_code> write_all(RelaySocket& socket, boost::asio::const_buffer data);

}  // namespace portico::handlers
