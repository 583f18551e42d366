#include "store/index_journal.h"

#include <cerrno>
#include <cstring>

#include <fcntl.h>
#include <unistd.h>

#include "store/atomic_file.h"
#include "store/crc32.h"

namespace popbridge::store {

std::string_view to_string(RecordType type) noexcept {
    switch (type) {
    case RecordType::FolderHeader:
        return "FolderHeader";
    case RecordType::MessageAdded:
        return "MessageAdded";
    case RecordType::FlagsChanged:
        return "FlagsChanged";
    case RecordType::Expunged:
        return "Expunged";
    case RecordType::OriginsRetired:
        return "OriginsRetired";
    case RecordType::OriginNoted:
        return "OriginNoted";
    case RecordType::FolderCreated:
        return "FolderCreated";
    case RecordType::FolderDeleted:
        return "FolderDeleted";
    case RecordType::FoldersRenamed:
        return "FoldersRenamed";
    case RecordType::Subscribed:
        return "Subscribed";
    case RecordType::Unsubscribed:
        return "Unsubscribed";
    }
    return "Unknown";
}

std::string_view to_string(SpecialUse use) noexcept {
    switch (use) {
    case SpecialUse::None:
        return "";
    case SpecialUse::Sent:
        return "\\Sent";
    case SpecialUse::Drafts:
        return "\\Drafts";
    case SpecialUse::Trash:
        return "\\Trash";
    case SpecialUse::Junk:
        return "\\Junk";
    case SpecialUse::Archive:
        return "\\Archive";
    }
    return "";
}

namespace {

class Writer {
public:
    explicit Writer(std::string& out) : out_(out) {}
    void u8(std::uint8_t v) { out_.push_back(static_cast<char>(v)); }
    void u32(std::uint32_t v) {
        for (int i = 0; i < 4; ++i) {
            out_.push_back(static_cast<char>((v >> (8 * i)) & 0xFFu));
        }
    }
    void u64(std::uint64_t v) {
        for (int i = 0; i < 8; ++i) {
            out_.push_back(static_cast<char>((v >> (8 * i)) & 0xFFu));
        }
    }
    void i64(std::int64_t v) { u64(static_cast<std::uint64_t>(v)); }
    // Callers validate lengths first; strings over 65535 bytes never reach here.
    void str(std::string_view s) {
        u16(static_cast<std::uint16_t>(s.size()));
        out_.append(s);
    }
    void u16(std::uint16_t v) {
        out_.push_back(static_cast<char>(v & 0xFFu));
        out_.push_back(static_cast<char>(v >> 8));
    }

private:
    std::string& out_;
};

class Reader {
public:
    explicit Reader(std::string_view in) : in_(in) {}
    bool ok() const { return ok_; }
    bool at_end() const { return in_.empty(); }

    std::uint8_t u8() { return static_cast<std::uint8_t>(take(1)); }
    std::uint16_t u16() { return static_cast<std::uint16_t>(take(2)); }
    std::uint32_t u32() { return static_cast<std::uint32_t>(take(4)); }
    std::uint64_t u64() { return take(8); }
    std::int64_t i64() { return static_cast<std::int64_t>(take(8)); }
    std::string str() {
        std::uint16_t n = u16();
        if (!ok_ || in_.size() < n) {
            ok_ = false;
            return {};
        }
        std::string s(in_.substr(0, n));
        in_.remove_prefix(n);
        return s;
    }

private:
    std::uint64_t take(std::size_t n) {
        if (!ok_ || in_.size() < n) {
            ok_ = false;
            return 0;
        }
        std::uint64_t v = 0;
        for (std::size_t i = 0; i < n; ++i) {
            v |= static_cast<std::uint64_t>(static_cast<unsigned char>(in_[i])) << (8 * i);
        }
        in_.remove_prefix(n);
        return v;
    }

    std::string_view in_;
    bool ok_ = true;
};

void put_keywords(Writer& w, const std::vector<std::string>& keywords) {
    w.u16(static_cast<std::uint16_t>(keywords.size()));
    for (const auto& k : keywords) {
        w.str(k);
    }
}

std::vector<std::string> get_keywords(Reader& r) {
    std::uint16_t n = r.u16();
    std::vector<std::string> out;
    for (std::uint16_t i = 0; i < n && r.ok(); ++i) {
        out.push_back(r.str());
    }
    return out;
}

struct Encoder {
    Writer& w;
    void operator()(const FolderHeaderRec& r) const {
        w.u8(static_cast<std::uint8_t>(RecordType::FolderHeader));
        w.u32(r.uid_validity);
        w.i64(r.created_at);
        w.u32(r.uid_next);
        w.u64(r.highest_modseq);
    }
    void operator()(const MessageAddedRec& r) const {
        const MessageRecord& m = r.message;
        w.u8(static_cast<std::uint8_t>(RecordType::MessageAdded));
        w.u32(m.uid);
        w.u64(m.modseq);
        w.u64(m.size);
        w.i64(m.internal_date);
        w.i64(m.commit_time);
        w.u8(m.flags.bits);
        put_keywords(w, m.keywords);
        w.str(m.file_name);
        w.str(m.origin.account);
        w.str(m.origin.uidl);
        if (m.moved_from_uid != 0) { // optional trailer: only moved messages carry it
            w.u32(m.moved_from_folder);
            w.u32(m.moved_from_uid);
        }
    }
    void operator()(const FlagsChangedRec& r) const {
        w.u8(static_cast<std::uint8_t>(RecordType::FlagsChanged));
        w.u32(r.uid);
        w.u64(r.modseq);
        w.u8(r.flags.bits);
        put_keywords(w, r.keywords);
    }
    void operator()(const ExpungedRec& r) const {
        w.u8(static_cast<std::uint8_t>(RecordType::Expunged));
        w.u64(r.modseq);
        w.u32(static_cast<std::uint32_t>(r.uids.size()));
        for (Uid u : r.uids) {
            w.u32(u);
        }
    }
    void operator()(const OriginsRetiredRec& r) const {
        w.u8(static_cast<std::uint8_t>(RecordType::OriginsRetired));
        w.u32(static_cast<std::uint32_t>(r.entries.size()));
        for (const auto& e : r.entries) {
            w.str(e.origin.account);
            w.str(e.origin.uidl);
            w.u32(e.uid);
            w.i64(e.commit_time);
        }
    }
    void operator()(const OriginNotedRec& r) const {
        w.u8(static_cast<std::uint8_t>(RecordType::OriginNoted));
        w.str(r.origin.account);
        w.str(r.origin.uidl);
        w.i64(r.time);
        w.str(r.alias_of.account);
        w.str(r.alias_of.uidl);
    }
    void operator()(const FolderCreatedRec& r) const {
        w.u8(static_cast<std::uint8_t>(RecordType::FolderCreated));
        w.u32(r.id);
        w.u32(r.uid_validity);
        w.i64(r.created_at);
        w.str(r.name);
        w.u8(static_cast<std::uint8_t>(r.special_use));
    }
    void operator()(const FolderDeletedRec& r) const {
        w.u8(static_cast<std::uint8_t>(RecordType::FolderDeleted));
        w.u32(r.id);
    }
    void operator()(const FoldersRenamedRec& r) const {
        w.u8(static_cast<std::uint8_t>(RecordType::FoldersRenamed));
        w.u32(static_cast<std::uint32_t>(r.renames.size()));
        for (const auto& [id, name] : r.renames) {
            w.u32(id);
            w.str(name);
        }
    }
    void operator()(const SubscribedRec& r) const {
        w.u8(static_cast<std::uint8_t>(RecordType::Subscribed));
        w.str(r.name);
    }
    void operator()(const UnsubscribedRec& r) const {
        w.u8(static_cast<std::uint8_t>(RecordType::Unsubscribed));
        w.str(r.name);
    }
};

void put_le32(char* p, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) {
        p[i] = static_cast<char>((v >> (8 * i)) & 0xFFu);
    }
}

std::uint32_t get_le32(const char* p) {
    std::uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
        v |= static_cast<std::uint32_t>(static_cast<unsigned char>(p[i])) << (8 * i);
    }
    return v;
}

} // namespace

void append_record(std::string& out, const JournalRecord& rec) {
    std::size_t frame_at = out.size();
    out.append(kRecordFrame, '\0');
    Writer w(out);
    std::visit(Encoder{w}, rec);
    std::string_view payload(out.data() + frame_at + kRecordFrame,
                             out.size() - frame_at - kRecordFrame);
    put_le32(out.data() + frame_at, static_cast<std::uint32_t>(payload.size()));
    put_le32(out.data() + frame_at + 4, crc32(payload));
}

void append_retired_origins(std::string& out, const std::vector<OriginEntry>& entries) {
    OriginsRetiredRec chunk;
    std::size_t bytes = 0;
    for (const auto& e : entries) {
        std::size_t size = 2 + e.origin.account.size() + 2 + e.origin.uidl.size() + 12;
        if (bytes + size > kMaxRecordPayload / 2 && !chunk.entries.empty()) {
            append_record(out, chunk);
            chunk.entries.clear();
            bytes = 0;
        }
        chunk.entries.push_back(e);
        bytes += size;
    }
    if (!chunk.entries.empty()) {
        append_record(out, chunk);
    }
}

Result<JournalRecord> decode_record(std::string_view payload) {
    Reader r(payload);
    auto type = static_cast<RecordType>(r.u8());
    JournalRecord out;
    switch (type) {
    case RecordType::FolderHeader: {
        FolderHeaderRec h;
        h.uid_validity = r.u32();
        h.created_at = r.i64();
        h.uid_next = r.u32();
        h.highest_modseq = r.u64();
        out = h;
        break;
    }
    case RecordType::MessageAdded: {
        MessageAddedRec a;
        MessageRecord& m = a.message;
        m.uid = r.u32();
        m.modseq = r.u64();
        m.size = r.u64();
        m.internal_date = r.i64();
        m.commit_time = r.i64();
        m.flags.bits = r.u8();
        m.keywords = get_keywords(r);
        m.file_name = r.str();
        m.origin.account = r.str();
        m.origin.uidl = r.str();
        if (r.ok() && !r.at_end()) {
            m.moved_from_folder = r.u32();
            m.moved_from_uid = r.u32();
        }
        if (r.ok() && (m.uid == 0 || m.file_name.empty() ||
                       m.file_name.find('/') != std::string::npos || m.file_name[0] == '.')) {
            return make_error(Errc::Corrupt, "MessageAdded record with a bad uid or file name");
        }
        out = std::move(a);
        break;
    }
    case RecordType::FlagsChanged: {
        FlagsChangedRec f;
        f.uid = r.u32();
        f.modseq = r.u64();
        f.flags.bits = r.u8();
        f.keywords = get_keywords(r);
        out = std::move(f);
        break;
    }
    case RecordType::Expunged: {
        ExpungedRec e;
        e.modseq = r.u64();
        std::uint32_t n = r.u32();
        if (r.ok() && n > payload.size() / 4) {
            return make_error(Errc::Corrupt, "Expunged record with a bad count");
        }
        for (std::uint32_t i = 0; i < n && r.ok(); ++i) {
            e.uids.push_back(r.u32());
        }
        out = std::move(e);
        break;
    }
    case RecordType::OriginsRetired: {
        OriginsRetiredRec o;
        std::uint32_t n = r.u32();
        if (r.ok() && n > payload.size() / 16) {
            return make_error(Errc::Corrupt, "OriginsRetired record with a bad count");
        }
        for (std::uint32_t i = 0; i < n && r.ok(); ++i) {
            OriginEntry e;
            e.origin.account = r.str();
            e.origin.uidl = r.str();
            e.uid = r.u32();
            e.commit_time = r.i64();
            e.expunged = true;
            o.entries.push_back(std::move(e));
        }
        out = std::move(o);
        break;
    }
    case RecordType::OriginNoted: {
        OriginNotedRec o;
        o.origin.account = r.str();
        o.origin.uidl = r.str();
        o.time = r.i64();
        o.alias_of.account = r.str();
        o.alias_of.uidl = r.str();
        if (r.ok() && o.origin.account.empty() && o.origin.uidl.empty()) {
            return make_error(Errc::Corrupt, "OriginNoted record without an origin");
        }
        out = std::move(o);
        break;
    }
    case RecordType::FolderCreated: {
        FolderCreatedRec c;
        c.id = r.u32();
        c.uid_validity = r.u32();
        c.created_at = r.i64();
        c.name = r.str();
        if (r.ok() && !r.at_end()) {
            std::uint8_t use = r.u8();
            if (use > static_cast<std::uint8_t>(SpecialUse::Archive)) {
                return make_error(Errc::Corrupt, "FolderCreated record with a bad special-use");
            }
            c.special_use = static_cast<SpecialUse>(use);
        }
        out = std::move(c);
        break;
    }
    case RecordType::FoldersRenamed: {
        FoldersRenamedRec f;
        std::uint32_t n = r.u32();
        if (r.ok() && n > payload.size() / 6) {
            return make_error(Errc::Corrupt, "FoldersRenamed record with a bad count");
        }
        for (std::uint32_t i = 0; i < n && r.ok(); ++i) {
            FolderId id = r.u32();
            f.renames.emplace_back(id, r.str());
        }
        out = std::move(f);
        break;
    }
    case RecordType::Subscribed:
        out = SubscribedRec{r.str()};
        break;
    case RecordType::Unsubscribed:
        out = UnsubscribedRec{r.str()};
        break;
    case RecordType::FolderDeleted: {
        FolderDeletedRec d;
        d.id = r.u32();
        out = d;
        break;
    }
    default:
        return make_error(Errc::Corrupt,
                          "unknown record type " + std::to_string(static_cast<int>(type)));
    }
    if (!r.ok() || !r.at_end()) {
        return make_error(Errc::Corrupt,
                          std::string("malformed ") + std::string(to_string(type)) + " record");
    }
    return out;
}

namespace {

// The frame at pos is whole and its CRC matches.
bool good_frame(std::string_view file, std::size_t pos) {
    if (file.size() - pos < kRecordFrame) {
        return false;
    }
    std::uint32_t len = get_le32(file.data() + pos);
    if (len == 0 || len > kMaxRecordPayload || file.size() - pos - kRecordFrame < len) {
        return false;
    }
    return crc32(file.substr(pos + kRecordFrame, len)) == get_le32(file.data() + pos + 4);
}

// The next offset after pos where a good frame that decodes starts, or npos. A random
// false match needs a plausible length AND a 32-bit CRC match.
std::size_t resync(std::string_view file, std::size_t pos) {
    for (std::size_t q = pos + 1; q + kRecordFrame <= file.size(); ++q) {
        if (good_frame(file, q) &&
            decode_record(file.substr(q + kRecordFrame, get_le32(file.data() + q)))) {
            return q;
        }
    }
    return std::string_view::npos;
}

} // namespace

Result<JournalScan> scan_journal(std::string_view file, std::string_view magic,
                                 const std::function<Result<void>(JournalRecord&&)>& on_record) {
    JournalScan scan;
    scan.file_size = file.size();
    if (file.size() < magic.size() || file.substr(0, magic.size()) != magic) {
        return make_error(Errc::Corrupt, "bad journal magic");
    }
    std::size_t pos = magic.size();
    while (file.size() - pos >= kRecordFrame) {
        if (!good_frame(file, pos)) {
            std::size_t next = resync(file, pos);
            if (next == std::string_view::npos) {
                break; // torn tail
            }
            scan.damaged.emplace_back(pos, next);
            pos = next;
        }
        std::uint32_t len = get_le32(file.data() + pos);
        std::string_view payload = file.substr(pos + kRecordFrame, len);
        auto rec = decode_record(payload);
        if (!rec) {
            rec.error().message += " at offset " + std::to_string(pos);
            return tl::unexpected(rec.error());
        }
        if (auto applied = on_record(std::move(*rec)); !applied) {
            applied.error().message += " at offset " + std::to_string(pos);
            return tl::unexpected(applied.error());
        }
        pos += kRecordFrame + len;
        ++scan.records;
    }
    scan.valid_size = pos;
    return scan;
}

Result<OpenedJournal> open_journal(const std::filesystem::path& path, std::string_view magic,
                                   const std::function<Result<void>(JournalRecord&&)>& on_record,
                                   bool allow_damage) {
    int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) {
            return make_error(Errc::NotFound, "no journal at " + path.string());
        }
        return tl::unexpected(io_error("open", path, errno));
    }
    auto fail = [fd](Error e) -> Result<OpenedJournal> {
        ::close(fd);
        return tl::unexpected(std::move(e));
    };
    auto bytes = read_all(fd, path);
    if (!bytes) {
        return fail(bytes.error());
    }
    auto scan = scan_journal(*bytes, magic, on_record);
    if (!scan) {
        scan.error().message += " in " + path.string();
        return fail(scan.error());
    }
    if (!scan->damaged.empty() && !allow_damage) {
        return fail(Error{Errc::Corrupt, "damaged record at offset " +
                                             std::to_string(scan->damaged.front().first) +
                                             " followed by good ones in " + path.string()});
    }
    OpenedJournal out;
    out.fd = fd;
    out.size = scan->valid_size;
    out.records = scan->records;
    out.damaged = std::move(scan->damaged);
    if (scan->torn()) {
        out.truncated = scan->file_size - scan->valid_size;
        if (::ftruncate(fd, static_cast<off_t>(scan->valid_size)) != 0) {
            return fail(io_error("ftruncate", path, errno));
        }
        if (::fsync(fd) != 0) {
            return fail(io_error("fsync", path, errno));
        }
    }
    return out;
}

Result<void> create_journal(const std::filesystem::path& path, std::string_view magic,
                            const std::vector<JournalRecord>& records) {
    std::string bytes(magic);
    for (const auto& r : records) {
        append_record(bytes, r);
    }
    return write_file_atomic(path, bytes);
}

} // namespace popbridge::store
