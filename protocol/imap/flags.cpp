#include "protocol/imap/flags.h"

namespace popbridge::protocol::imap {

std::optional<std::uint32_t> flag_from_name(std::string_view name) {
    for (const FlagName& f : kFlagNames) {
        if (f.name.size() != name.size())
            continue;
        bool same = true;
        for (std::size_t i = 0; i < name.size() && same; ++i) {
            char a = name[i], b = f.name[i];
            if (a >= 'A' && a <= 'Z')
                a = static_cast<char>(a - 'A' + 'a');
            if (b >= 'A' && b <= 'Z')
                b = static_cast<char>(b - 'A' + 'a');
            same = a == b;
        }
        if (same)
            return f.bit;
    }
    return std::nullopt;
}

} // namespace popbridge::protocol::imap
