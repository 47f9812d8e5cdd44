// TLS on listeners, from real TLS clients (Python's ssl module and the
// openssl command line) against the real porticod, with certificates the
// tests make on the spot.

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "support/certs.hpp"
#include "support/daemon.hpp"

using namespace portico::test;
using namespace std::chrono_literals;

namespace {

// A CA and a server certificate it signed, for "localhost" and 127.0.0.1.
struct Pki {
  TempDir dir;
  Certificate ca = make_certificate(dir, "ca", {.common_name = "portico test CA", .dns_names = {},
                                                .ip_addresses = {}, .is_ca = true});
  Certificate server = make_certificate(dir, "server", {.common_name = "localhost", .issuer = &ca});
};

std::string tls_listener(const Certificate& cert, const std::string& handler = "greeting",
                         const std::string& extra = "") {
  return "[[listener]]\nname = \"tls\"\naddress = \"127.0.0.1:0\"\nhandler = \"" + handler +
         "\"\ntls_certificate = \"" + cert.cert + "\"\ntls_key = \"" + cert.key + "\"\n" + extra;
}

bool ok(const std::string& line) { return json_field(line, "ok") == "true"; }

}  // namespace

TEST_CASE("the greeting over TLS: exact bytes, TLS 1.3 by default", "[tls]") {
  Pki pki;
  auto d = Daemon::start(tls_listener(pki.server));
  const auto lines = tls_client(d.port(), {"--ca", pki.ca.cert, "--send", "GET request\n"});
  REQUIRE(lines.size() == 1);
  INFO(lines[0]);
  CHECK(ok(lines[0]));
  CHECK(json_field(lines[0], "version") == "TLSv1.3");
  CHECK(json_field(lines[0], "data") == "Hello from server!\n");
  CHECK(json_field(lines[0], "serial") == pki.server.serial);
}

TEST_CASE("openssl s_client gets the greeting too", "[tls]") {
  Pki pki;
  auto d = Daemon::start(tls_listener(pki.server));
  const auto run = run_command({"openssl", "s_client", "-quiet", "-connect", "127.0.0.1:" + std::to_string(d.port()),
                                "-CAfile", pki.ca.cert, "-verify_return_error"},
                               "hello\n", 20s);
  INFO(run.err);
  CHECK(run.out == "Hello from server!\n");
}

TEST_CASE("every handler runs over TLS unchanged", "[tls]") {
  Pki pki;
  SECTION("echo") {
    auto d = Daemon::start(tls_listener(pki.server, "echo"));
    const auto lines = tls_client(d.port(), {"--send", "ping over tls\n", "--read", "14"});
    REQUIRE(lines.size() == 1);
    CHECK(json_field(lines[0], "data") == "ping over tls\n");
  }
  SECTION("daytime") {
    auto d = Daemon::start(tls_listener(pki.server, "daytime"));
    const auto lines = tls_client(d.port());
    REQUIRE(lines.size() == 1);
    const std::string data = json_field(lines[0], "data");
    CHECK(data.ends_with("-UTC\r\n"));
  }
  SECTION("time") {
    auto d = Daemon::start(tls_listener(pki.server, "time"));
    const auto lines = tls_client(d.port());
    REQUIRE(lines.size() == 1);
    CHECK(ok(lines[0]));
    // Four binary bytes; the JSON carries them decoded with replacements,
    // so only their presence is checked here (time_test checks the value).
    CHECK(!json_field(lines[0], "data").empty());
  }
}

TEST_CASE("SNI picks the certificate whose names match, the first one otherwise", "[tls]") {
  Pki pki;
  const auto a = make_certificate(pki.dir, "a", {.common_name = "a.example", .dns_names = {"a.example"},
                                                 .issuer = &pki.ca});
  const auto b = make_certificate(pki.dir, "b", {.common_name = "b.example", .dns_names = {"b.example", "*.b.test"},
                                                 .issuer = &pki.ca});
  auto d = Daemon::start("[[listener]]\naddress = \"127.0.0.1:0\"\ntls_certificate = [\"" + a.cert + "\", \"" +
                         b.cert + "\"]\ntls_key = [\"" + a.key + "\", \"" + b.key + "\"]\n");
  const auto subject = [&](const std::string& sni) {
    std::vector<std::string> options{"--ca", pki.ca.cert, "--send", "x\n"};
    if (!sni.empty()) options.insert(options.end(), {"--sni", sni});
    const auto lines = tls_client(d.port(), options);
    REQUIRE(lines.size() == 1);
    INFO(lines[0]);
    CHECK(json_field(lines[0], "data") == "Hello from server!\n");
    return json_field(lines[0], "subject");
  };
  CHECK(subject("a.example") == "commonName=a.example");
  CHECK(subject("b.example") == "commonName=b.example");
  CHECK(subject("www.b.test") == "commonName=b.example");
  CHECK(subject("unknown.example") == "commonName=a.example");
  CHECK(subject("") == "commonName=a.example");
}

TEST_CASE("ALPN: the server's choice among what the client offers; a client offering none is refused", "[tls]") {
  Pki pki;
  auto d = Daemon::start(tls_listener(pki.server, "greeting", "tls_alpn = [\"imap\", \"http/1.1\"]\n"));
  auto lines = tls_client(d.port(), {"--alpn", "http/1.1,imap", "--send", "x\n"});
  REQUIRE(lines.size() == 1);
  CHECK(json_field(lines[0], "alpn") == "imap");
  CHECK(json_field(lines[0], "data") == "Hello from server!\n");

  lines = tls_client(d.port(), {"--alpn", "h2", "--send", "x\n"});
  REQUIRE(lines.size() == 1);
  CHECK_FALSE(ok(lines[0]));
  CHECK(d.wait_log("refused 127.0.0.1:"));
  CHECK(d.wait_log("TLS handshake failed: the peer offered none of the listener's ALPN protocols"));

  // No ALPN at all counts as none of them. (The refusal line is throttled
  // now: a fresh daemon shows it.)
  auto fresh = Daemon::start(tls_listener(pki.server, "greeting", "tls_alpn = [\"imap\", \"http/1.1\"]\n"));
  lines = tls_client(fresh.port(), {"--send", "x\n"});
  REQUIRE(lines.size() == 1);
  CHECK(json_field(lines[0], "data").empty());
  CHECK(fresh.wait_log("refused 127.0.0.1:"));
  CHECK(fresh.wait_log(": the peer offered none of the listener's ALPN protocols"));
}

TEST_CASE("client certificates: required, missing, and signed by another CA", "[tls]") {
  Pki pki;
  const auto client = make_certificate(pki.dir, "alice", {.common_name = "alice", .dns_names = {},
                                                          .ip_addresses = {}, .issuer = &pki.ca});
  const auto other_ca = make_certificate(pki.dir, "other-ca", {.common_name = "other CA", .dns_names = {},
                                                               .ip_addresses = {}, .is_ca = true});
  const auto mallory = make_certificate(pki.dir, "mallory", {.common_name = "mallory", .dns_names = {},
                                                             .ip_addresses = {}, .issuer = &other_ca});
  auto d = Daemon::start(tls_listener(pki.server, "greeting",
                                      "tls_client_ca = \"" + pki.ca.cert + "\"\ntls_verify_client = \"require\"\n"));
  auto lines = tls_client(d.port(), {"--cert", client.cert, "--key", client.key, "--send", "x\n"});
  REQUIRE(lines.size() == 1);
  INFO(lines[0]);
  CHECK(json_field(lines[0], "data") == "Hello from server!\n");

  // TLS 1.3 reports a refused client certificate after the client's side
  // of the handshake: the greeting never comes.
  lines = tls_client(d.port(), {"--send", "x\n"});
  REQUIRE(lines.size() == 1);
  CHECK(json_field(lines[0], "data").empty());
  lines = tls_client(d.port(), {"--cert", mallory.cert, "--key", mallory.key, "--send", "x\n"});
  REQUIRE(lines.size() == 1);
  CHECK(json_field(lines[0], "data").empty());
  CHECK(d.wait_log("TLS handshake failed"));
}

TEST_CASE("a reload swaps the certificate; a session opened before keeps working", "[tls][reload]") {
  Pki pki;
  const auto next = make_certificate(pki.dir, "next", {.common_name = "localhost", .issuer = &pki.ca});
  auto d = Daemon::start(tls_listener(pki.server, "echo"));
  // A session held open across the reload, through the openssl client.
  TempDir io;
  const std::string fifo = (io.path() / "in").string();
  REQUIRE(run_command({"mkfifo", fifo}).exit_code == 0);
  const std::string out = (io.path() / "out").string();
  const pid_t held = fork();
  if (held == 0) {
    execlp("sh", "sh", "-c",
           ("openssl s_client -quiet -connect 127.0.0.1:" + std::to_string(d.port()) + " <" + fifo + " >" + out +
            " 2>/dev/null")
               .c_str(),
           nullptr);
    _exit(127);
  }
  const int writer = open(fifo.c_str(), O_WRONLY);
  REQUIRE(writer >= 0);
  REQUIRE(write(writer, "before\n", 7) == 7);
  const auto read_out = [&] { return run_command({"cat", out}).out; };
  for (int i = 0; i < 200 && read_out() != "before\n"; ++i) std::this_thread::sleep_for(25ms);
  CHECK(read_out() == "before\n");

  d.rewrite_config(tls_listener(next, "echo"));
  d.signal(SIGHUP);
  REQUIRE(d.wait_log("reload complete"));
  const auto lines = tls_client(d.port(), {"--ca", pki.ca.cert, "--send", "new\n", "--read", "4"});
  REQUIRE(lines.size() == 1);
  CHECK(json_field(lines[0], "serial") == next.serial);
  CHECK(json_field(lines[0], "data") == "new\n");

  REQUIRE(write(writer, "after\n", 6) == 6);
  for (int i = 0; i < 200 && read_out() != "before\nafter\n"; ++i) std::this_thread::sleep_for(25ms);
  CHECK(read_out() == "before\nafter\n");
  close(writer);
  // -quiet ignores the end of its input: stop it.
  kill(held, SIGTERM);
  int status = 0;
  waitpid(held, &status, 0);
}

TEST_CASE("a reload with a bad key fails as a whole and keeps the old certificate", "[tls][reload]") {
  Pki pki;
  const auto other = make_certificate(pki.dir, "other", {.common_name = "localhost", .issuer = &pki.ca});
  auto d = Daemon::start(tls_listener(pki.server));
  // The new certificate with the old key: they do not match.
  d.rewrite_config("[[listener]]\nname = \"tls\"\naddress = \"127.0.0.1:0\"\ntls_certificate = \"" + other.cert +
                   "\"\ntls_key = \"" + pki.server.key + "\"\n");
  d.signal(SIGHUP);
  CHECK(d.wait_log("does not match the certificate"));
  CHECK(d.wait_log("reload failed"));
  const auto lines = tls_client(d.port(), {"--ca", pki.ca.cert, "--send", "x\n"});
  REQUIRE(lines.size() == 1);
  CHECK(json_field(lines[0], "serial") == pki.server.serial);
  CHECK(json_field(lines[0], "data") == "Hello from server!\n");
}

TEST_CASE("handshake garbage and a stalled handshake are closed, and the log says why", "[tls][hostile]") {
  Pki pki;
  auto d = Daemon::start(tls_listener(pki.server, "greeting", "tls_handshake_timeout = \"500ms\"\n"));
  {
    Client garbage(d.port());
    REQUIRE(garbage.send("GET / HTTP/1.0\r\n\r\n"));
    CHECK(garbage.wait_closed(5s));
  }
  CHECK(d.wait_log("TLS handshake failed"));
  {
    Client silent(d.port());
    const auto started = Clock::now();
    CHECK(silent.wait_closed(5s));
    CHECK(Clock::now() - started >= 400ms);
  }
  // Refusals are logged once per 5 s: the summary counts the second one.
  CHECK(d.wait_log("... and 1 more refused since the last report", 8s));
  auto fresh = Daemon::start(tls_listener(pki.server, "greeting", "tls_handshake_timeout = \"500ms\"\n"));
  {
    Client silent(fresh.port());
    CHECK(silent.wait_closed(5s));
  }
  CHECK(fresh.wait_log("no TLS handshake within tls_handshake_timeout (500ms)"));
  // Still serving.
  const auto lines = tls_client(d.port(), {"--send", "x\n"});
  REQUIRE(lines.size() == 1);
  CHECK(json_field(lines[0], "data") == "Hello from server!\n");
}

TEST_CASE("a TLS 1.2 client that renegotiates is closed", "[tls][hostile]") {
  Pki pki;
  auto d = Daemon::start(tls_listener(pki.server, "echo"));
  // s_client renegotiates on a line holding "R"; echo answers the first
  // line, then the connection must end instead of renegotiating.
  const auto run = run_command({"sh", "-c",
                                "(printf 'one\\n'; sleep 0.5; printf 'R\\n'; sleep 1; printf 'two\\n'; sleep 1) | "
                                "openssl s_client -tls1_2 -connect 127.0.0.1:" +
                                    std::to_string(d.port())},
                               "", 20s);
  INFO(run.out);
  CHECK(run.out.find("one\n") != std::string::npos);
  CHECK(run.out.find("two\n") == std::string::npos);
  CHECK(d.wait_log("closed: the peer tried to renegotiate TLS"));
}

TEST_CASE("session resumption with tickets", "[tls]") {
  Pki pki;
  auto d = Daemon::start(tls_listener(pki.server, "echo"));
  for (const char* version : {"1.3", "1.2"}) {
    INFO(version);
    const auto lines = tls_client(d.port(), {"--resume", "--count", "3", "--max-version", version, "--send", "r\n",
                                             "--read", "2"});
    REQUIRE(lines.size() == 3);
    CHECK(json_field(lines[0], "resumed") == "false");
    CHECK(json_field(lines[1], "resumed") == "true");
    CHECK(json_field(lines[2], "resumed") == "true");
  }
}

TEST_CASE("a resumed TLS 1.3 session gets a new ticket, so the next connection resumes too", "[tls]") {
  // TLS 1.3 clients use a ticket once (openssl s_client keeps the newest
  // session): without a new ticket on every resumption, every other
  // connection would need a full handshake.
  Pki pki;
  auto d = Daemon::start(tls_listener(pki.server));
  TempDir dir;
  const auto connect = [&](const std::string& in, const std::string& out) {
    std::vector<std::string> args{"openssl", "s_client", "-connect", "127.0.0.1:" + std::to_string(d.port()),
                                  "-ign_eof", "-sess_out", (dir.path() / out).string()};
    if (!in.empty()) args.insert(args.end(), {"-sess_in", (dir.path() / in).string()});
    return run_command(args, "x\n", 20s).out;
  };
  CHECK(connect("", "s1").find("New, TLSv1.3") != std::string::npos);
  for (const char* step : {"s2", "s3", "s4"}) {
    INFO(step);
    const std::string previous = std::string("s") + std::to_string(step[1] - '0' - 1);
    CHECK(connect(previous, step).find("Reused, TLSv1.3") != std::string::npos);
  }
}

TEST_CASE("exec over TLS: the program talks plain bytes and gets the UCSPI-TLS variables", "[tls][exec]") {
  Pki pki;
  const auto client = make_certificate(pki.dir, "carol", {.common_name = "carol", .dns_names = {},
                                                          .ip_addresses = {}, .issuer = &pki.ca});
  TempDir dir;
  const std::string script = dir.write("show.sh",
                                       "#!/bin/sh\nread line\necho \"got $line\"\nenv | grep -E '^(SSL_|PROTO|TCP)' | "
                                       "sort\n");
  chmod(script.c_str(), 0755);
  auto d = Daemon::start(tls_listener(pki.server, "exec",
                                      "command = [\"" + script + "\"]\ntls_client_ca = \"" + pki.ca.cert +
                                          "\"\ntls_verify_client = \"optional\"\n"));
  // A program started per connection (by a sanitized porticod, on a busy
  // machine) may take longer than the client's default 5 s.
  const auto lines = tls_client(d.port(), {"--sni", "localhost", "--cert", client.cert, "--key", client.key,
                                           "--send", "hello\n", "--timeout", "20"},
                                30s);
  REQUIRE(lines.size() == 1);
  INFO(lines[0]);
  const std::string data = json_field(lines[0], "data");
  CHECK(data.starts_with("got hello\n"));
  CHECK(data.find("PROTO=TCP\n") != std::string::npos);
  CHECK(data.find("SSL_PROTOCOL=TLSv1.3\n") != std::string::npos);
  CHECK(data.find("SSL_CIPHER=TLS_") != std::string::npos);
  CHECK(data.find("SSL_TLS_SNI_SERVERNAME=localhost\n") != std::string::npos);
  CHECK(data.find("SSL_PEER_CERT_SUBJECT=CN=carol\n") != std::string::npos);
  CHECK(data.find("SSL_PEER_CERT_HASH=SHA256:") != std::string::npos);
}

TEST_CASE("proxy to a TLS upstream checks its certificate and name", "[tls][proxy]") {
  Pki pki;
  auto upstream = Daemon::start(tls_listener(pki.server, "echo"));
  const std::string to_upstream = "127.0.0.1:" + std::to_string(upstream.port());
  SECTION("verified: bytes go through") {
    auto d = Daemon::start("[[listener]]\naddress = \"127.0.0.1:0\"\nhandler = \"proxy\"\nupstream = [\"" +
                           to_upstream + "\"]\nupstream_tls = true\nupstream_tls_ca = \"" + pki.ca.cert + "\"\n");
    Client c(d.port());
    REQUIRE(c.send("through tls\n"));
    CHECK(c.read_exactly(12, 5s) == "through tls\n");
  }
  SECTION("a name the certificate does not carry: refused") {
    auto d = Daemon::start("[[listener]]\naddress = \"127.0.0.1:0\"\nhandler = \"proxy\"\nupstream = [\"" +
                           to_upstream + "\"]\nupstream_tls = true\nupstream_tls_ca = \"" + pki.ca.cert +
                           "\"\nupstream_tls_server_name = \"wrong.example\"\n");
    Client c(d.port());
    REQUIRE(c.send("x\n"));
    CHECK(c.wait_closed(5s));
    CHECK(d.wait_log("TLS: hostname mismatch"));
  }
  SECTION("an upstream signed by a CA we do not trust: refused") {
    const auto other_ca = make_certificate(pki.dir, "other-ca", {.common_name = "other", .dns_names = {},
                                                                 .ip_addresses = {}, .is_ca = true});
    auto d = Daemon::start("[[listener]]\naddress = \"127.0.0.1:0\"\nhandler = \"proxy\"\nupstream = [\"" +
                           to_upstream + "\"]\nupstream_tls = true\nupstream_tls_ca = \"" + other_ca.cert + "\"\n");
    Client c(d.port());
    REQUIRE(c.send("x\n"));
    CHECK(c.wait_closed(5s));
    CHECK(d.wait_log("TLS: unable to get local issuer certificate"));
  }
}

TEST_CASE("porticod --check loads every certificate and key", "[tls][cli]") {
  Pki pki;
  const auto expired = make_certificate(pki.dir, "expired", {.not_before = -std::chrono::hours(48),
                                                             .not_after = -std::chrono::hours(24)});
  const auto soon = make_certificate(pki.dir, "soon", {.not_after = std::chrono::hours(24 * 3)});
  const std::string garbage = pki.dir.write("garbage.pem", "this is not PEM\n");
  const auto check = [&](const std::string& cert, const std::string& key) {
    const std::string config = pki.dir.write("check.toml", "[[listener]]\naddress = \"127.0.0.1:0\"\n"
                                                           "tls_certificate = \"" + cert + "\"\ntls_key = \"" +
                                                               key + "\"\n");
    return run_porticod({"--check", "-c", config});
  };
  SECTION("a missing file") {
    const auto r = check("/nonexistent/cert.pem", pki.server.key);
    CHECK(r.exit_code == 78);
    CHECK(r.err.find("check.toml:3:19: \"tls_certificate\" in listener #1: cannot read \"/nonexistent/cert.pem\": "
                     "No such file or directory") != std::string::npos);
  }
  SECTION("not PEM") {
    const auto r = check(garbage, pki.server.key);
    CHECK(r.exit_code == 78);
    CHECK(r.err.find("is not a usable PEM certificate file") != std::string::npos);
  }
  SECTION("a key that does not match") {
    const auto r = check(pki.server.cert, pki.ca.key);
    CHECK(r.exit_code == 78);
    CHECK(r.err.find("check.toml:4:11: \"tls_key\" in listener #1: the key \"" + pki.ca.key +
                     "\" does not match the certificate \"" + pki.server.cert + "\"") != std::string::npos);
  }
  SECTION("an expired certificate") {
    const auto r = check(expired.cert, expired.key);
    CHECK(r.exit_code == 78);
    CHECK(r.err.find("the certificate in \"" + expired.cert + "\" expired on ") != std::string::npos);
  }
  SECTION("one that expires within 14 days is a warning") {
    const auto r = check(soon.cert, soon.key);
    CHECK(r.exit_code == 0);
    CHECK(r.err.find("check.toml:3:19: warning: \"tls_certificate\" in listener #1: the certificate in \"" +
                     soon.cert + "\" expires on ") != std::string::npos);
    CHECK(r.out.find("configuration OK") != std::string::npos);
  }
}

TEST_CASE("TLS config mistakes are reported with their position", "[tls][cli]") {
  Pki pki;
  const auto check = [&](const std::string& body) {
    const std::string config = pki.dir.write("bad.toml", "[[listener]]\naddress = \"127.0.0.1:0\"\n" + body);
    return run_porticod({"--check", "-c", config});
  };
  auto r = check("tls_key = \"" + pki.server.key + "\"\n");
  CHECK(r.exit_code == 78);
  CHECK(r.err.find("bad.toml:3:11: \"tls_key\" in listener #1 applies only to listeners with tls_certificate\n"
                   "porticod: 1 error(s)") != std::string::npos);
  r = check("tls_certificate = \"" + pki.server.cert + "\"\n");
  CHECK(r.exit_code == 78);
  CHECK(r.err.find("\"tls_key\"") != std::string::npos);
  r = check("tls_certificate = [\"" + pki.server.cert + "\", \"" + pki.ca.cert + "\"]\ntls_key = \"" + pki.server.key +
            "\"\n");
  CHECK(r.exit_code == 78);
  CHECK(r.err.find("names 1 key(s) for 2 certificate(s)") != std::string::npos);
  r = check("tls_certificate = \"" + pki.server.cert + "\"\ntls_key = \"" + pki.server.key +
            "\"\ntls_verify_client = \"require\"\n");
  CHECK(r.exit_code == 78);
  CHECK(r.err.find("bad.toml:5:21: \"tls_verify_client\" in listener #1 needs tls_client_ca") != std::string::npos);
  r = check("tls_certificate = \"server.pem\"\ntls_key = \"" + pki.server.key + "\"\n");
  CHECK(r.exit_code == 78);
  CHECK(r.err.find("must be an absolute path") != std::string::npos);
  r = check("tls_certificate = \"" + pki.server.cert + "\"\ntls_key = \"" + pki.server.key +
            "\"\ntls_min_version = \"1.1\"\n");
  CHECK(r.exit_code == 78);
}
