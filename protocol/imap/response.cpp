#include "protocol/imap/response.h"

#include <cstdio>

#include "protocol/imap/flags.h"
#include "protocol/imap/tokenizer.h"

namespace popbridge::protocol::imap {

namespace {

// Longer strings go out as literals: clients handle them better than huge quoted strings.
constexpr std::size_t kMaxQuoted = 1024;

void append_text(std::string& out, std::string_view text) {
    for (char c : text)
        out.push_back(c == '\r' || c == '\n' || c == '\0' ? ' ' : c);
}

void append_status_line(std::string& out, RespStatus status, const ResponseCode& code,
                        std::string_view text) {
    out += to_string(status);
    if (code.code != RespCode::None) {
        out += " [";
        out += to_string(code.code);
        if (!code.arg.empty()) {
            out.push_back(' ');
            append_text(out, code.arg);
        }
        out.push_back(']');
    }
    out.push_back(' ');
    append_text(out, text.empty() ? std::string_view("Done") : text);
    out += "\r\n";
}

bool quotable(std::string_view s) {
    if (s.size() > kMaxQuoted)
        return false;
    for (char c : s) {
        auto u = static_cast<unsigned char>(c);
        if (u == 0 || u == '\r' || u == '\n' || u >= 0x80)
            return false;
    }
    return true;
}

// Days since 1970-01-01 -> proleptic Gregorian date (era-based, valid for any int64 day).
void civil_from_days(std::int64_t z, std::int64_t& y, unsigned& m, unsigned& d) {
    z += 719468;
    const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const auto doe = static_cast<unsigned>(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    d = doy - (153 * mp + 2) / 5 + 1;
    m = mp < 10 ? mp + 3 : mp - 9;
    y = static_cast<std::int64_t>(yoe) + era * 400 + (m <= 2 ? 1 : 0);
}

} // namespace

std::string_view to_string(RespCode c) {
    switch (c) {
    case RespCode::None:
        return "";
    case RespCode::Alert:
        return "ALERT";
    case RespCode::AlreadyExists:
        return "ALREADYEXISTS";
    case RespCode::AuthenticationFailed:
        return "AUTHENTICATIONFAILED";
    case RespCode::Cannot:
        return "CANNOT";
    case RespCode::Capability:
        return "CAPABILITY";
    case RespCode::ClientBug:
        return "CLIENTBUG";
    case RespCode::Closed:
        return "CLOSED";
    case RespCode::AppendUid:
        return "APPENDUID";
    case RespCode::CopyUid:
        return "COPYUID";
    case RespCode::Expunged:
        return "EXPUNGED";
    case RespCode::HighestModSeq:
        return "HIGHESTMODSEQ";
    case RespCode::Modified:
        return "MODIFIED";
    case RespCode::NoModSeq:
        return "NOMODSEQ";
    case RespCode::UidNotSticky:
        return "UIDNOTSTICKY";
    case RespCode::HasChildren:
        return "HASCHILDREN";
    case RespCode::InUse:
        return "INUSE";
    case RespCode::Limit:
        return "LIMIT";
    case RespCode::NoPerm:
        return "NOPERM";
    case RespCode::Nonexistent:
        return "NONEXISTENT";
    case RespCode::OverQuota:
        return "OVERQUOTA";
    case RespCode::Parse:
        return "PARSE";
    case RespCode::BadCharset:
        return "BADCHARSET";
    case RespCode::PermanentFlags:
        return "PERMANENTFLAGS";
    case RespCode::PrivacyRequired:
        return "PRIVACYREQUIRED";
    case RespCode::ReadOnly:
        return "READ-ONLY";
    case RespCode::ReadWrite:
        return "READ-WRITE";
    case RespCode::ServerBug:
        return "SERVERBUG";
    case RespCode::TooBig:
        return "TOOBIG";
    case RespCode::TryCreate:
        return "TRYCREATE";
    case RespCode::UidNext:
        return "UIDNEXT";
    case RespCode::UidValidity:
        return "UIDVALIDITY";
    case RespCode::Unavailable:
        return "UNAVAILABLE";
    case RespCode::Unseen:
        return "UNSEEN";
    }
    return "";
}

void write_tagged(std::string& out, std::string_view tag, RespStatus status,
                  const ResponseCode& code, std::string_view text) {
    out += tag;
    out.push_back(' ');
    append_status_line(out, status, code, text);
}

void write_untagged_status(std::string& out, RespStatus status, const ResponseCode& code,
                           std::string_view text) {
    out += "* ";
    append_status_line(out, status, code, text);
}

void write_untagged(std::string& out, std::string_view data) {
    out += "* ";
    out += data;
    out += "\r\n";
}

void write_continuation(std::string& out, std::string_view text) {
    out += "+ ";
    append_text(out, text);
    out += "\r\n";
}

void write_literal(std::string& out, std::string_view s) {
    out.push_back('{');
    out += std::to_string(s.size());
    out += "}\r\n";
    out += s;
}

void write_string(std::string& out, std::string_view s) {
    if (!quotable(s)) {
        write_literal(out, s);
        return;
    }
    out.push_back('"');
    for (char c : s) {
        if (c == '"' || c == '\\')
            out.push_back('\\');
        out.push_back(c);
    }
    out.push_back('"');
}

void write_astring(std::string& out, std::string_view s) {
    bool atom = !s.empty() && s.size() <= kMaxQuoted;
    for (char c : s)
        atom = atom && is_astring_char(c);
    if (atom && (s.size() != 3 || !(s[0] == 'N' || s[0] == 'n') || !(s[1] == 'I' || s[1] == 'i') ||
                 !(s[2] == 'L' || s[2] == 'l')))
        out += s;
    else
        write_string(out, s);
}

void write_flag_list(std::string& out, std::uint32_t flags,
                     const std::vector<std::string>& keywords) {
    out.push_back('(');
    bool first = true;
    for (const FlagName& f : kFlagNames) {
        if ((flags & f.bit) == 0)
            continue;
        if (!first)
            out.push_back(' ');
        out += f.name;
        first = false;
    }
    for (const std::string& kw : keywords) {
        if (!first)
            out.push_back(' ');
        out += kw;
        first = false;
    }
    out.push_back(')');
}

std::string format_internal_date(std::int64_t unix_seconds, int tz_offset_minutes) {
    static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                              "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    // Out-of-range zones are clamped to the 4-digit field rather than printing garbage.
    if (tz_offset_minutes > 99 * 60 + 59)
        tz_offset_minutes = 99 * 60 + 59;
    if (tz_offset_minutes < -(99 * 60 + 59))
        tz_offset_minutes = -(99 * 60 + 59);
    std::int64_t local = unix_seconds + static_cast<std::int64_t>(tz_offset_minutes) * 60;
    std::int64_t days = local >= 0 ? local / 86400 : (local - 86399) / 86400;
    std::int64_t secs = local - days * 86400;
    std::int64_t year = 0;
    unsigned month = 0, day = 0;
    civil_from_days(days, year, month, day);
    // The grammar has exactly four year digits.
    if (year < 0)
        year = 0;
    if (year > 9999)
        year = 9999;
    int tz_abs = tz_offset_minutes < 0 ? -tz_offset_minutes : tz_offset_minutes;
    char buf[64];
    std::snprintf(buf, sizeof buf, "\"%2u-%s-%04d %02d:%02d:%02d %c%02d%02d\"", day,
                  kMonths[month - 1], static_cast<int>(year), static_cast<int>(secs / 3600),
                  static_cast<int>(secs / 60 % 60), static_cast<int>(secs % 60),
                  tz_offset_minutes < 0 ? '-' : '+', tz_abs / 60, tz_abs % 60);
    return buf;
}

ImapFailure imap_response_for(const Error& error) {
    switch (error.code) {
    case StorageErrc::NotFound:
        return {RespStatus::No, {RespCode::Nonexistent, {}}};
    case StorageErrc::AlreadyExists:
        return {RespStatus::No, {RespCode::AlreadyExists, {}}};
    case StorageErrc::NoPermission:
        return {RespStatus::No, {RespCode::NoPerm, {}}};
    case StorageErrc::OverQuota:
        return {RespStatus::No, {RespCode::OverQuota, {}}};
    case StorageErrc::TooBig:
        return {RespStatus::No, {RespCode::TooBig, {}}};
    case StorageErrc::Expunged:
        return {RespStatus::No, {RespCode::Expunged, {}}};
    case StorageErrc::InUse:
        return {RespStatus::No, {RespCode::InUse, {}}};
    case StorageErrc::HasChildren:
        return {RespStatus::No, {RespCode::HasChildren, {}}};
    case StorageErrc::Unavailable:
        return {RespStatus::No, {RespCode::Unavailable, {}}};
    case StorageErrc::Internal:
        return {RespStatus::No, {RespCode::ServerBug, {}}};
    }
    return {RespStatus::No, {RespCode::ServerBug, {}}};
}

} // namespace popbridge::protocol::imap
