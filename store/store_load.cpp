// Loading a user: the folder registry, each folder's index, and recovery (tmp/ roll
// forward, unfinished moves, damaged indexes). Blocking; runs on the loop thread the
// first time a user is named (see store.h).
#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/atomic_file.h"
#include "store/names.h"
#include "store/store_internal.h"

namespace popbridge::store {

namespace fs = std::filesystem;
using namespace detail;

namespace {

struct DefaultFolder {
    std::string_view name;
    SpecialUse use;
};
constexpr DefaultFolder kDefaultFolders[] = {
    {"Sent", SpecialUse::Sent}, {"Drafts", SpecialUse::Drafts},   {"Trash", SpecialUse::Trash},
    {"Junk", SpecialUse::Junk}, {"Archive", SpecialUse::Archive},
};

// System flags from a Maildir info suffix ":2,<letters>" (files other tools made).
Flags maildir_flags(std::string_view name) {
    Flags f;
    auto at = name.rfind(":2,");
    if (at == std::string_view::npos) {
        return f;
    }
    for (char c : name.substr(at + 3)) {
        switch (c) {
        case 'S':
            f.set(Flag::Seen);
            break;
        case 'R':
            f.set(Flag::Answered);
            break;
        case 'F':
            f.set(Flag::Flagged);
            break;
        case 'T':
            f.set(Flag::Deleted);
            break;
        case 'D':
            f.set(Flag::Draft);
            break;
        default:
            break;
        }
    }
    return f;
}

} // namespace

std::uint32_t Store::next_uid_validity(UserState& user) {
    std::int64_t t = now();
    std::uint32_t v = t < 1 ? 1u : t > UINT32_MAX ? UINT32_MAX : static_cast<std::uint32_t>(t);
    if (v <= user.max_uid_validity) {
        v = user.max_uid_validity + 1; // the clock went back, or two creations in a second
    }
    user.max_uid_validity = v;
    return v;
}

Result<void> Store::append_registry(UserState& user, const JournalRecord& rec) {
    std::string bytes;
    append_record(bytes, rec);
    return append_registry_bytes(user, bytes);
}

Result<void> Store::append_registry_bytes(UserState& user, std::string_view bytes) {
    fs::path path = user.dir / kRegistryFile;
    if (auto r = pwrite_all(user.registry_fd, bytes, user.registry_size, path); !r) {
        return r;
    }
    if (::fdatasync(user.registry_fd) != 0) {
        return tl::unexpected(io_error("fdatasync", path, errno));
    }
    user.registry_size += bytes.size();
    return {};
}

Result<void> Store::open_user(std::string_view user) {
    auto u = load_user(user);
    if (!u) {
        return tl::unexpected(u.error());
    }
    return {};
}

// First use: INBOX and the default folders. Every index is written and fsynced before
// the registry, which is the commit point: a crash before it leaves directories that the
// next attempt removes and recreates.
Result<void> Store::create_user(UserState& user) {
    if (auto r = make_maildir(user.dir); !r) {
        return r;
    }
    std::int64_t t = now();
    std::vector<JournalRecord> registry;
    auto add = [&](FolderId id, std::string_view name, SpecialUse use) -> Result<void> {
        fs::path dir = folder_dir(user, id);
        if (id != kInbox) {
            std::error_code ec;
            fs::remove_all(dir, ec);
            if (auto r = make_maildir(dir); !r) {
                return r;
            }
        }
        std::uint32_t uidv = next_uid_validity(user);
        if (auto r =
                create_journal(dir / kIndexFile, kIndexMagic, {FolderHeaderRec{uidv, t, 1, 1}});
            !r) {
            return r;
        }
        registry.push_back(FolderCreatedRec{id, uidv, t, std::string(name), use});
        registry.push_back(SubscribedRec{std::string(name)});
        return {};
    };
    if (auto r = add(kInbox, kInboxName, SpecialUse::None); !r) {
        return r;
    }
    FolderId id = 1;
    for (const auto& d : kDefaultFolders) {
        if (auto r = add(id++, d.name, d.use); !r) {
            return r;
        }
    }
    if (auto r = fsync_dir(user.dir); !r) {
        return r;
    }
    if (auto r = create_journal(user.dir / kRegistryFile, kRegistryMagic, registry); !r) {
        return r;
    }
    if (auto r = fsync_dir(options_.data_dir / "users"); !r) {
        return r;
    }
    user.max_uid_validity = 0; // re-read from the registry
    return {};
}

Result<Store::UserState*> Store::load_user(std::string_view name) {
    if (auto it = users_.find(name); it != users_.end()) {
        return it->second.get();
    }
    if (auto v = validate_user_name(name); !v) {
        return tl::unexpected(v.error());
    }
    auto user = std::make_unique<UserState>();
    user->name = std::string(name);
    user->dir = options_.data_dir / "users" / user->name;
    const fs::path registry = user->dir / kRegistryFile;

    if (::access(registry.c_str(), F_OK) != 0) {
        // First use (or a crash before the registry was written: nothing can have been
        // committed then, so starting over is safe).
        if (auto r = create_user(*user); !r) {
            return tl::unexpected(r.error());
        }
    }

    std::map<FolderId, FolderCreatedRec> live;
    auto opened = open_journal(registry, kRegistryMagic, [&](JournalRecord&& rec) -> Result<void> {
        if (auto* c = std::get_if<FolderCreatedRec>(&rec)) {
            user->max_uid_validity = std::max(user->max_uid_validity, c->uid_validity);
            user->next_folder_id = std::max(user->next_folder_id, c->id + 1);
            live[c->id] = std::move(*c);
        } else if (auto* d = std::get_if<FolderDeletedRec>(&rec)) {
            live.erase(d->id);
        } else if (auto* o = std::get_if<OriginsRetiredRec>(&rec)) {
            // UIDLs of a deleted folder's messages (folder id unknown here: use INBOX's).
            for (auto& entry : o->entries) {
                entry.folder = kInbox;
                entry.uid = 0;
                ledger_put_entry(user->ledger, std::move(entry));
            }
        } else if (auto* rn = std::get_if<FoldersRenamedRec>(&rec)) {
            for (auto& [id, new_name] : rn->renames) {
                if (auto it = live.find(id); it != live.end()) {
                    it->second.name = std::move(new_name);
                }
            }
        } else if (auto* s = std::get_if<SubscribedRec>(&rec)) {
            user->subscriptions.insert(std::move(s->name));
        } else if (auto* us = std::get_if<UnsubscribedRec>(&rec)) {
            user->subscriptions.erase(us->name);
        } else {
            return make_error(Errc::Corrupt, "unexpected record in folder registry");
        }
        return {};
    });
    if (!opened) {
        return tl::unexpected(opened.error());
    }
    user->registry_fd = opened->fd;
    user->registry_size = opened->size;
    if (!live.count(kInbox)) {
        return make_error(Errc::Corrupt, "folder registry of " + user->name + " has no INBOX");
    }

    UserState* u = user.get();
    users_.emplace(user->name, std::move(user));
    auto drop = [&](Error e) -> Result<UserState*> {
        std::string key = u->name; // erase() destroys u->name
        users_.erase(key);
        return tl::unexpected(std::move(e));
    };
    for (auto& [id, rec] : live) {
        if (auto r = load_folder(*u, id, rec.name, rec.uid_validity, rec.special_use); !r) {
            return drop(r.error());
        }
    }
    if (auto r = finish_moves(*u); !r) {
        return drop(r.error());
    }
    // Folder directories the registry does not list are leftovers of a crash during
    // create_folder/delete_folder (ids are never reused, so nothing refers to them).
    if (auto names = list_dir(u->dir)) {
        for (const auto& n : *names) {
            if (n.size() < 2 || n[0] != '.' ||
                !std::all_of(n.begin() + 1, n.end(), [](char c) { return c >= '0' && c <= '9'; })) {
                continue;
            }
            FolderId id = static_cast<FolderId>(std::strtoul(n.c_str() + 1, nullptr, 10));
            if (!live.count(id)) {
                std::error_code ec;
                fs::remove_all(u->dir / n, ec);
            }
        }
    }
    add_missing_default_folders(*u);
    return u;
}

// Users created before a default folder existed get it now. A folder that has the role
// under another name (renamed) counts as present; a name taken by a folder without the
// role is left alone (no second folder, no role change). Failures only warn: the user
// still loads.
void Store::add_missing_default_folders(UserState& user) {
    for (const auto& d : kDefaultFolders) {
        bool has_role = false;
        bool name_taken = false;
        for (const auto& [id, f] : user.folders) {
            has_role = has_role || f->special_use == d.use;
            name_taken = name_taken || f->name == d.name;
        }
        if (has_role || name_taken) {
            continue;
        }
        std::string user_name = user.name;
        if (auto r = create_folder(user_name, d.name, d.use); !r) {
            warn("user " + user_name + ": cannot create missing default folder " +
                 std::string(d.name) + ": " + r.error().message);
            continue;
        }
        if (auto r = subscribe_name(user_name, d.name); !r) {
            warn("user " + user_name + ": cannot subscribe to " + std::string(d.name) + ": " +
                 r.error().message);
        }
        warn("user " + user_name + ": created missing default folder " + std::string(d.name) +
             " (" + std::string(to_string(d.use)) + ")");
    }
}

Result<void> Store::load_folder(UserState& user, FolderId id, std::string name,
                                std::uint32_t uid_validity, SpecialUse special_use) {
    auto folder = std::make_unique<FolderState>();
    FolderState& f = *folder;
    f.user = &user;
    f.id = id;
    f.name = std::move(name);
    f.special_use = special_use;
    f.dir = folder_dir(user, id);
    ::unlink((f.dir / kCompactFile).c_str()); // a compaction cut short; the index is whole
    ::unlink((f.dir / kRebuildFile).c_str());

    // Replay. Expunges are applied after the scan so 100k records stay linear.
    std::unordered_set<Uid> expunged;
    std::vector<OriginEntry> retired;
    bool have_header = false;
    Uid header_uid_next = 1;
    Uid last_uid = 0;
    auto on_record = [&](JournalRecord&& rec) -> Result<void> {
        if (auto* h = std::get_if<FolderHeaderRec>(&rec)) {
            if (have_header) {
                return make_error(Errc::Corrupt, "second FolderHeader");
            }
            have_header = true;
            f.uid_validity = h->uid_validity;
            f.created_at = h->created_at;
            header_uid_next = h->uid_next;
            f.highest_modseq = std::max(f.highest_modseq, h->highest_modseq);
            return {};
        }
        if (!have_header) {
            return make_error(Errc::Corrupt, "index does not start with a FolderHeader");
        }
        if (auto* a = std::get_if<MessageAddedRec>(&rec)) {
            MessageRecord& m = a->message;
            if (m.uid <= last_uid) {
                return make_error(Errc::Corrupt, "UID " + std::to_string(m.uid) +
                                                     " not above UID " + std::to_string(last_uid));
            }
            last_uid = m.uid;
            f.highest_modseq = std::max(f.highest_modseq, m.modseq);
            f.messages.push_back(std::move(m));
        } else if (auto* c = std::get_if<FlagsChangedRec>(&rec)) {
            f.highest_modseq = std::max(f.highest_modseq, c->modseq);
            if (MessageRecord* m = find_message(f.messages, c->uid)) {
                m->flags = c->flags;
                m->keywords = std::move(c->keywords);
                m->modseq = c->modseq;
            }
        } else if (auto* e = std::get_if<ExpungedRec>(&rec)) {
            f.highest_modseq = std::max(f.highest_modseq, e->modseq);
            expunged.insert(e->uids.begin(), e->uids.end());
        } else if (auto* o = std::get_if<OriginsRetiredRec>(&rec)) {
            for (auto& entry : o->entries) {
                entry.folder = id;
                retired.push_back(std::move(entry));
            }
        } else if (auto* n = std::get_if<OriginNotedRec>(&rec)) {
            // Written to the INBOX only; a user-level fact, so applied wherever found.
            apply_noted(user, *n);
        } else {
            return make_error(Errc::Corrupt, "registry record in a folder index");
        }
        return {};
    };
    // Size the containers once: ~80 bytes per MessageAdded record is a low estimate.
    std::error_code size_ec;
    auto journal_bytes = fs::file_size(f.dir / kIndexFile, size_ec);
    if (!size_ec) {
        std::size_t estimate = static_cast<std::size_t>(journal_bytes / 80);
        f.messages.reserve(estimate);
        // Only ever grow: reserve() below the current bucket count rehashes the whole
        // ledger down (every folder after a large INBOX did that: 5 rehashes of 100k).
        const std::size_t want = user.ledger.size() + estimate;
        if (static_cast<double>(want) >
            static_cast<double>(user.ledger.bucket_count()) * user.ledger.max_load_factor()) {
            user.ledger.reserve(want);
        }
    }
    auto opened = open_journal(f.dir / kIndexFile, kIndexMagic, on_record, true);
    if (!opened) {
        return tl::unexpected(opened.error());
    }
    f.journal_fd = opened->fd;
    f.journal_size = opened->size;
    f.records = opened->records;
    if (opened->truncated > 0) {
        warn("store: recovered index of user " + user.name + " folder " + f.name +
             ": truncated a torn tail of " + std::to_string(opened->truncated) +
             " byte(s) (a crash mid-append)");
    }
    if (!have_header) {
        return make_error(Errc::Corrupt, "index without a FolderHeader in " + f.dir.string());
    }
    f.uid_next = std::max(header_uid_next, last_uid + 1);
    if (f.uid_validity < uid_validity) {
        return make_error(Errc::Corrupt,
                          "UIDVALIDITY of " + f.dir.string() + " is below the folder registry's");
    }
    user.max_uid_validity = std::max(user.max_uid_validity, f.uid_validity);
    if (f.uid_validity > uid_validity) {
        // A rebuild wrote the index with a new UIDVALIDITY and was cut short before the
        // registry learnt it.
        if (auto r = append_registry(
                user, FolderCreatedRec{id, f.uid_validity, f.created_at, f.name, f.special_use});
            !r) {
            return r;
        }
    }
    std::vector<MessageRecord> gone; // expunged: their ledger entries stay, marked
    std::unordered_map<Uid, std::string> expunged_files;
    if (!expunged.empty()) {
        // Files of expunged messages: the Expunged record was durable, but a crash before
        // run() unlinked them would leave them in cur/ forever. Never one a live message
        // names too (two records could share a name before names had a random part).
        std::unordered_set<std::string_view> stale;
        for (auto& m : f.messages) {
            if (expunged.count(m.uid)) {
                if (!opened->damaged.empty()) {
                    expunged_files.emplace(m.uid, m.file_name);
                } else {
                    stale.insert(m.file_name);
                }
                if (has_origin_fields(m.origin)) {
                    gone.push_back(m);
                }
            }
        }
        for (const auto& m : f.messages) {
            if (!expunged.count(m.uid)) {
                stale.erase(m.file_name);
            }
        }
        std::size_t leftovers = 0;
        for (std::string_view name : stale) {
            if (::unlink((f.dir / "cur" / name).c_str()) == 0) {
                ++leftovers;
            }
        }
        stale.clear(); // views into f.messages, about to be erased
        std::erase_if(f.messages, [&](const MessageRecord& m) { return expunged.count(m.uid); });
        if (leftovers > 0) {
            if (auto r = fsync_dir(f.dir / "cur"); !r) {
                return r;
            }
            warn("store: recovered folder " + f.name + " of user " + user.name + ": removed " +
                 std::to_string(leftovers) + " file(s) of expunged messages left in cur/");
        }
    }

    // tmp/: journaled-but-not-renamed files roll forward; anything else is an orphan.
    const fs::path tmp_dir = f.dir / "tmp";
    auto tmp_names = list_dir(tmp_dir);
    if (!tmp_names) {
        return tl::unexpected(tmp_names.error());
    }
    if (!tmp_names->empty()) {
        std::unordered_map<std::string_view, const MessageRecord*> by_base;
        for (const auto& m : f.messages) {
            by_base.emplace(std::string_view(m.file_name).substr(0, m.file_name.find(',')), &m);
        }
        std::size_t rolled = 0;
        std::size_t removed = 0;
        for (const auto& n : *tmp_names) {
            fs::path from = tmp_dir / n;
            auto it = by_base.find(n);
            struct stat tmp_st {};
            struct stat cur_st {};
            fs::path to;
            if (it != by_base.end()) {
                to = f.dir / "cur" / it->second->file_name;
            }
            // A journaled file left in tmp/ has the record's size and nothing in cur/ yet.
            // Anything else of that name is not the journaled message (names that repeat
            // across restarts, before they had a random part): never clobber cur/ with it.
            if (it != by_base.end() &&
                (::lstat(to.c_str(), &cur_st) == 0 || ::lstat(from.c_str(), &tmp_st) != 0 ||
                 static_cast<std::uint64_t>(tmp_st.st_size) != it->second->size)) {
                it = by_base.end();
            }
            if (it != by_base.end()) {
                if (::rename(from.c_str(), to.c_str()) != 0) {
                    return tl::unexpected(io_error("rename", from, errno));
                }
                ++rolled;
            } else if (::unlink(from.c_str()) != 0 && errno != ENOENT) {
                return tl::unexpected(io_error("unlink", from, errno));
            } else {
                ++removed;
            }
        }
        warn("store: recovered folder " + f.name + " of user " + user.name + ": rolled " +
             std::to_string(rolled) + " journaled file(s) forward from tmp/, removed " +
             std::to_string(removed) + " uncommitted file(s)");
        if (auto r = fsync_dir(f.dir / "cur"); !r) {
            return r;
        }
        if (auto r = fsync_dir(tmp_dir); !r) {
            return r;
        }
    }
    if (!opened->damaged.empty()) {
        // The rebuilt snapshot keeps the expunged origins only if the ledger has them.
        for (const auto& m : gone) {
            ledger_put(user.ledger, m, id, false);
        }
        for (const auto& e : retired) {
            ledger_put_entry(user.ledger, e);
        }
        std::size_t before = f.messages.size();
        std::vector<MessageRecord> all = f.messages;
        if (auto r = rebuild_folder(user, f, expunged_files, opened->damaged.front().first); !r) {
            return r;
        }
        if (f.messages.size() < before) { // files were missing: those messages are gone
            std::unordered_set<Uid> kept;
            for (const auto& m : f.messages) {
                kept.insert(m.uid);
            }
            for (const auto& m : all) {
                if (!kept.count(m.uid) && has_origin_fields(m.origin)) {
                    gone.push_back(m);
                }
            }
        }
    }
    for (const auto& m : f.messages) {
        ledger_put(user.ledger, m, id, true);
    }
    for (const auto& m : gone) {
        ledger_put(user.ledger, m, id, false);
    }
    for (auto& e : retired) {
        ledger_put_entry(user.ledger, std::move(e));
    }
    f.uid_reserved = f.uid_next;
    f.modseq_reserved = f.highest_modseq;
    f.compact_at = options_.compact_min_records;
    FolderState* fp = folder.get();
    user.folders.emplace(id, std::move(folder));
    maybe_want_compaction(*fp);
    return {};
}

Result<void> Store::rebuild_folder(UserState& user, FolderState& f,
                                   const std::unordered_map<Uid, std::string>& expunged_files,
                                   std::uint64_t damaged_at) {
    const fs::path cur = f.dir / "cur";
    auto names = list_dir(cur);
    if (!names) {
        return tl::unexpected(names.error());
    }
    std::unordered_set<std::string> present(names->begin(), names->end());
    std::size_t before = f.messages.size();
    std::erase_if(f.messages, [&](const MessageRecord& m) {
        if (present.count(m.file_name)) {
            return false;
        }
        ledger_put(user.ledger, m, f.id, false); // gone, but its origin stays known
        return true;
    });
    std::size_t missing = before - f.messages.size();
    std::unordered_set<std::string_view> referenced;
    for (const auto& m : f.messages) {
        referenced.insert(m.file_name);
    }
    std::unordered_set<std::string_view> expunged_names;
    for (const auto& [uid, name] : expunged_files) {
        expunged_names.insert(name);
    }
    std::vector<std::string> unknown;
    for (const auto& n : *names) {
        if (referenced.count(n) || n.empty() || n[0] == '.') {
            continue;
        }
        if (expunged_names.count(n)) { // expunged, then the crash came before the unlink
            ::unlink((cur / n).c_str());
            continue;
        }
        unknown.push_back(n);
    }
    std::uint32_t old_uidv = f.uid_validity;
    if (!unknown.empty()) {
        // Their UIDs are lost with the damaged records: new UIDVALIDITY, new UIDs above
        // every old one. Maildir names start with the delivery time: keep that order.
        std::sort(unknown.begin(), unknown.end());
        f.uid_validity = next_uid_validity(user);
        for (auto& n : unknown) {
            struct stat st {};
            if (::stat((cur / n).c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
                continue;
            }
            MessageRecord m;
            m.uid = f.uid_next++;
            m.size = static_cast<std::uint64_t>(st.st_size);
            m.internal_date = st.st_mtime;
            m.commit_time = now();
            m.flags = maildir_flags(n);
            m.file_name = std::move(n);
            f.messages.push_back(std::move(m));
        }
    }
    // Flag changes may be lost too: every message gets a new modseq so CONDSTORE
    // clients fetch the flags again.
    ++f.highest_modseq;
    for (auto& m : f.messages) {
        m.modseq = f.highest_modseq;
    }

    // The new index: written + fsynced beside the old, the old kept for forensics, then
    // renamed over it.
    const fs::path index = f.dir / kIndexFile;
    const fs::path tmp = f.dir / kRebuildFile;
    std::string bytes = snapshot_bytes(f);
    int fd = ::open(tmp.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        return tl::unexpected(io_error("open", tmp, errno));
    }
    auto fail = [&](Error e) -> Result<void> {
        ::close(fd);
        ::unlink(tmp.c_str());
        return tl::unexpected(std::move(e));
    };
    if (auto r = write_all(fd, bytes, tmp); !r) {
        return fail(r.error());
    }
    if (::fdatasync(fd) != 0) {
        return fail(io_error("fdatasync", tmp, errno));
    }
    std::string keep = std::string(kIndexFile) + ".damaged." + std::to_string(now());
    for (int i = 0; ::link(index.c_str(), (f.dir / keep).c_str()) != 0; ++i) {
        if (errno != EEXIST || i > 1000) {
            return fail(io_error("link", index, errno));
        }
        keep =
            std::string(kIndexFile) + ".damaged." + std::to_string(now()) + "." + std::to_string(i);
    }
    if (::rename(tmp.c_str(), index.c_str()) != 0) {
        return fail(io_error("rename", tmp, errno));
    }
    if (auto r = fsync_dir(f.dir); !r) {
        ::close(fd);
        return r;
    }
    ::close(f.journal_fd);
    f.journal_fd = fd;
    f.journal_size = bytes.size();
    f.records = 1 + f.messages.size();
    if (f.uid_validity != old_uidv) {
        if (auto r = append_registry(
                user, FolderCreatedRec{f.id, f.uid_validity, f.created_at, f.name, f.special_use});
            !r) {
            return r;
        }
    }
    warn("store: rebuilt damaged index of user " + user.name + " folder " + f.name +
         " (damage at offset " + std::to_string(damaged_at) + ", old index kept as " + keep +
         "): " + std::to_string(f.messages.size()) + " messages, " + std::to_string(missing) +
         " with missing files dropped, " + std::to_string(unknown.size()) +
         " unindexed files added" +
         (f.uid_validity != old_uidv ? ", UIDVALIDITY " + std::to_string(old_uidv) + " -> " +
                                           std::to_string(f.uid_validity)
                                     : std::string(", UIDVALIDITY kept")));
    return {};
}

// Moves cut short by a crash: the target record (moved_from) is durable, the source
// Expunged record is not. Expunge those UIDs from their source now.
Result<void> Store::finish_moves(UserState& user) {
    std::map<FolderState*, std::vector<Uid>> todo;
    for (auto& [id, f] : user.folders) {
        for (const auto& m : f->messages) {
            if (m.moved_from_uid == 0) {
                continue;
            }
            auto src = user.folders.find(m.moved_from_folder);
            if (src == user.folders.end() ||
                find_message(src->second->messages, m.moved_from_uid) == nullptr) {
                continue;
            }
            todo[src->second.get()].push_back(m.moved_from_uid);
            if (has_origin_fields(m.origin)) {
                user.ledger[origin_key(m.origin.account, m.origin.uidl)] =
                    OriginEntry{m.origin, id, m.uid, m.commit_time, false};
            }
        }
    }
    for (auto& [src, uids] : todo) {
        std::sort(uids.begin(), uids.end());
        uids.erase(std::unique(uids.begin(), uids.end()), uids.end());
        ExpungedRec rec{src->highest_modseq + 1, uids};
        std::string bytes;
        append_record(bytes, rec);
        fs::path journal = src->dir / kIndexFile;
        if (auto r = pwrite_all(src->journal_fd, bytes, src->journal_size, journal); !r) {
            return r;
        }
        if (::fdatasync(src->journal_fd) != 0) {
            return tl::unexpected(io_error("fdatasync", journal, errno));
        }
        src->journal_size += bytes.size();
        ++src->records;
        src->highest_modseq = rec.modseq;
        src->modseq_reserved = std::max(src->modseq_reserved, rec.modseq);
        std::unordered_set<Uid> gone(uids.begin(), uids.end());
        for (const auto& m : src->messages) {
            if (gone.count(m.uid)) {
                ::unlink((src->dir / "cur" / m.file_name).c_str());
            }
        }
        std::erase_if(src->messages, [&](const MessageRecord& m) { return gone.count(m.uid); });
        warn("store: finished " + std::to_string(uids.size()) + " interrupted move(s) of user " +
             user.name + " out of folder " + src->name);
    }
    return {};
}

} // namespace popbridge::store
