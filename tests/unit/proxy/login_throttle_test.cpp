// Unit tests for proxy/login_throttle.h, driven by a fake clock.

#include <catch2/catch.hpp>

#include <chrono>
#include <string>

#include "proxy/login_throttle.h"

using namespace popbridge::proxy;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;

namespace {

struct FakeClock {
    LoginThrottle::TimePoint now{seconds(1000)};
    void advance(milliseconds d) { now += d; }
};

} // namespace

TEST_CASE("throttle: delay doubles from the base up to the cap", "[throttle]") {
    LoginThrottle t;
    CHECK(t.delay_for(0) == milliseconds(0));
    CHECK(t.delay_for(1) == seconds(2));
    CHECK(t.delay_for(2) == seconds(4));
    CHECK(t.delay_for(3) == seconds(8));
    CHECK(t.delay_for(4) == seconds(15));
    CHECK(t.delay_for(5) == seconds(15));
    CHECK(t.delay_for(64) == seconds(15));
    CHECK(t.delay_for(~0u) == seconds(15));
}

TEST_CASE("throttle: consecutive failures answer after 2, 4, 8, 15, 15 s", "[throttle]") {
    LoginThrottle t;
    FakeClock c;
    std::vector<milliseconds> seen;
    for (int i = 0; i < 5; ++i) {
        // A client on one connection sends the next guess once the NO arrived: no extra wait.
        CHECK(t.wait_before_check("alice", "10.0.0.1", c.now) == milliseconds(0));
        milliseconds d = t.failed("alice", "10.0.0.1", c.now);
        seen.push_back(d);
        c.advance(d);
    }
    CHECK(seen ==
          std::vector<milliseconds>{seconds(2), seconds(4), seconds(8), seconds(15), seconds(15)});
    CHECK(t.failures_for_user("alice", c.now) == 5);
    CHECK(t.failures_for_address("10.0.0.1", c.now) == 5);
}

TEST_CASE("throttle: a new attempt waits for the pending delay (parallel connections)",
          "[throttle]") {
    LoginThrottle t;
    FakeClock c;
    t.failed("alice", "10.0.0.1", c.now); // free again in 2 s
    c.advance(milliseconds(500));
    // Another connection from the same address, another account: waits the rest.
    CHECK(t.wait_before_check("bob", "10.0.0.1", c.now) == milliseconds(1500));
    // The same account from another address: waits too.
    CHECK(t.wait_before_check("alice", "10.9.9.9", c.now) == milliseconds(1500));
    // Neither shared: no wait.
    CHECK(t.wait_before_check("bob", "10.9.9.9", c.now) == milliseconds(0));
    // Failures that arrive together (many connections checked at the same moment) push the
    // count up for all that follow.
    for (int i = 0; i < 10; ++i)
        t.failed("x" + std::to_string(i), "10.0.0.1", c.now);
    CHECK(t.failures_for_address("10.0.0.1", c.now) == 11);
    CHECK(t.wait_before_check("carol", "10.0.0.1", c.now) == seconds(15));
}

TEST_CASE("throttle: never more than the cap, never a ban", "[throttle]") {
    LoginThrottle t;
    FakeClock c;
    for (int i = 0; i < 1000; ++i)
        t.failed("alice", "10.0.0.1", c.now);
    CHECK(t.wait_before_check("alice", "10.0.0.1", c.now) == seconds(15));
    c.advance(seconds(15));
    CHECK(t.wait_before_check("alice", "10.0.0.1", c.now) == milliseconds(0));
    // The right password still works after the wait, and resets the account.
    t.succeeded("alice", "10.0.0.1", c.now);
    CHECK(t.failures_for_user("alice", c.now) == 0);
}

TEST_CASE("throttle: unknown and known users are counted the same way", "[throttle]") {
    // The throttle never learns whether a name exists: same calls, same delays.
    LoginThrottle t;
    FakeClock c;
    for (int i = 0; i < 4; ++i) {
        CHECK(t.failed("alice", "10.0.0.1", c.now) == t.failed("nosuchuser", "10.0.0.2", c.now));
        c.advance(seconds(20));
    }
}

TEST_CASE("throttle: success resets the account and halves the address", "[throttle]") {
    LoginThrottle t;
    FakeClock c;
    // One typo behind a shared address, then the right password.
    t.failed("alice", "172.17.0.1", c.now);
    c.advance(seconds(2));
    t.succeeded("alice", "172.17.0.1", c.now);
    CHECK(t.failures_for_address("172.17.0.1", c.now) == 0);
    CHECK(t.wait_before_check("bob", "172.17.0.1", c.now) == milliseconds(0));
    // An attacker's many failures from that address are not wiped by one success.
    for (int i = 0; i < 6; ++i)
        t.failed("victim", "172.17.0.1", c.now);
    t.succeeded("alice", "172.17.0.1", c.now);
    CHECK(t.failures_for_address("172.17.0.1", c.now) == 3);
    CHECK(t.failures_for_user("victim", c.now) == 6);
    // The pending wait of the address shrinks to what 3 failures cost (8 s).
    CHECK(t.wait_before_check("bob", "172.17.0.1", c.now) == seconds(8));
    // The attacked account keeps its own wait.
    CHECK(t.wait_before_check("victim", "10.1.1.1", c.now) == seconds(15));
}

TEST_CASE("throttle: counts are forgotten after 15 minutes without a failure", "[throttle]") {
    LoginThrottle t;
    FakeClock c;
    for (int i = 0; i < 3; ++i)
        t.failed("alice", "10.0.0.1", c.now);
    c.advance(minutes(14));
    CHECK(t.failures_for_user("alice", c.now) == 3);
    t.failed("alice", "10.0.0.1", c.now); // a failure restarts the window
    c.advance(minutes(14));
    CHECK(t.failures_for_user("alice", c.now) == 4);
    c.advance(minutes(1));
    CHECK(t.failures_for_user("alice", c.now) == 0);
    CHECK(t.failures_for_address("10.0.0.1", c.now) == 0);
    CHECK(t.user_keys() == 0);
    CHECK(t.address_keys() == 0);
    CHECK(t.failed("alice", "10.0.0.1", c.now) == seconds(2));
}

TEST_CASE("throttle: memory stays bounded with 50,000 distinct unknown names", "[throttle]") {
    LoginThrottleLimits limits;
    limits.max_keys = 1000;
    LoginThrottle t(limits);
    FakeClock c;
    std::string long_tail(10000, 'x'); // names are cut for the key
    for (int i = 0; i < 50000; ++i) {
        std::string name = std::to_string(i) + long_tail;
        t.failed(name, "10.0.0." + std::to_string(i % 250), c.now);
        c.advance(milliseconds(1));
        REQUIRE(t.user_keys() <= 1000);
    }
    CHECK(t.user_keys() == 1000);
    CHECK(t.address_keys() == 250);
    // The newest names are kept, the oldest went first.
    CHECK(t.failures_for_user("49999" + long_tail, c.now) == 1);
    CHECK(t.failures_for_user("0" + long_tail, c.now) == 0);
    // Names sharing the first kMaxKeyBytes bytes share a key.
    std::string a(LoginThrottle::kMaxKeyBytes, 'a');
    t.failed(a + "1", "10.1.1.1", c.now);
    CHECK(t.failures_for_user(a + "2", c.now) == 1);
}

TEST_CASE("throttle: the default table size holds 50,000 names in bounded memory", "[throttle]") {
    LoginThrottle t;
    FakeClock c;
    for (int i = 0; i < 50000; ++i)
        t.failed("user" + std::to_string(i), "10.0.0.1", c.now);
    CHECK(t.user_keys() == LoginThrottleLimits{}.max_keys);
    CHECK(t.address_keys() == 1);
}

TEST_CASE("throttle: a repeated account keeps its place over a flood of new names", "[throttle]") {
    LoginThrottleLimits limits;
    limits.max_keys = 10;
    LoginThrottle t(limits);
    FakeClock c;
    for (int i = 0; i < 100; ++i) {
        t.failed("victim", "10.0.0.1", c.now);
        t.failed("junk" + std::to_string(i), "10.0.0.2", c.now);
        c.advance(milliseconds(1));
    }
    CHECK(t.failures_for_user("victim", c.now) == 64); // the count saturates at 64
    CHECK(t.user_keys() == 10);
}

TEST_CASE("throttle: gauge of throttled addresses", "[throttle]") {
    LoginThrottle t;
    FakeClock c;
    t.failed("a", "10.0.0.1", c.now);
    t.failed("b", "10.0.0.2", c.now);
    t.failed("b", "10.0.0.2", c.now);
    CHECK(t.throttled_addresses(c.now) == 2);
    c.advance(seconds(2));
    CHECK(t.throttled_addresses(c.now) == 1);
    c.advance(seconds(2));
    CHECK(t.throttled_addresses(c.now) == 0);
}

TEST_CASE("throttle: smaller limits (test configuration)", "[throttle]") {
    LoginThrottle t({milliseconds(100), milliseconds(800), minutes(15), 100});
    CHECK(t.delay_for(1) == milliseconds(100));
    CHECK(t.delay_for(4) == milliseconds(800));
    CHECK(t.delay_for(5) == milliseconds(800));
    // A lower cap after a reload also bounds waits recorded before it.
    LoginThrottle u;
    FakeClock c;
    for (int i = 0; i < 5; ++i)
        u.failed("a", "10.0.0.1", c.now);
    u.set_limits({milliseconds(100), milliseconds(800), minutes(15), 100});
    CHECK(u.wait_before_check("a", "10.0.0.1", c.now) == milliseconds(800));
}

TEST_CASE("throttle: address keys", "[throttle]") {
    CHECK(throttle_address_key("192.0.2.7:51234") == "192.0.2.7");
    CHECK(throttle_address_key("[::ffff:192.0.2.7]:993") == "192.0.2.7");
    CHECK(throttle_address_key("[2001:db8:1:2:3:4:5:6]:993") == "2001:db8:1:2::/64");
    CHECK(throttle_address_key("[2001:db8:1:2::9]:1") == "2001:db8:1:2::/64");
    CHECK(throttle_address_key("[::1]:143") == "::/64");
    CHECK(throttle_address_key("garbage") == "garbage");
    CHECK(remote_host("192.0.2.7:51234") == "192.0.2.7");
    CHECK(remote_host("[2001:db8::1]:993") == "2001:db8::1");
    CHECK(remote_host("2001:db8::1") == "2001:db8::1");
}

TEST_CASE("throttle: log_quote leaves nothing that looks like another field", "[throttle]") {
    CHECK(log_quote("alice@example.org") == "\"alice@example.org\"");
    CHECK(log_quote("") == "\"\"");
    std::string hostile = "x remote=1.2.3.4\r\nimap auth failed remote=6.6.6.6 \"\\\x01\xff";
    std::string q = log_quote(hostile);
    CHECK(q.find(' ') == std::string::npos);
    CHECK(q.find('=') == std::string::npos);
    CHECK(q.find('\r') == std::string::npos);
    CHECK(q.find('\n') == std::string::npos);
    CHECK(q.substr(1, q.size() - 2).find('"') == std::string::npos);
    CHECK(q == "\"x\\x20remote\\x3d1.2.3.4\\x0d\\x0aimap\\x20auth\\x20failed\\x20remote\\x3d6.6.6."
               "6\\x20\\x22\\x5c\\x01\\xff\"");
}

TEST_CASE("throttle: a running check on a failing key holds back parallel attempts", "[throttle]") {
    LoginThrottle t;
    FakeClock c;
    t.failed("alice", "10.0.0.1", c.now); // 1 failure: free in 2 s
    c.advance(seconds(2));
    CHECK(t.wait_before_check("alice", "10.0.0.1", c.now) == milliseconds(0));
    t.begin_check("alice", "10.0.0.1", c.now);
    // Another connection asks while that check runs: it waits as if the check failed (4 s).
    CHECK(t.wait_before_check("alice", "10.0.0.2", c.now) == seconds(4));
    CHECK(t.wait_before_check("bob", "10.0.0.1", c.now) == seconds(4));
    // The check succeeds: the account is free at once, the address after d(0) = 0.
    t.succeeded("alice", "10.0.0.1", c.now);
    CHECK(t.wait_before_check("alice", "10.0.0.2", c.now) == milliseconds(0));
    CHECK(t.wait_before_check("bob", "10.0.0.1", c.now) == milliseconds(0));
    // Keys without failures are not reserved: parallel logins of a fresh client all go.
    t.begin_check("carol", "10.0.0.3", c.now);
    CHECK(t.wait_before_check("carol", "10.0.0.3", c.now) == milliseconds(0));
}

TEST_CASE("throttle: a failure on a known key in a full table evicts nothing", "[throttle]") {
    LoginThrottleLimits limits;
    limits.max_keys = 3;
    LoginThrottle t(limits);
    FakeClock c;
    for (const char* name : {"a", "b", "c"}) {
        t.failed(name, "10.0.0.1", c.now);
        c.advance(milliseconds(1));
    }
    t.failed("c", "10.0.0.1", c.now);
    CHECK(t.failures_for_user("a", c.now) == 1);
    CHECK(t.failures_for_user("c", c.now) == 2);
    t.failed("d", "10.0.0.1", c.now); // a new key: the oldest ("a") makes room
    CHECK(t.failures_for_user("a", c.now) == 0);
    CHECK(t.failures_for_user("b", c.now) == 1);
    CHECK(t.user_keys() == 3);
}
