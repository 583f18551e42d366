// A secret value (upstream password) that is hard to print by accident.
#pragma once

#include <iosfwd>
#include <string>
#include <string_view>

namespace popbridge::config {

// Holds a password read from the config file, a password_file or an environment variable.
// It has no implicit conversion to a string; operator<< prints "***"; the only way to the
// value is reveal(), which call sites that send it upstream use on purpose. Best effort
// hygiene: the buffer is overwritten with zeros when the Secret is destroyed, reassigned or
// moved from (copies made elsewhere, e.g. while reading a file, are not covered).
class Secret {
public:
    Secret() = default;
    explicit Secret(std::string value) : value_(std::move(value)) {}
    Secret(const Secret&) = default;
    // Moves copy then wipe the source, so they may allocate (no noexcept).
    Secret(Secret&& other);
    Secret& operator=(const Secret& other);
    Secret& operator=(Secret&& other);
    ~Secret();

    // The secret itself. Never log it or put it in a Diagnostic.
    std::string_view reveal() const { return value_; }
    bool empty() const { return value_.empty(); }

    // Compares the values without printing them (for tests and reload diffs).
    friend bool operator==(const Secret& a, const Secret& b) { return a.value_ == b.value_; }

    // Prints "***" whatever the value.
    friend std::ostream& operator<<(std::ostream& os, const Secret&);

private:
    void wipe() noexcept;

    std::string value_;
};

} // namespace popbridge::config
