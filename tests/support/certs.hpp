#pragma once
// Test support: X.509 certificates and keys made on the spot with OpenSSL,
// written as PEM files, for the TLS tests. A certificate can be
// self-signed or signed by a CA made here, expired, not yet valid or about
// to expire.

#include <chrono>
#include <string>
#include <vector>

namespace portico::test {

class TempDir;

struct Certificate {
  std::string cert;  // PEM certificate path
  std::string key;   // PEM private key path
  std::string serial;  // hex, upper case, as `openssl x509 -serial` shows it
};

struct CertificateSpec {
  std::string common_name = "localhost";
  std::vector<std::string> dns_names = {"localhost"};
  std::vector<std::string> ip_addresses = {"127.0.0.1"};
  // Validity relative to now.
  std::chrono::seconds not_before = std::chrono::hours(-1);
  std::chrono::seconds not_after = std::chrono::hours(24 * 365);
  bool is_ca = false;
  bool rsa = false;               // RSA rather than ECDSA P-256
  unsigned rsa_bits = 2048;       // under 2048 OpenSSL refuses to use it
  const Certificate* issuer = nullptr;  // nullptr: self-signed
  long serial = 0;                // 0: a random one
};

// Writes NAME.pem and NAME.key into `dir`.
Certificate make_certificate(const TempDir& dir, const std::string& name, const CertificateSpec& spec);

}  // namespace portico::test
