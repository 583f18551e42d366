#include "config/secret.h"

#include <sstream>

#include <catch2/catch.hpp>

using popbridge::config::Secret;

TEST_CASE("Secret prints as *** and reveals only on request", "[config]") {
    Secret s("hunter2-canary");
    std::ostringstream os;
    os << s;
    CHECK(os.str() == "***");
    CHECK(s.reveal() == "hunter2-canary");
    CHECK_FALSE(s.empty());
    CHECK(Secret().empty());
}

TEST_CASE("Secret copies and moves keep the value; moved-from is empty", "[config]") {
    Secret a("value-that-is-longer-than-the-small-string-buffer");
    Secret b = a;
    CHECK(b == a);
    Secret c = std::move(a);
    CHECK(c.reveal() == "value-that-is-longer-than-the-small-string-buffer");
    CHECK(a.empty()); // NOLINT(bugprone-use-after-move): documented state
    Secret d("short");
    d = std::move(c);
    CHECK(d.reveal() == "value-that-is-longer-than-the-small-string-buffer");
    CHECK(c.empty()); // NOLINT(bugprone-use-after-move)
    d = Secret("x");
    CHECK(d.reveal() == "x");
}
