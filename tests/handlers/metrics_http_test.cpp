// The metrics handler's HTTP without a socket (handlers/metrics_http.hpp):
// how much of a request header it takes, whatever way the reads are cut.

#include <algorithm>
#include <cstring>
#include <string>
#include <string_view>

#include <catch2/catch.hpp>

#include "handlers/metrics_http.hpp"

namespace mh = portico::handlers::metrics_http;

namespace {

// "GET /metrics HTTP/1.1", then fields laid out so that every read of
// read_size bytes ends one byte past the end of a field (Beast then takes
// each field as it comes and keeps nothing back), until the header has
// about `size` bytes; then its end.
std::string header_cut_past_fields(std::size_t size) {
  std::string data = "GET /metrics HTTP/1.1\r\n";
  for (std::size_t boundary = mh::read_size; data.size() + 100 < size; boundary += mh::read_size) {
    while (boundary - 1 - data.size() > 100) data += "X-A: " + std::string(60, 'a') + "\r\n";
    data += "X-B: " + std::string(boundary - 1 - data.size() - 7, 'b') + "\r\n";
  }
  return data + "X-C: c\r\n\r\n";
}

// Reads `input` as serve() does, read_size bytes at a time.
mh::Parsed read_request(std::string_view input, std::size_t& received) {
  boost::beast::flat_buffer buffer(mh::max_buffer);
  mh::RequestReader reader;
  received = 0;
  for (;;) {
    boost::beast::error_code ec;
    const auto parsed = mh::parse(buffer, reader, ec);
    if (parsed != mh::Parsed::need_more || received == input.size()) return parsed;
    const std::size_t n = std::min({mh::read_size, mh::max_buffer - buffer.size(), input.size() - received});
    std::memcpy(buffer.prepare(n).data(), input.data() + received, n);
    buffer.commit(n);
    received += n;
  }
}

}  // namespace

// Found by the metrics_http fuzz target: Beast's header_limit bounds what
// one put() is given, not the fields it took before.
TEST_CASE("metrics: a header over 8 KiB gets 431 however the reads are cut", "[metrics]") {
  const std::string big = header_cut_past_fields(40 * 1024);
  REQUIRE(big.size() > 40 * 1024);
  std::size_t received = 0;
  CHECK(read_request(big, received) == mh::Parsed::too_large);
  CHECK(received <= mh::max_header + mh::read_size);

  // The same cut under the limit is a request.
  const std::string small = header_cut_past_fields(mh::read_size);
  REQUIRE((small.size() > mh::read_size && small.size() <= mh::max_header));
  CHECK(read_request(small, received) == mh::Parsed::complete);
  CHECK(received == small.size());
}
