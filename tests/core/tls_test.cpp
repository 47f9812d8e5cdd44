// The library's TLS pieces that no client can see directly: the rotation of
// session ticket keys; --check's verdict on certificate files against what
// the load makes of them.

#include <openssl/pem.h>
#include <openssl/x509.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iterator>

#include <catch2/catch.hpp>

#include "core/tls.hpp"
#include "support/certs.hpp"
#include "support/daemon.hpp"

using namespace std::chrono_literals;
using portico::detail::TicketKey;
using portico::detail::TicketKeys;
using portico::test::make_certificate;
using portico::test::TempDir;

namespace {

portico::TlsConfig pair(const std::string& cert, const std::string& key) {
  portico::TlsConfig config;
  config.certificates = {cert};
  config.keys = {key};
  return config;
}

std::string findings_text(const std::vector<portico::TlsFinding>& findings) {
  std::string out;
  for (const auto& f : findings) out += (f.error ? "error: " : "warning: ") + f.key + ": " + f.message + "\n";
  return out;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// The first certificate of a PEM file.
X509* read_certificate(const std::string& path) {
  std::FILE* in = std::fopen(path.c_str(), "r");
  REQUIRE(in != nullptr);
  X509* cert = PEM_read_X509(in, nullptr, nullptr, nullptr);
  std::fclose(in);
  REQUIRE(cert != nullptr);
  return cert;
}

// Writes `prefix` (PEM text) and then `der` as one CERTIFICATE block to `path`.
void write_certificate_block(const std::string& path, const std::string& prefix, const std::string& der) {
  std::FILE* out = std::fopen(path.c_str(), "w");
  REQUIRE(out != nullptr);
  std::fputs(prefix.c_str(), out);
  REQUIRE(PEM_write(out, "CERTIFICATE", "", reinterpret_cast<const unsigned char*>(der.data()),
                    static_cast<long>(der.size())) > 0);
  std::fclose(out);
}

}  // namespace

TEST_CASE("ticket keys rotate every period and decrypt for two more", "[tls]") {
  TicketKeys keys;
  const auto t0 = std::chrono::steady_clock::time_point() + 100h;
  TicketKey first;
  REQUIRE(keys.current(t0, first));
  TicketKey again;
  REQUIRE(keys.current(t0 + 59min, again));
  CHECK(again.name == first.name);

  TicketKey second;
  REQUIRE(keys.current(t0 + 61min, second));
  CHECK(second.name != first.name);
  CHECK(second.aes != first.aes);
  CHECK(second.hmac != first.hmac);

  // A ticket of the first key still resumes, and asks for a new ticket.
  TicketKey found;
  bool renew = false;
  REQUIRE(keys.find(first.name.data(), found, renew));
  CHECK(renew);
  CHECK(found.aes == first.aes);
  REQUIRE(keys.find(second.name.data(), found, renew));
  CHECK_FALSE(renew);

  TicketKey third;
  REQUIRE(keys.current(t0 + 122min, third));
  CHECK(keys.find(first.name.data(), found, renew));
  TicketKey fourth;
  REQUIRE(keys.current(t0 + 183min, fourth));
  // Three keys are kept: the first is gone, its tickets give full handshakes.
  CHECK_FALSE(keys.find(first.name.data(), found, renew));
  CHECK(keys.find(second.name.data(), found, renew));
}

// Found by the tls_files fuzz target: --check said yes, the start said no.
TEST_CASE("porticod --check refuses a certificate OpenSSL's security level refuses at the load", "[tls]") {
  TempDir dir;
  const auto weak = make_certificate(dir, "weak", {.rsa = true, .rsa_bits = 1024});
  const auto config = pair(weak.cert, weak.key);
  const auto findings = portico::check_tls_files(config);
  INFO(findings_text(findings));
  REQUIRE(findings.size() == 1);
  CHECK(findings[0].error);
  CHECK(findings[0].key == "tls_certificate");
  CHECK(findings[0].message == "cannot use the certificate \"" + weak.cert + "\": ee key too small");
  const auto loaded = portico::TlsServerContext::load(config);
  REQUIRE_FALSE(loaded);
  CHECK(loaded.error().message() == findings[0].message);
}

// Found by the tls_files fuzz target: --check said no, the start said yes.
TEST_CASE("porticod --check accepts a certificate written as a TRUSTED CERTIFICATE, as the load does", "[tls]") {
  TempDir dir;
  const auto plain = make_certificate(dir, "plain", {});
  X509* cert = read_certificate(plain.cert);
  const std::string trusted = (dir.path() / "trusted.pem").string();
  std::FILE* out = std::fopen(trusted.c_str(), "w");
  REQUIRE(out != nullptr);
  REQUIRE(PEM_write_X509_AUX(out, cert) == 1);
  std::fclose(out);
  X509_free(cert);

  const auto config = pair(trusted, plain.key);
  CHECK(findings_text(portico::check_tls_files(config)).empty());
  CHECK(portico::TlsServerContext::load(config));
}

TEST_CASE("TLS errors quote file names as portico quotes any value", "[tls]") {
  TempDir dir;
  const auto good = make_certificate(dir, "good", {});
  const std::string odd = (dir.path() / "a \"b\"\\c.pem").string();
  const std::string quoted = "\"" + dir.path().string() + "/a \\\"b\\\"\\\\c.pem\"";
  const auto findings = portico::check_tls_files(pair(odd, good.key));
  REQUIRE(findings.size() == 1);
  CHECK(findings[0].message == "cannot read " + quoted + ": No such file or directory");
  const auto loaded = portico::TlsServerContext::load(pair(good.cert, odd));
  REQUIRE_FALSE(loaded);
  CHECK(loaded.error().message().starts_with("cannot use the key " + quoted + ": "));
}

// Found by the tls_files fuzz target: --check said no, the start said yes.
// OpenSSL reads the certificates after the leaf with PEM_read_bio_X509,
// which takes a certificate followed by more bytes in its block; --check
// read them as the leaf is read, which does not.
TEST_CASE("porticod --check reads a chain's certificates as the load does", "[tls]") {
  TempDir dir;
  const auto leaf = make_certificate(dir, "leaf", {});
  const auto other = make_certificate(dir, "other", {});
  X509* cert = read_certificate(other.cert);
  unsigned char* der = nullptr;
  const int length = i2d_X509(cert, &der);
  X509_free(cert);
  REQUIRE(length > 0);
  std::string block(reinterpret_cast<const char*>(der), static_cast<std::size_t>(length));
  OPENSSL_free(der);
  block += std::string(40, '\x45');

  const std::string chain = (dir.path() / "chain.pem").string();
  write_certificate_block(chain, read_text(leaf.cert), block);
  const auto config = pair(chain, leaf.key);
  CHECK(findings_text(portico::check_tls_files(config)) == "");
  CHECK(portico::TlsServerContext::load(config));

  // The same block as the leaf: both refuse it.
  const std::string bad_leaf = (dir.path() / "bad-leaf.pem").string();
  write_certificate_block(bad_leaf, "", block);
  const auto refused = pair(bad_leaf, other.key);
  const auto findings = portico::check_tls_files(refused);
  INFO(findings_text(findings));
  REQUIRE_FALSE(findings.empty());
  CHECK(findings[0].message.starts_with("\"" + bad_leaf + "\" is not a usable PEM certificate file: "));
  CHECK_FALSE(portico::TlsServerContext::load(refused));
}

// --check reads the client CA file as the load does, and says why it cannot.
TEST_CASE("porticod --check refuses a client CA file the load refuses", "[tls]") {
  TempDir dir;
  const auto good = make_certificate(dir, "good", {});
  auto config = pair(good.cert, good.key);
  config.verify_client = portico::TlsVerifyClient::require;

  config.client_ca = (dir.path() / "missing.pem").string();
  auto findings = portico::check_tls_files(config);
  REQUIRE(findings.size() == 1);
  CHECK(findings[0].key == "tls_client_ca");
  CHECK(findings[0].message == "cannot read \"" + config.client_ca + "\": No such file or directory");
  CHECK_FALSE(portico::TlsServerContext::load(config));

  config.client_ca = good.key;  // a file without a certificate
  findings = portico::check_tls_files(config);
  REQUIRE(findings.size() == 1);
  CHECK(findings[0].key == "tls_client_ca");
  CHECK(findings[0].message.starts_with("cannot load the client CAs \"" + good.key + "\": "));
  const auto loaded = portico::TlsServerContext::load(config);
  REQUIRE_FALSE(loaded);
  CHECK(loaded.error().message() == findings[0].message);

  config.client_ca = good.cert;
  CHECK(findings_text(portico::check_tls_files(config)) == "");
  CHECK(portico::TlsServerContext::load(config));
}
