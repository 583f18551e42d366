#pragma once
// A small in-memory imap::Backend for the fuzz targets and the hostile-input tests: one user
// ("alice" / "secret"), an INBOX of three messages, an empty "Empty" mailbox. Every call is
// synchronous and counted, so callers can bound the work a session asked for.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/imap/backend.h"
#include "protocol/imap/flags.h"

namespace popbridge::testing {

class FakeBackend : public protocol::imap::Backend {
public:
    FakeBackend() {
        inbox_.uid_validity = 1700000000;
        inbox_.uid_next = 12;
        add(3, "Subject: one\r\nFrom: a@example.org\r\n\r\nHello\r\n", protocol::imap::kFlagSeen);
        add(7, "Subject: two\r\n\r\nBody two\r\n", 0);
        add(11, "Subject: three\r\nTo: b@example.org\r\n\r\nThree\r\n",
            protocol::imap::kFlagFlagged);
    }

    void login(std::string_view user, std::string_view password,
               std::function<void(bool)> done) override {
        ++logins;
        last_user.assign(user);
        done(user == "alice" && password == "secret");
    }

    protocol::imap::Result<protocol::imap::MailboxSnapshot> select(std::string_view mailbox,
                                                                   bool read_only) override {
        ++selects;
        last_mailbox.assign(mailbox);
        if (mailbox == "INBOX") {
            auto s = inbox_;
            s.read_only = read_only;
            return s;
        }
        if (mailbox == "Empty") {
            protocol::imap::MailboxSnapshot s;
            s.uid_validity = 5;
            s.uid_next = 1;
            s.read_only = read_only;
            return s;
        }
        return tl::unexpected(
            protocol::imap::Error{protocol::imap::StorageErrc::NotFound, "No such mailbox", false});
    }

    protocol::imap::Result<std::string> read_message(std::uint32_t uid) override {
        ++reads;
        auto it = bodies_.find(uid);
        if (it == bodies_.end())
            return tl::unexpected(
                protocol::imap::Error{protocol::imap::StorageErrc::Expunged, "gone", false});
        return it->second;
    }

    void store_flags(std::vector<std::uint32_t> uids, protocol::imap::FlagOp, std::uint32_t,
                     std::vector<std::string>,
                     std::function<void(protocol::imap::Result<void>)> done) override {
        ++stores;
        store_uids += uids.size();
        done({});
    }

    void unselect() override { ++unselects; }

    protocol::imap::Result<std::vector<protocol::imap::MailboxInfo>> list_mailboxes() override {
        ++lists;
        std::vector<protocol::imap::MailboxInfo> all(2);
        all[0].name = "INBOX";
        all[0].subscribed = true;
        all[1].name = "Empty";
        return all;
    }

    protocol::imap::Result<protocol::imap::MailboxStatus>
    status(std::string_view mailbox) override {
        auto s = select(mailbox, true);
        if (!s)
            return tl::unexpected(s.error());
        protocol::imap::MailboxStatus st;
        st.messages = static_cast<std::uint32_t>(s->messages.size());
        st.uid_next = s->uid_next;
        st.uid_validity = s->uid_validity;
        return st;
    }

    // Mailbox management is refused: the fuzz targets must not grow state without bound.
    protocol::imap::Result<void> create_mailbox(std::string_view name) override {
        last_mailbox.assign(name);
        return refuse();
    }
    protocol::imap::Result<void> delete_mailbox(std::string_view name) override {
        last_mailbox.assign(name);
        return refuse();
    }
    protocol::imap::Result<void> rename_mailbox(std::string_view, std::string_view to) override {
        last_mailbox.assign(to);
        return refuse();
    }
    protocol::imap::Result<void> set_subscribed(std::string_view, bool) override { return {}; }

    void append(
        std::string_view mailbox, std::string message, std::uint32_t, std::vector<std::string>,
        std::optional<std::int64_t>,
        std::function<void(protocol::imap::Result<protocol::imap::AppendResult>)> done) override {
        ++appends;
        append_bytes += message.size();
        if (mailbox != "INBOX") {
            done(tl::unexpected(protocol::imap::Error{protocol::imap::StorageErrc::NotFound,
                                                      "No such mailbox", false}));
            return;
        }
        done(protocol::imap::AppendResult{1700000000, 12});
    }

    void
    copy(std::vector<std::uint32_t> uids, std::string_view, bool,
         std::function<void(protocol::imap::Result<protocol::imap::CopyResult>)> done) override {
        ++copies;
        store_uids += uids.size();
        done(tl::unexpected(protocol::imap::Error{protocol::imap::StorageErrc::NotFound,
                                                  "No such mailbox", false}));
    }

    void
    expunge(std::optional<std::vector<std::uint32_t>>,
            std::function<void(protocol::imap::Result<std::vector<std::uint32_t>>)> done) override {
        done(std::vector<std::uint32_t>{});
    }

    // Appends a message to INBOX with the given metadata (uids must keep ascending).
    void add_message(const protocol::imap::MessageMeta& meta, std::string body) {
        inbox_.messages.push_back(meta);
        inbox_.messages.back().size = body.size();
        if (meta.uid >= inbox_.uid_next)
            inbox_.uid_next = meta.uid + 1;
        bodies_[meta.uid] = std::move(body);
    }

    std::size_t logins = 0, selects = 0, reads = 0, stores = 0, store_uids = 0, unselects = 0,
                lists = 0, appends = 0, append_bytes = 0, copies = 0;
    std::string last_user, last_mailbox;

private:
    static protocol::imap::Result<void> refuse() {
        return tl::unexpected(protocol::imap::Error{protocol::imap::StorageErrc::NoPermission,
                                                    "Not in this test backend", false});
    }

    void add(std::uint32_t uid, std::string body, std::uint32_t flags) {
        protocol::imap::MessageMeta m;
        m.uid = uid;
        m.size = body.size();
        m.internal_date = 1709210096 + uid;
        m.tz_offset_minutes = 60;
        m.flags = flags;
        m.modseq = uid;
        inbox_.messages.push_back(m);
        bodies_[uid] = std::move(body);
    }

    protocol::imap::MailboxSnapshot inbox_;
    std::map<std::uint32_t, std::string> bodies_;
};

} // namespace popbridge::testing
