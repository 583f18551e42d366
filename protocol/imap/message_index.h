#pragma once
// The message list of a selected mailbox as an immutable, versioned value shared by every
// session that has it open.
//
// A MessageIndex is never changed once published (shared_ptr<const MessageIndex>). An edit
// makes a new version through an Editor, which copies only the top-level chunk table and
// the chunks it touches (chunks hold up to kChunk messages): a change costs
// O(n / kChunk + kChunk), and all other chunks are shared with the previous version.
//
// The proxy keeps one current version per (user, folder) and hands it to every session
// that selects the folder; each change event carries the version before and after it, so a
// session that is in sync moves to the new version by swapping a pointer. A session that
// must delay a change (an EXPUNGE during FETCH, RFC 9051 7.4.1) or that applied its own
// STORE keeps a private version (sharing unchanged chunks) until its view equals the
// shared one again (same_content), then adopts the shared pointer.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace popbridge::protocol::imap {

struct MessageMeta {
    std::uint32_t uid = 0;
    std::uint64_t size = 0;            // RFC822.SIZE: bytes of the stored (CRLF) message
    std::int64_t internal_date = 0;    // unix seconds, UTC
    int tz_offset_minutes = 0;         // zone the internal date is shown in
    std::uint32_t flags = 0;           // FlagBit mask (flags.h)
    std::vector<std::string> keywords; // keyword flags, as stored
    std::uint64_t modseq = 0;

    bool operator==(const MessageMeta&) const = default;
};

class MessageIndex {
public:
    static constexpr std::size_t kChunk = 256;

    MessageIndex() = default;
    // `messages` sorted by uid, strictly ascending.
    static std::shared_ptr<const MessageIndex> build(std::vector<MessageMeta> messages);
    static std::shared_ptr<const MessageIndex> empty_index();

    std::size_t size() const { return size_; }
    bool empty() const { return size_ == 0; }
    const MessageMeta& operator[](std::size_t i) const;
    const MessageMeta& back() const { return (*this)[size_ - 1]; }
    std::uint32_t last_uid() const { return size_ == 0 ? 0 : back().uid; }
    // Index of the first message whose uid is >= `uid` (size() if none).
    std::size_t lower_bound(std::uint32_t uid) const;
    std::optional<std::size_t> find(std::uint32_t uid) const;
    // Same messages (every field). Cheap when both share chunks.
    bool same_content(const MessageIndex& other) const;
    std::size_t chunk_count() const { return chunks_.size(); }
    // Chunks this version shares with `other` (same storage, tests and diagnostics).
    std::size_t shared_chunks(const MessageIndex& other) const;

    class const_iterator {
    public:
        using value_type = MessageMeta;
        using difference_type = std::ptrdiff_t;
        using reference = const MessageMeta&;
        using pointer = const MessageMeta*;
        using iterator_category = std::forward_iterator_tag;
        const_iterator() = default;
        reference operator*() const { return (*idx_->chunks_[c_])[p_]; }
        pointer operator->() const { return &**this; }
        const_iterator& operator++() {
            if (++p_ == idx_->chunks_[c_]->size()) {
                ++c_;
                p_ = 0;
            }
            return *this;
        }
        const_iterator operator++(int) {
            auto t = *this;
            ++*this;
            return t;
        }
        bool operator==(const const_iterator& o) const { return c_ == o.c_ && p_ == o.p_; }

    private:
        friend class MessageIndex;
        const_iterator(const MessageIndex* idx, std::size_t c) : idx_(idx), c_(c) {}
        const MessageIndex* idx_ = nullptr;
        std::size_t c_ = 0;
        std::size_t p_ = 0;
    };
    const_iterator begin() const { return const_iterator(this, 0); }
    const_iterator end() const { return const_iterator(this, chunks_.size()); }

    class Editor;

private:
    using Chunk = std::vector<MessageMeta>;
    // Returns (chunk, position) of message i.
    std::pair<std::size_t, std::size_t> locate(std::size_t i) const;
    void recount();

    std::vector<std::shared_ptr<Chunk>> chunks_; // never empty chunks; shared between versions
    std::vector<std::size_t> ends_;              // ends_[c]: messages in chunks 0..c
    std::size_t size_ = 0;
};

// Builds the next version from `base`. Reads through view() see the edits made so far.
// Each chunk is copied at most once per Editor, and only when written.
class MessageIndex::Editor {
public:
    explicit Editor(std::shared_ptr<const MessageIndex> base);
    const MessageIndex& view() const { return work_ ? *work_ : *base_; }
    // Writable message i (copies its chunk on the first write).
    MessageMeta& at(std::size_t i);
    void erase(std::size_t i);
    void push_back(MessageMeta m);
    bool changed() const { return work_ != nullptr; }
    // The new version (the base itself when nothing changed). The Editor is spent.
    std::shared_ptr<const MessageIndex> finish();

private:
    void own_top();
    std::shared_ptr<const MessageIndex> base_;
    std::shared_ptr<MessageIndex> work_;
    std::vector<bool> owned_; // chunk c was copied by this Editor
};

// The one definition of how a change event modifies a message list, used by the proxy for
// the shared version and by a session for its own view, so both always agree.
enum class ChangeKind {
    Added,    // a new message (meta is complete)
    Flags,    // flags/keywords/modseq of meta.uid changed
    Expunged, // meta.uid was expunged
};
struct ApplyResult {
    bool applied = false;           // the list changed (Added: appended; Expunged: removed)
    std::optional<std::size_t> pos; // Flags / Expunged: index of the message before the change
    bool flags_changed = false;     // Flags: flags or keywords differ from before
};
// What apply_change would do to `list`, without doing it.
ApplyResult preview_change(const MessageIndex& list, ChangeKind kind, const MessageMeta& meta);
ApplyResult apply_change(MessageIndex::Editor& ed, ChangeKind kind, const MessageMeta& meta);

} // namespace popbridge::protocol::imap
