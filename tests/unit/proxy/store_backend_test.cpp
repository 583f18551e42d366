// StoreBackend over a real store: ENVELOPE/BODYSTRUCTURE come from the process-wide
// structure cache, so a second FETCH (from this or another connection) does not read or
// parse the message again.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>

#include <uv.h>

#include "proxy/password.h"
#include "proxy/store_backend.h"
#include "proxy/store_sync.h"
#include "store/store.h"

using namespace popbridge;

namespace {

struct TempDir {
    std::filesystem::path path;
    TempDir() {
        std::string tmpl = (std::filesystem::temp_directory_path() / "pb-backend-XXXXXX").string();
        REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
        path = tmpl;
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
};

struct Accounts : proxy::AccountDirectory {
    std::string hash;
    std::optional<std::string> password_hash(const std::string& user) const override {
        return user == "cachetest" ? std::optional<std::string>(hash) : std::nullopt;
    }
    void folder_opened(const std::string&, const std::string&) override {}
};

template <class Pred>
void run_until(uv_loop_t* loop, Pred done) {
    while (!done())
        REQUIRE(uv_run(loop, UV_RUN_ONCE) >= 0);
}

const std::string kMessage = "From: Carol <carol@example.com>\r\n"
                             "Subject: cached\r\n"
                             "Content-Type: multipart/mixed; boundary=b\r\n"
                             "\r\n"
                             "--b\r\n"
                             "\r\n"
                             "one\r\n"
                             "--b--\r\n";

} // namespace

TEST_CASE("store backend: ENVELOPE and BODYSTRUCTURE cached across connections",
          "[proxy][store_backend]") {
    uv_loop_t loop;
    REQUIRE(uv_loop_init(&loop) == 0);
    TempDir dir;
    {
        store::StoreOptions o;
        o.data_dir = dir.path / "data";
        o.hostname = "testhost";
        auto opened = store::Store::open(o);
        REQUIRE(opened);
        store::Store& st = **opened;
        REQUIRE(st.open_user("cachetest"));
        proxy::StoreSync sync(&loop, st);
        auto ticket = st.append("cachetest", store::kInbox, kMessage, {}, {}, 1700000000);
        REQUIRE(ticket);
        bool stored = false;
        sync.wait(*ticket, [&](const store::Outcome& out) {
            REQUIRE(out.result);
            stored = true;
        });
        sync.kick();
        run_until(&loop, [&] { return stored; });

        Accounts accounts;
        auto hash = proxy::hash_password("pw");
        REQUIRE(hash);
        accounts.hash = *hash;
        proxy::BackendServices svc{&loop, &st, &sync, &accounts};
        auto connect = [&](proxy::StoreBackend& b) {
            int result = -1;
            b.login("cachetest", "pw", [&](bool ok) { result = ok ? 1 : 0; });
            run_until(&loop, [&] { return result >= 0; });
            REQUIRE(result == 1);
            auto snap = b.select("INBOX", true);
            REQUIRE(snap);
            REQUIRE(snap->index);
            REQUIRE(snap->index->size() == 1);
            return (*snap->index)[0].uid;
        };

        proxy::StoreBackend first(svc, "127.0.0.1:1");
        std::uint32_t uid = connect(first);
        auto& cache = proxy::shared_structure_cache();
        std::uint64_t misses = cache.misses();
        auto s1 = first.message_structure(uid, nullptr);
        REQUIRE(s1);
        CHECK(cache.misses() == misses + 1);
        CHECK((*s1)->envelope == "(NIL \"cached\" ((\"Carol\" NIL \"carol\" \"example.com\")) "
                                 "((\"Carol\" NIL \"carol\" \"example.com\")) ((\"Carol\" NIL "
                                 "\"carol\" \"example.com\")) NIL NIL NIL NIL NIL)");
        CHECK((*s1)->bodystructure == "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL "
                                      "\"7bit\" 3 0 NIL NIL NIL NIL) \"mixed\" (\"boundary\" "
                                      "\"b\") NIL NIL NIL)");

        // With the file gone, the bytes are unavailable but the structure is still served:
        // it came from the cache, not from a new read and parse.
        auto path = st.message_path("cachetest", store::kInbox, uid);
        REQUIRE(path);
        REQUIRE(std::filesystem::remove(*path));
        auto bytes = first.read_message(uid);
        REQUIRE_FALSE(bytes);
        CHECK(bytes.error().code == protocol::imap::StorageErrc::Expunged);
        auto s2 = first.message_structure(uid, nullptr);
        REQUIRE(s2);
        CHECK(s2->get() == s1->get());

        // Another connection of the same user shares it.
        proxy::StoreBackend second(svc, "127.0.0.1:2");
        CHECK(connect(second) == uid);
        auto s3 = second.message_structure(uid, nullptr);
        REQUIRE(s3);
        CHECK(s3->get() == s1->get());
        // A message that is not cached and cannot be read is an error, not a structure.
        auto missing = second.message_structure(uid + 1, nullptr);
        REQUIRE_FALSE(missing);
        // Without a selected mailbox nothing is served.
        second.unselect();
        CHECK_FALSE(second.message_structure(uid, nullptr));
        first.unselect();
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(uv_loop_close(&loop) == 0);
}

TEST_CASE("store backend: sessions that select the same folder share one message index",
          "[proxy][store_backend]") {
    namespace imap = protocol::imap;
    uv_loop_t loop;
    REQUIRE(uv_loop_init(&loop) == 0);
    TempDir dir;
    {
        store::StoreOptions o;
        o.data_dir = dir.path / "data";
        o.hostname = "testhost";
        auto opened = store::Store::open(o);
        REQUIRE(opened);
        store::Store& st = **opened;
        REQUIRE(st.open_user("cachetest"));
        proxy::StoreSync sync(&loop, st);
        auto commit = [&](store::Result<store::Ticket> ticket) {
            REQUIRE(ticket);
            bool done = false;
            sync.wait(*ticket, [&](const store::Outcome& out) {
                REQUIRE(out.result);
                done = true;
            });
            sync.kick();
            run_until(&loop, [&] { return done; });
        };
        for (int i = 0; i < 300; ++i)
            commit(st.append("cachetest", store::kInbox, kMessage, {}, {}, 1700000000 + i));

        Accounts accounts;
        auto hash = proxy::hash_password("pw");
        REQUIRE(hash);
        accounts.hash = *hash;
        proxy::BackendServices svc{&loop, &st, &sync, &accounts};
        std::vector<std::unique_ptr<proxy::StoreBackend>> backends;
        std::vector<std::shared_ptr<const imap::MessageIndex>> selected;
        CHECK(proxy::shared_folder_count() == 0);
        for (int i = 0; i < 8; ++i) {
            backends.push_back(std::make_unique<proxy::StoreBackend>(svc, "127.0.0.1:3"));
            int result = -1;
            backends.back()->login("cachetest", "pw", [&](bool ok) { result = ok ? 1 : 0; });
            run_until(&loop, [&] { return result >= 0; });
            REQUIRE(result == 1);
            auto snap = backends.back()->select("INBOX", false);
            REQUIRE(snap);
            REQUIRE(snap->index);
            CHECK(snap->messages.empty()); // nothing copied per session
            CHECK(snap->index->size() == 300);
            selected.push_back(snap->index);
        }
        // One index for all eight sessions (the old design built a copy per SELECT).
        for (const auto& idx : selected)
            CHECK(idx.get() == selected[0].get());
        CHECK(proxy::shared_folder_count() == 1);

        // A flag change makes one new version for everyone, sharing the untouched chunk.
        auto view = st.view("cachetest", store::kInbox);
        REQUIRE(view);
        std::vector<store::Uid> uid{view->messages[5].uid};
        commit(st.set_flags("cachetest", store::kInbox, uid, store::FlagOp::Add,
                            store::Flags{std::uint8_t(imap::kFlagSeen)}, {}, std::nullopt));
        auto now = backends[0]->current_index();
        REQUIRE(now);
        CHECK(now != selected[0]);
        CHECK(((*now)[5].flags & imap::kFlagSeen) != 0);
        CHECK(((*selected[0])[5].flags & imap::kFlagSeen) == 0);
        CHECK(now->shared_chunks(*selected[0]) == 1);
        for (auto& b : backends)
            CHECK(b->current_index() == now);

        // A session selecting now gets the current version; closing them all frees it.
        backends.push_back(std::make_unique<proxy::StoreBackend>(svc, "127.0.0.1:4"));
        int result = -1;
        backends.back()->login("cachetest", "pw", [&](bool ok) { result = ok ? 1 : 0; });
        run_until(&loop, [&] { return result >= 0; });
        auto snap = backends.back()->select("INBOX", true);
        REQUIRE(snap);
        CHECK(snap->index == now);
        std::weak_ptr<const imap::MessageIndex> weak = now;
        now.reset();
        snap->index.reset();
        selected.clear();
        backends.clear();
        CHECK(proxy::shared_folder_count() == 0);
        CHECK(weak.expired());
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(uv_loop_close(&loop) == 0);
}
