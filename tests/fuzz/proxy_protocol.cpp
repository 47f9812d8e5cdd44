// Fuzz target: the PROXY protocol v1/v2 parser a proxy_protocol listener
// runs on the first bytes of every connection, and the builder the proxy
// handler's send_proxy uses.
//
// 1. The input is parsed whole, then in parts: the parser is incremental (a
//    listener calls it again each time more bytes arrive), so what it says
//    of a prefix must never contradict what it says of the whole.
// 2. A header it accepts is rebuilt with build_proxy_v1/v2, which must
//    parse back to the same endpoints.
// 3. The same bytes also make two endpoints and a command, whose built
//    headers must parse back to them.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include <fuzzer/FuzzedDataProvider.h>

#include "daemon/proxy_protocol.hpp"

#include "check.hpp"

namespace {

using portico::ProxyCommand;
using portico::ProxyEndpoint;
using portico::ProxyParseResult;
using portico::ProxyParseStatus;
using Family = ProxyEndpoint::Family;
using Bytes = std::span<const std::uint8_t>;

std::string describe(const ProxyParseResult& r) {
  switch (r.status) {
    case ProxyParseStatus::need_more: return "need_more";
    case ProxyParseStatus::invalid: return "invalid: " + r.error;
    case ProxyParseStatus::done: break;
  }
  return "done: v" + std::to_string(r.header.version) + " " + std::to_string(r.header_length) + " bytes, " +
         (r.header.command == ProxyCommand::local ? "LOCAL " : "PROXY ") + r.header.source.to_string() + " -> " +
         r.header.destination.to_string();
}

bool same_outcome(const ProxyParseResult& a, const ProxyParseResult& b) {
  return a.status == b.status && a.header_length == b.header_length && a.header.version == b.header.version &&
         a.header.command == b.header.command && a.header.source == b.header.source &&
         a.header.destination == b.header.destination;
}

// What the first `n` bytes may say, given what all of them say.
void check_prefix(Bytes data, const ProxyParseResult& whole, std::size_t n) {
  const auto part = portico::parse_proxy_header(data.first(n));
  const auto detail = [&] {
    return "first " + std::to_string(n) + " bytes: " + describe(part) + "; all " + std::to_string(data.size()) +
           ": " + describe(whole);
  };
  switch (part.status) {
    case ProxyParseStatus::done:
      // Bytes after the header are the client's and change nothing.
      FUZZ_CHECK(same_outcome(part, whole), detail());
      break;
    case ProxyParseStatus::invalid:
      // Refused connections are closed: more bytes could not have saved it.
      FUZZ_CHECK(whole.status == ProxyParseStatus::invalid, detail());
      break;
    case ProxyParseStatus::need_more:
      // Waiting for bytes after a complete header would stall a client
      // that sent it and now waits for the server.
      FUZZ_CHECK(whole.status != ProxyParseStatus::done || whole.header_length > n, detail());
      break;
  }
}

void check_endpoint(const ProxyEndpoint& e) {
  const std::string text = e.to_string();
  if (e.family == Family::unix_path) {
    FUZZ_CHECK(e.path.size() <= 108 && e.path.find('\0') == std::string::npos, text);
  }
}

void check_whole(Bytes data, const ProxyParseResult& r) {
  switch (r.status) {
    case ProxyParseStatus::need_more:
      // A receiver never buffers more than the longest header.
      FUZZ_CHECK(data.size() < portico::proxy_header_max_length, describe(r));
      break;
    case ProxyParseStatus::invalid: FUZZ_CHECK(!r.error.empty()); break;
    case ProxyParseStatus::done: {
      const auto& h = r.header;
      FUZZ_CHECK(r.header_length > 0 && r.header_length <= data.size(), describe(r));
      FUZZ_CHECK(h.version == 1 || h.version == 2, describe(r));
      FUZZ_CHECK(r.header_length <= (h.version == 1 ? portico::proxy_v1_max_length : portico::proxy_v2_max_length),
                 describe(r));
      FUZZ_CHECK(h.version == 2 || h.command == ProxyCommand::proxy, describe(r));
      // Both ends, of one family, or neither.
      FUZZ_CHECK(h.source.family == h.destination.family, describe(r));
      FUZZ_CHECK(h.command == ProxyCommand::proxy || !h.has_addresses(), describe(r));
      check_endpoint(h.source);
      check_endpoint(h.destination);
      break;
    }
  }
}

// Parses a built header whole, and cut where a listener reading a slow
// client might see it: within the v2 fixed part or the "PROXY " prefix,
// halfway, and one byte short (v1: before its LF). Each cut asks for more.
ProxyParseResult parse_built(const std::vector<std::uint8_t>& header) {
  const Bytes bytes(header);
  for (const std::size_t n : {std::size_t{0}, std::size_t{5}, std::size_t{12}, std::size_t{13}, std::size_t{14},
                              std::size_t{15}, header.size() / 2, header.size() - 2, header.size() - 1}) {
    if (n >= header.size()) continue;
    const auto part = portico::parse_proxy_header(bytes.first(n));
    FUZZ_CHECK(part.status == ProxyParseStatus::need_more,
               "first " + std::to_string(n) + " of " + std::to_string(header.size()) + " bytes: " + describe(part));
  }
  const auto r = portico::parse_proxy_header(bytes);
  FUZZ_CHECK(r.status == ProxyParseStatus::done && r.header_length == header.size(), describe(r));
  return r;
}

ProxyEndpoint mapped_to_v6(const ProxyEndpoint& e) {
  if (e.family != Family::ipv4) return e;
  std::array<std::uint8_t, 16> ip{};
  ip[10] = ip[11] = 0xff;
  std::copy_n(e.ip.begin(), 4, ip.begin() + 12);
  return ProxyEndpoint::ipv6(ip, e.port);
}

// A Unix path as the v2 address block carries it: 108 bytes, NUL-padded.
ProxyEndpoint as_v2_field(const ProxyEndpoint& e) {
  if (e.family != Family::unix_path) return e;
  return ProxyEndpoint::unix_socket(e.path.substr(0, std::min<std::size_t>(e.path.find('\0'), 108)));
}

// build_proxy_v1/v2(source, destination, command) parse back as documented
// in proxy_protocol.hpp: IP endpoints as they are (IPv4 mapped into IPv6
// when the two differ), two Unix paths in v2 only, anything else as a
// header without addresses.
void check_round_trip(const ProxyEndpoint& source, const ProxyEndpoint& destination, ProxyCommand command) {
  const auto detail = [&] { return source.to_string() + " -> " + destination.to_string(); };
  ProxyEndpoint want_source;
  ProxyEndpoint want_destination;
  if (source.is_ip() && destination.is_ip()) {
    const bool mixed = source.family != destination.family;
    want_source = mixed ? mapped_to_v6(source) : source;
    want_destination = mixed ? mapped_to_v6(destination) : destination;
  }

  const auto v1 = parse_built(portico::build_proxy_v1(source, destination));
  FUZZ_CHECK(v1.header.version == 1 && v1.header.command == ProxyCommand::proxy, detail() + ": " + describe(v1));
  FUZZ_CHECK(v1.header.source == want_source && v1.header.destination == want_destination,
             detail() + ": " + describe(v1));

  const auto v2 = parse_built(portico::build_proxy_v2(source, destination, command));
  FUZZ_CHECK(v2.header.version == 2 && v2.header.command == command, detail() + ": " + describe(v2));
  if (command == ProxyCommand::local) {
    FUZZ_CHECK(!v2.header.has_addresses(), detail() + ": " + describe(v2));
    return;
  }
  if (source.family == Family::unix_path && destination.family == Family::unix_path) {
    want_source = as_v2_field(source);
    want_destination = as_v2_field(destination);
  }
  FUZZ_CHECK(v2.header.source == want_source && v2.header.destination == want_destination,
             detail() + ": " + describe(v2));
}

ProxyEndpoint make_endpoint(FuzzedDataProvider& in) {
  switch (in.ConsumeIntegralInRange(0, 3)) {
    case 0: return {};
    case 1: {
      std::array<std::uint8_t, 4> ip{};
      in.ConsumeData(ip.data(), ip.size());
      return ProxyEndpoint::ipv4(ip, in.ConsumeIntegral<std::uint16_t>());
    }
    case 2: {
      std::array<std::uint8_t, 16> ip{};
      in.ConsumeData(ip.data(), ip.size());
      return ProxyEndpoint::ipv6(ip, in.ConsumeIntegral<std::uint16_t>());
    }
    default: return ProxyEndpoint::unix_socket(in.ConsumeRandomLengthString(140));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const Bytes input(data, size);
  const auto whole = portico::parse_proxy_header(input);
  check_whole(input, whole);

  // Split in two where the parser decides something: every byte of the v2
  // fixed part and of "PROXY ", around each CR and LF of a v1 line, around
  // the v1 limit, and around where this header ended.
  std::vector<std::size_t> cuts;
  for (std::size_t n = 0; n <= 16; ++n) cuts.push_back(n);
  for (std::size_t i = 0; i < std::min(size, portico::proxy_v1_max_length + 1); ++i) {
    if (data[i] == '\r' || data[i] == '\n') cuts.insert(cuts.end(), {i, i + 1, i + 2});
  }
  const std::size_t end = whole.header_length;
  cuts.insert(cuts.end(), {end - 1, end, end + 1, portico::proxy_v1_max_length - 1, portico::proxy_v1_max_length,
                           size / 2, size - 1});
  for (const std::size_t n : cuts) {
    if (n < size) check_prefix(input, whole, n);
  }

  if (whole.status == ProxyParseStatus::done) {
    check_round_trip(whole.header.source, whole.header.destination, whole.header.command);
  }

  FuzzedDataProvider in(data, size);
  const ProxyEndpoint source = make_endpoint(in);
  const ProxyEndpoint destination = make_endpoint(in);
  check_round_trip(source, destination, in.ConsumeBool() ? ProxyCommand::local : ProxyCommand::proxy);
  return 0;
}
