// CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE, LIST, LSUB, STATUS, APPEND.
#include <algorithm>
#include <map>

#include "protocol/imap/mailbox_name.h"
#include "protocol/imap/server.h"

namespace popbridge::protocol::imap {

namespace {

constexpr char kSep = '/';

// list-mailbox matching: '*' matches anything, '%' anything but the separator. Simulated as
// an NFA over pattern positions: O(name * pattern), never exponential.
bool list_match(std::string_view pattern, std::string_view name) {
    const std::size_t m = pattern.size();
    std::vector<char> cur(m + 1, 0), next(m + 1, 0);
    auto close = [&](std::vector<char>& st) {
        for (std::size_t j = 0; j < m; ++j)
            if (st[j] && (pattern[j] == '*' || pattern[j] == '%'))
                st[j + 1] = 1;
    };
    cur[0] = 1;
    close(cur);
    for (char c : name) {
        std::fill(next.begin(), next.end(), 0);
        bool any = false;
        for (std::size_t j = 0; j < m; ++j) {
            if (!cur[j])
                continue;
            char p = pattern[j];
            if (p == '*' || (p == '%' && c != kSep)) {
                next[j] = 1;
                any = true;
            } else if (p == c) {
                next[j + 1] = 1;
                any = true;
            }
        }
        if (!any)
            return false;
        close(next);
        cur.swap(next);
    }
    return cur[m] != 0;
}

bool name_matches(std::string_view pattern, std::string_view name) {
    if (list_match(pattern, name))
        return true;
    // INBOX is case-insensitive: "inbox", "Inbox/%"...
    if (pattern.size() >= 5 && is_inbox(pattern.substr(0, 5))) {
        std::string p = "INBOX";
        p += pattern.substr(5);
        return list_match(p, name);
    }
    return false;
}

struct ListEntry {
    bool exists = false;
    bool subscribed = false;
    bool has_children = false;
    bool child_subscribed = false;
    std::string special_use;
};

std::string quoted_name(std::string_view utf8) {
    std::string out;
    auto enc = encode_mailbox_name(utf8);
    write_string(out, enc ? *enc : std::string(utf8));
    return out;
}

void append_status_items(std::string& out, const std::vector<StatusItem>& items,
                         const MailboxStatus& st) {
    out += "(";
    bool first = true;
    for (StatusItem i : items) {
        if (!first)
            out += " ";
        first = false;
        out += to_string(i);
        out += " ";
        switch (i) {
        case StatusItem::Messages:
            out += std::to_string(st.messages);
            break;
        case StatusItem::Recent:
            out += std::to_string(st.recent);
            break;
        case StatusItem::UidNext:
            out += std::to_string(st.uid_next);
            break;
        case StatusItem::UidValidity:
            out += std::to_string(st.uid_validity);
            break;
        case StatusItem::Unseen:
            out += std::to_string(st.unseen);
            break;
        case StatusItem::Deleted:
            out += std::to_string(st.deleted);
            break;
        case StatusItem::Size:
            out += std::to_string(st.size);
            break;
        case StatusItem::HighestModSeq:
            out += std::to_string(st.highest_modseq);
            break;
        }
    }
    out += ")";
}

std::string strip_trailing_separator(std::string name) {
    while (name.size() > 1 && name.back() == kSep)
        name.pop_back();
    return name;
}

bool valid_new_name(std::string_view name) {
    if (name.empty() || name.front() == kSep)
        return false;
    // Empty levels ("a//b") and the wildcards cannot be named in LIST.
    return name.find("//") == std::string_view::npos &&
           name.find_first_of("%*") == std::string_view::npos;
}

} // namespace

void Session::exec_mailbox(const Command& cmd, const MailboxArgs& args) {
    Result<void> r;
    std::string_view done_text;
    switch (cmd.id) {
    case CommandId::Create: {
        std::string name = strip_trailing_separator(args.mailbox);
        if (is_inbox(name)) {
            finish(cmd.tag, RespStatus::No, {RespCode::AlreadyExists, {}}, "INBOX always exists");
            return;
        }
        if (!valid_new_name(name)) {
            finish(cmd.tag, RespStatus::No, {RespCode::Cannot, {}}, "Invalid mailbox name");
            return;
        }
        r = backend_.create_mailbox(name);
        done_text = "CREATE completed";
        break;
    }
    case CommandId::Delete:
        if (is_inbox(args.mailbox)) {
            finish(cmd.tag, RespStatus::No, {RespCode::Cannot, {}}, "INBOX cannot be deleted");
            return;
        }
        if (auto* sel = std::get_if<Selected>(&state_);
            sel != nullptr && sel->mailbox == args.mailbox) {
            finish(cmd.tag, RespStatus::No, {RespCode::InUse, {}},
                   "Mailbox is selected; close it first");
            return;
        }
        r = backend_.delete_mailbox(args.mailbox);
        done_text = "DELETE completed";
        break;
    case CommandId::Subscribe:
        r = backend_.set_subscribed(args.mailbox, true);
        done_text = "SUBSCRIBE completed";
        break;
    default:
        r = backend_.set_subscribed(args.mailbox, false);
        done_text = "UNSUBSCRIBE completed";
        break;
    }
    if (!r) {
        storage_failure(cmd.tag, r.error(), "Operation failed");
        return;
    }
    finish(cmd.tag, RespStatus::Ok, {}, done_text);
}

void Session::exec_rename(const Command& cmd, const RenameArgs& args) {
    std::string to = strip_trailing_separator(args.to);
    if (is_inbox(to)) {
        finish(cmd.tag, RespStatus::No, {RespCode::AlreadyExists, {}}, "INBOX always exists");
        return;
    }
    if (!valid_new_name(to)) {
        finish(cmd.tag, RespStatus::No, {RespCode::Cannot, {}}, "Invalid mailbox name");
        return;
    }
    auto r = backend_.rename_mailbox(args.from, to);
    if (!r) {
        storage_failure(cmd.tag, r.error(), "RENAME failed");
        return;
    }
    finish(cmd.tag, RespStatus::Ok, {}, "RENAME completed");
}

void Session::exec_status(const Command& cmd, const StatusArgs& args) {
    auto st = backend_.status(args.mailbox);
    if (!st) {
        storage_failure(cmd.tag, st.error(), "STATUS failed");
        return;
    }
    std::string line = "STATUS " + quoted_name(args.mailbox) + " ";
    append_status_items(line, args.items, *st);
    write_untagged(output_, line);
    finish(cmd.tag, RespStatus::Ok, {}, "STATUS completed");
}

void Session::exec_list(const Command& cmd, const ListArgs& args) {
    const char* verb = args.lsub ? "LSUB" : "LIST";
    // LIST "" "": the hierarchy delimiter and root (RFC 3501 6.3.8).
    if (!args.extended && args.patterns.size() == 1 && args.patterns[0].empty()) {
        write_untagged(output_, std::string(verb) + " (\\Noselect) \"/\" \"\"");
        finish(cmd.tag, RespStatus::Ok, {}, std::string(verb) + " completed");
        return;
    }
    auto all = backend_.list_mailboxes();
    if (!all) {
        storage_failure(cmd.tag, all.error(), "LIST failed");
        return;
    }
    // Every mailbox plus the parents its name implies, with what LIST needs to know.
    std::map<std::string, ListEntry> entries;
    for (const MailboxInfo& mb : *all) {
        ListEntry& e = entries[mb.name];
        e.exists = true;
        e.subscribed = mb.subscribed;
        e.special_use = mb.special_use;
        for (auto pos = mb.name.find(kSep); pos != std::string::npos;
             pos = mb.name.find(kSep, pos + 1)) {
            ListEntry& parent = entries[mb.name.substr(0, pos)];
            parent.has_children = true;
            if (mb.subscribed)
                parent.child_subscribed = true;
        }
    }
    if (entries.find("INBOX") == entries.end())
        entries["INBOX"].exists = true;

    std::vector<std::string> patterns;
    for (const std::string& p : args.patterns)
        patterns.push_back(args.reference + p);

    bool sub_only = args.lsub || args.select_subscribed;
    bool show_subscribed = args.select_subscribed || args.return_subscribed;
    for (const auto& entry : entries) {
        // Named references, not a structured binding: clang 14 (the fuzz build) does not let
        // a lambda capture a binding.
        const std::string& name = entry.first;
        const ListEntry& e = entry.second;
        if (!std::any_of(patterns.begin(), patterns.end(),
                         [&](const std::string& p) { return name_matches(p, name); }))
            continue;
        bool child_info = false;
        if (sub_only && !e.subscribed) {
            // RECURSIVEMATCH (RFC 5258 3.5): a parent whose child is subscribed is listed
            // with CHILDINFO. LSUB shows such a parent as \Noselect when '%' hid the child.
            bool percent_hides_child =
                args.lsub && e.child_subscribed &&
                std::any_of(patterns.begin(), patterns.end(),
                            [](const std::string& p) { return !p.empty() && p.back() == '%'; });
            child_info = args.select_recursive && e.child_subscribed;
            if (!child_info && !percent_hides_child)
                continue;
        }
        if (args.select_special_use && e.special_use.empty())
            continue;
        std::vector<std::string> attrs;
        if (!e.exists)
            attrs.push_back(args.extended ? "\\NonExistent" : "\\Noselect");
        if (!args.lsub || e.exists)
            attrs.push_back(e.has_children ? "\\HasChildren" : "\\HasNoChildren");
        if (show_subscribed && e.subscribed)
            attrs.push_back("\\Subscribed");
        if (!e.special_use.empty() && !args.lsub)
            attrs.push_back(e.special_use);
        if (args.lsub && !e.subscribed)
            attrs = {"\\Noselect"};
        std::string line = std::string(verb) + " (";
        for (std::size_t i = 0; i < attrs.size(); ++i) {
            if (i != 0)
                line += " ";
            line += attrs[i];
        }
        line += ") \"/\" " + quoted_name(name);
        if (child_info)
            line += " (\"CHILDINFO\" (\"SUBSCRIBED\"))";
        write_untagged(output_, line);
        if (!args.return_status.empty() && e.exists) {
            auto st = backend_.status(name);
            if (st) {
                std::string sline = "STATUS " + quoted_name(name) + " ";
                append_status_items(sline, args.return_status, *st);
                write_untagged(output_, sline);
            }
        }
    }
    finish(cmd.tag, RespStatus::Ok, {}, std::string(verb) + " completed");
}

void Session::exec_append(const Command& cmd, AppendArgs args) {
    busy_ = true;
    std::weak_ptr<int> alive = alive_;
    std::string tag = cmd.tag;
    backend_.append(args.mailbox, std::move(args.message), args.flags & kPermanentFlagBits,
                    std::move(args.keywords), args.date,
                    [this, alive, tag](Result<AppendResult> r) {
                        if (alive.expired() || !busy_)
                            return;
                        if (!r) {
                            destination_failure(tag, r.error(), "APPEND failed");
                        } else {
                            finish(tag, RespStatus::Ok,
                                   {RespCode::AppendUid,
                                    std::to_string(r->uid_validity) + " " + std::to_string(r->uid)},
                                   "APPEND completed");
                        }
                        after_async();
                    });
}

} // namespace popbridge::protocol::imap
