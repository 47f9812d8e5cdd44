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
