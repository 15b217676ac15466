// HTTPS: a self-signed certificate made at test time (OpenSSL), and httplib's
// SSLClient verifying the server against it.
#include <httplib.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <memory>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cairn/server/server.h"
#include "cairn/server/testing.h"

namespace cairn::server {
namespace {

using ::testing::HasSubstr;

// Writes a P-256 key and a one-hour self-signed certificate for 127.0.0.1
// (subject alternative name, which clients check) as PEM files.
bool MakeSelfSignedCert(const std::string& cert_path, const std::string& key_path) {
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(EVP_EC_gen("P-256"), EVP_PKEY_free);
  std::unique_ptr<X509, decltype(&X509_free)> x(X509_new(), X509_free);
  if (!key || !x) return false;
  X509_set_version(x.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x.get()), 1);
  X509_gmtime_adj(X509_getm_notBefore(x.get()), -60);
  X509_gmtime_adj(X509_getm_notAfter(x.get()), 3600);
  X509_set_pubkey(x.get(), key.get());
  X509_NAME* name = X509_get_subject_name(x.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("127.0.0.1"), -1, -1,
                             0);
  X509_set_issuer_name(x.get(), name);
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, x.get(), x.get(), nullptr, nullptr, 0);
  X509_EXTENSION* san = X509V3_EXT_conf_nid(nullptr, &ctx, NID_subject_alt_name, "IP:127.0.0.1");
  if (san == nullptr) return false;
  X509_add_ext(x.get(), san, -1);
  X509_EXTENSION_free(san);
  if (X509_sign(x.get(), key.get(), EVP_sha256()) == 0) return false;
  FILE* c = std::fopen(cert_path.c_str(), "w");
  FILE* k = std::fopen(key_path.c_str(), "w");
  bool ok = c && k && PEM_write_X509(c, x.get()) == 1 &&
            PEM_write_PrivateKey(k, key.get(), nullptr, nullptr, 0, nullptr, nullptr) == 1;
  if (c) std::fclose(c);
  if (k) std::fclose(k);
  return ok;
}

class TlsTest : public testing::ServerFixture {
 protected:
  void SetUp() override {
    cert_ = certs_.path() + "/cert.pem";
    key_ = certs_.path() + "/key.pem";
    ASSERT_TRUE(MakeSelfSignedCert(cert_, key_));
    options_.metrics = &metrics_;
  }
  testing::TempDir certs_;
  std::string cert_, key_;
  MetricsRegistry metrics_;
};

TEST_F(TlsTest, ServesHttpsThatVerifiesAgainstTheCertificate) {
  options_.tls_cert_file = cert_;
  options_.tls_key_file = key_;
  options_.api_keys = {"k1"};
  StartServer();
  EXPECT_EQ(server_->url().rfind("https://127.0.0.1:", 0), 0u) << server_->url();

  httplib::SSLClient client("127.0.0.1", server_->port());
  client.set_ca_cert_path(cert_.c_str());
  client.enable_server_certificate_verification(true);
  client.set_read_timeout(30, 0);
  httplib::Result health = client.Get("/healthz");
  ASSERT_TRUE(health) << httplib::to_string(health.error()) << " (ssl error " << client.get_openssl_verify_result()
                      << ")";
  EXPECT_EQ(health->status, 200);
  EXPECT_THAT(health->body, HasSubstr("\"ok\""));
  // Auth works the same over TLS.
  EXPECT_EQ(client.Get("/v1/collections")->status, 401);
  EXPECT_EQ(client.Get("/v1/collections", {{"Authorization", "Bearer k1"}})->status, 200);

  // A client that trusts nothing refuses the self-signed certificate.
  httplib::SSLClient strict("127.0.0.1", server_->port());
  strict.set_ca_cert_path((certs_.path() + "/none.pem").c_str());
  strict.enable_server_certificate_verification(true);
  EXPECT_FALSE(strict.Get("/healthz"));
  // Plain HTTP gets no answer from the HTTPS port.
  httplib::Client plain("127.0.0.1", server_->port());
  plain.set_read_timeout(5, 0);
  httplib::Result p = plain.Get("/healthz");
  EXPECT_TRUE(!p || p->status != 200);
}

TEST_F(TlsTest, BadCertificateOrKeyFailsAtStartWithAClearMessage) {
  // A key that is not PEM.
  std::string junk = certs_.path() + "/junk.pem";
  FILE* f = std::fopen(junk.c_str(), "w");
  ASSERT_NE(f, nullptr);
  std::fputs("not a key\n", f);
  std::fclose(f);
  options_.data_dir = dir_.path();
  options_.tls_cert_file = cert_;
  options_.tls_key_file = junk;
  absl::StatusOr<std::unique_ptr<Server>> s = Server::Create(options_);
  ASSERT_TRUE(s.ok()) << s.status();
  absl::Status started = (*s)->Start();
  EXPECT_FALSE(started.ok());
  EXPECT_THAT(std::string(started.message()), HasSubstr("junk.pem"));
  EXPECT_THAT(std::string(started.message()), HasSubstr("TLS certificate"));
  // A key of another certificate.
  std::string other_cert = certs_.path() + "/other.pem", other_key = certs_.path() + "/other.key";
  ASSERT_TRUE(MakeSelfSignedCert(other_cert, other_key));
  options_.tls_key_file = other_key;
  s = Server::Create(options_);
  ASSERT_TRUE(s.ok());
  EXPECT_FALSE((*s)->Start().ok());
}

}  // namespace
}  // namespace cairn::server
