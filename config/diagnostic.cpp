#include "config/diagnostic.h"

#include <algorithm>

namespace popbridge::config {

std::string Diagnostic::to_string() const {
    std::string out = file;
    if (line > 0) {
        out += ':' + std::to_string(line) + ':' + std::to_string(column);
    }
    out += ": ";
    if (!field.empty()) {
        out += field + ": ";
    }
    out += message;
    return out;
}

void sort_by_position(std::vector<Diagnostic>& diagnostics) {
    std::stable_sort(diagnostics.begin(), diagnostics.end(),
                     [](const Diagnostic& a, const Diagnostic& b) {
                         if (a.line != b.line) {
                             return a.line < b.line;
                         }
                         return a.column < b.column;
                     });
}

Position SourceMap::find(std::string_view field) const {
    std::string_view key = field;
    while (!key.empty()) {
        if (auto it = positions.find(key); it != positions.end()) {
            return it->second;
        }
        // Drop the last path element: ".name" or "[3]".
        auto cut = key.find_last_of(".[");
        if (cut == std::string_view::npos) {
            break;
        }
        key = key.substr(0, cut);
    }
    return {};
}

Diagnostic SourceMap::at(std::string_view field, std::string message) const {
    Position pos = find(field);
    return Diagnostic{file, pos.line, pos.column, std::string(field), std::move(message)};
}

} // namespace popbridge::config
