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

// The CN and the SAN dNSName are set with explicit lengths (ASN1_STRING_set), so `cn` may
// hold a NUL; the SAN then is one dNSName with the same bytes instead of the `san` string.
X509* make_cert(EVP_PKEY* key, const std::string& cn, X509* issuer, EVP_PKEY* issuer_key, bool ca,
                const std::string& san, CertFlaw flaw, long serial) {
    X509* x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
    if (flaw == CertFlaw::Expired) {
        X509_gmtime_adj(X509_getm_notBefore(x), -3600L * 24 * 30);
        X509_gmtime_adj(X509_getm_notAfter(x), -3600L * 24);
    } else if (flaw == CertFlaw::NotYetValid) {
        X509_gmtime_adj(X509_getm_notBefore(x), 3600L * 24);
        X509_gmtime_adj(X509_getm_notAfter(x), 3600L * 24 * 30);
    } else {
        X509_gmtime_adj(X509_getm_notBefore(x), -3600);
        X509_gmtime_adj(X509_getm_notAfter(x), 3600L * 24 * 365);
    }
    X509_set_pubkey(x, key);
    X509_NAME* name = X509_get_subject_name(x);
    {
        ASN1_STRING* cn_str = ASN1_STRING_type_new(V_ASN1_UTF8STRING);
        ASN1_STRING_set(cn_str, cn.data(), static_cast<int>(cn.size()));
        X509_NAME_ENTRY* e = X509_NAME_ENTRY_create_by_NID(
            nullptr, NID_commonName, V_ASN1_UTF8STRING, ASN1_STRING_get0_data(cn_str),
            ASN1_STRING_length(cn_str));
        X509_NAME_add_entry(name, e, -1, 0);
        X509_NAME_ENTRY_free(e);
        ASN1_STRING_free(cn_str);
    }
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
    if (flaw == CertFlaw::NulInName) {
        GENERAL_NAMES* names = GENERAL_NAMES_new();
        GENERAL_NAME* dns = GENERAL_NAME_new();
        ASN1_IA5STRING* ia5 = ASN1_IA5STRING_new();
        ASN1_STRING_set(ia5, cn.data(), static_cast<int>(cn.size()));
        GENERAL_NAME_set0_value(dns, GEN_DNS, ia5);
        sk_GENERAL_NAME_push(names, dns);
        X509_add1_ext_i2d(x, NID_subject_alt_name, names, 0, X509V3_ADD_DEFAULT);
        GENERAL_NAMES_free(names);
    } else if (!san.empty()) {
        add(NID_subject_alt_name, san.c_str());
    }
    X509_sign(x, issuer_key, EVP_sha256());
    return x;
}

} // namespace

TestCerts make_test_certs(const std::string& host, bool expired) {
    return make_test_certs(host, expired ? CertFlaw::Expired : CertFlaw::None);
}

TestCerts make_test_certs(const std::string& host, CertFlaw flaw) {
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
    X509* ca = make_cert(ca_key, "popbridge test CA", nullptr, ca_key, true, "", CertFlaw::None, 1);
    in_addr a4{};
    std::string san = inet_pton(AF_INET, host.c_str(), &a4) == 1 ? "IP:" + host : "DNS:" + host;
    std::string cn = host;
    if (flaw == CertFlaw::NulInName)
        cn += std::string("\0.attacker.test", 15);
    X509* srv = flaw == CertFlaw::SelfSigned
                    ? make_cert(srv_key, cn, nullptr, srv_key, false, san, flaw, 2)
                    : make_cert(srv_key, cn, ca, ca_key, false, san, flaw, 2);
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
