#pragma once
// In-memory Backend for session tests: INBOX (uids 3, 7, 11), "Empty", plus whatever the
// test creates. Records every call in `calls`; flag, expunge, copy and append calls may be
// made to answer later (async_*), like the real store does after its fsync.

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "protocol/imap/backend.h"
#include "protocol/imap/server.h"

namespace popbridge::protocol::imap::test {

struct FakeMailbox {
    MailboxSnapshot snap;
    std::map<std::uint32_t, std::string> bodies;
    std::string special_use;
};

class FakeBackend : public Backend {
public:
    bool async_login = false;
    bool async_store = false;
    std::function<void(bool)> pending_login;
    std::function<void(Result<void>)> pending_store;
    std::vector<std::string> calls;
    std::map<std::string, FakeMailbox> boxes; // declared before the references into it
    std::map<std::uint32_t, std::string>& bodies;
    MailboxSnapshot& inbox;
    std::set<std::string> subscribed{"INBOX", "Sent"};
    std::string selected_name;
    bool selected = false;
    int idle_calls = 0;
    // When set, flag changes are echoed to this session like the store's change events.
    Session* session = nullptr;

    FakeBackend() : bodies(boxes["INBOX"].bodies), inbox(boxes["INBOX"].snap) {
        inbox.uid_validity = 1700000000;
        inbox.uid_next = 12;
        add(3, "Subject: one\r\nFrom: a@example.org\r\n\r\nHello\r\n", kFlagSeen);
        add(7, "Subject: two\r\n\r\nBody two\r\n", 0);
        add(11, "Subject: three\r\nTo: b@example.org\r\n\r\nThree\r\n", kFlagFlagged);
        boxes["Empty"].snap.uid_validity = 5;
        boxes["Empty"].snap.uid_next = 1;
        boxes["Sent"].snap.uid_validity = 6;
        boxes["Sent"].snap.uid_next = 1;
        boxes["Sent"].special_use = "\\Sent";
    }
    void add(std::uint32_t uid, std::string body, std::uint32_t flags) {
        MessageMeta m;
        m.uid = uid;
        m.size = body.size();
        m.internal_date = 1709210096 + uid;
        m.tz_offset_minutes = 60;
        m.flags = flags;
        m.modseq = uid;
        inbox.messages.push_back(m);
        bodies[uid] = std::move(body);
    }
    FakeMailbox* current() {
        auto it = boxes.find(selected_name);
        return selected && it != boxes.end() ? &it->second : nullptr;
    }
    MessageMeta* find(FakeMailbox& b, std::uint32_t uid) {
        for (MessageMeta& m : b.snap.messages)
            if (m.uid == uid)
                return &m;
        return nullptr;
    }

    void login(std::string_view user, std::string_view password,
               std::function<void(bool)> done) override {
        calls.push_back("login " + std::string(user) + " " + std::string(password));
        bool ok = user == "alice" && password == "secret";
        if (async_login)
            pending_login = [done, ok](bool) { done(ok); };
        else
            done(ok);
    }
    Result<MailboxSnapshot> select(std::string_view mailbox, bool read_only) override {
        calls.push_back("select " + std::string(mailbox) + (read_only ? " ro" : " rw"));
        auto it = boxes.find(std::string(mailbox));
        if (it == boxes.end())
            return make_error(StorageErrc::NotFound, "No such mailbox");
        selected = true;
        selected_name = it->first;
        return it->second.snap;
    }
    Result<std::string> read_message(std::uint32_t uid) override {
        calls.push_back("read " + std::to_string(uid));
        FakeMailbox* b = current();
        if (b == nullptr)
            return make_error(StorageErrc::NotFound, "none");
        auto it = b->bodies.find(uid);
        if (it == b->bodies.end())
            return make_error(StorageErrc::Expunged, "gone");
        return it->second;
    }
    void apply_flags(const std::vector<std::uint32_t>& uids, FlagOp op, std::uint32_t flags,
                     const std::vector<std::string>& keywords) {
        FakeMailbox* b = current();
        if (b == nullptr)
            return;
        for (std::uint32_t u : uids) {
            MessageMeta* m = find(*b, u);
            if (m == nullptr)
                continue;
            if (op == FlagOp::Add) {
                m->flags |= flags;
                for (const auto& k : keywords)
                    if (std::find(m->keywords.begin(), m->keywords.end(), k) == m->keywords.end())
                        m->keywords.push_back(k);
            } else if (op == FlagOp::Remove) {
                m->flags &= ~flags;
                std::erase_if(m->keywords, [&](const std::string& k) {
                    return std::find(keywords.begin(), keywords.end(), k) != keywords.end();
                });
            } else {
                m->flags = flags;
                m->keywords = keywords;
            }
            m->modseq = ++b->snap.highest_modseq + 100;
            if (session != nullptr)
                session->on_flags_changed(m->uid, m->flags, m->keywords, m->modseq);
        }
    }
    void store_flags(std::vector<std::uint32_t> uids, FlagOp op, std::uint32_t flags,
                     std::vector<std::string> keywords,
                     std::function<void(Result<void>)> done) override {
        std::string c = "store " + std::string(to_string(op)) + " " + std::to_string(flags);
        for (auto u : uids)
            c += " " + std::to_string(u);
        for (const auto& k : keywords)
            c += " " + k;
        calls.push_back(c);
        apply_flags(uids, op, flags, keywords);
        if (async_store)
            pending_store = done;
        else
            done({});
    }
    void store_flags_ex(std::vector<std::uint32_t> uids, FlagOp op, std::uint32_t flags,
                        std::vector<std::string> keywords,
                        std::optional<std::uint64_t> unchanged_since,
                        std::function<void(Result<StoreResult>)> done) override {
        StoreResult r;
        if (unchanged_since) {
            FakeMailbox* b = current();
            std::vector<std::uint32_t> keep;
            for (std::uint32_t u : uids) {
                MessageMeta* m = b ? find(*b, u) : nullptr;
                if (m != nullptr && m->modseq > *unchanged_since)
                    r.modified.push_back(u);
                else
                    keep.push_back(u);
            }
            uids = keep;
        }
        store_flags(std::move(uids), op, flags, std::move(keywords), [r, done](Result<void> v) {
            if (v)
                done(r);
            else
                done(tl::unexpected(v.error()));
        });
    }
    void unselect() override {
        calls.push_back("unselect");
        selected = false;
    }
    Result<std::vector<MailboxInfo>> list_mailboxes() override {
        calls.push_back("list");
        std::vector<MailboxInfo> out;
        for (const auto& [name, b] : boxes)
            out.push_back({name, subscribed.count(name) != 0, b.special_use});
        return out;
    }
    Result<MailboxStatus> status(std::string_view mailbox) override {
        auto it = boxes.find(std::string(mailbox));
        if (it == boxes.end())
            return make_error(StorageErrc::NotFound, "No such mailbox");
        MailboxStatus st;
        const MailboxSnapshot& s = it->second.snap;
        st.messages = static_cast<std::uint32_t>(s.messages.size());
        st.uid_next = s.uid_next;
        st.uid_validity = s.uid_validity;
        st.highest_modseq = s.highest_modseq;
        for (const MessageMeta& m : s.messages) {
            st.unseen += (m.flags & kFlagSeen) == 0;
            st.deleted += (m.flags & kFlagDeleted) != 0;
            st.size += m.size;
        }
        return st;
    }
    Result<void> create_mailbox(std::string_view mailbox) override {
        calls.push_back("create " + std::string(mailbox));
        if (boxes.count(std::string(mailbox)))
            return make_error(StorageErrc::AlreadyExists, "Mailbox exists");
        FakeMailbox& b = boxes[std::string(mailbox)];
        b.snap.uid_validity = 100 + static_cast<std::uint32_t>(boxes.size());
        b.snap.uid_next = 1;
        return {};
    }
    Result<void> delete_mailbox(std::string_view mailbox) override {
        calls.push_back("delete " + std::string(mailbox));
        if (!boxes.erase(std::string(mailbox)))
            return make_error(StorageErrc::NotFound, "No such mailbox");
        return {};
    }
    Result<void> rename_mailbox(std::string_view from, std::string_view to) override {
        calls.push_back("rename " + std::string(from) + " " + std::string(to));
        auto it = boxes.find(std::string(from));
        if (it == boxes.end())
            return make_error(StorageErrc::NotFound, "No such mailbox");
        if (boxes.count(std::string(to)))
            return make_error(StorageErrc::AlreadyExists, "Mailbox exists");
        boxes[std::string(to)] = it->second;
        boxes.erase(it);
        return {};
    }
    Result<void> set_subscribed(std::string_view mailbox, bool on) override {
        calls.push_back(std::string(on ? "subscribe " : "unsubscribe ") + std::string(mailbox));
        if (on)
            subscribed.insert(std::string(mailbox));
        else
            subscribed.erase(std::string(mailbox));
        return {};
    }
    void append(std::string_view mailbox, std::string message, std::uint32_t flags,
                std::vector<std::string> keywords, std::optional<std::int64_t> date,
                std::function<void(Result<AppendResult>)> done) override {
        calls.push_back("append " + std::string(mailbox) + " " + std::to_string(flags) + " " +
                        std::to_string(date.value_or(-1)) + " " + std::to_string(message.size()));
        auto it = boxes.find(std::string(mailbox));
        if (it == boxes.end()) {
            done(make_error(StorageErrc::NotFound, "No such mailbox"));
            return;
        }
        MailboxSnapshot& s = it->second.snap;
        MessageMeta m;
        m.uid = s.uid_next++;
        m.size = message.size();
        m.flags = flags;
        m.keywords = keywords;
        it->second.bodies[m.uid] = std::move(message);
        s.messages.push_back(m);
        done(AppendResult{s.uid_validity, m.uid});
    }
    void copy(std::vector<std::uint32_t> uids, std::string_view dest, bool move,
              std::function<void(Result<CopyResult>)> done) override {
        std::string c = std::string(move ? "move" : "copy");
        for (auto u : uids)
            c += " " + std::to_string(u);
        calls.push_back(c + " " + std::string(dest));
        auto it = boxes.find(std::string(dest));
        FakeMailbox* src = current();
        if (it == boxes.end() || src == nullptr) {
            done(make_error(StorageErrc::NotFound, "No such mailbox"));
            return;
        }
        CopyResult r;
        r.uid_validity = it->second.snap.uid_validity;
        for (std::uint32_t u : uids) {
            MessageMeta* m = find(*src, u);
            if (m == nullptr)
                continue;
            MessageMeta copy = *m;
            copy.uid = it->second.snap.uid_next++;
            it->second.snap.messages.push_back(copy);
            it->second.bodies[copy.uid] = src->bodies[u];
            r.source_uids.push_back(u);
            r.dest_uids.push_back(copy.uid);
        }
        if (move)
            for (std::uint32_t u : r.source_uids) {
                std::erase_if(src->snap.messages, [u](const MessageMeta& m) { return m.uid == u; });
                src->bodies.erase(u);
            }
        done(std::move(r));
    }
    void expunge(std::optional<std::vector<std::uint32_t>> uids,
                 std::function<void(Result<std::vector<std::uint32_t>>)> done) override {
        calls.push_back(uids ? "uid-expunge" : "expunge");
        FakeMailbox* b = current();
        std::vector<std::uint32_t> gone;
        if (b != nullptr) {
            for (const MessageMeta& m : b->snap.messages)
                if ((m.flags & kFlagDeleted) != 0 &&
                    (!uids || std::find(uids->begin(), uids->end(), m.uid) != uids->end()))
                    gone.push_back(m.uid);
            for (std::uint32_t u : gone) {
                std::erase_if(b->snap.messages, [u](const MessageMeta& m) { return m.uid == u; });
                b->bodies.erase(u);
            }
        }
        done(std::move(gone));
    }
    void idle_started() override { ++idle_calls; }
};

} // namespace popbridge::protocol::imap::test
