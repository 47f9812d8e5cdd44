#include "tls.hpp"

#include <openssl/err.h>
#include <openssl/x509.h>

#include <fmt/format.h>

#include "engine.hpp"
#include "options.hpp"
#include "stats.hpp"

namespace bench {

namespace {

// The server sends its tickets after the handshake; OpenSSL hands each one
// over as a session. Returning 1 keeps OpenSSL's reference for the slot.
int on_new_session(SSL* ssl, SSL_SESSION* session) {
  auto* owner = static_cast<Conn*>(SSL_get_app_data(ssl));
  if (!owner) return 0;
  owner->keep_session(session);
  return 1;
}

std::string key_name(SSL* ssl) {
  X509* cert = SSL_get0_peer_certificate(ssl);
  EVP_PKEY* key = cert ? X509_get0_pubkey(cert) : nullptr;
  if (!key) return "?";
  const char* type = EVP_PKEY_get0_type_name(key);
  return fmt::format("{}-{}", type ? type : "?", EVP_PKEY_get_bits(key));
}

}  // namespace

std::string tls_error_text() {
  const unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return "unknown TLS error";
  char text[256];
  ERR_error_string_n(code, text, sizeof text);
  return text;
}

std::unique_ptr<TlsClient> TlsClient::create(const Options& options, std::string& error) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (!ctx) {
    error = "TLS: " + tls_error_text();
    return nullptr;
  }
  std::unique_ptr<TlsClient> client(new TlsClient(ctx, options.tls_resume));
  // One version, one suite, one group: every server then does the same work
  // (AES-128-GCM is the suite TLS 1.3 requires of everyone).
  const bool ok = SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) == 1 &&
                  SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) == 1 &&
                  SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256") == 1 &&
                  SSL_CTX_set1_groups_list(ctx, "X25519") == 1;
  if (!ok) {
    error = "TLS: " + tls_error_text();
    return nullptr;
  }
  // A server that closes without close_notify has still answered in full;
  // its EOF reads as an orderly end, like a plain FIN.
  SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
  // send()'s contract: partial writes, and a retry may pass another pointer.
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  // Read all the socket holds in one read(2), not a record header and then
  // its body: half the system calls per record.
  SSL_CTX_set_read_ahead(ctx, 1);
  if (!options.tls_ca.empty()) {
    if (SSL_CTX_load_verify_locations(ctx, options.tls_ca.c_str(), nullptr) != 1) {
      error = fmt::format("--tls-ca {}: {}", options.tls_ca, tls_error_text());
      return nullptr;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  } else {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  }
  if (options.tls_resume) {
    // The slots keep their tickets themselves; OpenSSL's cache stays empty.
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, on_new_session);
  } else {
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  }
  return client;
}

TlsClient::~TlsClient() { SSL_CTX_free(ctx_); }

SSL* TlsClient::open(int fd, Conn* owner, SSL_SESSION* session) const {
  SSL* ssl = SSL_new(ctx_);
  if (!ssl) {
    ERR_clear_error();
    return nullptr;
  }
  if (SSL_set_fd(ssl, fd) != 1 || (session && SSL_set_session(ssl, session) != 1)) {
    ERR_clear_error();
    SSL_free(ssl);
    return nullptr;
  }
  SSL_set_app_data(ssl, owner);
  SSL_set_connect_state(ssl);
  return ssl;
}

void TlsClient::handshake_done(SSL* ssl, Stats& stats) {
  stats.handshake(SSL_session_reused(ssl) == 1);
  if (!summary_.version.empty()) return;
  summary_.version = SSL_get_version(ssl);
  const char* cipher = SSL_get_cipher_name(ssl);
  summary_.cipher = cipher ? cipher : "?";
  const char* group = SSL_group_to_name(ssl, SSL_get_negotiated_group(ssl));
  summary_.group = group ? group : "?";
  summary_.server_key = key_name(ssl);
}

}  // namespace bench
