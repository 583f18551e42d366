#include "proxy/tls_context.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

namespace popbridge::proxy {
namespace {

std::string last_error() {
    unsigned long e = ERR_get_error();
    ERR_clear_error();
    if (!e)
        return "unknown error";
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    return buf;
}

} // namespace

tl::expected<SslCtxPtr, std::string> make_client_tls_context(const std::string& ca_file) {
    SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()));
    if (!ctx)
        return tl::unexpected("cannot create TLS context: " + last_error());
    SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
    SSL_CTX_set_mode(ctx.get(), SSL_MODE_RELEASE_BUFFERS);
    if (!ca_file.empty()) {
        if (SSL_CTX_load_verify_locations(ctx.get(), ca_file.c_str(), nullptr) != 1)
            return tl::unexpected("cannot load CA file " + ca_file + ": " + last_error());
    } else if (SSL_CTX_set_default_verify_paths(ctx.get()) != 1) {
        return tl::unexpected("cannot load the system trust store: " + last_error());
    }
    return ctx;
}

tl::expected<SslCtxPtr, std::string> make_server_tls_context(const std::string& cert_file,
                                                             const std::string& key_file) {
    SslCtxPtr ctx(SSL_CTX_new(TLS_server_method()));
    if (!ctx)
        return tl::unexpected("cannot create TLS context: " + last_error());
    SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
    // Idle IMAP sessions are the common case: give their buffers back between reads.
    SSL_CTX_set_mode(ctx.get(), SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_options(ctx.get(), SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    if (SSL_CTX_use_certificate_chain_file(ctx.get(), cert_file.c_str()) != 1)
        return tl::unexpected("cannot load certificate " + cert_file + ": " + last_error());
    if (SSL_CTX_use_PrivateKey_file(ctx.get(), key_file.c_str(), SSL_FILETYPE_PEM) != 1)
        return tl::unexpected("cannot load private key " + key_file + ": " + last_error());
    if (SSL_CTX_check_private_key(ctx.get()) != 1)
        return tl::unexpected("private key " + key_file + " does not match " + cert_file);
    return ctx;
}

std::string peer_certificate_sha256(SSL* ssl) {
    X509* cert = SSL_get1_peer_certificate(ssl);
    if (!cert)
        return {};
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    X509_digest(cert, EVP_sha256(), md, &len);
    X509_free(cert);
    static const char* hex = "0123456789abcdef";
    std::string out;
    for (unsigned i = 0; i < len; ++i) {
        out += hex[md[i] >> 4];
        out += hex[md[i] & 15];
    }
    return out;
}

} // namespace popbridge::proxy
