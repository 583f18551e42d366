#include <catch2/catch.hpp>

#include <chrono>
#include <vector>

#include "protocol/imap/seq_set.h"

using namespace popbridge::protocol::imap;

TEST_CASE("seq_set: parse keeps ranges as sent", "[imap][seq_set]") {
    struct Row {
        const char* in;
        std::vector<SeqRange> ranges;
    };
    const Row rows[] = {
        {"1", {{1, 1}}},
        {"*", {{kSeqStar, kSeqStar}}},
        {"1:*", {{1, kSeqStar}}},
        {"5:3", {{5, 3}}},
        {"1,3:5,7:*", {{1, 1}, {3, 5}, {7, kSeqStar}}},
        {"1:4294967295", {{1, 4294967295u}}},
    };
    for (const Row& r : rows) {
        INFO(r.in);
        auto s = SeqSet::parse(r.in);
        REQUIRE(s);
        CHECK(s->ranges() == r.ranges);
    }
}

TEST_CASE("seq_set: invalid sets", "[imap][seq_set]") {
    for (const char* bad : {"", "0", "1:0", "01", ",", "1,", ",1", "1::2", "a", "1:2:3",
                            "4294967296", "1:99999999999", "-1", "1 2", "**"}) {
        INFO(bad);
        CHECK_FALSE(SeqSet::parse(bad));
    }
}

TEST_CASE("seq_set: resolve sorts, merges and replaces star", "[imap][seq_set]") {
    auto s = SeqSet::parse("7:*,1,3:2,4,20");
    REQUIRE(s);
    CHECK(s->uses_star());
    SeqSet r = s->resolve(10);
    CHECK(r.to_string() == "1:4,7:10,20");
    CHECK(r.contains(1));
    CHECK(r.contains(4));
    CHECK_FALSE(r.contains(5));
    CHECK(r.contains(10));
    CHECK(r.contains(20));
    CHECK_FALSE(r.contains(21));
    CHECK(r.max() == 20);
    // '*' on an empty mailbox.
    CHECK(SeqSet::parse("*")->resolve(0).ranges().empty());
    CHECK(SeqSet::parse("3:*")->resolve(0).to_string() == "1:3");
    // "n:*" with n above the highest UID still matches the highest (RFC 3501 6.4.8).
    CHECK(SeqSet::parse("50:*")->resolve(7).to_string() == "7:50");
}

TEST_CASE("seq_set: walking a sorted uid list", "[imap][seq_set]") {
    std::vector<std::uint32_t> uids = {2, 4, 6, 8, 10, 12, 100};
    auto set = SeqSet::parse("1:4,9:11,50:*")->resolve(uids.back());
    std::vector<std::size_t> hit;
    set.for_each_match(uids, [&](std::size_t i) {
        hit.push_back(i);
        return true;
    });
    CHECK(hit == std::vector<std::size_t>{0, 1, 4, 6});

    hit.clear();
    set.for_each_match(uids, [&](std::size_t i) {
        hit.push_back(i);
        return hit.size() < 2;
    });
    CHECK(hit == std::vector<std::size_t>{0, 1});
}

TEST_CASE("seq_set: huge ranges and many ranges stay cheap", "[imap][seq_set]") {
    // One range covering all UIDs: not expanded (a vector of 4 billion would not fit).
    auto all = SeqSet::parse("1:4294967295")->resolve(5);
    CHECK(all.ranges().size() == 1);
    CHECK(all.contains(4294967295u));
    std::vector<std::uint32_t> uids = {1, 3, 4294967295u};
    std::size_t n = 0;
    all.for_each_match(uids, [&](std::size_t) { return ++n, true; });
    CHECK(n == 3);

    // 100,000 disjoint ranges, every odd number; resolve + walk 200,000 UIDs.
    std::string text;
    for (std::uint32_t i = 0; i < 100000; ++i) {
        if (i)
            text += ',';
        text += std::to_string(2 * i + 1);
    }
    auto set = SeqSet::parse(text);
    REQUIRE(set);
    SeqSet r = set->resolve(kSeqStar);
    CHECK(r.ranges().size() == 100000);
    std::vector<std::uint32_t> many(200000);
    for (std::uint32_t i = 0; i < many.size(); ++i)
        many[i] = i + 1;
    std::size_t matches = 0;
    r.for_each_match(many, [&](std::size_t i) { return matches += many[i] % 2, true; });
    CHECK(matches == 100000);
    CHECK(r.contains(199999));
    CHECK_FALSE(r.contains(199998));
    // Adjacent ranges merge: 1,2,3 -> 1:3.
    CHECK(SeqSet::parse("3,1,2")->resolve(9).to_string() == "1:3");
}
