#pragma once
// Full-duplex byte relay between two streams: the body of the proxy handler,
// and of exec when the client's bytes must pass through porticod.

#include <cstdint>

#include <boost/asio/awaitable.hpp>
#include <boost/system/error_code.hpp>

#include <portico/stream.hpp>

namespace portico::handlers {

struct RelayResult {
  std::uint64_t client_to_upstream = 0;
  std::uint64_t upstream_to_client = 0;
  // The first failure other than an orderly EOF (a reset, a write to a closed
  // peer, the streams closed from outside, timed_out); empty when both sides
  // finished.
  boost::system::error_code error;
};

// Relays until both directions reached EOF (each EOF is passed on as a
// shutdown of the other stream's sending side, so half-closed protocols keep
// working), until either side fails (then both stop; a reset is passed on as
// a reset), or until the client's idle timeout or deadline passes, counted
// across both directions: then the client stream's expired() says which.
//
// Memory stays bounded whatever the speed difference: a direction never
// reads while it still has bytes to write, and holds at most one buffer of
// them, allocated only once its receiver first falls behind; bytes that can
// be passed on at once go through one buffer shared by all connections. An
// idle direction holds nothing. (splice(2) through a pipe was measured and
// did not beat this on TCP; see relay.cpp.) The caller closes the streams
// afterwards; closing either one meanwhile ends the relay.
//
// With RelayEnd::when_upstream_ends, the relay ends once the upstream's EOF
// was passed on, without waiting for the client's: for a program whose
// output is the end of the exchange (exec).
enum class RelayEnd { when_both_end, when_upstream_ends };
boost::asio::awaitable<RelayResult> relay(Stream& client, Stream& upstream, RelayEnd end = RelayEnd::when_both_end);

}  // namespace portico::handlers
