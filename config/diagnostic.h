// Diagnostics for configuration files: every error names the file, the 1-based line and
// column, the field path and what was expected.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace popbridge::config {

// One configuration error. `line`/`column` are 1-based; 0 means "not tied to a position"
// (for example an unreadable file). `field` is a path such as `upstreams[0].tls`, empty for
// errors about the file as a whole. `message` says what was expected and, except for secret
// fields, what was found. A Diagnostic never contains a secret value.
struct Diagnostic {
    std::string file;
    int line = 0, column = 0;
    std::string field, message;

    // "file:line:col: field: message"; the position is left out when line is 0, the field
    // when it is empty.
    std::string to_string() const;

    friend bool operator==(const Diagnostic&, const Diagnostic&) = default;
};

// Sorts by (line, column) keeping the original order for ties, so a file's errors read top
// to bottom.
void sort_by_position(std::vector<Diagnostic>& diagnostics);

// A 1-based position in a source file.
struct Position {
    int line = 0, column = 0;
};

// Where each field came from: field path -> position of its value (or of its key when the
// value is empty). The YAML loader fills it; validate() uses it to give positions to
// semantic errors. A hand-built struct can be validated with an empty map (positions 0).
struct SourceMap {
    std::string file;
    std::map<std::string, Position, std::less<>> positions;

    // Position of `field`, else of its closest recorded parent (`upstreams[0].tls` ->
    // `upstreams[0]` -> `upstreams`), else {0, 0}.
    Position find(std::string_view field) const;

    // A diagnostic for `field` at its recorded position.
    Diagnostic at(std::string_view field, std::string message) const;
};

} // namespace popbridge::config
