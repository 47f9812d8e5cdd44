#include "core/tls.hpp"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <mutex>

#include <boost/asio/ip/address.hpp>
#include <fmt/format.h>

#include <portico/text.hpp>

namespace portico {

namespace {

// The reason of the most recent OpenSSL error, and the queue cleared.
std::string openssl_reason(std::string_view fallback = "unknown OpenSSL error") {
  unsigned long last = 0;
  while (const unsigned long e = ERR_get_error()) last = e;
  if (last == 0) return std::string(fallback);
  const char* reason = ERR_reason_error_string(last);
  return reason != nullptr ? reason : fmt::format("OpenSSL error {:#x}", last);
}

// Never ask for a passphrase: a daemon has no terminal, and OpenSSL's
// default callback would read one from it.
int no_passphrase(char*, int, int, void*) { return -1; }

// ---- Session tickets ------------------------------------------------------
// (detail::TicketKeys in tls.hpp.) A ticket's lifetime: two key periods.
constexpr long ticket_lifetime_seconds = 2 * 3600;

using detail::TicketKey;

detail::TicketKeys& ticket_keys() {
  static detail::TicketKeys keys;
  return keys;
}

// Fetched once: EVP_aes_256_cbc() makes OpenSSL 3 look the cipher up in
// its providers on every EVP_EncryptInit_ex, once per ticket.
const EVP_CIPHER* ticket_cipher() {
  static EVP_CIPHER* fetched = EVP_CIPHER_fetch(nullptr, "AES-256-CBC", nullptr);
  return fetched != nullptr ? fetched : EVP_aes_256_cbc();
}

bool set_hmac_key(EVP_MAC_CTX* hctx, TicketKey& key) {
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_octet_string("key", key.hmac.data(), key.hmac.size()),
                         OSSL_PARAM_construct_utf8_string("digest", digest, 0), OSSL_PARAM_construct_end()};
  return EVP_MAC_CTX_set_params(hctx, params) == 1;
}

int ticket_key_callback(SSL* ssl, unsigned char* key_name, unsigned char* iv, EVP_CIPHER_CTX* cctx, EVP_MAC_CTX* hctx,
                        int encrypt) {
  TicketKey key;
  if (encrypt) {
    if (!ticket_keys().current(std::chrono::steady_clock::now(), key) || RAND_bytes(iv, EVP_MAX_IV_LENGTH) != 1) return -1;
    std::memcpy(key_name, key.name.data(), 16);
    if (EVP_EncryptInit_ex(cctx, ticket_cipher(), nullptr, key.aes.data(), iv) != 1) return -1;
    return set_hmac_key(hctx, key) ? 1 : -1;
  }
  bool renew = false;
  // An unknown key (too old, or another process's): a full handshake.
  if (!ticket_keys().find(key_name, key, renew)) return 0;
  if (!set_hmac_key(hctx, key)) return -1;
  if (EVP_DecryptInit_ex(cctx, ticket_cipher(), nullptr, key.aes.data(), iv) != 1) return -1;
  // A TLS 1.3 client uses a ticket once (RFC 8446, C.4): a resumed session
  // gets a new one, or its next connection would need a full handshake.
  return renew || SSL_version(ssl) >= TLS1_3_VERSION ? 2 : 1;
}

// ---- Per-session state reached from callbacks -------------------------------

int session_index() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

// A TLS 1.2 client that starts a renegotiation gets OpenSSL's
// no_renegotiation alert; we also end the connection, as nginx does, since a
// client that renegotiates is at best confused and at worst making the
// server do handshakes for free.
void info_callback(const SSL* ssl, int where, int ret) {
  detail::TlsSession* session = detail::session_of(ssl);
  if (session == nullptr || !session->established) return;
  const bool refused = (where & SSL_CB_WRITE_ALERT) != 0 && (ret & 0xff) == SSL_AD_NO_RENEGOTIATION;
  const bool started = (where & SSL_CB_HANDSHAKE_START) != 0 && SSL_version(ssl) < TLS1_3_VERSION;
  if (refused || started) session->renegotiation = true;
}

// Picks the first of our protocols (in our order) that the client offers.
int select_alpn(SSL* ssl, const unsigned char** out, unsigned char* out_length, const unsigned char* in,
                unsigned int in_length, void* arg) {
  const auto& wanted = *static_cast<const std::vector<std::string>*>(arg);
  for (const auto& protocol : wanted) {
    for (unsigned int i = 0; i < in_length;) {
      const unsigned int n = in[i];
      if (i + 1 + n > in_length) break;
      if (n == protocol.size() && std::memcmp(in + i + 1, protocol.data(), n) == 0) {
        *out = in + i + 1;
        *out_length = static_cast<unsigned char>(n);
        return SSL_TLSEXT_ERR_OK;
      }
      i += 1 + n;
    }
  }
  if (detail::TlsSession* session = detail::session_of(ssl)) session->alpn_required = true;
  return SSL_TLSEXT_ERR_ALERT_FATAL;
}

std::string time_text(const ASN1_TIME* time) {
  std::tm tm{};
  if (ASN1_TIME_to_tm(time, &tm) != 1) return "?";
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S UTC", &tm);
  return text;
}

// The certificates of a PEM file (leaf first), or why there are none.
// A certificate file as SSL_CTX_use_certificate_chain_file reads it: the
// leaf with PEM_read_bio_X509_AUX ("TRUSTED CERTIFICATE" blocks count), the
// chain after it with PEM_read_bio_X509 (which skips blocks of other types
// and ignores bytes after a certificate's DER), until PEM's "no start line"
// at the end. Read any other way, --check and the start would disagree.
Result<std::vector<X509*>> read_certificates(const std::string& path) {
  BIO* bio = BIO_new_file(path.c_str(), "r");
  if (bio == nullptr) {
    ERR_clear_error();
    return fail("cannot read {}: {}", quote_text(path), std::strerror(errno));
  }
  std::vector<X509*> certs;
  if (X509* leaf = PEM_read_bio_X509_AUX(bio, nullptr, no_passphrase, nullptr)) {
    certs.push_back(leaf);
    while (X509* cert = PEM_read_bio_X509(bio, nullptr, no_passphrase, nullptr)) certs.push_back(cert);
  }
  // Reading stops at an error: PEM's "no start line" is the end of the
  // file (or, before any certificate, a file without one).
  const unsigned long error = ERR_peek_last_error();
  const bool no_start_line = ERR_GET_LIB(error) == ERR_LIB_PEM && ERR_GET_REASON(error) == PEM_R_NO_START_LINE;
  std::string why;
  if (!no_start_line) {
    why = openssl_reason();
  } else if (certs.empty()) {
    why = "no PEM certificate in it";
  }
  ERR_clear_error();
  BIO_free(bio);
  if (!why.empty()) {
    for (X509* cert : certs) X509_free(cert);
    return fail("{} is not a usable PEM certificate file: {}", quote_text(path), why);
  }
  return certs;
}

Result<EVP_PKEY*> read_key(const std::string& path) {
  BIO* bio = BIO_new_file(path.c_str(), "r");
  if (bio == nullptr) {
    ERR_clear_error();
    return fail("cannot read {}: {}", quote_text(path), std::strerror(errno));
  }
  EVP_PKEY* key = PEM_read_bio_PrivateKey(bio, nullptr, no_passphrase, nullptr);
  BIO_free(bio);
  if (key == nullptr) {
    return fail("{} is not a usable PEM private key (an encrypted key is not supported): {}", quote_text(path),
                openssl_reason());
  }
  return key;
}

// Errors about the leaf's validity now; `soon` for a warning about its end.
std::string validity_problem(X509* leaf, const std::string& path, std::chrono::seconds warn_within, bool& soon) {
  soon = false;
  if (X509_cmp_current_time(X509_get0_notBefore(leaf)) > 0) {
    return fmt::format("the certificate in {} is not valid before {}", quote_text(path),
                       time_text(X509_get0_notBefore(leaf)));
  }
  if (X509_cmp_current_time(X509_get0_notAfter(leaf)) < 0) {
    return fmt::format("the certificate in {} expired on {}", quote_text(path), time_text(X509_get0_notAfter(leaf)));
  }
  std::time_t horizon = std::time(nullptr) + warn_within.count();
  if (X509_cmp_time(X509_get0_notAfter(leaf), &horizon) < 0) {
    soon = true;
    return fmt::format("the certificate in {} expires on {}, in less than {} days", quote_text(path),
                       time_text(X509_get0_notAfter(leaf)), warn_within.count() / 86400);
  }
  return {};
}

Result<void> configure_server(SSL_CTX* ctx, const TlsConfig& config, const std::vector<std::string>* alpn) {
  SSL_CTX_set_min_proto_version(ctx, config.min_version == TlsVersion::tls1_3 ? TLS1_3_VERSION : TLS1_2_VERSION);
  // An EOF without close_notify ends the stream like a close (the client
  // shut its socket); the application protocol decides whether it was
  // complete, as over TCP.
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_CIPHER_SERVER_PREFERENCE |
                               SSL_OP_NO_COMPRESSION);
  // Idle sessions give their record buffers back; writes may be partial and
  // retried from another address, as try_write's callers do.
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  SSL_CTX_clear_mode(ctx, SSL_MODE_AUTO_RETRY);
  // Stateless tickets only: no session cache to hold memory per client.
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_timeout(ctx, ticket_lifetime_seconds);
  SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_key_callback);
  // One TLS 1.3 ticket per handshake, not OpenSSL's two: a client resumes
  // with the newest and gets a new one then, and each ticket costs an
  // encryption, a MAC and a write.
  SSL_CTX_set_num_tickets(ctx, 1);
  static constexpr unsigned char session_context[] = "portico";
  SSL_CTX_set_session_id_context(ctx, session_context, sizeof session_context - 1);
  SSL_CTX_set_info_callback(ctx, info_callback);
  SSL_CTX_set_default_passwd_cb(ctx, no_passphrase);
  if (alpn != nullptr && !alpn->empty()) {
    SSL_CTX_set_alpn_select_cb(ctx, select_alpn, const_cast<std::vector<std::string>*>(alpn));
  }
  if (config.verify_client != TlsVerifyClient::off) {
    if (SSL_CTX_load_verify_locations(ctx, config.client_ca.c_str(), nullptr) != 1) {
      return fail("cannot load the client CAs {}: {}", quote_text(config.client_ca), openssl_reason());
    }
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(config.client_ca.c_str());
    if (names != nullptr) SSL_CTX_set_client_CA_list(ctx, names);
    ERR_clear_error();
    int mode = SSL_VERIFY_PEER;
    if (config.verify_client == TlsVerifyClient::require) mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    SSL_CTX_set_verify(ctx, mode, nullptr);
  }
  return {};
}

// A certificate file and its key into `ctx`, as OpenSSL takes them: this
// is where its security level refuses what it deems too weak (an RSA key
// under 2048 bits, a SHA-1 signature), which reading the files alone does
// not see.
Result<void> use_certificate(SSL_CTX* ctx, const std::string& cert, const std::string& key) {
  if (SSL_CTX_use_certificate_chain_file(ctx, cert.c_str()) != 1) {
    return fail("cannot use the certificate {}: {}", quote_text(cert), openssl_reason());
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, key.c_str(), SSL_FILETYPE_PEM) != 1) {
    return fail("cannot use the key {}: {}", quote_text(key), openssl_reason());
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    ERR_clear_error();
    return fail("the key {} does not match the certificate {}", quote_text(key), quote_text(cert));
  }
  return {};
}

}  // namespace

// ---- detail::TlsSession -----------------------------------------------------

namespace detail {

TlsSession* session_of(const SSL* ssl) { return static_cast<TlsSession*>(SSL_get_ex_data(ssl, session_index())); }

void attach(TlsSession& session) { SSL_set_ex_data(session.ssl(), session_index(), &session); }

const TlsInfo& TlsSession::info() {
  if (info_) return *info_;
  info_ = std::make_unique<TlsInfo>();
  info_->protocol = SSL_get_version(ssl_);
  info_->cipher = SSL_get_cipher_name(ssl_);
  if (const char* name = SSL_get_servername(ssl_, TLSEXT_NAMETYPE_host_name)) info_->server_name = name;
  const unsigned char* alpn = nullptr;
  unsigned int alpn_length = 0;
  SSL_get0_alpn_selected(ssl_, &alpn, &alpn_length);
  if (alpn != nullptr) info_->alpn.assign(reinterpret_cast<const char*>(alpn), alpn_length);
  if (X509* peer = SSL_get0_peer_certificate(ssl_)) {
    if (BIO* bio = BIO_new(BIO_s_mem())) {
      X509_NAME_print_ex(bio, X509_get_subject_name(peer), 0, XN_FLAG_RFC2253);
      char* data = nullptr;
      const long n = BIO_get_mem_data(bio, &data);
      if (n > 0) info_->peer_subject.assign(data, static_cast<std::size_t>(n));
      BIO_free(bio);
    }
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int digest_length = 0;
    if (X509_digest(peer, EVP_sha256(), digest, &digest_length) == 1) {
      info_->peer_hash = "SHA256:";
      for (unsigned int i = 0; i < digest_length; ++i) fmt::format_to(std::back_inserter(info_->peer_hash), "{:02x}", digest[i]);
    }
  }
  info_->resumed = SSL_session_reused(ssl_) == 1;
  ERR_clear_error();
  return *info_;
}

bool TicketKeys::current(std::chrono::steady_clock::time_point now, TicketKey& out) {
  std::lock_guard lock(mutex_);
  if (count_ == 0 || now - keys_[0].made >= period) {
    TicketKey fresh;
    if (RAND_bytes(fresh.name.data(), 16) != 1 || RAND_bytes(fresh.aes.data(), 32) != 1 ||
        RAND_bytes(fresh.hmac.data(), 32) != 1) {
      return false;
    }
    fresh.made = now;
    for (std::size_t i = kept - 1; i > 0; --i) keys_[i] = keys_[i - 1];
    keys_[0] = fresh;
    count_ = std::min(count_ + 1, kept);
  }
  out = keys_[0];
  return true;
}

bool TicketKeys::find(const unsigned char* name, TicketKey& out, bool& renew) {
  std::lock_guard lock(mutex_);
  for (std::size_t i = 0; i < count_; ++i) {
    if (std::memcmp(keys_[i].name.data(), name, 16) == 0) {
      out = keys_[i];
      renew = i != 0;
      return true;
    }
  }
  return false;
}

}  // namespace detail

// ---- TlsServerContext -------------------------------------------------------

int select_certificate(SSL* ssl, int*, void* arg) {
  const auto* context = static_cast<const TlsServerContext*>(arg);
  const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  if (name == nullptr) return SSL_TLSEXT_ERR_NOACK;
  const std::size_t length = std::strlen(name);
  for (std::size_t i = 0; i < context->leaves_.size(); ++i) {
    if (X509_check_host(context->leaves_[i], name, length, 0, nullptr) == 1) {
      if (i != 0) SSL_set_SSL_CTX(ssl, context->contexts_[i]);
      return SSL_TLSEXT_ERR_OK;
    }
  }
  // No certificate names it: the default one answers.
  return SSL_TLSEXT_ERR_OK;
}

Result<std::shared_ptr<const TlsServerContext>> TlsServerContext::load(const TlsConfig& config) {
  if (config.certificates.empty() || config.certificates.size() != config.keys.size()) {
    return fail("tls_certificate and tls_key must list as many files");
  }
  std::shared_ptr<TlsServerContext> context(new TlsServerContext(config));
  for (std::size_t i = 0; i < config.certificates.size(); ++i) {
    const std::string& cert = config.certificates[i];
    const std::string& key = config.keys[i];
    SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == nullptr) return fail("cannot create a TLS context: {}", openssl_reason());
    context->contexts_.push_back(ctx);
    if (auto configured = configure_server(ctx, context->config_, &context->config_.alpn); !configured) {
      return configured.error();
    }
    if (auto used = use_certificate(ctx, cert, key); !used) return used.error();
    X509* leaf = SSL_CTX_get0_certificate(ctx);
    bool soon = false;
    if (const std::string problem = validity_problem(leaf, cert, std::chrono::seconds(0), soon); !problem.empty()) {
      return fail("{}", problem);
    }
    context->leaves_.push_back(leaf);
  }
  SSL_CTX_set_tlsext_servername_callback(context->contexts_[0], select_certificate);
  SSL_CTX_set_tlsext_servername_arg(context->contexts_[0], context.get());
  return std::shared_ptr<const TlsServerContext>(std::move(context));
}

TlsServerContext::~TlsServerContext() {
  for (SSL_CTX* ctx : contexts_) SSL_CTX_free(ctx);
}

std::unique_ptr<detail::TlsSession> TlsServerContext::new_session(int fd) const {
  SSL* ssl = SSL_new(contexts_[0]);
  if (ssl == nullptr) {
    ERR_clear_error();
    return nullptr;
  }
  auto session = std::make_unique<detail::TlsSession>(ssl);
  if (SSL_set_fd(ssl, fd) != 1) {
    ERR_clear_error();
    return nullptr;
  }
  SSL_set_accept_state(ssl);
  detail::attach(*session);
  return session;
}

std::vector<TlsFinding> check_tls_files(const TlsConfig& config, std::chrono::seconds warn_within) {
  std::vector<TlsFinding> findings;
  for (std::size_t i = 0; i < config.certificates.size(); ++i) {
    auto certs = read_certificates(config.certificates[i]);
    if (!certs) {
      findings.push_back({true, "tls_certificate", i, certs.error().message()});
    }
    // load() refuses lists of different lengths; the config loader says so.
    Result<EVP_PKEY*> key = i < config.keys.size() ? read_key(config.keys[i]) : Result<EVP_PKEY*>(nullptr);
    if (!key) findings.push_back({true, "tls_key", i, key.error().message()});
    if (certs) {
      X509* leaf = certs->front();
      bool soon = false;
      if (const std::string problem = validity_problem(leaf, config.certificates[i], warn_within, soon);
          !problem.empty()) {
        findings.push_back({!soon, "tls_certificate", i, problem});
      }
      if (key && *key != nullptr && X509_check_private_key(leaf, *key) != 1) {
        ERR_clear_error();
        findings.push_back({true, "tls_key", i,
                            fmt::format("the key {} does not match the certificate {}", quote_text(config.keys[i]),
                                        quote_text(config.certificates[i]))});
      } else if (key && *key != nullptr) {
        // Both files read and match: what remains is whether OpenSSL takes
        // them, as the start will.
        SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
        if (ctx != nullptr) {
          SSL_CTX_set_default_passwd_cb(ctx, no_passphrase);
          if (auto used = use_certificate(ctx, config.certificates[i], config.keys[i]); !used) {
            const bool key_refused = used.error().message().starts_with("cannot use the key");
            findings.push_back({true, key_refused ? "tls_key" : "tls_certificate", i, used.error().message()});
          }
          SSL_CTX_free(ctx);
        }
      }
      for (X509* cert : *certs) X509_free(cert);
    }
    if (key && *key != nullptr) EVP_PKEY_free(*key);
  }
  if (!config.client_ca.empty()) {
    // As the start loads them (X509_load_cert_crl_file, which reads
    // certificates and CRLs its own way); an unreadable file is said plainly.
    if (BIO* bio = BIO_new_file(config.client_ca.c_str(), "r"); bio == nullptr) {
      findings.push_back({true, "tls_client_ca", 0,
                          fmt::format("cannot read {}: {}", quote_text(config.client_ca), std::strerror(errno))});
    } else {
      BIO_free(bio);
      SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
      if (ctx != nullptr && SSL_CTX_load_verify_locations(ctx, config.client_ca.c_str(), nullptr) != 1) {
        findings.push_back({true, "tls_client_ca", 0,
                            fmt::format("cannot load the client CAs {}: {}", quote_text(config.client_ca),
                                        openssl_reason())});
      }
      SSL_CTX_free(ctx);
    }
  }
  ERR_clear_error();
  return findings;
}

// ---- Client side --------------------------------------------------------------

Result<std::shared_ptr<const TlsClientContext>> TlsClientContext::create(const TlsClientSettings& settings) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (ctx == nullptr) return fail("cannot create a TLS context: {}", openssl_reason());
  std::shared_ptr<TlsClientContext> context(new TlsClientContext());
  context->ctx_ = ctx;
  context->verify_ = settings.verify;
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_COMPRESSION);
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  SSL_CTX_clear_mode(ctx, SSL_MODE_AUTO_RETRY);
  if (settings.verify) {
    const int loaded = settings.ca_file.empty() ? SSL_CTX_set_default_verify_paths(ctx)
                                                : SSL_CTX_load_verify_locations(ctx, settings.ca_file.c_str(), nullptr);
    if (loaded != 1) {
      return fail("cannot load the CAs {}: {}", settings.ca_file.empty() ? "(system)" : quote_text(settings.ca_file),
                  openssl_reason());
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  }
  if (!settings.alpn.empty()) {
    std::string wire;
    for (const auto& protocol : settings.alpn) {
      wire += static_cast<char>(protocol.size());
      wire += protocol;
    }
    SSL_CTX_set_alpn_protos(ctx, reinterpret_cast<const unsigned char*>(wire.data()),
                            static_cast<unsigned int>(wire.size()));
  }
  ERR_clear_error();
  return std::shared_ptr<const TlsClientContext>(std::move(context));
}

TlsClientContext::~TlsClientContext() { SSL_CTX_free(static_cast<SSL_CTX*>(ctx_)); }

// ---- Errors ---------------------------------------------------------------------

namespace {

class TlsCategory final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "portico.tls"; }
  std::string message(int value) const override {
    switch (static_cast<TlsErrc>(value)) {
      case TlsErrc::renegotiation: return "the peer tried to renegotiate";
      case TlsErrc::no_alpn: return "the peer offered none of the listener's ALPN protocols";
    }
    return "TLS error";
  }
};

class VerifyCategory final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "x509"; }
  std::string message(int value) const override { return X509_verify_cert_error_string(value); }
};

}  // namespace

boost::system::error_code verify_error(long result) {
  static const VerifyCategory category;
  return {static_cast<int>(result), category};
}

const boost::system::error_category& tls_category() {
  static const TlsCategory category;
  return category;
}

std::string_view to_string(TlsVerifyClient verify) {
  switch (verify) {
    case TlsVerifyClient::off: return "off";
    case TlsVerifyClient::optional: return "optional";
    case TlsVerifyClient::require: return "require";
  }
  return "?";
}

std::string_view to_string(TlsVersion version) { return version == TlsVersion::tls1_3 ? "1.3" : "1.2"; }

}  // namespace portico
