#pragma once
// TLS for every mode (--tls): one OpenSSL client context per run, one SSL
// object per connection, driven non-blocking on the engine's sockets.
//
// Every server is offered the same thing, so each does the same crypto:
// TLS 1.3 only, the TLS_AES_128_GCM_SHA256 suite and the X25519 group, no
// SNI, no ALPN. The server's chain is not verified unless --tls-ca names a
// CA file: verifying costs the client one signature check per certificate
// and the server nothing, and the client is the scarcer core.

#include <openssl/ssl.h>

#include <memory>
#include <string>

namespace bench {

struct Options;
class Stats;
class Conn;

// What the server negotiated, read from the first handshake of the run so
// the report says what was measured.
struct TlsSummary {
  std::string version;     // "TLSv1.3"
  std::string cipher;      // "TLS_AES_128_GCM_SHA256"
  std::string group;       // "x25519"
  std::string server_key;  // the leaf's key: "EC-256", "RSA-2048"
};

class TlsClient {
 public:
  // nullptr with `error` set when OpenSSL refuses a setting (an unreadable
  // --tls-ca, say).
  static std::unique_ptr<TlsClient> create(const Options& options, std::string& error);
  ~TlsClient();
  TlsClient(const TlsClient&) = delete;
  TlsClient& operator=(const TlsClient&) = delete;

  // A client SSL on the connected socket fd. With --tls-resume every
  // session ticket the server sends goes to owner->keep_session(), and a
  // non-null `session` is offered for resumption. nullptr if out of memory.
  SSL* open(int fd, Conn* owner, SSL_SESSION* session) const;

  // Counts a finished handshake in `stats` (full or resumed) and fills the
  // summary from the first one.
  void handshake_done(SSL* ssl, Stats& stats);

  bool resume() const { return resume_; }
  const TlsSummary& summary() const { return summary_; }

 private:
  TlsClient(SSL_CTX* ctx, bool resume) : ctx_(ctx), resume_(resume) {}

  SSL_CTX* ctx_;
  bool resume_;
  TlsSummary summary_;
};

// The newest OpenSSL error as text, and the queue cleared: SSL_get_error
// reads the queue, so a stale entry would misreport the next connection.
std::string tls_error_text();

}  // namespace bench
