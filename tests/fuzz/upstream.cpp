// Fuzz target: the proxy handler's upstreams ("a.b.c.d:port",
// "[ipv6]:port", "unix:/path", "host.name:port"), parse_upstream. Syntax
// only: nothing is resolved or connected.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "handlers/upstream.hpp"

#include "check.hpp"

using portico::handlers::Upstream;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  std::string error;
  const auto upstream = portico::handlers::parse_upstream(text, error);
  if (!upstream) {
    FUZZ_CHECK(error.starts_with("invalid upstream \""), error);
    return 0;
  }
  // No byte of an accepted upstream is ignored: a NUL would end it for
  // inet_pton, getaddrinfo and connect's sun_path.
  FUZZ_CHECK(text.find('\0') == std::string_view::npos, upstream->text);
  if (upstream->kind == Upstream::Kind::unix_path) {
    FUZZ_CHECK(upstream->path.starts_with('/'), upstream->text);
  } else {
    FUZZ_CHECK(upstream->port != 0 && !upstream->host.empty(), upstream->text);
  }

  // The canonical spelling (the one logs show) parses to the same upstream.
  std::string again_error;
  const auto again = portico::handlers::parse_upstream(upstream->text, again_error);
  FUZZ_CHECK(again, upstream->text + ": " + again_error);
  FUZZ_CHECK(again->kind == upstream->kind && again->host == upstream->host && again->port == upstream->port &&
                 again->path == upstream->path && again->text == upstream->text,
             upstream->text + " -> " + again->text);
  return 0;
}
