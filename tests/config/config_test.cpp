#include <grp.h>
#include <pwd.h>

#include <catch2/catch.hpp>

#include <portico/config.hpp>
#include <portico/registry.hpp>

using namespace std::chrono_literals;

namespace {

portico::Registry builtin() {
  portico::Registry r;
  portico::register_builtin_handlers(r);
  return r;
}

}  // namespace

TEST_CASE("a full config parses into plain structs with defaults filled in", "[config]") {
  const auto registry = builtin();
  const auto result = portico::parse_config(R"(
[daemon]
log_level = "debug"
shutdown_timeout = "250ms"

[[listener]]
name = "hello"
address = "127.0.0.1:8888"
message = "hi\n"

[[listener]]
address = "[::1]:0"
handler = "greeting"
mode = "on-connect"
)",
                                            "test.toml", registry);
  INFO(result.errors.to_string());
  REQUIRE(result.config);
  const auto& config = *result.config;
  CHECK(config.daemon.log_level == portico::LogLevel::debug);
  CHECK(config.daemon.shutdown_timeout == 250ms);
  REQUIRE(config.listeners.size() == 2);
  CHECK(config.listeners[0].name == "hello");
  CHECK(config.listeners[0].handler == "greeting");
  CHECK(config.listeners[0].options.string("message") == "hi\n");
  CHECK(config.listeners[0].options.is_explicit("message"));
  CHECK(config.listeners[0].options.integer("read_limit") == 100);
  CHECK_FALSE(config.listeners[0].options.is_explicit("read_limit"));
  CHECK(config.listeners[0].options.duration("read_timeout") == 10s);
  CHECK(config.listeners[0].pos.line == 6);
  // A listener without a name is named by its address.
  CHECK(config.listeners[1].name == "[::1]:0");
  CHECK(config.listeners[1].options.string("mode") == "on-connect");
  // Deferred accepts follow the handler unless set.
  CHECK_FALSE(config.listeners[0].defer_accept);
}

TEST_CASE("defer_accept: auto unless set, whole seconds, printed back", "[config]") {
  const auto registry = builtin();
  const auto result = portico::parse_config(
      "[[listener]]\nname = \"a\"\naddress = \"127.0.0.1:1\"\ndefer_accept = \"auto\"\n"
      "[[listener]]\nname = \"b\"\naddress = \"127.0.0.1:2\"\ndefer_accept = \"0s\"\n"
      "[[listener]]\nname = \"c\"\naddress = \"127.0.0.1:3\"\ndefer_accept = \"3s\"\n"
      "[[listener]]\nname = \"d\"\naddress = \"unix:/run/d.sock\"\n",
      "t.toml", registry);
  INFO(result.errors.to_string());
  REQUIRE(result.config);
  const auto& l = result.config->listeners;
  CHECK_FALSE(l[0].defer_accept);
  CHECK(l[1].defer_accept == 0s);
  CHECK(l[2].defer_accept == 3s);
  const std::string printed = portico::print_config(*result.config, registry);
  CHECK_THAT(printed, Catch::Matchers::Contains("name = \"a\"\naddress = \"127.0.0.1:1\"\nhandler = \"greeting\"\n"
                                                "backlog = 1024\nreuse_port = false\nkeepalive = false\nnodelay = true\n"
                                                "defer_accept = \"auto\"\n"));
  CHECK_THAT(printed, Catch::Matchers::Contains("defer_accept = \"0s\"\n"));
  CHECK_THAT(printed, Catch::Matchers::Contains("defer_accept = \"3s\"\n"));
  const auto again = portico::parse_config(printed, "printed.toml", registry);
  REQUIRE(again.config);
  for (std::size_t i = 0; i < l.size(); ++i) CHECK(again.config->listeners[i].defer_accept == l[i].defer_accept);
}

TEST_CASE("the embedded default serves the greeting on 127.0.0.1:8888", "[config]") {
  const auto registry = builtin();
  const auto result = portico::parse_config(portico::embedded_default_config, "<embedded default>", registry);
  REQUIRE(result.config);
  REQUIRE(result.config->listeners.size() == 1);
  CHECK(result.config->listeners[0].address.to_string() == "127.0.0.1:8888");
  CHECK(result.config->listeners[0].handler == "greeting");
}

TEST_CASE("two listeners on port 0 do not collide", "[config]") {
  const auto registry = builtin();
  const auto result = portico::parse_config(
      "[[listener]]\naddress = \"127.0.0.1:0\"\nname = \"a\"\n[[listener]]\naddress = \"127.0.0.1:0\"\nname = \"b\"\n",
      "t.toml", registry);
  CHECK(result.errors.empty());
}

TEST_CASE("two unnamed listeners on port 0 do not collide, by address or by the name taken from it", "[config]") {
  const auto registry = builtin();
  const auto result = portico::parse_config(
      "[[listener]]\naddress = \"127.0.0.1:0\"\n[[listener]]\naddress = \"127.0.0.1:0\"\nhandler = \"echo\"\n",
      "t.toml", registry);
  CHECK(result.errors.to_string() == "");
  REQUIRE(result.config);
  CHECK(result.config->listeners.size() == 2);
}

TEST_CASE("a Unix socket file belongs to the [daemon] user and group unless socket_user/socket_group say otherwise",
          "[config]") {
  const auto registry = builtin();
  const passwd* nobody = getpwnam("nobody");
  const group* root_group = getgrnam("root");
  REQUIRE(nobody != nullptr);
  REQUIRE(root_group != nullptr);
  const auto result = portico::parse_config("[daemon]\nuser = \"nobody\"\n"
                                            "[[listener]]\naddress = \"unix:/run/a.sock\"\n"
                                            "[[listener]]\naddress = \"unix:/run/b.sock\"\nsocket_group = \"root\"\n"
                                            "[[listener]]\naddress = \"127.0.0.1:0\"\n",
                                            "t.toml", registry);
  REQUIRE(result.config);
  const auto& l = result.config->listeners;
  CHECK(l[0].socket_uid == nobody->pw_uid);
  CHECK(l[0].socket_gid == nobody->pw_gid);
  CHECK(l[0].socket_group.empty());
  CHECK(l[1].socket_uid == nobody->pw_uid);
  CHECK(l[1].socket_gid == root_group->gr_gid);
  CHECK(l[1].socket_group == "root");
  CHECK_FALSE(l[2].socket_uid);
  CHECK_FALSE(l[2].socket_gid);
  // Without a [daemon] user, nothing changes hands unless asked.
  const auto plain = portico::parse_config("[[listener]]\naddress = \"unix:/run/a.sock\"\n", "t.toml", registry);
  REQUIRE(plain.config);
  CHECK_FALSE(plain.config->listeners[0].socket_uid);
  CHECK_FALSE(plain.config->listeners[0].socket_gid);
  // --print-config writes what was written.
  const std::string printed = portico::print_config(*result.config, registry);
  CHECK(printed.find("socket_group = \"root\"\n") != std::string::npos);
  CHECK(printed.find("socket_user") == std::string::npos);
}

TEST_CASE("print_config output parses back to the same config", "[config]") {
  const auto registry = builtin();
  const auto first = portico::parse_config(
      "[daemon]\nshutdown_timeout = \"2m\"\n[[listener]]\naddress = \"127.0.0.1:9\"\nmessage = \"a\\\"b\\u0001\"\n",
      "t.toml", registry);
  REQUIRE(first.config);
  const std::string printed = portico::print_config(*first.config, registry);
  const auto second = portico::parse_config(printed, "printed.toml", registry);
  INFO(printed);
  REQUIRE(second.config);
  CHECK(second.config->daemon.shutdown_timeout == first.config->daemon.shutdown_timeout);
  CHECK(second.config->listeners[0].options == first.config->listeners[0].options);
  CHECK(second.config->listeners[0].options.string("message") == "a\"b\x01");
}

// Found by the config fuzz target: the printed defaults of upstream_tls_ca
// and upstream_tls_server_name were refused without upstream_tls.
TEST_CASE("print_config of a proxy without upstream TLS parses back", "[config]") {
  const auto registry = builtin();
  const auto first = portico::parse_config(
      "[[listener]]\naddress = \"127.0.0.1:9\"\nhandler = \"proxy\"\nupstream = [\"127.0.0.1:10\"]\n", "t.toml",
      registry);
  INFO(first.errors.to_string());
  REQUIRE(first.config);
  const std::string printed = portico::print_config(*first.config, registry);
  const auto second = portico::parse_config(printed, "printed.toml", registry);
  INFO(printed << second.errors.to_string());
  REQUIRE(second.config);
  CHECK(second.config->listeners[0].options == first.config->listeners[0].options);
  // A value of its own still needs upstream_tls.
  const auto wrong = portico::parse_config("[[listener]]\naddress = \"127.0.0.1:9\"\nhandler = \"proxy\"\n"
                                           "upstream = [\"127.0.0.1:10\"]\nupstream_tls_ca = \"/etc/ssl/ca.pem\"\n",
                                           "t.toml", registry);
  CHECK(wrong.errors.to_string() == "t.toml:5:19: \"upstream_tls_ca\" applies only with upstream_tls = true\n");
}

TEST_CASE("access_log: off by default; when on, every listener writes unless it says not to; printed back",
          "[config][access_log]") {
  const auto registry = builtin();
  const auto off = portico::parse_config("[[listener]]\naddress = \"127.0.0.1:1\"\n", "t.toml", registry);
  REQUIRE(off.config);
  CHECK_FALSE(off.config->daemon.access_log_on());
  const std::string off_printed = portico::print_config(*off.config, registry);
  CHECK_THAT(off_printed, Catch::Matchers::Contains("access_log = \"off\"\n"));
  CHECK_THAT(off_printed, !Catch::Matchers::Contains("access_log_format"));
  CHECK(portico::parse_config(off_printed, "printed.toml", registry).config);

  const auto on = portico::parse_config(
      "[daemon]\naccess_log = \"/var/log/portico/access.log\"\naccess_log_format = \"json\"\n"
      "[[listener]]\nname = \"a\"\naddress = \"127.0.0.1:1\"\n"
      "[[listener]]\nname = \"b\"\naddress = \"127.0.0.1:2\"\naccess_log = false\n",
      "t.toml", registry);
  INFO(on.errors.to_string());
  REQUIRE(on.config);
  CHECK(on.config->daemon.access_log == "/var/log/portico/access.log");
  CHECK(on.config->daemon.access_log_format == portico::AccessLogFormat::json);
  CHECK(on.config->listeners[0].access_log);
  CHECK_FALSE(on.config->listeners[1].access_log);
  const std::string printed = portico::print_config(*on.config, registry);
  CHECK_THAT(printed, Catch::Matchers::Contains("access_log = \"/var/log/portico/access.log\"\n"
                                                "access_log_format = \"json\"\n"));
  const auto again = portico::parse_config(printed, "printed.toml", registry);
  INFO(printed);
  REQUIRE(again.config);
  CHECK(again.config->daemon.access_log_format == portico::AccessLogFormat::json);
  CHECK(again.config->listeners[0].access_log);
  CHECK_FALSE(again.config->listeners[1].access_log);
}
