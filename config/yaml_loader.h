// Loading the daemon file and the account files from YAML into the typed, validated structs
// of daemon_config.h and account.h. This is the only file pair that knows yaml-cpp.
//
// Contract shared by every function here:
// - All errors of a file are collected (syntax, types, unknown or duplicate keys, missing
//   keys, values, then the semantic checks of validate()), sorted by position, and returned
//   together. A file with any error yields no struct.
// - Every Diagnostic names the file (the path as passed in), the 1-based line and column
//   (from yaml-cpp's Mark) and the field path, e.g.
//   `accounts.d/alice.yaml:7:10: upstreams[0].tls: expected one of implicit, starttls, none,
//   got "tsl"`. A YAML syntax error has an empty field.
// - No Diagnostic contains a secret: not the value of `password`, not the contents of a
//   password_file, not the value of a password_env variable.
// - Relative paths resolve against the directory of the file they appear in: data_dir,
//   accounts_dir and imap.tls.{cert,key} against the daemon file's directory; password_file,
//   ca_file and token_file against the account file's directory.
// - Nothing throws: I/O and parse failures become Diagnostics.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include <tl/expected.hpp>

#include "config/account.h"
#include "config/daemon_config.h"
#include "config/diagnostic.h"

namespace popbridge::config {

// Reads and validates the daemon file at `path`. source_file is set to path.string().
tl::expected<DaemonConfig, std::vector<Diagnostic>>
load_daemon_config(const std::filesystem::path& path);

// Same from text already in memory (fuzzing, tests); `path` labels diagnostics and anchors
// relative paths. Cert/key readability is still checked on disk.
tl::expected<DaemonConfig, std::vector<Diagnostic>>
parse_daemon_config(std::string_view yaml, const std::filesystem::path& path);

// Reads and validates one account file; reads its password_file / password_env now.
tl::expected<Account, std::vector<Diagnostic>> load_account(const std::filesystem::path& path);

// Same from text already in memory; `path` labels diagnostics and anchors relative paths.
tl::expected<Account, std::vector<Diagnostic>> parse_account(std::string_view yaml,
                                                             const std::filesystem::path& path);

struct AccountsLoad {
    std::vector<Account> accounts;           // the valid accounts, in file-name order
    std::vector<Diagnostic> errors;          // every problem found, file by file
    std::vector<std::string> disabled_files; // account files that were skipped for errors
    // Not errors (the account loads): a file holding a secret (an account file with an
    // inline `password:`, a password_file or token_file) that group or others may read.
    std::vector<Diagnostic> warnings;
};

// Loads every regular file (or symlink to one) named *.yaml or *.yml in `accounts_dir`, in
// byte order of file name, skipping names that start with '.' and any other file. A file with
// errors disables only that account. A file whose `user` was already defined by an earlier
// loaded file is disabled too. When the directory itself cannot be read, `errors` holds one
// Diagnostic naming it (line 0) and nothing is loaded.
AccountsLoad load_accounts(const std::filesystem::path& accounts_dir);

} // namespace popbridge::config
