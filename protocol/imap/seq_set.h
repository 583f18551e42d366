#pragma once
// IMAP sequence sets (RFC 3501 section 9 "sequence-set", RFC 9051 section 9).
//
// A set is stored as the ranges the client sent, never expanded: "1:4294967295" is one
// range. '*' is kept symbolic until resolve() is given its value (the highest sequence
// number or UID of the mailbox). Resolved sets are sorted, merged and disjoint, so membership
// is a binary search and walking a sorted UID list costs O(ranges * log n + matches).

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace popbridge::protocol::imap {

// Value of '*' before resolve(). Sequence numbers and UIDs are non-zero, so 0 is free.
inline constexpr std::uint32_t kSeqStar = 0;

struct SeqRange {
    std::uint32_t first = 0; // as sent; kSeqStar stands for '*'
    std::uint32_t last = 0;  // equals first for a single number

    bool operator==(const SeqRange&) const = default;
};

class SeqSet {
public:
    SeqSet() = default;
    explicit SeqSet(std::vector<SeqRange> ranges) : ranges_(std::move(ranges)) {}

    // Parses "1,3:5,7:*"; nullopt on syntax errors, 0, or numbers above 4294967295.
    static std::optional<SeqSet> parse(std::string_view text);

    const std::vector<SeqRange>& ranges() const { return ranges_; }
    bool uses_star() const;

    // Replaces '*' by `star`, orders every range (5:3 becomes 3:5), sorts and merges.
    // With star == 0 (empty mailbox) ranges containing '*' collapse to what is left.
    SeqSet resolve(std::uint32_t star) const;

    // On a resolved set.
    bool contains(std::uint32_t n) const;
    std::uint32_t max() const { return ranges_.empty() ? 0 : ranges_.back().last; }

    // On a resolved set: calls f(index) for each index of the sorted `uids` whose value is in
    // the set, in ascending order. f returns false to stop early.
    template <class F>
    void for_each_match(std::span<const std::uint32_t> uids, F&& f) const;

    std::string to_string() const; // canonical text ("1:3,5")

    bool operator==(const SeqSet&) const = default;

private:
    std::vector<SeqRange> ranges_;
};

template <class F>
void SeqSet::for_each_match(std::span<const std::uint32_t> uids, F&& f) const {
    std::size_t i = 0;
    for (const SeqRange& r : ranges_) {
        // Binary search for the range start in the part of `uids` not yet walked.
        std::size_t lo = i, hi = uids.size();
        while (lo < hi) {
            std::size_t mid = lo + (hi - lo) / 2;
            if (uids[mid] < r.first)
                lo = mid + 1;
            else
                hi = mid;
        }
        for (i = lo; i < uids.size() && uids[i] <= r.last; ++i)
            if (!f(i))
                return;
        if (i >= uids.size())
            return;
    }
}

} // namespace popbridge::protocol::imap
