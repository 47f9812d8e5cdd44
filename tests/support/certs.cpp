#include "support/certs.hpp"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <stdexcept>

#include "support/daemon.hpp"

namespace portico::test {

namespace {

template <typename T, void (*F)(T*)>
struct Free {
  void operator()(T* p) const { F(p); }
};
using Key = std::unique_ptr<EVP_PKEY, Free<EVP_PKEY, EVP_PKEY_free>>;
using Cert = std::unique_ptr<X509, Free<X509, X509_free>>;

void check(bool ok, const char* what) {
  if (!ok) throw std::runtime_error(std::string("making a test certificate: ") + what);
}

Key read_key(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "r");
  check(f != nullptr, "open key");
  Key key(PEM_read_PrivateKey(f, nullptr, nullptr, nullptr));
  std::fclose(f);
  check(key != nullptr, "read key");
  return key;
}

Cert read_cert(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "r");
  check(f != nullptr, "open certificate");
  Cert cert(PEM_read_X509(f, nullptr, nullptr, nullptr));
  std::fclose(f);
  check(cert != nullptr, "read certificate");
  return cert;
}

void add_extension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  check(ext != nullptr, "extension");
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

}  // namespace

Certificate make_certificate(const TempDir& dir, const std::string& name, const CertificateSpec& spec) {
  Key key(spec.rsa ? EVP_RSA_gen(spec.rsa_bits) : EVP_EC_gen("P-256"));
  check(key != nullptr, "key generation");
  Cert cert(X509_new());
  X509_set_version(cert.get(), 2);
  long serial = spec.serial;
  if (serial == 0) {
    RAND_bytes(reinterpret_cast<unsigned char*>(&serial), sizeof serial);
    serial = (serial & 0x3fffffff) | 0x10000;
  }
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), serial);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), spec.not_before.count());
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), spec.not_after.count());
  X509_set_pubkey(cert.get(), key.get());
  X509_NAME* subject = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>(spec.common_name.c_str()), -1, -1, 0);

  Cert issuer_cert;
  Key issuer_key;
  X509* issuer = cert.get();
  EVP_PKEY* signer = key.get();
  if (spec.issuer != nullptr) {
    issuer_cert = read_cert(spec.issuer->cert);
    issuer_key = read_key(spec.issuer->key);
    issuer = issuer_cert.get();
    signer = issuer_key.get();
  }
  X509_set_issuer_name(cert.get(), X509_get_subject_name(issuer));
  if (spec.is_ca) {
    add_extension(cert.get(), issuer, NID_basic_constraints, "critical,CA:TRUE");
    add_extension(cert.get(), issuer, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    add_extension(cert.get(), issuer, NID_basic_constraints, "CA:FALSE");
    std::string names;
    for (const auto& dns : spec.dns_names) names += (names.empty() ? "DNS:" : ",DNS:") + dns;
    for (const auto& ip : spec.ip_addresses) names += (names.empty() ? "IP:" : ",IP:") + ip;
    if (!names.empty()) add_extension(cert.get(), issuer, NID_subject_alt_name, names);
  }
  add_extension(cert.get(), cert.get(), NID_subject_key_identifier, "hash");
  check(X509_sign(cert.get(), signer, EVP_sha256()) > 0, "sign");

  Certificate out;
  out.cert = (dir.path() / (name + ".pem")).string();
  out.key = (dir.path() / (name + ".key")).string();
  std::FILE* f = std::fopen(out.cert.c_str(), "w");
  check(f != nullptr && PEM_write_X509(f, cert.get()) == 1, "write certificate");
  std::fclose(f);
  f = std::fopen(out.key.c_str(), "w");
  check(f != nullptr && PEM_write_PrivateKey(f, key.get(), nullptr, nullptr, 0, nullptr, nullptr) == 1, "write key");
  std::fclose(f);
  char hex[32];
  std::snprintf(hex, sizeof hex, "%lX", serial);
  // Whole bytes, as openssl x509 -serial and Python show it.
  out.serial = std::strlen(hex) % 2 ? std::string("0") + hex : std::string(hex);
  return out;
}

}  // namespace portico::test
