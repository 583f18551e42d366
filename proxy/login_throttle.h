#pragma once
// Brute-force brake for IMAP logins (LOGIN and AUTHENTICATE PLAIN). Pure logic: every call
// takes the current time, so tests drive it with a fake clock; the proxy keeps one instance
// for the whole process (login_throttle(), loop thread only).
//
// Two tables of failure counts, one keyed by account name, one by client address (an IPv4
// address, or the /64 of an IPv6 one). A key with n recent failures has the delay
//     d(n) = 0 for n = 0, else min(base * 2^(n-1), max)      (2 s, 4 s, 8 s, 15 s, 15 s...)
// and a "free at" time: the last failure's time + d(n). Where the delays apply:
//   - before a password is checked, the attempt waits until both its account and its
//     address are free (wait_before_check). This is what bites a client that opens many
//     connections, or drops the connection instead of waiting for the answer: every new
//     attempt waits for the pending delay of its address and account. While a check runs
//     on a key that has failures, the key counts as failing once more (begin_check), so
//     parallel attempts queue behind it;
//   - a failed attempt is answered after max(d(account), d(address)) (failed()).
// Both waits are bounded by `max`: there is no ban, every attempt is evaluated in the end.
// The price: once more attempts pile up on one key than fit in `max`, a client with N
// parallel connections gets about N checks per `max` (see docs/design-notes.md), and the
// very first burst on a key without failures is checked at once.
// Unknown accounts and wrong passwords take the same path, so they cost the same.
//
// A count is forgotten `forget_after` after the key's last failure. A success resets the
// account's count and halves the address's: one user's typo behind a shared address (all
// clients behind Docker's userland proxy have one) must not slow the others for long.
// Memory is bounded: each table holds at most max_keys entries; when full, the entry with
// the oldest failure goes first. Account names are cut to kMaxKeyBytes for the key.

#include <chrono>
#include <cstddef>
#include <list>
#include <map>
#include <string>
#include <string_view>

namespace popbridge::proxy {

struct LoginThrottleLimits {
    std::chrono::milliseconds base{2000}; // delay after the first failure
    std::chrono::milliseconds max{15000}; // cap of every delay
    std::chrono::milliseconds forget_after{15 * 60 * 1000};
    std::size_t max_keys = 20000; // per table (accounts, addresses)
};

class LoginThrottle {
public:
    using TimePoint = std::chrono::steady_clock::time_point;
    static constexpr std::size_t kMaxKeyBytes = 256;

    explicit LoginThrottle(LoginThrottleLimits limits = {});
    // New limits; the counts are kept.
    void set_limits(LoginThrottleLimits limits);
    const LoginThrottleLimits& limits() const { return limits_; }

    // d(n) from the header comment.
    std::chrono::milliseconds delay_for(unsigned failures) const;

    // How long an attempt must wait before its password is checked (0: check now). The
    // caller asks again when the wait is over (another check may have started meanwhile),
    // but waits no longer than `max` in total: there is no ban.
    std::chrono::milliseconds wait_before_check(std::string_view user, std::string_view address,
                                                TimePoint now);
    // The password check of an attempt starts now. A key that already has failures is
    // reserved as if this attempt fails too, so attempts on other connections wait for it
    // (parallel guessing is spaced like sequential guessing); succeeded() gives that back.
    void begin_check(std::string_view user, std::string_view address, TimePoint now);
    // Records a failed attempt; returns how long to hold back its answer.
    std::chrono::milliseconds failed(std::string_view user, std::string_view address,
                                     TimePoint now);
    // Records a successful login.
    void succeeded(std::string_view user, std::string_view address, TimePoint now);

    // Recent failures (0 when unknown or forgotten).
    unsigned failures_for_user(std::string_view user, TimePoint now);
    unsigned failures_for_address(std::string_view address, TimePoint now);
    std::size_t user_keys() const { return users_.size(); }
    std::size_t address_keys() const { return addresses_.size(); }
    // Addresses whose pending delay has not run out yet (a gauge for /metrics).
    std::size_t throttled_addresses(TimePoint now) const;

private:
    struct Entry {
        unsigned failures = 0;
        TimePoint last_failure{};
        TimePoint free_at{};
        std::list<std::map<std::string, Entry, std::less<>>::iterator>::iterator age;
    };
    // One table: a map plus a list in order of last failure (oldest first) for eviction.
    class Table {
    public:
        // The live entry for `key`, or nullptr (a forgotten entry is removed here).
        Entry* find(std::string_view key, TimePoint now, std::chrono::milliseconds forget);
        // The entry for `key`, created if needed, marked as the newest; evicts to stay bounded.
        Entry& touch(std::string_view key, TimePoint now, std::chrono::milliseconds forget,
                     std::size_t max_keys);
        void erase(std::string_view key);
        std::size_t size() const { return map_.size(); }
        template <typename F>
        void for_each(F f) const {
            for (const auto& [k, e] : map_)
                f(e);
        }

    private:
        using Map = std::map<std::string, Entry, std::less<>>;
        Map map_;
        std::list<Map::iterator> by_age_;
    };

    std::chrono::milliseconds record_failure(Table& t, std::string_view key, TimePoint now);

    LoginThrottleLimits limits_;
    Table users_;
    Table addresses_;
};

// The throttle key of a connection's remote address ("1.2.3.4:5678", "[2001:db8::1]:993"):
// the IPv4 address ("1.2.3.4"; an IPv4-mapped IPv6 address counts as IPv4), or the /64 of
// an IPv6 address ("2001:db8::/64"). Anything unparsable is used as it is.
std::string throttle_address_key(std::string_view remote);
// The address part of `remote` without port or brackets, as logged in remote=.
std::string remote_host(std::string_view remote);

// An untrusted name for a log field: wrapped in double quotes; bytes outside printable
// ASCII, space, '"', '\\' and '=' written as \xNN. The result has no space, no '=' and no
// control character, so it cannot fake another key=value field of the line.
std::string log_quote(std::string_view untrusted);

// The process-wide instance (loop thread only). Limits come from the daemon config.
LoginThrottle& login_throttle();

} // namespace popbridge::proxy
