// Folders (create, rename with children, delete) and subscriptions. Blocking: one
// registry fdatasync each (rare operations; see store.h).
#include <algorithm>

#include "store/atomic_file.h"
#include "store/names.h"
#include "store/store_internal.h"

namespace popbridge::store {

namespace fs = std::filesystem;
using namespace detail;

namespace {

bool is_under(std::string_view name, std::string_view parent) {
    return name.size() > parent.size() + 1 && name.substr(0, parent.size()) == parent &&
           name[parent.size()] == '/';
}

} // namespace

Result<FolderId> Store::find_folder(std::string_view user, std::string_view name) {
    auto u = load_user(user);
    if (!u) {
        return tl::unexpected(u.error());
    }
    for (const auto& [id, f] : (*u)->folders) {
        if (f->name == name) {
            return id;
        }
    }
    return make_error(Errc::NotFound, "no such folder");
}

Result<std::vector<FolderInfo>> Store::list_folders(std::string_view user) {
    auto u = load_user(user);
    if (!u) {
        return tl::unexpected(u.error());
    }
    std::vector<FolderInfo> out;
    for (const auto& [id, f] : (*u)->folders) {
        out.push_back(FolderInfo{id, f->name, f->uid_validity, f->special_use, false});
    }
    std::sort(out.begin(), out.end(),
              [](const FolderInfo& a, const FolderInfo& b) { return a.name < b.name; });
    // Sorted by bytes, every child "<name>/..." sorts after <name> and before any name
    // that does not start with "<name>/"... except names like "<name>!x" ('!' < '/'),
    // so search the first name >= "<name>/" instead of looking at the neighbour.
    for (auto& info : out) {
        std::string prefix = info.name + "/";
        auto it =
            std::lower_bound(out.begin(), out.end(), prefix,
                             [](const FolderInfo& a, const std::string& p) { return a.name < p; });
        info.has_children = it != out.end() && is_under(it->name, info.name);
    }
    return out;
}

Result<FolderId> Store::create_folder(std::string_view user, std::string_view name,
                                      SpecialUse special_use) {
    auto u = load_user(user);
    if (!u) {
        return tl::unexpected(u.error());
    }
    if (auto v = validate_folder_name(name); !v) {
        return tl::unexpected(v.error());
    }
    UserState& us = **u;
    for (const auto& [id, f] : us.folders) {
        if (f->name == name) {
            return make_error(Errc::AlreadyExists, "folder exists");
        }
    }
    FolderId id = us.next_folder_id;
    fs::path dir = folder_dir(us, id);
    std::error_code ec;
    fs::remove_all(dir, ec); // a leftover of a crash mid-create; nothing refers to it
    if (auto r = make_maildir(dir); !r) {
        return tl::unexpected(r.error());
    }
    std::uint32_t previous_max = us.max_uid_validity;
    std::uint32_t uidv = next_uid_validity(us);
    std::int64_t t = now();
    auto fail = [&](Error e) -> Result<FolderId> {
        us.max_uid_validity = previous_max;
        fs::remove_all(dir, ec);
        return tl::unexpected(std::move(e));
    };
    if (auto r = create_journal(dir / kIndexFile, kIndexMagic, {FolderHeaderRec{uidv, t, 1, 1}});
        !r) {
        return fail(r.error());
    }
    if (auto r = fsync_dir(us.dir); !r) {
        return fail(r.error());
    }
    // The registry record is the commit point of the creation.
    if (auto r = append_registry(us, FolderCreatedRec{id, uidv, t, std::string(name), special_use});
        !r) {
        return fail(r.error());
    }
    us.next_folder_id = id + 1;
    if (auto r = load_folder(us, id, std::string(name), uidv, special_use); !r) {
        return tl::unexpected(r.error());
    }
    return id;
}

Result<void> Store::rename_folder(std::string_view user, FolderId folder,
                                  std::string_view new_name) {
    auto f = folder_state(user, folder);
    if (!f) {
        return tl::unexpected(f.error());
    }
    if (folder == kInbox) {
        return make_error(Errc::InvalidState,
                          "the INBOX is not renamed in the store (move its messages instead)");
    }
    if (auto v = validate_folder_name(new_name); !v) {
        return tl::unexpected(v.error());
    }
    UserState& us = *(*f)->user;
    const std::string old_name = (*f)->name;
    if (new_name == old_name) {
        return make_error(Errc::AlreadyExists, "folder already has that name");
    }
    if (is_under(new_name, old_name)) {
        return make_error(Errc::InvalidName, "cannot rename a folder into itself");
    }
    FoldersRenamedRec rec;
    std::vector<FolderState*> targets;
    for (auto& [id, other] : us.folders) {
        if (id == folder || is_under(other->name, old_name)) {
            std::string to = std::string(new_name) + other->name.substr(old_name.size());
            if (auto v = validate_folder_name(to); !v) {
                return make_error(Errc::InvalidName,
                                  "renamed child \"" + to +
                                      "\" would be invalid: " + v.error().message);
            }
            rec.renames.emplace_back(id, std::move(to));
            targets.push_back(other.get());
        }
    }
    for (const auto& [id, other] : us.folders) {
        bool moving = std::find(targets.begin(), targets.end(), other.get()) != targets.end();
        if (moving) {
            continue;
        }
        for (const auto& [rid, to] : rec.renames) {
            if (other->name == to) {
                return make_error(Errc::AlreadyExists, "folder \"" + to + "\" exists");
            }
        }
    }
    // One record: the folder and all its children are renamed together or not at all.
    if (auto r = append_registry(us, rec); !r) {
        return r;
    }
    for (std::size_t i = 0; i < targets.size(); ++i) {
        targets[i]->name = rec.renames[i].second;
    }
    return {};
}

Result<void> Store::delete_folder(std::string_view user, FolderId folder) {
    auto f = folder_state(user, folder);
    if (!f) {
        return tl::unexpected(f.error());
    }
    FolderState& fs_ = **f;
    if (folder == kInbox) {
        return make_error(Errc::InvalidState, "the INBOX cannot be deleted");
    }
    UserState& us = *fs_.user;
    for (const auto& [id, other] : us.folders) {
        if (is_under(other->name, fs_.name)) {
            return make_error(Errc::HasChildren,
                              "folder \"" + fs_.name + "\" has child folders; delete them first");
        }
    }
    if (fs_.in_job || !fs_.pending.empty()) {
        return make_error(Errc::Busy, "folder has uncommitted changes");
    }
    // The folder's UIDLs (live and already expunged ones) move to the registry, then
    // the deletion: one write, one fdatasync. A crash between the records only leaves
    // harmless retired entries for a folder that still exists.
    for (const auto& m : fs_.messages) {
        ledger_expunged(us.ledger, m, folder);
    }
    std::string bytes;
    append_retired_origins(bytes, retired_origins(us.ledger, folder));
    append_record(bytes, FolderDeletedRec{folder});
    if (auto r = append_registry_bytes(us, bytes); !r) {
        for (const auto& m : fs_.messages) { // undo: they are still live
            if (!has_origin_fields(m.origin)) {
                continue;
            }
            auto it = us.ledger.find(origin_key(m.origin.account, m.origin.uidl));
            if (it != us.ledger.end() && it->second.folder == folder && it->second.uid == m.uid) {
                it->second.expunged = false;
            }
        }
        return r;
    }
    std::erase_if(compact_wanted_,
                  [&](const auto& w) { return w.first == us.name && w.second == folder; });
    std::vector<Listener*> listeners = std::move(fs_.listeners);
    fs::path dir = fs_.dir;
    us.folders.erase(folder);
    std::error_code ec;
    fs::remove_all(dir, ec); // failure leaves an orphan directory, removed at next open
    for (Listener* l : listeners) {
        if (l) {
            l->on_folder_deleted();
        }
    }
    return {};
}

Result<void> Store::subscribe_name(std::string_view user, std::string_view name) {
    auto u = load_user(user);
    if (!u) {
        return tl::unexpected(u.error());
    }
    if (auto v = validate_folder_name(name); !v) {
        return tl::unexpected(v.error());
    }
    if ((*u)->subscriptions.count(name)) {
        return {};
    }
    if (auto r = append_registry(**u, SubscribedRec{std::string(name)}); !r) {
        return r;
    }
    (*u)->subscriptions.emplace(name);
    return {};
}

Result<void> Store::unsubscribe_name(std::string_view user, std::string_view name) {
    auto u = load_user(user);
    if (!u) {
        return tl::unexpected(u.error());
    }
    if (auto v = validate_folder_name(name); !v) {
        return tl::unexpected(v.error());
    }
    auto it = (*u)->subscriptions.find(name);
    if (it == (*u)->subscriptions.end()) {
        return {};
    }
    if (auto r = append_registry(**u, UnsubscribedRec{std::string(name)}); !r) {
        return r;
    }
    (*u)->subscriptions.erase(it);
    return {};
}

Result<std::vector<std::string>> Store::list_subscribed(std::string_view user) {
    auto u = load_user(user);
    if (!u) {
        return tl::unexpected(u.error());
    }
    return std::vector<std::string>((*u)->subscriptions.begin(), (*u)->subscriptions.end());
}

} // namespace popbridge::store
