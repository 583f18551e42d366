#include "protocol/imap/seq_set.h"

#include <algorithm>

namespace popbridge::protocol::imap {

namespace {

// seq-number = nz-number / "*"
std::optional<std::uint32_t> parse_seq_number(std::string_view s) {
    if (s == "*")
        return kSeqStar;
    if (s.empty() || s.size() > 10 || s[0] == '0')
        return std::nullopt;
    std::uint64_t v = 0;
    for (char c : s) {
        if (c < '0' || c > '9')
            return std::nullopt;
        v = v * 10 + static_cast<std::uint64_t>(c - '0');
    }
    if (v > 0xffffffffULL)
        return std::nullopt;
    return static_cast<std::uint32_t>(v);
}

} // namespace

std::optional<SeqSet> SeqSet::parse(std::string_view text) {
    std::vector<SeqRange> ranges;
    if (text.empty())
        return std::nullopt;
    while (true) {
        auto comma = text.find(',');
        std::string_view item = text.substr(0, comma);
        auto colon = item.find(':');
        auto first = parse_seq_number(item.substr(0, colon));
        if (!first)
            return std::nullopt;
        std::uint32_t last = *first;
        if (colon != std::string_view::npos) {
            auto l = parse_seq_number(item.substr(colon + 1));
            if (!l)
                return std::nullopt;
            last = *l;
        }
        ranges.push_back(SeqRange{*first, last});
        if (comma == std::string_view::npos)
            break;
        text.remove_prefix(comma + 1);
    }
    return SeqSet(std::move(ranges));
}

bool SeqSet::uses_star() const {
    return std::any_of(ranges_.begin(), ranges_.end(),
                       [](const SeqRange& r) { return r.first == kSeqStar || r.last == kSeqStar; });
}

SeqSet SeqSet::resolve(std::uint32_t star) const {
    std::vector<SeqRange> out;
    out.reserve(ranges_.size());
    for (SeqRange r : ranges_) {
        if (r.first == kSeqStar)
            r.first = star;
        if (r.last == kSeqStar)
            r.last = star;
        if (r.first > r.last)
            std::swap(r.first, r.last);
        if (r.last == 0)
            continue; // '*' of an empty mailbox
        if (r.first == 0)
            r.first = 1;
        out.push_back(r);
    }
    std::sort(out.begin(), out.end(),
              [](const SeqRange& a, const SeqRange& b) { return a.first < b.first; });
    std::vector<SeqRange> merged;
    merged.reserve(out.size());
    for (const SeqRange& r : out) {
        if (!merged.empty() && static_cast<std::uint64_t>(merged.back().last) + 1 >= r.first)
            merged.back().last = std::max(merged.back().last, r.last);
        else
            merged.push_back(r);
    }
    return SeqSet(std::move(merged));
}

bool SeqSet::contains(std::uint32_t n) const {
    auto it = std::upper_bound(ranges_.begin(), ranges_.end(), n,
                               [](std::uint32_t v, const SeqRange& r) { return v < r.first; });
    if (it == ranges_.begin())
        return false;
    --it;
    return n >= it->first && n <= it->last;
}

std::string SeqSet::to_string() const {
    std::string out;
    auto num = [&](std::uint32_t v) {
        if (v == kSeqStar)
            out.push_back('*');
        else
            out += std::to_string(v);
    };
    for (const SeqRange& r : ranges_) {
        if (!out.empty())
            out.push_back(',');
        num(r.first);
        if (r.last != r.first) {
            out.push_back(':');
            num(r.last);
        }
    }
    return out;
}

} // namespace popbridge::protocol::imap
