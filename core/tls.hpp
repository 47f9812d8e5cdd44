#pragma once
// TLS inside the library: a listener's server contexts, the session of one
// stream, and the checks --check runs on certificate files. OpenSSL 3 on the
// stream's own non-blocking socket (a socket BIO), the way nginx and HAProxy
// drive it: SSL_read and SSL_write are one system call each, idle sessions
// give their buffers back (SSL_MODE_RELEASE_BUFFERS), and a Stream can offer
// try_read/try_write over TLS as over TCP.

#include <openssl/ssl.h>

#include <array>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <portico/config.hpp>
#include <portico/result.hpp>
#include <portico/tls.hpp>

namespace portico::detail {

// One TLS session on a stream's socket. Owns the SSL object.
class TlsSession {
 public:
  explicit TlsSession(SSL* ssl) : ssl_(ssl) {}
  ~TlsSession() { SSL_free(ssl_); }
  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;

  SSL* ssl() const { return ssl_; }
  // The negotiated parameters, read once the handshake is done.
  const TlsInfo& info();

  bool established = false;     // the handshake completed
  bool read_wants_write = false;   // the last SSL_read wanted the socket writable
  bool write_wants_read = false;   // the last SSL_write wanted it readable
  bool close_notify_sent = false;
  // Set by the info callback when a TLS 1.2 peer starts a renegotiation.
  bool renegotiation = false;
  // The listener asked for ALPN and the client agreed on none.
  bool alpn_required = false;

 private:
  SSL* ssl_;
  std::unique_ptr<TlsInfo> info_;
};

// The keys session tickets (TLS 1.3, and 1.2 resumption) are encrypted
// with: one set for the whole process, so that a ticket stays valid across
// reloads, which rebuild the contexts. A new key is made every `period`
// (when a key is next needed); a ticket lives two periods (its lifetime
// hint), so the last `kept` keys still decrypt.
struct TicketKey {
  std::array<unsigned char, 16> name{};
  std::array<unsigned char, 32> aes{};
  std::array<unsigned char, 32> hmac{};
  std::chrono::steady_clock::time_point made;
};

class TicketKeys {
 public:
  static constexpr std::chrono::hours period{1};
  static constexpr std::size_t kept = 3;

  // The key to encrypt new tickets with at `now` (a new one once the
  // newest is a period old); false when no random bytes could be had.
  bool current(std::chrono::steady_clock::time_point now, TicketKey& out);
  // The key a ticket names; `renew`: it is not the newest, so the client
  // should get a new ticket.
  bool find(const unsigned char* name, TicketKey& out, bool& renew);

 private:
  std::mutex mutex_;  // servers of several threads may share the process
  std::array<TicketKey, kept> keys_{};
  std::size_t count_ = 0;
};

// The session a stream's TLS came from (for the info callback).
TlsSession* session_of(const SSL* ssl);
void attach(TlsSession& session);

}  // namespace portico::detail

namespace portico {

// An X.509 verification result (X509_V_ERR_*) as an error code whose message
// is OpenSSL's text for it ("hostname mismatch").
boost::system::error_code verify_error(long result);

// A listener's server side: one SSL_CTX per certificate, all alike but for
// the certificate; the first is the default, SNI picks another whose names
// match. Built from the files each time a listener's service is built (at
// start and at each reload), so a reload re-reads them.
class TlsServerContext {
 public:
  static Result<std::shared_ptr<const TlsServerContext>> load(const TlsConfig& config);
  ~TlsServerContext();
  TlsServerContext(const TlsServerContext&) = delete;
  TlsServerContext& operator=(const TlsServerContext&) = delete;

  // A session for a new connection's socket.
  std::unique_ptr<detail::TlsSession> new_session(int fd) const;
  const TlsConfig& config() const { return config_; }

 private:
  friend int select_certificate(SSL* ssl, int* alert, void* arg);
  explicit TlsServerContext(TlsConfig config) : config_(std::move(config)) {}

  TlsConfig config_;
  std::vector<SSL_CTX*> contexts_;
  std::vector<X509*> leaves_;  // each context's certificate (owned by the context)
};

// What --check says about a listener's TLS files.
struct TlsFinding {
  bool error = true;      // false: a warning (a certificate that expires soon)
  std::string key;        // the config key it concerns: tls_certificate, tls_key, tls_client_ca
  std::size_t index = 0;  // which entry of a list
  std::string message;
};
// Loads every file as load() would and reports all that is wrong: missing
// or unreadable files, malformed PEM, a key that does not match its
// certificate, an expired (or not yet valid) certificate, and, as warnings,
// one that expires within `warn_within`.
std::vector<TlsFinding> check_tls_files(const TlsConfig& config,
                                        std::chrono::seconds warn_within = std::chrono::hours(24 * 14));

}  // namespace portico
