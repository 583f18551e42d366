#pragma once
// ENVELOPE, BODYSTRUCTURE and BODY of a message (RFC 3501 7.4.2), computed once from its bytes
// with protocol/mime, and a byte-bounded LRU cache for them.
//
// The cache is meant to be shared by every session of the process (proxy/store_backend keeps
// one), so that memory stays bounded however many clients are connected, and a FETCH of
// ENVELOPE or BODYSTRUCTURE over a whole mailbox parses each message only once. It is not
// thread-safe: use it from one thread (the event loop).

#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

namespace popbridge::protocol::imap {

// Exact IMAP syntax, ready to follow "ENVELOPE " / "BODYSTRUCTURE " / "BODY ".
struct MessageStructure {
    std::string envelope;
    std::string bodystructure;
    std::string body;
    bool truncated = false; // a protocol/mime limit cut the structure (worth a log line)

    // Heap bytes this object accounts for in a cache (strings plus a fixed overhead).
    std::size_t memory() const;
};

// Parses `bytes` once and renders all three. Never fails (bad MIME gives a best-effort
// structure, see protocol/mime/message.h).
MessageStructure compute_message_structure(std::string_view bytes);

// Which message a cached structure belongs to. UIDs are never reused within one
// UIDVALIDITY of one mailbox (RFC 3501 2.3.1.1), so the key names one immutable message.
struct StructureKey {
    std::string owner;         // the user (mailbox ids are only unique per user)
    std::uint64_t mailbox = 0; // the store's id of the folder, not its (renamable) name
    std::uint32_t uid_validity = 0;
    std::uint32_t uid = 0;

    bool operator==(const StructureKey&) const = default;
};

class StructureCache {
public:
    // Entries are evicted, least recently used first, while the total exceeds `max_bytes`.
    explicit StructureCache(std::size_t max_bytes) : max_bytes_(max_bytes) {}
    StructureCache(const StructureCache&) = delete;
    StructureCache& operator=(const StructureCache&) = delete;

    // The cached structure (now the most recently used), or nullptr. The returned pointer
    // stays valid after eviction.
    std::shared_ptr<const MessageStructure> find(const StructureKey& key);
    // Adds or replaces the entry. An entry larger than max_bytes is not kept.
    void insert(const StructureKey& key, std::shared_ptr<const MessageStructure> value);
    // Drops every entry of one mailbox of `owner` (e.g. it was deleted). Linear in size().
    void erase_mailbox(std::string_view owner, std::uint64_t mailbox);
    // Changes the budget (configuration), evicting at once what no longer fits; 0 keeps
    // nothing.
    void set_max_bytes(std::size_t max_bytes) {
        max_bytes_ = max_bytes;
        evict();
    }

    std::size_t bytes() const { return bytes_; }
    std::size_t size() const { return map_.size(); }
    std::size_t max_bytes() const { return max_bytes_; }
    std::uint64_t hits() const { return hits_; }
    std::uint64_t misses() const { return misses_; }

private:
    struct KeyHash {
        std::size_t operator()(const StructureKey& k) const;
    };
    struct Entry {
        StructureKey key;
        std::shared_ptr<const MessageStructure> value;
        std::size_t cost = 0;
    };
    using List = std::list<Entry>; // front = most recently used

    void evict();

    std::size_t max_bytes_;
    std::size_t bytes_ = 0;
    std::uint64_t hits_ = 0;
    std::uint64_t misses_ = 0;
    List lru_;
    std::unordered_map<StructureKey, List::iterator, KeyHash> map_;
};

} // namespace popbridge::protocol::imap
