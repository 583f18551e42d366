#include "proxy/login_throttle.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <iterator>

namespace popbridge::proxy {

namespace {

std::string_view user_key(std::string_view user) {
    return user.substr(0, std::min(user.size(), LoginThrottle::kMaxKeyBytes));
}

} // namespace

LoginThrottle::LoginThrottle(LoginThrottleLimits limits) : limits_(limits) {}

void LoginThrottle::set_limits(LoginThrottleLimits limits) {
    limits_ = limits;
}

std::chrono::milliseconds LoginThrottle::delay_for(unsigned failures) const {
    if (failures == 0)
        return std::chrono::milliseconds(0);
    std::chrono::milliseconds d = limits_.base;
    for (unsigned i = 1; i < failures && d < limits_.max; ++i)
        d *= 2;
    return std::min(d, limits_.max);
}

LoginThrottle::Entry* LoginThrottle::Table::find(std::string_view key, TimePoint now,
                                                 std::chrono::milliseconds forget) {
    auto it = map_.find(key);
    if (it == map_.end())
        return nullptr;
    if (now - it->second.last_failure >= forget) {
        by_age_.erase(it->second.age);
        map_.erase(it);
        return nullptr;
    }
    return &it->second;
}

LoginThrottle::Entry& LoginThrottle::Table::touch(std::string_view key, TimePoint now,
                                                  std::chrono::milliseconds forget,
                                                  std::size_t max_keys) {
    // Forgotten entries go first; they are the oldest, at the front.
    while (!by_age_.empty() && now - by_age_.front()->second.last_failure >= forget) {
        map_.erase(by_age_.front());
        by_age_.pop_front();
    }
    auto it = map_.find(key);
    if (it == map_.end()) {
        // Full: the entry with the oldest failure makes room.
        while (!by_age_.empty() && map_.size() >= std::max<std::size_t>(max_keys, 1)) {
            map_.erase(by_age_.front());
            by_age_.pop_front();
        }
        it = map_.emplace(std::string(key), Entry{}).first;
        it->second.age = by_age_.insert(by_age_.end(), it);
    } else {
        by_age_.splice(by_age_.end(), by_age_, it->second.age);
    }
    return it->second;
}

void LoginThrottle::Table::erase(std::string_view key) {
    auto it = map_.find(key);
    if (it == map_.end())
        return;
    by_age_.erase(it->second.age);
    map_.erase(it);
}

std::chrono::milliseconds
LoginThrottle::wait_before_check(std::string_view user, std::string_view address, TimePoint now) {
    TimePoint free_at = now;
    if (Entry* e = users_.find(user_key(user), now, limits_.forget_after))
        free_at = std::max(free_at, e->free_at);
    if (Entry* e = addresses_.find(address, now, limits_.forget_after))
        free_at = std::max(free_at, e->free_at);
    auto wait = std::chrono::ceil<std::chrono::milliseconds>(free_at - now);
    return std::min(wait, limits_.max);
}

void LoginThrottle::begin_check(std::string_view user, std::string_view address, TimePoint now) {
    auto reserve = [&](Entry* e) {
        if (e && e->failures > 0)
            e->free_at = std::max(e->free_at, now + delay_for(e->failures + 1));
    };
    reserve(users_.find(user_key(user), now, limits_.forget_after));
    reserve(addresses_.find(address, now, limits_.forget_after));
}

std::chrono::milliseconds LoginThrottle::record_failure(Table& t, std::string_view key,
                                                        TimePoint now) {
    Entry& e = t.touch(key, now, limits_.forget_after, limits_.max_keys);
    if (e.failures < 64)
        ++e.failures;
    e.last_failure = now;
    std::chrono::milliseconds d = delay_for(e.failures);
    e.free_at = std::max(e.free_at, now + d);
    // A shorter `max` after a reload must not leave an older, longer wait behind.
    e.free_at = std::min(e.free_at, now + limits_.max);
    return d;
}

std::chrono::milliseconds LoginThrottle::failed(std::string_view user, std::string_view address,
                                                TimePoint now) {
    std::chrono::milliseconds by_user = record_failure(users_, user_key(user), now);
    std::chrono::milliseconds by_address = record_failure(addresses_, address, now);
    return std::max(by_user, by_address);
}

void LoginThrottle::succeeded(std::string_view user, std::string_view address, TimePoint now) {
    users_.erase(user_key(user));
    if (Entry* e = addresses_.find(address, now, limits_.forget_after)) {
        e->failures /= 2;
        if (e->failures == 0) {
            addresses_.erase(address);
        } else {
            e->free_at = std::min(e->free_at, now + delay_for(e->failures));
        }
    }
}

unsigned LoginThrottle::failures_for_user(std::string_view user, TimePoint now) {
    Entry* e = users_.find(user_key(user), now, limits_.forget_after);
    return e ? e->failures : 0;
}

unsigned LoginThrottle::failures_for_address(std::string_view address, TimePoint now) {
    Entry* e = addresses_.find(address, now, limits_.forget_after);
    return e ? e->failures : 0;
}

std::size_t LoginThrottle::throttled_addresses(TimePoint now) const {
    std::size_t n = 0;
    addresses_.for_each([&](const Entry& e) {
        if (e.free_at > now)
            ++n;
    });
    return n;
}

std::string remote_host(std::string_view remote) {
    if (!remote.empty() && remote.front() == '[') {
        auto close = remote.find(']');
        if (close != std::string_view::npos)
            return std::string(remote.substr(1, close - 1));
    }
    auto colon = remote.rfind(':');
    // "1.2.3.4:5678"; a bare IPv6 address has more than one colon and no port.
    if (colon != std::string_view::npos && remote.find(':') == colon)
        return std::string(remote.substr(0, colon));
    return std::string(remote);
}

std::string throttle_address_key(std::string_view remote) {
    std::string host = remote_host(remote);
    in_addr v4{};
    if (inet_pton(AF_INET, host.c_str(), &v4) == 1)
        return host;
    in6_addr v6{};
    if (inet_pton(AF_INET6, host.c_str(), &v6) != 1)
        return host;
    static constexpr unsigned char kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    char text[INET6_ADDRSTRLEN] = {};
    if (std::equal(std::begin(kMapped), std::end(kMapped), v6.s6_addr)) {
        std::memcpy(&v4, v6.s6_addr + 12, 4);
        inet_ntop(AF_INET, &v4, text, sizeof text);
        return text;
    }
    std::fill(v6.s6_addr + 8, v6.s6_addr + 16, 0);
    inet_ntop(AF_INET6, &v6, text, sizeof text);
    return std::string(text) + "/64";
}

std::string log_quote(std::string_view untrusted) {
    std::string out = "\"";
    for (unsigned char c : untrusted) {
        if (c > 0x20 && c < 0x7f && c != '"' && c != '\\' && c != '=') {
            out.push_back(static_cast<char>(c));
        } else {
            char esc[5];
            std::snprintf(esc, sizeof esc, "\\x%02x", c);
            out += esc;
        }
    }
    out.push_back('"');
    return out;
}

LoginThrottle& login_throttle() {
    static LoginThrottle throttle;
    return throttle;
}

} // namespace popbridge::proxy
