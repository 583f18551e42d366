#include "protocol/imap/message_index.h"

#include <algorithm>
#include <cassert>

namespace popbridge::protocol::imap {

std::shared_ptr<const MessageIndex> MessageIndex::build(std::vector<MessageMeta> messages) {
    auto idx = std::make_shared<MessageIndex>();
    idx->chunks_.reserve((messages.size() + kChunk - 1) / kChunk);
    for (std::size_t i = 0; i < messages.size(); i += kChunk) {
        std::size_t n = std::min(kChunk, messages.size() - i);
        auto chunk = std::make_shared<Chunk>();
        chunk->reserve(n);
        for (std::size_t k = 0; k < n; ++k)
            chunk->push_back(std::move(messages[i + k]));
        idx->chunks_.push_back(std::move(chunk));
    }
    idx->recount();
    return idx;
}

std::shared_ptr<const MessageIndex> MessageIndex::empty_index() {
    static const std::shared_ptr<const MessageIndex> e = std::make_shared<MessageIndex>();
    return e;
}

void MessageIndex::recount() {
    ends_.resize(chunks_.size());
    std::size_t n = 0;
    for (std::size_t c = 0; c < chunks_.size(); ++c) {
        n += chunks_[c]->size();
        ends_[c] = n;
    }
    size_ = n;
}

std::pair<std::size_t, std::size_t> MessageIndex::locate(std::size_t i) const {
    assert(i < size_);
    // Chunks are full until an expunge shrinks one: try the direct guess first.
    std::size_t c = i / kChunk;
    if (c < ends_.size() && ends_[c] > i && (c == 0 ? 0 : ends_[c - 1]) <= i)
        return {c, i - (c == 0 ? 0 : ends_[c - 1])};
    c = static_cast<std::size_t>(std::upper_bound(ends_.begin(), ends_.end(), i) - ends_.begin());
    return {c, i - (c == 0 ? 0 : ends_[c - 1])};
}

const MessageMeta& MessageIndex::operator[](std::size_t i) const {
    auto [c, p] = locate(i);
    return (*chunks_[c])[p];
}

std::size_t MessageIndex::lower_bound(std::uint32_t uid) const {
    // First chunk whose last uid is >= uid.
    auto it = std::lower_bound(
        chunks_.begin(), chunks_.end(), uid,
        [](const std::shared_ptr<Chunk>& ch, std::uint32_t u) { return ch->back().uid < u; });
    if (it == chunks_.end())
        return size_;
    auto c = static_cast<std::size_t>(it - chunks_.begin());
    const Chunk& ch = **it;
    auto p = std::lower_bound(ch.begin(), ch.end(), uid,
                              [](const MessageMeta& m, std::uint32_t u) { return m.uid < u; });
    return (c == 0 ? 0 : ends_[c - 1]) + static_cast<std::size_t>(p - ch.begin());
}

std::optional<std::size_t> MessageIndex::find(std::uint32_t uid) const {
    std::size_t i = lower_bound(uid);
    if (i < size_ && (*this)[i].uid == uid)
        return i;
    return std::nullopt;
}

bool MessageIndex::same_content(const MessageIndex& other) const {
    if (this == &other)
        return true;
    if (size_ != other.size_)
        return false;
    if (chunks_.size() == other.chunks_.size() && ends_ == other.ends_) {
        for (std::size_t c = 0; c < chunks_.size(); ++c)
            if (chunks_[c] != other.chunks_[c] && *chunks_[c] != *other.chunks_[c])
                return false;
        return true;
    }
    // Different chunk boundaries: compare message by message.
    auto a = begin();
    auto b = other.begin();
    for (; a != end(); ++a, ++b)
        if (!(*a == *b))
            return false;
    return true;
}

std::size_t MessageIndex::shared_chunks(const MessageIndex& other) const {
    std::size_t n = 0;
    for (const auto& c : chunks_)
        n += std::count(other.chunks_.begin(), other.chunks_.end(), c);
    return n;
}

MessageIndex::Editor::Editor(std::shared_ptr<const MessageIndex> base)
    : base_(base ? std::move(base) : MessageIndex::empty_index()) {}

void MessageIndex::Editor::own_top() {
    if (work_)
        return;
    work_ = std::make_shared<MessageIndex>(*base_); // copies the chunk table only
    owned_.assign(work_->chunks_.size(), false);
}

MessageMeta& MessageIndex::Editor::at(std::size_t i) {
    own_top();
    auto [c, p] = work_->locate(i);
    if (!owned_[c]) {
        work_->chunks_[c] = std::make_shared<Chunk>(*work_->chunks_[c]);
        owned_[c] = true;
    }
    return (*work_->chunks_[c])[p];
}

void MessageIndex::Editor::erase(std::size_t i) {
    own_top();
    auto [c, p] = work_->locate(i);
    if (work_->chunks_[c]->size() == 1) {
        work_->chunks_.erase(work_->chunks_.begin() + static_cast<std::ptrdiff_t>(c));
        owned_.erase(owned_.begin() + static_cast<std::ptrdiff_t>(c));
    } else {
        if (!owned_[c]) {
            work_->chunks_[c] = std::make_shared<Chunk>(*work_->chunks_[c]);
            owned_[c] = true;
        }
        Chunk& ch = *work_->chunks_[c];
        ch.erase(ch.begin() + static_cast<std::ptrdiff_t>(p));
        // Keep chunks from fragmenting: merge a small chunk into a neighbour that has room.
        if (ch.size() < kChunk / 4 && c + 1 < work_->chunks_.size() &&
            ch.size() + work_->chunks_[c + 1]->size() <= kChunk) {
            Chunk merged;
            merged.reserve(ch.size() + work_->chunks_[c + 1]->size());
            merged.insert(merged.end(), ch.begin(), ch.end());
            merged.insert(merged.end(), work_->chunks_[c + 1]->begin(),
                          work_->chunks_[c + 1]->end());
            work_->chunks_[c] = std::make_shared<Chunk>(std::move(merged));
            work_->chunks_.erase(work_->chunks_.begin() + static_cast<std::ptrdiff_t>(c + 1));
            owned_.erase(owned_.begin() + static_cast<std::ptrdiff_t>(c + 1));
        }
    }
    work_->recount();
}

void MessageIndex::Editor::push_back(MessageMeta m) {
    own_top();
    if (work_->chunks_.empty() || work_->chunks_.back()->size() >= kChunk) {
        auto chunk = std::make_shared<Chunk>();
        chunk->reserve(kChunk);
        work_->chunks_.push_back(std::move(chunk));
        owned_.push_back(true);
    } else if (!owned_.back()) {
        auto copy = std::make_shared<Chunk>();
        copy->reserve(kChunk);
        copy->insert(copy->end(), work_->chunks_.back()->begin(), work_->chunks_.back()->end());
        work_->chunks_.back() = std::move(copy);
        owned_.back() = true;
    }
    work_->chunks_.back()->push_back(std::move(m));
    work_->ends_.resize(work_->chunks_.size());
    ++work_->size_;
    work_->ends_.back() = work_->size_;
}

std::shared_ptr<const MessageIndex> MessageIndex::Editor::finish() {
    if (!work_)
        return base_;
    auto out = std::move(work_);
    work_.reset();
    owned_.clear();
    base_ = out;
    return out;
}

ApplyResult preview_change(const MessageIndex& v, ChangeKind kind, const MessageMeta& meta) {
    ApplyResult r;
    switch (kind) {
    case ChangeKind::Added:
        // Only UIDs above the list's are new; anything else is a duplicate event.
        r.applied = v.empty() || meta.uid > v.last_uid();
        break;
    case ChangeKind::Flags: {
        r.pos = v.find(meta.uid);
        if (!r.pos)
            break;
        const MessageMeta& cur = v[*r.pos];
        r.flags_changed = cur.flags != meta.flags || cur.keywords != meta.keywords;
        r.applied = r.flags_changed || cur.modseq != meta.modseq;
        break;
    }
    case ChangeKind::Expunged:
        r.pos = v.find(meta.uid);
        r.applied = r.pos.has_value();
        break;
    }
    return r;
}

ApplyResult apply_change(MessageIndex::Editor& ed, ChangeKind kind, const MessageMeta& meta) {
    ApplyResult r = preview_change(ed.view(), kind, meta);
    if (!r.applied)
        return r;
    switch (kind) {
    case ChangeKind::Added:
        ed.push_back(meta);
        break;
    case ChangeKind::Flags: {
        MessageMeta& m = ed.at(*r.pos);
        m.modseq = meta.modseq;
        if (r.flags_changed) {
            m.flags = meta.flags;
            m.keywords = meta.keywords;
        }
        break;
    }
    case ChangeKind::Expunged:
        ed.erase(*r.pos);
        break;
    }
    return r;
}

} // namespace popbridge::protocol::imap
