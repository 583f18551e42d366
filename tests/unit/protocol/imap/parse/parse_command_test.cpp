#include "parse_helpers.h"

using namespace popbridge::protocol::imap;
using popbridge::protocol::imap::test::parse_text;

TEST_CASE("parse_command: simple commands", "[imap][parse]") {
    struct Row {
        const char* in;
        CommandId id;
    };
    const Row rows[] = {
        {"a CAPABILITY\r\n", CommandId::Capability}, {"a noop\r\n", CommandId::Noop},
        {"a Logout\r\n", CommandId::Logout},         {"a CHECK\r\n", CommandId::Check},
        {"a UNSELECT\r\n", CommandId::Unselect},     {"a ID NIL\r\n", CommandId::Id},
    };
    for (const Row& r : rows) {
        INFO(r.in);
        auto cmd = parse_text(r.in);
        REQUIRE(cmd);
        CHECK(cmd->id == r.id);
        CHECK(cmd->tag == "a");
    }
    for (const char* bad : {"a NOOP x\r\n", "a CAPABILITY ()\r\n", "a\r\n", "a FOO\r\n",
                            "a UID FOO 1\r\n", "a \"NOOP\"\r\n"}) {
        INFO(bad);
        CHECK_FALSE(parse_text(bad));
    }
    CHECK(parse_text("a FOO\r\n").error().unknown_command);
    CHECK_FALSE(parse_text("a NOOP x\r\n").error().unknown_command);
}

TEST_CASE("parse_login: atoms, quoted strings and literals", "[imap][parse]") {
    struct Row {
        const char* in;
        const char* user;
        const char* password;
    };
    const Row rows[] = {
        {"a LOGIN alice secret\r\n", "alice", "secret"},
        {"a LOGIN \"alice\" \"s p\\\"c\"\r\n", "alice", "s p\"c"},
        {"a LOGIN {5}\r\nalice {6}\r\nsec\"et\r\n", "alice", "sec\"et"},
        {"a LOGIN {5+}\r\nalice \"\"\r\n", "alice", ""},
        {"a LOGIN al]ce pw\r\n", "al]ce", "pw"},
    };
    for (const Row& r : rows) {
        for (std::size_t chunk = 0; chunk <= 16; ++chunk) {
            INFO(r.in << " chunk " << chunk);
            auto cmd = parse_text(r.in, chunk);
            REQUIRE(cmd);
            auto* l = std::get_if<LoginArgs>(&cmd->args);
            REQUIRE(l);
            CHECK(l->user == r.user);
            CHECK(l->password == r.password);
        }
    }
    for (const char* bad : {"a LOGIN alice\r\n", "a LOGIN\r\n", "a LOGIN a b c\r\n",
                            "a LOGIN (a) b\r\n", "a LOGIN a% b\r\n", "a LOGIN a* b\r\n"}) {
        INFO(bad);
        CHECK_FALSE(parse_text(bad));
    }
}

TEST_CASE("parse_select: mailbox names", "[imap][parse]") {
    auto sel = parse_text("a SELECT inbox\r\n");
    REQUIRE(sel);
    CHECK(std::get<SelectArgs>(sel->args).mailbox == "INBOX");
    CHECK_FALSE(std::get<SelectArgs>(sel->args).read_only);
    auto ex = parse_text("a EXAMINE \"Entw&APw-rfe\"\r\n");
    REQUIRE(ex);
    CHECK(ex->id == CommandId::Examine);
    CHECK(std::get<SelectArgs>(ex->args).mailbox == "Entw\xc3\xbcrfe");
    CHECK(std::get<SelectArgs>(ex->args).read_only);
    CHECK_FALSE(parse_text("a SELECT &AGE\r\n"));
    CHECK_FALSE(parse_text("a SELECT\r\n"));
    CHECK_FALSE(parse_text("a SELECT a b\r\n"));
}

TEST_CASE("parse_id: parameter list", "[imap][parse]") {
    auto id = parse_text("a ID (\"name\" \"Thunderbird\" \"version\" NIL)\r\n");
    REQUIRE(id);
    const auto& p = std::get<IdArgs>(id->args).params;
    REQUIRE(p);
    REQUIRE(p->size() == 2);
    CHECK((*p)[0].first == "name");
    CHECK((*p)[0].second == std::optional<std::string>("Thunderbird"));
    CHECK_FALSE((*p)[1].second);
    CHECK_FALSE(std::get<IdArgs>(parse_text("a ID NIL\r\n")->args).params);
    CHECK_FALSE(parse_text("a ID (\"name\")\r\n"));
    CHECK_FALSE(parse_text("a ID name\r\n"));
}

TEST_CASE("command table: legal states", "[imap][parse]") {
    CHECK(command_allowed(CommandId::Login, kStateNotAuthenticated));
    CHECK_FALSE(command_allowed(CommandId::Login, kStateAuthenticated));
    CHECK_FALSE(command_allowed(CommandId::Select, kStateNotAuthenticated));
    CHECK(command_allowed(CommandId::Select, kStateSelected));
    CHECK_FALSE(command_allowed(CommandId::Fetch, kStateAuthenticated));
    CHECK(command_allowed(CommandId::UidFetch, kStateSelected));
    CHECK(command_allowed(CommandId::Capability, kStateNotAuthenticated));
    static_assert(command_allowed(CommandId::Noop, kStateSelected));
}
