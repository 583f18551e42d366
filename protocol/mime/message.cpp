#include "protocol/mime/message.h"

#include <algorithm>
#include <unordered_map>

#include "protocol/mime/bodystructure.h"
#include "protocol/mime/header.h"

namespace popbridge::protocol::mime {

namespace {

// Active boundaries, innermost last. A byte trie over all of them finds, for one line, the
// innermost boundary that is a prefix of it in time bounded by the line length, so a message
// with many nested multiparts still parses in linear time. Nodes are never freed; their total
// is bounded by the bytes of the boundary parameters seen.
class BoundaryTrie {
public:
    BoundaryTrie() { nodes_.emplace_back(); }

    // Adds `b` as the innermost level; returns its level.
    std::size_t push(std::string_view b) {
        std::uint32_t n = 0;
        for (unsigned char c : b) {
            std::uint64_t key = (std::uint64_t{n} << 8) | c;
            auto it = edges_.find(key);
            if (it == edges_.end()) {
                nodes_.emplace_back();
                auto next = static_cast<std::uint32_t>(nodes_.size() - 1);
                it = edges_.emplace(key, next).first;
            }
            n = it->second;
        }
        std::size_t level = terminals_.size();
        nodes_[n].levels.push_back(level);
        terminals_.push_back({n, b.size()});
        return level;
    }

    void pop() {
        nodes_[terminals_.back().node].levels.pop_back();
        terminals_.pop_back();
    }

    std::size_t size() const { return terminals_.size(); }
    std::size_t length(std::size_t level) const { return terminals_[level].length; }

    // The innermost level whose boundary prefixes `s`, or npos.
    std::size_t match(std::string_view s) const {
        std::size_t best = std::string_view::npos;
        std::uint32_t n = 0;
        for (unsigned char c : s) {
            auto it = edges_.find((std::uint64_t{n} << 8) | c);
            if (it == edges_.end())
                break;
            n = it->second;
            const auto& lv = nodes_[n].levels;
            if (!lv.empty() && (best == std::string_view::npos || lv.back() > best))
                best = lv.back();
        }
        return best;
    }

private:
    struct Node {
        std::vector<std::size_t> levels;
    };
    struct Terminal {
        std::uint32_t node;
        std::size_t length;
    };
    std::vector<Node> nodes_;
    std::unordered_map<std::uint64_t, std::uint32_t> edges_;
    std::vector<Terminal> terminals_;
};

bool is_token_char(char c) {
    auto u = static_cast<unsigned char>(c);
    if (u <= 32 || u >= 127)
        return false;
    return std::string_view("()<>@,;:\\\"/[]?=").find(c) == std::string_view::npos;
}

bool is_token(std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), is_token_char);
}

class Parser {
public:
    Parser(std::string_view bytes, const Limits& limits, Message& msg)
        : s_(bytes), limits_(limits), msg_(msg) {}

    void run() {
        begin_entity(0, kNoPart, true);
        std::size_t pos = 0;
        while (pos < s_.size()) {
            std::size_t lf = s_.find('\n', pos);
            std::size_t le = lf == std::string_view::npos ? s_.size() : lf + 1;
            std::string_view line = s_.substr(pos, le - pos);
            std::size_t level = boundary_level(line);
            if (in_header_) {
                if (level == std::string_view::npos) {
                    bool blank = line == "\r\n" || line == "\n";
                    advance(pos, le, lf);
                    if (blank)
                        finish_header(le);
                    continue;
                }
                // A boundary inside a header: the header ends here, the body is empty.
                // An encapsulated message that begins here ends here too.
                while (in_header_)
                    finish_header(pos);
            }
            if (level != std::string_view::npos) {
                on_boundary(level, pos, le, line);
                advance(pos, le, lf);
                continue;
            }
            advance(pos, le, lf);
        }
        while (in_header_)
            finish_header(s_.size());
        close_above(0, s_.size(), lf_count_);
        close_entry(0, s_.size(), lf_count_);
    }

private:
    struct Open {
        std::uint32_t part;
        std::uint64_t body_lf; // LFs before the body start
    };

    void advance(std::size_t& pos, std::size_t le, std::size_t lf) {
        if (lf != std::string_view::npos)
            ++lf_count_;
        pos = le;
    }

    std::size_t boundary_level(std::string_view line) const {
        if (!boundaries_on_ || trie_.size() == 0 || line.size() < 3 || line[0] != '-' ||
            line[1] != '-')
            return std::string_view::npos;
        return trie_.match(line.substr(2));
    }

    std::uint32_t add_part(std::uint32_t parent) {
        msg_.parts.emplace_back();
        auto idx = static_cast<std::uint32_t>(msg_.parts.size() - 1);
        Part& p = msg_.parts.back();
        p.parent = parent;
        if (parent != kNoPart) {
            msg_.parts[parent].children.push_back(idx);
            p.depth = msg_.parts[parent].depth + 1;
        }
        return idx;
    }

    void begin_entity(std::size_t start, std::uint32_t parent, bool is_message) {
        std::uint32_t idx = add_part(parent);
        msg_.parts[idx].is_message = is_message;
        msg_.parts[idx].header = {start, start};
        open_.push_back({idx, 0});
        in_header_ = true;
        header_start_ = start;
    }

    bool room_for_part() {
        if (msg_.parts.size() < limits_.max_parts)
            return true;
        msg_.truncated = true;
        return false;
    }

    // The header of the innermost open entity ends at `body_begin`.
    void finish_header(std::size_t body_begin) {
        in_header_ = false;
        Open& o = open_.back();
        std::uint32_t idx = o.part;
        o.body_lf = lf_count_;
        Part& p = msg_.parts[idx];
        p.header = {header_start_, body_begin};
        p.body = {body_begin, body_begin};

        bool digest_child = false;
        if (p.parent != kNoPart) {
            const Part& parent = msg_.parts[p.parent];
            digest_child = parent.kind == PartKind::Multipart && parent.subtype == "digest";
        }
        if (digest_child) {
            p.type = "message";
            p.subtype = "rfc822";
        }
        std::string boundary;
        std::string_view header = p.header.in(s_);
        if (auto ct = find_field(header, "Content-Type", limits_.max_header_field)) {
            FieldWithParams f = parse_field_with_params(*ct, limits_.max_parameters);
            std::size_t slash = f.value.find('/');
            if (slash != std::string::npos) {
                std::string type = f.value.substr(0, slash);
                std::string sub = f.value.substr(slash + 1);
                if (is_token(type) && is_token(sub)) {
                    p.type = std::move(type);
                    p.subtype = std::move(sub);
                    p.has_content_type = true;
                }
            }
            for (auto& prm : f.params) {
                if (prm.name == "boundary") {
                    boundary = std::move(prm.value);
                    break;
                }
            }
        }
        bool container = (p.type == "multipart" && !boundary.empty()) ||
                         (p.type == "message" && (p.subtype == "rfc822" || p.subtype == "global"));
        if (p.type == "multipart" && boundary.empty()) {
            // Unusable multipart: RFC 2046 5.1.1 makes boundary mandatory. It has no parts;
            // its bytes stay its body (Dovecot does the same).
            p.kind = PartKind::Multipart;
            return;
        }
        if (!container)
            return;
        if (p.depth + 1 > limits_.max_depth || !room_for_part()) {
            if (p.depth + 1 > limits_.max_depth)
                msg_.truncated = true;
            p.truncated = true;
            p.type = "application";
            p.subtype = "octet-stream";
            return;
        }
        if (p.type == "multipart") {
            p.kind = PartKind::Multipart;
            trie_.push(boundary);
            level_part_.push_back(idx);
            level_open_.push_back(open_.size() - 1);
        } else {
            p.kind = PartKind::Message;
            begin_entity(body_begin, idx, true);
        }
    }

    void close_entry(std::size_t open_index, std::size_t end, std::uint64_t end_lf) {
        const Open& o = open_[open_index];
        Part& p = msg_.parts[o.part];
        if (end < p.header.end) {
            // The line break that ended the header was the one before the boundary.
            p.header.end = std::max(end, p.header.begin);
            p.body = {p.header.end, p.header.end};
            p.body_lines = 0;
        } else if (end <= p.body.begin) {
            p.body.end = p.body.begin;
            p.body_lines = 0;
        } else {
            p.body.end = end;
            p.body_lines = end_lf - o.body_lf;
        }
    }

    // Ends every entity opened after open_[keep], innermost first.
    void close_above(std::size_t keep, std::size_t end, std::uint64_t end_lf) {
        while (open_.size() > keep + 1) {
            close_entry(open_.size() - 1, end, end_lf);
            open_.pop_back();
        }
        while (!level_open_.empty() && level_open_.back() > keep) {
            trie_.pop();
            level_open_.pop_back();
            level_part_.pop_back();
        }
    }

    void on_boundary(std::size_t level, std::size_t pos, std::size_t le, std::string_view line) {
        // The line break before the boundary belongs to the boundary (RFC 2046 5.1.1).
        std::size_t end = pos;
        std::uint64_t end_lf = lf_count_;
        // Except right after a close delimiter: Dovecot gives that line break to the part.
        if (pos != after_close_ && end > 0 && s_[end - 1] == '\n') {
            --end;
            --end_lf;
            if (end > 0 && s_[end - 1] == '\r')
                --end;
        }
        std::size_t owner_open = level_open_[level];
        std::uint32_t owner = level_part_[level];
        close_above(owner_open, end, end_lf);
        std::string_view rest = line.substr(2 + trie_.length(level));
        if (rest.size() >= 2 && rest[0] == '-' && rest[1] == '-') {
            // Close delimiter: what follows is the epilogue, part of the multipart's body.
            trie_.pop();
            level_open_.pop_back();
            level_part_.pop_back();
            after_close_ = le;
            return;
        }
        if (!room_for_part()) {
            // Out of parts: stop following structure; the rest stays in the open entities.
            boundaries_on_ = false;
            return;
        }
        begin_entity(le, owner, false);
    }

    std::string_view s_;
    const Limits& limits_;
    Message& msg_;
    BoundaryTrie trie_;
    std::vector<std::uint32_t> level_part_; // multipart Part per trie level
    std::vector<std::size_t> level_open_;   // its index in open_
    std::vector<Open> open_;
    bool in_header_ = false;
    bool boundaries_on_ = true;
    std::size_t header_start_ = 0;
    std::size_t after_close_ = std::string_view::npos; // line start after a close delimiter
    std::uint64_t lf_count_ = 0;                       // LFs before the current line
};

} // namespace

Message parse_message(std::string_view bytes, const Limits& limits) {
    Message msg;
    msg.bytes = bytes;
    Parser(bytes, limits, msg).run();
    return msg;
}

std::optional<SectionRanges> find_section(const Message& msg, std::span<const std::uint32_t> path) {
    if (msg.parts.empty())
        return std::nullopt;
    SectionRanges r;
    const Part* root = &msg.parts[0];
    if (path.empty()) {
        r.part = 0;
        r.whole = {0, msg.bytes.size()};
        r.header = root->header;
        r.text = root->body;
        return r;
    }
    std::uint32_t cur = 0;
    bool at_message = true; // `cur` is a message whose part numbers are being counted
    for (std::uint32_t n : path) {
        const Part* p = &msg.parts[cur];
        if (!at_message && p->kind == PartKind::Message) {
            cur = p->children.front();
            p = &msg.parts[cur];
            at_message = true;
        }
        if (p->kind == PartKind::Multipart) {
            if (n == 0 || n > p->children.size())
                return std::nullopt;
            cur = p->children[n - 1];
        } else if (at_message && n == 1) {
            // A non-multipart message has one part: its body, under its own header.
        } else {
            return std::nullopt;
        }
        at_message = false;
    }
    const Part& p = msg.parts[cur];
    r.part = cur;
    r.whole = p.body;
    r.mime = p.header;
    if (p.kind == PartKind::Message) {
        const Part& inner = msg.parts[p.children.front()];
        r.header = inner.header;
        r.text = inner.body;
    }
    return r;
}

} // namespace popbridge::protocol::mime
