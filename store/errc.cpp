#include "store/errc.h"

namespace popbridge::store {

std::string_view to_string(Errc code) noexcept {
    switch (code) {
    case Errc::NotFound:
        return "NotFound";
    case Errc::AlreadyExists:
        return "AlreadyExists";
    case Errc::InvalidName:
        return "InvalidName";
    case Errc::Io:
        return "Io";
    case Errc::Corrupt:
        return "Corrupt";
    case Errc::TooLarge:
        return "TooLarge";
    case Errc::Busy:
        return "Busy";
    case Errc::ReadOnly:
        return "ReadOnly";
    case Errc::InvalidState:
        return "InvalidState";
    case Errc::HasChildren:
        return "HasChildren";
    }
    return "Unknown";
}

} // namespace popbridge::store
