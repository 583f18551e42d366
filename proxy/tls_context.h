#pragma once
// OpenSSL contexts for the two roles popbridge plays: TLS client towards upstream POP3
// servers, TLS server for IMAP clients. Contexts are shared by every connection of a role.

#include <memory>
#include <string>

#include <openssl/ssl.h>
#include <tl/expected.hpp>

namespace popbridge::proxy {

struct SslCtxDeleter {
    void operator()(SSL_CTX* ctx) const noexcept { SSL_CTX_free(ctx); }
};
using SslCtxPtr = std::unique_ptr<SSL_CTX, SslCtxDeleter>;

// Client context: TLS 1.2 minimum, peer verification against `ca_file` when given,
// otherwise the system trust store. Returns an error text when the CA file is unusable.
tl::expected<SslCtxPtr, std::string> make_client_tls_context(const std::string& ca_file);

// Server context from a PEM certificate chain and private key.
tl::expected<SslCtxPtr, std::string> make_server_tls_context(const std::string& cert_file,
                                                             const std::string& key_file);

// Hex SHA-256 of the DER certificate the peer presented ("" when none).
std::string peer_certificate_sha256(SSL* ssl);

} // namespace popbridge::proxy
