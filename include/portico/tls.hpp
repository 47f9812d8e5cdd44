#pragma once
// TLS, for handlers: what a client's TLS connection negotiated (listeners
// with tls_certificate terminate TLS before the handler runs, and the
// handler reads and writes plain bytes), and TLS towards another server
// (Stream::start_tls, as the proxy's upstream_tls does). OpenSSL 3 does the
// cryptography.

#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include <boost/system/error_code.hpp>

#include <portico/result.hpp>

namespace portico {

// What a TLS session negotiated.
struct TlsInfo {
  std::string protocol;      // "TLSv1.3"
  std::string cipher;        // "TLS_AES_256_GCM_SHA384"
  std::string server_name;   // the name the client asked for (SNI), or empty
  std::string alpn;          // the application protocol agreed on (ALPN), or empty
  std::string peer_subject;  // the peer certificate's subject, "CN=alice,O=Example", or empty
  std::string peer_hash;     // "SHA256:" and the hex digest of the peer certificate, or empty
  bool resumed = false;      // the session was resumed (a ticket), not a full handshake
};

// Outcomes of a TLS session that are not the OS's nor OpenSSL's errors.
enum class TlsErrc {
  renegotiation = 1,  // the peer tried to renegotiate (TLS 1.2): refused
  no_alpn,            // the peer offered none of the listener's tls_alpn protocols
};
const boost::system::error_category& tls_category();
inline boost::system::error_code make_error_code(TlsErrc e) { return {static_cast<int>(e), tls_category()}; }

// How to talk TLS to another server.
struct TlsClientSettings {
  std::string ca_file;     // trusted CAs (PEM); empty: the system's (/etc/ssl/certs)
  bool verify = true;      // check the server's certificate chain and name
  std::vector<std::string> alpn;  // protocols to offer, most preferred first
};

// A client context made from TlsClientSettings: shared by every connection
// it is used for. Immutable once made.
class TlsClientContext {
 public:
  // Loads the CA file; fails saying which file and why.
  static Result<std::shared_ptr<const TlsClientContext>> create(const TlsClientSettings& settings);
  ~TlsClientContext();
  TlsClientContext(const TlsClientContext&) = delete;
  TlsClientContext& operator=(const TlsClientContext&) = delete;

  // OpenSSL's SSL_CTX*, for the library's own use.
  void* native() const { return ctx_; }
  bool verifies() const { return verify_; }

 private:
  TlsClientContext() = default;
  void* ctx_ = nullptr;
  bool verify_ = true;
};

}  // namespace portico

template <>
struct boost::system::is_error_code_enum<portico::TlsErrc> : std::true_type {};
