// The access log's escaping, with values no config or integration test can
// easily produce: control bytes, bytes that are not UTF-8, C1 controls, and
// a TLS session's fields.

#include <catch2/catch.hpp>

#include <portico/tls.hpp>

#include "daemon/access_log_format.hpp"

using namespace portico;

namespace {

std::string logfmt(std::string_view value) {
  std::string out;
  append_logfmt_value(out, value);
  return out;
}

std::string json(std::string_view value) {
  std::string out;
  append_json_string(out, value);
  return out;
}

}  // namespace

TEST_CASE("logfmt values: bare when plain, else quoted with escape_text's escapes", "[access_log]") {
  CHECK(logfmt("hello") == "hello");
  CHECK(logfmt("127.0.0.1:80") == "127.0.0.1:80");
  CHECK(logfmt("") == "\"\"");
  CHECK(logfmt("a b") == "\"a b\"");
  CHECK(logfmt("k=v") == "\"k=v\"");
  CHECK(logfmt("say \"hi\"\\") == "\"say \\\"hi\\\"\\\\\"");
  CHECK(logfmt("line\nforged=1") == "\"line\\nforged=1\"");
  CHECK(logfmt("\x1b[31mred") == "\"\\x1b[31mred\"");
  CHECK(logfmt("caf\xc3\xa9") == "\"caf\xc3\xa9\"");
  CHECK(logfmt("bad\xff") == "\"bad\\xff\"");
}

TEST_CASE("JSON strings: RFC 8259 escapes, C1 controls escaped, bytes that are not UTF-8 as U+FFFD",
          "[access_log]") {
  CHECK(json("plain") == "\"plain\"");
  CHECK(json("q\"b\\") == "\"q\\\"b\\\\\"");
  CHECK(json("a\nb\rc\td") == "\"a\\nb\\rc\\td\"");
  CHECK(json(std::string("\x00\x1b\x7f", 3)) == "\"\\u0000\\u001b\\u007f\"");
  CHECK(json("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80") == "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
  CHECK(json("\xc2\x9b" "31m") == "\"\\u009b31m\"");
  CHECK(json("\xff\xc3") == "\"\\ufffd\\ufffd\"");
  CHECK(json("\xc0\xaf") == "\"\\ufffd\\ufffd\"");          // overlong '/'
  CHECK(json("\xed\xa0\x80") == "\"\\ufffd\\ufffd\\ufffd\"");  // a surrogate
}

TEST_CASE("a TLS connection's line names what the handshake negotiated", "[access_log]") {
  Endpoint peer{boost::asio::ip::make_address("2001:db8::7"), 50312, false, {}};
  Endpoint local{boost::asio::ip::make_address("192.0.2.1"), 443, false, {}};
  TlsInfo tls{"TLSv1.3", "TLS_AES_128_GCM_SHA256", "www.example.org", "h2", "CN=alice \"admin\"", "SHA256:ab", true};
  const std::vector<std::pair<std::string, std::string>> fields = {{"upstream", "10.0.0.5:80"}};
  const ConnectionRecord record{"web", "proxy", peer, nullptr, local, {}, std::chrono::microseconds(1500),
                                100, 2000, ConnectionEnd::client_closed, {}, fields, &tls};
  const auto at = std::chrono::system_clock::time_point(std::chrono::milliseconds(1796297048007));
  std::string out;
  format_connection(out, AccessLogFormat::logfmt, record, at);
  CHECK(out == "time=2026-12-03T11:24:08.007Z listener=web handler=proxy peer=[2001:db8::7]:50312 "
               "local=192.0.2.1:443 duration=0.001500 bytes_in=100 bytes_out=2000 end=client_closed "
               "upstream=10.0.0.5:80 tls_protocol=TLSv1.3 tls_cipher=TLS_AES_128_GCM_SHA256 tls_sni=www.example.org "
               "tls_alpn=h2 tls_client_subject=\"CN=alice \\\"admin\\\"\" tls_client_hash=SHA256:ab tls_resumed=true\n");
  out.clear();
  format_connection(out, AccessLogFormat::json, record, at);
  CHECK(out == "{\"time\":\"2026-12-03T11:24:08.007Z\",\"listener\":\"web\",\"handler\":\"proxy\","
               "\"peer\":\"[2001:db8::7]:50312\",\"local\":\"192.0.2.1:443\",\"duration\":0.001500,\"bytes_in\":100,"
               "\"bytes_out\":2000,\"end\":\"client_closed\",\"upstream\":\"10.0.0.5:80\",\"tls_protocol\":\"TLSv1.3\","
               "\"tls_cipher\":\"TLS_AES_128_GCM_SHA256\",\"tls_sni\":\"www.example.org\",\"tls_alpn\":\"h2\","
               "\"tls_client_subject\":\"CN=alice \\\"admin\\\"\",\"tls_client_hash\":\"SHA256:ab\","
               "\"tls_resumed\":true}\n");
}

// The access log writes addresses, ports and durations itself (not through
// inet_ntop and a float format, which cost most of a line): every digit
// checked at the edges.
TEST_CASE("addresses, ports and durations are written digit for digit", "[access_log]") {
  const auto line = [](const char* peer_ip, std::uint16_t peer_port, const char* local_ip, std::uint16_t local_port,
                       std::int64_t micros, std::vector<std::pair<std::string, std::string>> fields = {}) {
    Endpoint peer{boost::asio::ip::make_address(peer_ip), peer_port, false, {}};
    Endpoint local{boost::asio::ip::make_address(local_ip), local_port, false, {}};
    const ConnectionRecord record{"l", "greeting", peer, nullptr, local, {}, std::chrono::microseconds(micros),
                                  0, 18446744073709551615ull, ConnectionEnd::handler_done, {}, fields, nullptr};
    std::string out;
    format_connection(out, AccessLogFormat::logfmt, record, std::chrono::system_clock::time_point());
    return out;
  };
  CHECK(line("0.0.0.0", 0, "255.255.255.255", 65535, 0) ==
        "time=1970-01-01T00:00:00.000Z listener=l handler=greeting peer=0.0.0.0:0 local=255.255.255.255:65535 "
        "duration=0.000000 bytes_in=0 bytes_out=18446744073709551615 end=handler_done\n");
  CHECK(line("10.0.100.9", 8, "::", 1, 999999).find(" peer=10.0.100.9:8 local=[::]:1 duration=0.999999 ") !=
        std::string::npos);
  CHECK(line("192.168.1.20", 10000, "::ffff:10.1.2.3", 80, 12000001).find(" duration=12.000001 ") !=
        std::string::npos);
  CHECK(line("1.2.3.4", 5, "fe80::1:2", 6, 3601000000).find(" local=[fe80::1:2]:6 duration=3601.000000 ") !=
        std::string::npos);
  // A handler's key is made a key; its value is quoted like any other.
  CHECK(line("1.2.3.4", 5, "1.2.3.4", 6, 1, {{"Up-Stream key", "a b"}}).find(" up_stream_key=\"a b\"\n") !=
        std::string::npos);
}
