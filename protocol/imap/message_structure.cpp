#include "protocol/imap/message_structure.h"

#include <functional>

#include "protocol/mime/bodystructure.h"
#include "protocol/mime/envelope.h"
#include "protocol/mime/message.h"

namespace popbridge::protocol::imap {

namespace {

// Rough per-entry bookkeeping: list node, hash node, control block, the key's string.
constexpr std::size_t kEntryOverhead = 160;

} // namespace

std::size_t MessageStructure::memory() const {
    return sizeof(MessageStructure) + envelope.capacity() + bodystructure.capacity() +
           body.capacity();
}

MessageStructure compute_message_structure(std::string_view bytes) {
    mime::Message msg = mime::parse_message(bytes);
    MessageStructure out;
    out.envelope = mime::envelope(msg);
    out.bodystructure = mime::bodystructure(msg, true);
    out.body = mime::bodystructure(msg, false);
    out.truncated = msg.truncated;
    return out;
}

std::size_t StructureCache::KeyHash::operator()(const StructureKey& k) const {
    std::size_t h = std::hash<std::string>{}(k.owner);
    auto mix = [&h](std::uint64_t v) {
        h ^= std::hash<std::uint64_t>{}(v) + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
    };
    mix(k.mailbox);
    mix(k.uid_validity);
    mix(k.uid);
    return h;
}

std::shared_ptr<const MessageStructure> StructureCache::find(const StructureKey& key) {
    auto it = map_.find(key);
    if (it == map_.end()) {
        ++misses_;
        return nullptr;
    }
    ++hits_;
    lru_.splice(lru_.begin(), lru_, it->second);
    return it->second->value;
}

void StructureCache::insert(const StructureKey& key,
                            std::shared_ptr<const MessageStructure> value) {
    if (!value)
        return;
    std::size_t cost = value->memory() + key.owner.capacity() + kEntryOverhead;
    if (auto it = map_.find(key); it != map_.end()) {
        bytes_ -= it->second->cost;
        lru_.erase(it->second);
        map_.erase(it);
    }
    if (cost > max_bytes_)
        return;
    lru_.push_front(Entry{key, std::move(value), cost});
    map_.emplace(key, lru_.begin());
    bytes_ += cost;
    evict();
}

void StructureCache::erase_mailbox(std::string_view owner, std::uint64_t mailbox) {
    for (auto it = lru_.begin(); it != lru_.end();) {
        if (it->key.mailbox == mailbox && it->key.owner == owner) {
            bytes_ -= it->cost;
            map_.erase(it->key);
            it = lru_.erase(it);
        } else {
            ++it;
        }
    }
}

void StructureCache::evict() {
    while (bytes_ > max_bytes_ && !lru_.empty()) {
        Entry& last = lru_.back();
        bytes_ -= last.cost;
        map_.erase(last.key);
        lru_.pop_back();
    }
}

} // namespace popbridge::protocol::imap
