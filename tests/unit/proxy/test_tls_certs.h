#pragma once
// Test helper: a throw-away CA and a server certificate signed by it, made in memory with
// OpenSSL and written to a temporary directory.

#include <filesystem>
#include <string>

namespace popbridge::test {

struct TestCerts {
    std::filesystem::path dir;
    std::filesystem::path ca_cert, server_cert, server_key;
};

// What is wrong with the server certificate.
enum class CertFlaw {
    None,
    Expired,     // validity ended yesterday
    NotYetValid, // validity starts tomorrow
    SelfSigned,  // signed by its own key, not by the CA in ca_cert
    NulInName,   // CN and subjectAltName dNSName are host "\0.attacker.test" (embedded NUL)
};

// Makes a CA and a server certificate for `host` (DNS name or IP address) under a new
// temporary directory, with the given flaw.
TestCerts make_test_certs(const std::string& host, CertFlaw flaw);
// `expired` makes the server certificate's validity end in the past.
TestCerts make_test_certs(const std::string& host, bool expired = false);

} // namespace popbridge::test
