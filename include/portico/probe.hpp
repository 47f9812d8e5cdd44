#pragma once
// Helpers for handler probes (HandlerType::probe, run by `porticoctl
// probe`): reach a listener as its clients do, and read its answer within
// the probe's time.

#include <cstddef>
#include <memory>
#include <string>

#include <boost/asio/awaitable.hpp>

#include <portico/handler.hpp>
#include <portico/result.hpp>
#include <portico/stream.hpp>

namespace portico {

// Connects to `target.address` and gets through what stands before the
// handler: a PROXY protocol v2 LOCAL header when the listener expects one
// (a health check: the listener goes on with the connection's own
// addresses), then the TLS handshake when the listener has TLS, offering
// its tls_alpn protocols. The server's certificate is not checked: a probe
// asks whether the listener answers, not who it is. Every step on the
// returned stream ends by target.timeout from now (its deadline is set).
// The error says which step failed and why.
boost::asio::awaitable<Result<std::unique_ptr<Stream>>> connect_probe(const ProbeTarget& target);

// Reads until the server closes, at most `limit` bytes (more is an error).
boost::asio::awaitable<Result<std::string>> probe_read_all(Stream& stream, std::size_t limit);
// Reads exactly `size` bytes.
boost::asio::awaitable<Result<std::string>> probe_read_exactly(Stream& stream, std::size_t size);

// How a probe shows bytes it saw: quoted and escaped, at most `limit`
// bytes of them ("\"Hello\\n\"", "\"abc...\" (300 bytes)").
std::string probe_excerpt(std::string_view bytes, std::size_t limit = 64);

}  // namespace portico
