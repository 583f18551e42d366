#include "store/flags.h"

namespace popbridge::store {

std::string_view to_string(Flag flag) noexcept {
    switch (flag) {
    case Flag::Seen:
        return "Seen";
    case Flag::Answered:
        return "Answered";
    case Flag::Flagged:
        return "Flagged";
    case Flag::Deleted:
        return "Deleted";
    case Flag::Draft:
        return "Draft";
    }
    return "Unknown";
}

std::string_view to_string(FlagOp op) noexcept {
    switch (op) {
    case FlagOp::Set:
        return "Set";
    case FlagOp::Add:
        return "Add";
    case FlagOp::Remove:
        return "Remove";
    }
    return "Unknown";
}

} // namespace popbridge::store
