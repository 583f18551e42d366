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

// Exposed for tests: one fetch-att or macro (or a parenthesized list of fetch-atts).
Parsed<std::vector<FetchAtt>> parse_fetch_atts(ArgCursor& args);

} // namespace popbridge::protocol::imap
