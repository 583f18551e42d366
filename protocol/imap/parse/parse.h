#pragma once
// Typed command parsers: parse_command() looks the command name up in kCommandSpecs and
// calls parse_<cmd>() (one file per command family under parse/) on the remaining tokens.
// Where adjacency matters ("BODY[...]<0.10>") the parsers check Token::space_before.

#include <tl/expected.hpp>

#include "protocol/imap/command.h"
#include "protocol/imap/parse/arg_cursor.h"
#include "protocol/imap/tokenizer.h"

namespace popbridge::protocol::imap {

struct CommandParseError {
    std::string message;
    bool unknown_command = false; // the name was not recognized
};

tl::expected<Command, CommandParseError> parse_command(RawCommand raw);

Parsed<CommandArgs> parse_capability(ArgCursor& args);
Parsed<CommandArgs> parse_noop(ArgCursor& args);
Parsed<CommandArgs> parse_logout(ArgCursor& args);
Parsed<CommandArgs> parse_check(ArgCursor& args);
Parsed<CommandArgs> parse_unselect(ArgCursor& args);
Parsed<CommandArgs> parse_id(ArgCursor& args);
Parsed<CommandArgs> parse_login(ArgCursor& args);
Parsed<CommandArgs> parse_select(ArgCursor& args, bool read_only);
Parsed<CommandArgs> parse_fetch(ArgCursor& args, bool uid);
Parsed<CommandArgs> parse_mailbox_only(ArgCursor& args); // CREATE DELETE (UN)SUBSCRIBE
Parsed<CommandArgs> parse_rename(ArgCursor& args);
Parsed<CommandArgs> parse_status(ArgCursor& args);
Parsed<CommandArgs> parse_list(ArgCursor& args, bool lsub);
Parsed<CommandArgs> parse_append(ArgCursor& args);
Parsed<CommandArgs> parse_enable(ArgCursor& args);
Parsed<CommandArgs> parse_authenticate(ArgCursor& args);
Parsed<CommandArgs> parse_namespace(ArgCursor& args);
Parsed<CommandArgs> parse_starttls(ArgCursor& args);
Parsed<CommandArgs> parse_idle(ArgCursor& args);
Parsed<CommandArgs> parse_close(ArgCursor& args);
Parsed<CommandArgs> parse_store(ArgCursor& args, bool uid);
Parsed<CommandArgs> parse_copy(ArgCursor& args, bool uid, bool move);
Parsed<CommandArgs> parse_expunge(ArgCursor& args, bool uid);
Parsed<CommandArgs> parse_search(ArgCursor& args, bool uid);

// Shared pieces.
// flag-list "(" [flag *(SP flag)] ")", or with !parenthesized_only also bare flags up to
// the end. \Recent and \* are refused.
Parsed<void> parse_flag_list(ArgCursor& args, bool parenthesized_only, std::uint32_t& flags,
                             std::vector<std::string>& keywords);
// "dd-Mon-yyyy hh:mm:ss +zzzz" (quotes removed) -> unix seconds.
Parsed<std::int64_t> parse_date_time(std::string_view s);
Parsed<std::uint64_t> parse_number64(ArgCursor& args);

// Exposed for tests: one fetch-att or macro (or a parenthesized list of fetch-atts).
Parsed<std::vector<FetchAtt>> parse_fetch_atts(ArgCursor& args);

} // namespace popbridge::protocol::imap
