// Fuzz target: a listener's TLS files, as `porticod --check` reads them
// (check_tls_files) and as the start and each reload load them
// (TlsServerContext::load). The input is cut into a certificate file and a
// key file (FuzzedDataProvider; the first byte also picks whether the
// certificate file is the client CA file as well), written to a temporary
// directory under names that hold a space, a quote and a control byte, as
// a config may name them.
//
// 1. Every finding says which file it is about, quoted and escaped as
//    portico quotes names, and its message is escaped as a whole.
// 2. --check and the load agree: --check finds no error exactly when the
//    load succeeds (a certificate that expires soon is only a warning).
// 3. A load succeeds only with a certificate and its key: OpenSSL, reading
//    the same files itself, finds a certificate and a private key that
//    matches it.

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include <fuzzer/FuzzedDataProvider.h>

#include <portico/text.hpp>

#include "check.hpp"
#include "core/tls.hpp"

namespace {

// The directory of the files, removed at exit. A plain array, which the
// exit handler can still read after the static strings are gone.
char dir_name[] = "/tmp/portico-fuzz-tls-XXXXXX";
const char* const cert_name = "cert \"1\"\x1b.pem";
const char* const key_name = "key \"1\"\x1b.pem";

const char* directory() {
  static const bool made = [] {
    if (mkdtemp(dir_name) == nullptr) std::abort();
    std::atexit([] {
      for (const char* name : {cert_name, key_name}) std::remove((std::string(dir_name) + "/" + name).c_str());
      rmdir(dir_name);
    });
    return true;
  }();
  (void)made;
  return dir_name;
}

std::string write(const std::string& name, const std::string& bytes) {
  const std::string path = std::string(directory()) + "/" + name;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) std::abort();
  return path;
}

// What OpenSSL makes of the files by itself: a certificate (the first of
// the file) and a private key matching it. Read from the files, not from
// memory: OpenSSL's PEM reader takes some bytes (a NUL in a BEGIN line)
// differently from a file BIO and a memory BIO.
bool openssl_finds_a_pair(const std::string& cert_path, const std::string& key_path) {
  BIO* cert_bio = BIO_new_file(cert_path.c_str(), "r");
  BIO* key_bio = BIO_new_file(key_path.c_str(), "r");
  X509* cert = PEM_read_bio_X509_AUX(cert_bio, nullptr, nullptr, nullptr);
  EVP_PKEY* key = PEM_read_bio_PrivateKey(key_bio, nullptr, [](char*, int, int, void*) { return -1; }, nullptr);
  const bool pair = cert != nullptr && key != nullptr && X509_check_private_key(cert, key) == 1;
  X509_free(cert);
  EVP_PKEY_free(key);
  BIO_free(cert_bio);
  BIO_free(key_bio);
  ERR_clear_error();
  return pair;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider input(data, size);
  const bool client_ca = input.ConsumeBool();
  const std::string cert_pem = input.ConsumeRandomLengthString(size);
  const std::string key_pem = input.ConsumeRemainingBytesAsString();

  portico::TlsConfig config;
  config.certificates = {write(cert_name, cert_pem)};
  config.keys = {write(key_name, key_pem)};
  if (client_ca) {
    config.client_ca = config.certificates[0];
    config.verify_client = portico::TlsVerifyClient::optional;
  }

  bool check_error = false;
  for (const auto& finding : portico::check_tls_files(config)) {
    const std::string& file = finding.key == "tls_key" ? config.keys[0] : config.certificates[0];
    FUZZ_CHECK(finding.message.find(portico::quote_text(file)) != std::string::npos, finding.message);
    FUZZ_CHECK(portico::escape_controls(finding.message) == finding.message, portico::escape_text(finding.message));
    check_error = check_error || finding.error;
  }

  const auto loaded = portico::TlsServerContext::load(config);
  const std::string why = loaded ? std::string("loaded") : loaded.error().message();
  FUZZ_CHECK(check_error == !loaded, "--check " + std::string(check_error ? "finds errors" : "finds none") +
                                         ", the load: " + portico::escape_text(why));
  if (!loaded) {
    FUZZ_CHECK(portico::escape_controls(why) == why, portico::escape_text(why));
    return 0;
  }
  FUZZ_CHECK(openssl_finds_a_pair(config.certificates[0], config.keys[0]));
  ERR_clear_error();
  return 0;
}
