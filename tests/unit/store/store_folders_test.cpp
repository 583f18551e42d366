// Folders: default folders with special-use, hierarchy, rename with children, delete
// with children, subscriptions.
#include "store_test_util.h"

#include <algorithm>

#include "store/names.h"

using namespace popbridge::store;
using namespace popbridge::store::test;
namespace fs = std::filesystem;

namespace {

std::vector<std::string> names_of(Store& s, std::string_view user = "alice") {
    auto folders = s.list_folders(user);
    REQUIRE(folders);
    std::vector<std::string> out;
    for (const auto& f : *folders) {
        out.push_back(f.name);
    }
    return out;
}

const FolderInfo& info(const std::vector<FolderInfo>& all, std::string_view name) {
    auto it =
        std::find_if(all.begin(), all.end(), [&](const FolderInfo& f) { return f.name == name; });
    REQUIRE(it != all.end());
    return *it;
}

} // namespace

TEST_CASE("a new user gets INBOX and the five special-use folders, subscribed", "[store]") {
    TempDir dir;
    auto check = [](Store& s) {
        auto folders = s.list_folders("alice");
        REQUIRE(folders);
        CHECK(names_of(s) ==
              std::vector<std::string>{"Archive", "Drafts", "INBOX", "Junk", "Sent", "Trash"});
        CHECK(info(*folders, "INBOX").special_use == SpecialUse::None);
        CHECK(info(*folders, "INBOX").id == kInbox);
        CHECK(info(*folders, "Sent").special_use == SpecialUse::Sent);
        CHECK(info(*folders, "Drafts").special_use == SpecialUse::Drafts);
        CHECK(info(*folders, "Trash").special_use == SpecialUse::Trash);
        CHECK(info(*folders, "Junk").special_use == SpecialUse::Junk);
        CHECK(info(*folders, "Archive").special_use == SpecialUse::Archive);
        // Every folder has its own UIDVALIDITY.
        std::vector<std::uint32_t> uidvs;
        for (const auto& f : *folders) {
            uidvs.push_back(f.uid_validity);
        }
        std::sort(uidvs.begin(), uidvs.end());
        CHECK(std::adjacent_find(uidvs.begin(), uidvs.end()) == uidvs.end());
        auto subs = s.list_subscribed("alice");
        REQUIRE(subs);
        CHECK(*subs ==
              std::vector<std::string>{"Archive", "Drafts", "INBOX", "Junk", "Sent", "Trash"});
    };
    {
        auto s = open_store(options_for(dir));
        check(*s);
    }
    auto s = open_store(options_for(dir)); // the same after a restart, nothing recreated
    check(*s);
    CHECK(to_string(SpecialUse::Sent) == "\\Sent");
    CHECK(to_string(SpecialUse::Archive) == "\\Archive");
    CHECK(to_string(SpecialUse::None).empty());
    // A special-use role can be given to a folder the proxy creates (RFC 6154 CREATE-SPECIAL-USE).
    auto id = s->create_folder("alice", "Old Sent", SpecialUse::Sent);
    REQUIRE(id);
    auto all = s->list_folders("alice");
    REQUIRE(all);
    CHECK(info(*all, "Old Sent").special_use == SpecialUse::Sent);
}

TEST_CASE("folder names: '/' levels must be 1..255 bytes", "[store]") {
    CHECK(validate_folder_name("a/b/c"));
    CHECK(validate_folder_name(std::string(255, 'x') + "/" + std::string(255, 'y')));
    CHECK_FALSE(validate_folder_name("a//b"));
    CHECK_FALSE(validate_folder_name("/a"));
    CHECK_FALSE(validate_folder_name("a/"));
    CHECK_FALSE(validate_folder_name("/"));
    CHECK_FALSE(validate_folder_name(std::string(256, 'x')));
    CHECK_FALSE(validate_folder_name("a/" + std::string(256, 'x')));
    TempDir dir;
    auto s = open_store(options_for(dir));
    CHECK(s->create_folder("alice", "a//b").error().code == Errc::InvalidName);
    CHECK(s->subscribe_name("alice", "a/").error().code == Errc::InvalidName);
}

TEST_CASE("hierarchy: has_children and rename with children, atomic and persistent", "[store]") {
    TempDir dir;
    FolderId a = 0, ab = 0, abc = 0;
    {
        auto s = open_store(options_for(dir));
        a = *s->create_folder("alice", "a");
        ab = *s->create_folder("alice", "a/b");
        abc = *s->create_folder("alice", "a/b/c");
        REQUIRE(s->create_folder("alice", "ab"));
        REQUIRE(s->create_folder("alice", "a!x")); // sorts between "a" and "a/..."
        REQUIRE(s->create_folder("alice", "q/r")); // parent "q" does not exist: allowed
        REQUIRE(ingest(*s, "alice", message_body(1), "isp", "U1", ab));
        sync(*s);
        auto all = *s->list_folders("alice");
        CHECK(info(all, "a").has_children);
        CHECK(info(all, "a/b").has_children);
        CHECK_FALSE(info(all, "a/b/c").has_children);
        CHECK_FALSE(info(all, "ab").has_children);
        CHECK_FALSE(info(all, "a!x").has_children);
        CHECK_FALSE(info(all, "q/r").has_children);
        CHECK_FALSE(info(all, "INBOX").has_children);

        std::uint32_t uidv_ab = s->view("alice", ab)->uid_validity;
        REQUIRE(s->rename_folder("alice", a, "z"));
        CHECK(*s->find_folder("alice", "z") == a);
        CHECK(*s->find_folder("alice", "z/b") == ab);
        CHECK(*s->find_folder("alice", "z/b/c") == abc);
        CHECK(s->find_folder("alice", "a").error().code == Errc::NotFound);
        CHECK(s->find_folder("alice", "ab")); // a sibling with the same prefix stays
        CHECK(s->find_folder("alice", "a!x"));
        // Ids, UIDVALIDITY and messages go with the folder.
        CHECK(s->view("alice", ab)->uid_validity == uidv_ab);
        CHECK(s->view("alice", ab)->messages.size() == 1);
    }
    auto s = open_store(options_for(dir));
    CHECK(*s->find_folder("alice", "z/b/c") == abc);
    CHECK(s->view("alice", ab)->messages.size() == 1);

    // Refusals change nothing.
    auto before = names_of(*s);
    CHECK(s->rename_folder("alice", a, "ab").error().code == Errc::AlreadyExists);
    REQUIRE(s->create_folder("alice", "y/b"));
    before = names_of(*s);
    CHECK(s->rename_folder("alice", a, "y").error().code == Errc::AlreadyExists); // "y/b"
    CHECK(s->rename_folder("alice", a, "z/b/new").error().code == Errc::InvalidName);
    CHECK(s->rename_folder("alice", a, "z").error().code == Errc::AlreadyExists);
    CHECK(s->rename_folder("alice", a, "bad//name").error().code == Errc::InvalidName);
    CHECK(s->rename_folder("alice", a, "INBOX").error().code == Errc::AlreadyExists);
    CHECK(s->rename_folder("alice", kInbox, "Old").error().code == Errc::InvalidState);
    CHECK(s->rename_folder("alice", 999, "x").error().code == Errc::NotFound);
    // A child whose new name would get a level over 255 bytes refuses the whole rename.
    CHECK(s->rename_folder("alice", abc, std::string(250, 'k')));
    CHECK(names_of(*s) != before);
    REQUIRE(s->rename_folder("alice", abc, "z/b/c"));
    CHECK(names_of(*s) == before);
    // Renaming a parent into a deeper level works when nothing collides.
    REQUIRE(s->rename_folder("alice", a, "deep/er"));
    CHECK(*s->find_folder("alice", "deep/er/b/c") == abc);
}

TEST_CASE("delete_folder refuses a folder with children", "[store]") {
    TempDir dir;
    auto s = open_store(options_for(dir));
    FolderId a = *s->create_folder("alice", "a");
    FolderId ab = *s->create_folder("alice", "a/b");
    FolderId abc = *s->create_folder("alice", "a/b/c");
    auto e = s->delete_folder("alice", a);
    REQUIRE_FALSE(e);
    CHECK(e.error().code == Errc::HasChildren);
    CHECK(to_string(Errc::HasChildren) == "HasChildren");
    CHECK(s->find_folder("alice", "a"));
    REQUIRE(s->delete_folder("alice", abc));
    CHECK(s->delete_folder("alice", a).error().code == Errc::HasChildren);
    REQUIRE(s->delete_folder("alice", ab));
    REQUIRE(s->delete_folder("alice", a));
    CHECK(s->find_folder("alice", "a").error().code == Errc::NotFound);
}

TEST_CASE("subscriptions: persisted names, independent of folders", "[store]") {
    TempDir dir;
    {
        auto s = open_store(options_for(dir));
        REQUIRE(s->unsubscribe_name("alice", "Junk"));
        REQUIRE(s->subscribe_name("alice", "Nowhere/x")); // need not exist (RFC 3501 6.3.6)
        REQUIRE(s->subscribe_name("alice", "Nowhere/x")); // twice: no-op
        REQUIRE(s->unsubscribe_name("alice", "never-subscribed"));
        FolderId w = *s->create_folder("alice", "Work");
        REQUIRE(s->subscribe_name("alice", "Work"));
        REQUIRE(s->rename_folder("alice", w, "Job")); // subscriptions are left alone
        CHECK(s->subscribe_name("alice", std::string("a\0b", 3)).error().code == Errc::InvalidName);
        CHECK(s->subscribe_name("../x", "INBOX").error().code == Errc::InvalidName);
    }
    auto s = open_store(options_for(dir));
    auto subs = s->list_subscribed("alice");
    REQUIRE(subs);
    CHECK(*subs == std::vector<std::string>{"Archive", "Drafts", "INBOX", "Nowhere/x", "Sent",
                                            "Trash", "Work"});
    // Each user has their own list.
    CHECK(s->list_subscribed("bob")->size() == 6);
}

TEST_CASE("loading a user adds the default folders it lacks, keeping renamed roles", "[store]") {
    TempDir dir;
    {
        // A user as an older version left it: no Sent, no Junk, the \Archive folder renamed,
        // and a plain "Drafts" folder without the role.
        auto s = open_store(options_for(dir));
        auto all = s->list_folders("alice");
        REQUIRE(all);
        REQUIRE(s->delete_folder("alice", info(*all, "Sent").id));
        REQUIRE(s->delete_folder("alice", info(*all, "Junk").id));
        REQUIRE(s->delete_folder("alice", info(*all, "Drafts").id));
        REQUIRE(s->rename_folder("alice", info(*all, "Archive").id, "Old mail"));
        REQUIRE(s->create_folder("alice", "Drafts"));
        REQUIRE(s->unsubscribe_name("alice", "Sent"));
        REQUIRE(s->unsubscribe_name("alice", "Junk"));
        CHECK(names_of(*s) == std::vector<std::string>{"Drafts", "INBOX", "Old mail", "Trash"});
    }
    auto check = [](Store& s) {
        CHECK(names_of(s) ==
              std::vector<std::string>{"Drafts", "INBOX", "Junk", "Old mail", "Sent", "Trash"});
        auto all = s.list_folders("alice");
        REQUIRE(all);
        CHECK(info(*all, "Sent").special_use == SpecialUse::Sent);
        CHECK(info(*all, "Junk").special_use == SpecialUse::Junk);
        CHECK(info(*all, "Old mail").special_use == SpecialUse::Archive); // not re-added
        CHECK(info(*all, "Drafts").special_use == SpecialUse::None);      // name taken: left
        auto subs = s.list_subscribed("alice");
        REQUIRE(subs);
        CHECK(std::count(subs->begin(), subs->end(), "Sent") == 1);
        CHECK(std::count(subs->begin(), subs->end(), "Junk") == 1);
    };
    std::vector<std::string> warnings;
    StoreOptions o = options_for(dir);
    o.log = [&](std::string_view m) { warnings.emplace_back(m); };
    {
        auto s = open_store(o);
        check(*s);
    }
    CHECK(std::count_if(warnings.begin(), warnings.end(), [](const std::string& w) {
              return w.find("created missing default folder") != std::string::npos;
          }) == 2);
    // Loaded again: nothing more is created, UIDVALIDITYs stay.
    auto s = open_store(options_for(dir));
    auto before = s->list_folders("alice");
    REQUIRE(before);
    check(*s);
    CHECK(before->size() == 6);
}
