#include "test_tls_certs.h"

#include <arpa/inet.h>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

namespace popbridge::test {
namespace {

void write_pem(const std::filesystem::path& p, X509* cert, EVP_PKEY* key) {
    FILE* f = std::fopen(p.c_str(), "w");
    if (!f)
        throw std::runtime_error("cannot write " + p.string());
    if (cert)
        PEM_write_X509(f, cert);
    if (key)
        PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
    std::fclose(f);
}

X509* make_cert(EVP_PKEY* key, const std::string& cn, X509* issuer, EVP_PKEY* issuer_key,
                bool ca, const std::string& san, bool expired, long serial) {
    X509* x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
    if (expired) {
        X509_gmtime_adj(X509_getm_notBefore(x), -3600L * 24 * 30);
        X509_gmtime_adj(X509_getm_notAfter(x), -3600L * 24);
    } else {
        X509_gmtime_adj(X509_getm_notBefore(x), -3600);
        X509_gmtime_adj(X509_getm_notAfter(x), 3600L * 24 * 365);
    }
    X509_set_pubkey(x, key);
    X509_NAME* name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name);
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer ? issuer : x, x, nullptr, nullptr, 0);
    auto add = [&](int nid, const char* value) {
        X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
        X509_add_ext(x, ext, -1);
        X509_EXTENSION_free(ext);
    };
    add(NID_basic_constraints, ca ? "critical,CA:TRUE" : "CA:FALSE");
    if (ca)
        add(NID_key_usage, "critical,keyCertSign,cRLSign");
    if (!san.empty())
        add(NID_subject_alt_name, san.c_str());
    X509_sign(x, issuer_key, EVP_sha256());
    return x;
}

} // namespace

TestCerts make_test_certs(const std::string& host, bool expired) {
    char tmpl[] = "/tmp/pb-certs-XXXXXX";
    if (!mkdtemp(tmpl))
        throw std::runtime_error("mkdtemp failed");
    TestCerts out;
    out.dir = tmpl;
    out.ca_cert = out.dir / "ca.pem";
    out.server_cert = out.dir / "server.pem";
    out.server_key = out.dir / "server.key";

    EVP_PKEY* ca_key = EVP_EC_gen("P-256");
    EVP_PKEY* srv_key = EVP_EC_gen("P-256");
    X509* ca = make_cert(ca_key, "popbridge test CA", nullptr, ca_key, true, "", false, 1);
    in_addr a4{};
    std::string san = inet_pton(AF_INET, host.c_str(), &a4) == 1 ? "IP:" + host : "DNS:" + host;
    X509* srv = make_cert(srv_key, host, ca, ca_key, false, san, expired, 2);
    write_pem(out.ca_cert, ca, nullptr);
    write_pem(out.server_cert, srv, nullptr);
    write_pem(out.server_key, nullptr, srv_key);
    X509_free(ca);
    X509_free(srv);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(srv_key);
    return out;
}

} // namespace popbridge::test
