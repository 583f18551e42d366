// libFuzzer target: the YAML config loader from memory (config/yaml_loader.h).
//
// Byte 0 chooses the daemon file or an account file; the rest is the YAML text. Invariants:
//  - nothing throws and nothing crashes (the loader promises Diagnostics, never exceptions);
//  - a failure carries at least one Diagnostic, each naming the file passed in, with a
//    line number no larger than the text has lines (+1 for end-of-input errors).
// The path is under a directory that does not exist, so relative password_file / cert paths
// resolve to nothing readable.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "config/yaml_loader.h"
#include "tests/fuzz/fuzz_util.h"

using namespace popbridge::config;

namespace {

template <class Expected>
void check(const Expected& r, std::string_view text, const std::string& file) {
    if (r)
        return;
    FUZZ_CHECK(!r.error().empty());
    // Count CR too: YAML treats CR, LF and CRLF as line breaks.
    const auto lines =
        std::count(text.begin(), text.end(), '\n') + std::count(text.begin(), text.end(), '\r');
    for (const Diagnostic& d : r.error()) {
        FUZZ_CHECK(d.file == file || d.line == 0);
        FUZZ_CHECK(d.line >= 0 && d.line <= lines + 2);
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1)
        return 0;
    std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
    try {
        if (data[0] & 1) {
            const std::string file = "/nonexistent-popbridge-fuzz/popbridge.yaml";
            check(parse_daemon_config(text, file), text, file);
        } else {
            const std::string file = "/nonexistent-popbridge-fuzz/accounts.d/fuzz.yaml";
            check(parse_account(text, file), text, file);
        }
    } catch (...) {
        popbridge::fuzz::invariant_failed("exception escaped the config loader", __FILE__,
                                          __LINE__);
    }
    return 0;
}
