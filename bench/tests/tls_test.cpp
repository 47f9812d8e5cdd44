// portico-bench's TLS client against a real TLS server on 127.0.0.1: a
// small blocking OpenSSL server on a thread of the test, serving one
// connection at a time with a certificate made on the spot. The runs are
// short and single-slot; what is checked is counted, never timed.

#include <catch2/catch.hpp>

#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <thread>

#include "engine.hpp"
#include "modes.hpp"
#include "net.hpp"
#include "options.hpp"
#include "tls.hpp"

using namespace std::chrono_literals;

namespace {

// A key and a self-signed certificate for it, written to a PEM file too
// (for --tls-ca: a self-signed certificate is its own CA).
class Identity {
 public:
  explicit Identity(bool rsa)
      : key_(rsa ? EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", std::size_t{2048})
                 : EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256")),
        cert_(X509_new()) {
    REQUIRE(key_);
    X509_set_version(cert_, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert_), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert_), -60);
    X509_gmtime_adj(X509_getm_notAfter(cert_), 3600);
    X509_set_pubkey(cert_, key_);
    X509_NAME* name = X509_get_subject_name(cert_);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("localhost"), -1, -1, 0);
    X509_set_issuer_name(cert_, name);
    REQUIRE(X509_sign(cert_, key_, EVP_sha256()) > 0);
    char path[] = "/tmp/portico-bench-test-ca-XXXXXX";
    const int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    close(fd);
    path_ = path;
    FILE* f = std::fopen(path, "w");
    REQUIRE(f);
    PEM_write_X509(f, cert_);
    std::fclose(f);
  }
  ~Identity() {
    std::remove(path_.c_str());
    X509_free(cert_);
    EVP_PKEY_free(key_);
  }
  Identity(const Identity&) = delete;
  Identity& operator=(const Identity&) = delete;

  EVP_PKEY* key() const { return key_; }
  X509* cert() const { return cert_; }
  const std::string& pem_file() const { return path_; }

 private:
  EVP_PKEY* key_;
  X509* cert_;
  std::string path_;
};

enum class Serve {
  greeting,        // read the request, answer Hello from server!\n, close_notify, close
  wrong_greeting,  // the same with other words
  echo,            // send back whatever comes, in two records, until the client's end
  hold,            // the handshake, then wait for the client's end
  plain,           // no TLS: read, answer the greeting in clear, close
};

class Server {
 public:
  // tickets: how many session tickets each handshake issues (OpenSSL's default is 2).
  Server(const Identity& id, Serve what, std::size_t tickets = 2) : what_(what) {
    ctx_ = SSL_CTX_new(TLS_server_method());
    REQUIRE(ctx_);
    SSL_CTX_set_num_tickets(ctx_, tickets);
    REQUIRE(SSL_CTX_use_certificate(ctx_, id.cert()) == 1);
    REQUIRE(SSL_CTX_use_PrivateKey(ctx_, id.key()) == 1);
    lfd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(lfd_ >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    REQUIRE(bind(lfd_, reinterpret_cast<sockaddr*>(&addr), len) == 0);
    REQUIRE(listen(lfd_, 64) == 0);
    REQUIRE(getsockname(lfd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { loop(); });
  }
  ~Server() {
    stop_ = true;
    thread_.join();
    close(lfd_);
    SSL_CTX_free(ctx_);
  }
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  std::uint16_t port() const { return port_; }

 private:
  void loop() {
    while (!stop_) {
      pollfd p{lfd_, POLLIN, 0};
      if (poll(&p, 1, 20) <= 0) continue;
      const int fd = accept(lfd_, nullptr, nullptr);
      if (fd < 0) continue;
      // Blocking reads give up after 2 s, so a client that stops mid-way
      // cannot keep the test waiting.
      timeval tv{2, 0};
      setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      serve(fd);
      close(fd);
    }
  }

  void serve(int fd) {
    char buf[4096];
    if (what_ == Serve::plain) {
      if (recv(fd, buf, sizeof buf, 0) > 0) send(fd, "Hello from server!\n", 19, MSG_NOSIGNAL);
      return;
    }
    SSL* ssl = SSL_new(ctx_);
    SSL_set_fd(ssl, fd);
    if (SSL_accept(ssl) == 1) {
      if (what_ == Serve::echo || what_ == Serve::hold) {
        // Two records for one read: they often arrive in one segment, and
        // the client must take the second from OpenSSL's buffer, where
        // epoll does not see it.
        for (;;) {
          const int n = SSL_read(ssl, buf, sizeof buf);
          if (n <= 0) break;
          const int half = n / 2;
          if ((half > 0 && SSL_write(ssl, buf, half) <= 0) || SSL_write(ssl, buf + half, n - half) <= 0) break;
        }
      } else if (SSL_read(ssl, buf, 100) > 0) {
        const char* reply = what_ == Serve::greeting ? "Hello from server!\n" : "Goodbye\n";
        SSL_write(ssl, reply, static_cast<int>(std::strlen(reply)));
        SSL_shutdown(ssl);
      }
    }
    SSL_free(ssl);
    ERR_clear_error();
  }

  Serve what_;
  SSL_CTX* ctx_ = nullptr;
  int lfd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

struct Outcome {
  bench::Stats stats;
  bench::TlsSummary summary;
  bench::RunResult result;
};

bench::Options tls_options(std::uint16_t port) {
  bench::Options o;
  o.port = port;
  o.connections = 1;
  o.warmup = 100ms;
  o.duration = 300ms;
  o.timeout = 2s;
  o.tls = true;
  return o;
}

Outcome run(const bench::Options& options) {
  std::signal(SIGPIPE, SIG_IGN);
  std::string error;
  const auto target = bench::resolve("127.0.0.1", options.port, error);
  REQUIRE(target);
  auto tls = bench::TlsClient::create(options, error);
  REQUIRE(tls);
  bench::Engine engine;
  bench::Context ctx{options, *target, bench::SourcePicker(), engine, {}};
  ctx.tls = tls.get();
  Outcome out;
  switch (options.mode) {
    case bench::Mode::greeting: out.result = bench::run_greeting(ctx); break;
    case bench::Mode::echo: out.result = bench::run_echo(ctx); break;
    case bench::Mode::idle: out.result = bench::run_idle(ctx); break;
    case bench::Mode::stream: out.result = bench::run_stream(ctx); break;
  }
  out.stats = ctx.stats;
  out.summary = tls->summary();
  return out;
}

}  // namespace

TEST_CASE("TLS greeting: full TLS 1.3 handshakes, each one op, the reply checked", "[tls]") {
  const Identity id(false);
  const Server server(id, Serve::greeting);
  const auto out = run(tls_options(server.port()));
  CHECK(out.stats.error_total() == 0);
  CHECK(out.stats.ops() > 0);
  // One handshake per connection. At each edge of the window one op may
  // have its handshake on the other side.
  CHECK(out.stats.handshakes() + 1 >= out.stats.ops());
  CHECK(out.stats.handshakes() <= out.stats.ops() + 1);
  CHECK(out.stats.resumed() == 0);
  CHECK(out.summary.version == "TLSv1.3");
  CHECK(out.summary.cipher == "TLS_AES_128_GCM_SHA256");
  CHECK(out.summary.group == "x25519");
  CHECK(out.summary.server_key == "EC-256");
  CHECK(out.stats.bytes_received() == out.stats.ops() * 19);
}

TEST_CASE("TLS greeting with --tls-resume: each slot resumes with its ticket", "[tls]") {
  const Identity id(false);
  const Server server(id, Serve::greeting);
  auto options = tls_options(server.port());
  options.tls_resume = true;
  options.connections = 2;
  const auto out = run(options);
  CHECK(out.stats.error_total() == 0);
  CHECK(out.stats.ops() > 0);
  // Only a slot's first connection needs a full handshake; the warm-up
  // takes those, but a slow machine may leave one per slot in the window.
  CHECK(out.stats.resumed() > 0);
  CHECK(out.stats.resumed() + options.connections >= out.stats.handshakes());
}

TEST_CASE("TLS greeting with --tls-resume against a server that issues no tickets: every handshake full", "[tls]") {
  const Identity id(false);
  const Server server(id, Serve::greeting, 0);
  auto options = tls_options(server.port());
  options.tls_resume = true;
  const auto out = run(options);
  CHECK(out.stats.error_total() == 0);
  CHECK(out.stats.ops() > 0);
  CHECK(out.stats.handshakes() + 1 >= out.stats.ops());
  CHECK(out.stats.resumed() == 0);
}

TEST_CASE("TLS greeting: other words than the greeting are a bad reply", "[tls]") {
  const Identity id(false);
  const Server server(id, Serve::wrong_greeting);
  const auto out = run(tls_options(server.port()));
  CHECK(out.stats.ops() == 0);
  CHECK(out.stats.errors(bench::ErrorKind::bad_reply) > 0);
}

TEST_CASE("--tls against a server that does not speak TLS: tls errors", "[tls]") {
  const Identity id(false);
  const Server server(id, Serve::plain);
  const auto out = run(tls_options(server.port()));
  CHECK(out.stats.ops() == 0);
  CHECK(out.stats.errors(bench::ErrorKind::tls) > 0);
  CHECK(out.stats.error_total() == out.stats.errors(bench::ErrorKind::tls));
}

TEST_CASE("--tls-ca: the server's certificate is verified against it", "[tls]") {
  const Identity id(false);
  const Identity stranger(false);
  const Server server(id, Serve::greeting);
  auto options = tls_options(server.port());
  options.tls_ca = id.pem_file();
  auto out = run(options);
  CHECK(out.stats.ops() > 0);
  CHECK(out.stats.error_total() == 0);

  options.tls_ca = stranger.pem_file();
  out = run(options);
  CHECK(out.stats.ops() == 0);
  CHECK(out.stats.errors(bench::ErrorKind::tls) > 0);
}

TEST_CASE("--tls-ca that cannot be read: the client is not made", "[tls]") {
  auto options = tls_options(1);
  options.tls_ca = "/nonexistent/ca.pem";
  std::string error;
  CHECK_FALSE(bench::TlsClient::create(options, error));
  CHECK_THAT(error, Catch::StartsWith("--tls-ca /nonexistent/ca.pem: "));
}

TEST_CASE("TLS echo: round trips on one persistent connection, the bytes compared", "[tls]") {
  const Identity id(true);
  const Server server(id, Serve::echo);
  auto options = tls_options(server.port());
  options.mode = bench::Mode::echo;
  const auto out = run(options);
  CHECK(out.stats.error_total() == 0);
  CHECK(out.stats.ops() > 0);
  CHECK(out.stats.handshakes() == 0);  // the one handshake came before the window
  CHECK(out.summary.server_key == "RSA-2048");
}

TEST_CASE("TLS echo with --round-trips: a new connection, and handshake, every N", "[tls]") {
  const Identity id(false);
  const Server server(id, Serve::echo);
  auto options = tls_options(server.port());
  options.mode = bench::Mode::echo;
  options.round_trips = 3;
  const auto out = run(options);
  CHECK(out.stats.error_total() == 0);
  CHECK(out.stats.ops() >= 3);
  // Three round trips per connection, every connection a handshake: the
  // window holds ops/3 of them, give or take the ones at its edges.
  CHECK(out.stats.handshakes() + 1 >= out.stats.ops() / 3);
  CHECK(out.stats.handshakes() <= out.stats.ops() / 3 + 1);
}

TEST_CASE("TLS idle: a connection counts as established once its handshake is done", "[tls]") {
  const Identity id(false);
  const Server server(id, Serve::hold);
  auto options = tls_options(server.port());
  options.mode = bench::Mode::idle;
  options.duration = 100ms;
  const auto out = run(options);
  CHECK(out.result.established == 1);
  CHECK(out.result.server_closed == 0);
  CHECK(out.stats.handshakes() == 1);
}
