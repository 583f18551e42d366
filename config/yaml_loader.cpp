#include "config/yaml_loader.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <initializer_list>
#include <map>
#include <sstream>

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

namespace popbridge::config {

namespace {

// Counts the documents of a stream without building them, and notices when the parser
// stops making progress: yaml-cpp 0.7 returns an empty document forever on a stray ','
// at the top level (upstream issue 1040), so YAML::LoadAll never returns on such a file.
class DocumentCounter final : public YAML::EventHandler {
public:
    int documents = 0;
    bool stuck = false;
    YAML::Mark stuck_at;
    YAML::Mark second_start; // where the second document begins, if any

    void OnDocumentStart(const YAML::Mark& mark) override {
        if (documents > 0 && mark.pos == last_start_.pos) {
            stuck = true;
            stuck_at = mark;
        }
        last_start_ = mark;
        if (++documents == 2)
            second_start = mark;
    }
    void OnDocumentEnd() override {}
    void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
    void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
    void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  const std::string&) override {}
    void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                         YAML::EmitterStyle::value) override {}
    void OnSequenceEnd() override {}
    void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                    YAML::EmitterStyle::value) override {}
    void OnMapEnd() override {}

private:
    YAML::Mark last_start_;
};

} // namespace

namespace {

namespace fs = std::filesystem;

constexpr std::uintmax_t kMaxConfigFileSize = 1024 * 1024;
constexpr std::uintmax_t kMaxSecretFileSize = 64 * 1024;

// Optimal string alignment distance (a swap of neighbours counts as one edit), for
// "did you mean".
std::size_t edit_distance(std::string_view a, std::string_view b) {
    std::vector<std::vector<std::size_t>> d(a.size() + 1, std::vector<std::size_t>(b.size() + 1));
    for (std::size_t i = 0; i <= a.size(); ++i) {
        d[i][0] = i;
    }
    for (std::size_t j = 0; j <= b.size(); ++j) {
        d[0][j] = j;
    }
    for (std::size_t i = 1; i <= a.size(); ++i) {
        for (std::size_t j = 1; j <= b.size(); ++j) {
            std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
                d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
            }
        }
    }
    return d[a.size()][b.size()];
}

template <typename Words>
std::string join(const Words& words) {
    std::string out;
    for (std::string_view w : words) {
        if (!out.empty()) {
            out += ", ";
        }
        out += w;
    }
    return out;
}

Position position_of(const YAML::Mark& mark) {
    if (mark.line < 0) {
        return {};
    }
    return {mark.line + 1, mark.column + 1};
}

// What a node is, for "expected X, got Y". Scalars are quoted unless `secret`.
std::string describe_node(const YAML::Node& node, bool secret = false) {
    switch (node.Type()) {
    case YAML::NodeType::Map:
        return "a mapping";
    case YAML::NodeType::Sequence:
        return "a list";
    case YAML::NodeType::Scalar:
        return secret ? "a string" : quote(node.Scalar());
    default:
        return "an empty value";
    }
}

bool is_true(std::string_view s) {
    return s == "true" || s == "True" || s == "TRUE";
}
bool is_false(std::string_view s) {
    return s == "false" || s == "False" || s == "FALSE";
}

// One key of a mapping, as found in the file.
struct Entry {
    std::string key;
    std::string path; // full field path, e.g. "upstreams[0].tls"
    YAML::Node value;
    Position key_pos;
    Position value_pos; // the key's position when the value is empty
};

// The checked keys of one mapping, in document order.
struct Fields {
    std::vector<Entry> entries;
    std::string path;
    Position pos; // of the mapping itself
    bool ok = false;

    // The entry for `key`, or nullptr when absent or null (an empty value counts as absent
    // for optional keys; required() reports it).
    const Entry* get(std::string_view key) const {
        const Entry* e = find(key);
        return e && !e->value.IsNull() ? e : nullptr;
    }
    const Entry* find(std::string_view key) const {
        for (const Entry& e : entries) {
            if (e.key == key) {
                return &e;
            }
        }
        return nullptr;
    }
};

// Decodes one file, collecting diagnostics and the position of every field.
class Decoder {
public:
    explicit Decoder(const fs::path& file) : base_dir_(base_dir_of(file)) {
        where_.file = file.string();
    }

    std::vector<Diagnostic>& diagnostics() { return diags_; }
    const SourceMap& where() const { return where_; }

    void error(Position pos, std::string field, std::string message) {
        diags_.push_back(
            Diagnostic{where_.file, pos.line, pos.column, std::move(field), std::move(message)});
    }
    void error(const Entry& e, std::string message) {
        error(e.value_pos, e.path, std::move(message));
    }

    // Parses `text` as exactly one YAML document holding a mapping; nullopt after reporting.
    std::optional<YAML::Node> parse_root(std::string_view text) {
        std::vector<YAML::Node> docs;
        try {
            // Never YAML::LoadAll: see DocumentCounter. Count first (bounded), then load
            // the one document.
            std::istringstream in{std::string(text)};
            YAML::Parser parser(in);
            DocumentCounter counter;
            while (counter.documents < 3 && !counter.stuck && parser.HandleNextDocument(counter)) {
            }
            if (counter.stuck) {
                Position pos = position_of(counter.stuck_at);
                error(pos.line ? pos : Position{1, 1}, "",
                      "YAML syntax error: unexpected character outside any mapping or list");
                return std::nullopt;
            }
            if (counter.documents > 1) {
                std::string found =
                    counter.documents > 2 ? "more than 2" : std::to_string(counter.documents);
                error(position_of(counter.second_start), "",
                      "expected one YAML document, found " + found);
                return std::nullopt;
            }
            docs.push_back(YAML::Load(std::string(text)));
        } catch (const YAML::Exception& e) {
            // e.msg, not e.what(): the position goes in our own format. Cut what follows
            // ": " ("unknown escape character: x", "invalid unicode: 1234"): it is text from
            // the file, and may be part of a password.
            Position pos = position_of(e.mark);
            std::string msg = e.msg.substr(0, e.msg.find(": "));
            error(pos.line ? pos : Position{1, 1}, "", "YAML syntax error: " + msg);
            return std::nullopt;
        } catch (const std::exception& e) {
            error({}, "", std::string("cannot parse YAML: ") + e.what());
            return std::nullopt;
        }
        if (docs.empty() || docs.front().IsNull()) {
            error({1, 1}, "", "expected a mapping of keys, the file is empty");
            return std::nullopt;
        }
        if (!docs.front().IsMap()) {
            error(position_of(docs.front().Mark()), "",
                  "expected a mapping of keys, got " + describe_node(docs.front()));
            return std::nullopt;
        }
        return docs.front();
    }

    // Checks that `node` is a mapping whose keys are all in `allowed`, each once.
    Fields fields(const YAML::Node& node, const std::string& path, Position pos,
                  std::initializer_list<std::string_view> allowed) {
        Fields out;
        out.path = path;
        out.pos = pos;
        if (!node.IsMap()) {
            error(pos, path, "expected a mapping, got " + describe_node(node));
            return out;
        }
        out.ok = true;
        where_.positions.emplace(path, pos);
        for (const auto& kv : node) {
            // Copies: yaml-cpp's iterator hands out temporaries.
            const YAML::Node key = kv.first;
            const YAML::Node value = kv.second;
            Position key_pos = position_of(key.Mark());
            if (!key.IsScalar()) {
                error(key_pos, path, "expected a key name, got " + describe_node(key));
                continue;
            }
            std::string name = key.Scalar();
            std::string field = path.empty() ? name : path + "." + name;
            if (std::find(allowed.begin(), allowed.end(), name) == allowed.end()) {
                error(key_pos, field, unknown_key_message(name, allowed));
                continue;
            }
            if (out.find(name)) {
                error(key_pos, field, "duplicate key");
                continue;
            }
            Position value_pos = value.IsNull() ? key_pos : position_of(value.Mark());
            where_.positions.emplace(field, value_pos);
            out.entries.push_back(Entry{name, field, value, key_pos, value_pos});
        }
        return out;
    }

    // The entry for a required key, reporting a missing or empty one.
    const Entry* required(const Fields& f, std::string_view key) {
        if (!f.ok) {
            return nullptr;
        }
        std::string field = f.path.empty() ? std::string(key) : f.path + "." + std::string(key);
        const Entry* e = f.find(key);
        if (!e) {
            error(f.pos, field, "missing required key");
            return nullptr;
        }
        if (e->value.IsNull()) {
            error(*e, "expected a value, got an empty value");
            return nullptr;
        }
        return e;
    }

    // A scalar's text; reports (without showing the value when `secret`) anything else.
    std::optional<std::string> string(const Entry* e, std::string_view what = "a string",
                                      bool secret = false) {
        if (!e) {
            return std::nullopt;
        }
        if (!e->value.IsScalar()) {
            error(*e, "expected " + std::string(what) + ", got " + describe_node(e->value, secret));
            return std::nullopt;
        }
        return e->value.Scalar();
    }

    std::optional<bool> boolean(const Entry* e) {
        auto s = string(e, "true or false");
        if (!s) {
            return std::nullopt;
        }
        if (is_true(*s)) {
            return true;
        }
        if (is_false(*s)) {
            return false;
        }
        error(*e, "expected true or false, got " + quote(*s));
        return std::nullopt;
    }

    template <typename Enum>
    std::optional<Enum> one_of(const Entry* e, std::initializer_list<std::string_view> names,
                               std::initializer_list<Enum> values) {
        auto s = string(e, "one of " + join(names));
        if (!s) {
            return std::nullopt;
        }
        auto value = values.begin();
        for (std::string_view name : names) {
            if (*s == name) {
                return *value;
            }
            ++value;
        }
        error(*e, "expected one of " + join(names) + ", got " + quote(*s));
        return std::nullopt;
    }

    template <typename T>
    std::optional<T> parsed(const Entry* e, std::string_view what,
                            ParseResult<T> (*parse)(std::string_view)) {
        auto s = string(e, what);
        if (!s) {
            return std::nullopt;
        }
        auto value = parse(*s);
        if (!value) {
            error(*e, value.error());
            return std::nullopt;
        }
        return *value;
    }

    std::optional<std::uint64_t> integer(const Entry* e, std::uint64_t min, std::uint64_t max) {
        std::string what =
            "an integer between " + std::to_string(min) + " and " + std::to_string(max);
        auto s = string(e, what);
        if (!s) {
            return std::nullopt;
        }
        std::uint64_t value = 0;
        bool digits =
            !s->empty() && s->size() <= 19 &&
            std::all_of(s->begin(), s->end(), [](char c) { return c >= '0' && c <= '9'; });
        if (digits) {
            value = std::stoull(*s);
        }
        if (!digits || value < min || value > max) {
            error(*e, "expected " + what + ", got " + quote(*s));
            return std::nullopt;
        }
        return value;
    }

    // A path, resolved against the directory of the file being decoded.
    std::optional<fs::path> path(const Entry* e) {
        auto s = string(e, "a path");
        if (!s) {
            return std::nullopt;
        }
        if (s->empty() || s->find('\0') != std::string::npos) {
            error(*e, "expected a path, got " + quote(*s));
            return std::nullopt;
        }
        fs::path p(*s);
        return p.is_absolute() ? p : (base_dir_ / p).lexically_normal();
    }

    // A list of scalars (a lone scalar counts as a list of one), each checked by `item`.
    template <typename T, typename Item>
    std::optional<std::vector<T>> list(const Entry* e, std::string_view what, Item item) {
        if (!e) {
            return std::nullopt;
        }
        std::vector<T> out;
        if (e->value.IsScalar()) {
            if (auto v = item(*e)) {
                out.push_back(std::move(*v));
            }
            return out;
        }
        if (!e->value.IsSequence()) {
            error(*e,
                  "expected a list of " + std::string(what) + ", got " + describe_node(e->value));
            return std::nullopt;
        }
        std::size_t i = 0;
        for (const YAML::Node& node : e->value) {
            Entry sub{e->key, e->path + "[" + std::to_string(i++) + "]", node,
                      position_of(node.Mark()), position_of(node.Mark())};
            if (node.IsNull()) {
                sub.value_pos = e->value_pos;
            }
            where_.positions.emplace(sub.path, sub.value_pos);
            if (auto v = item(sub)) {
                out.push_back(std::move(*v));
            }
        }
        return out;
    }

    const fs::path& base_dir() const { return base_dir_; }

private:
    static fs::path base_dir_of(const fs::path& file) {
        std::error_code ec;
        fs::path abs = fs::absolute(file, ec);
        return ec ? file.parent_path() : abs.parent_path();
    }

    static std::string unknown_key_message(std::string_view key,
                                           std::initializer_list<std::string_view> allowed) {
        std::string_view best;
        std::size_t best_distance = 0;
        for (std::string_view candidate : allowed) {
            std::size_t d = edit_distance(key, candidate);
            if (best.empty() || d < best_distance) {
                best = candidate;
                best_distance = d;
            }
        }
        std::size_t limit = key.size() >= 5 ? 2 : 1;
        if (!best.empty() && best_distance <= limit) {
            return "unknown key, did you mean \"" + std::string(best) + "\"?";
        }
        return "unknown key, expected one of " + join(allowed);
    }

    fs::path base_dir_;
    SourceMap where_;
    std::vector<Diagnostic> diags_;
};

// Reads a whole file of at most `max_size` bytes; nullopt with the reason in `why`.
std::optional<std::string> read_text_file(const fs::path& file, std::uintmax_t max_size,
                                          std::string& why) {
    std::error_code ec;
    auto size = fs::file_size(file, ec);
    if (ec) {
        why = ec.message();
        return std::nullopt;
    }
    if (size > max_size) {
        why = "file is larger than " + format_size(max_size);
        return std::nullopt;
    }
    std::ifstream in(file, std::ios::binary);
    if (!in) {
        why = std::strerror(errno);
        return std::nullopt;
    }
    std::ostringstream buf;
    buf << in.rdbuf();
    if (in.bad()) {
        why = "read error";
        return std::nullopt;
    }
    return std::move(buf).str();
}

// Drops the semantic diagnostics about a field (or a part of a field) the decoder already
// reported, so one mistake gives one line.
void merge(std::vector<Diagnostic>& decoded, std::vector<Diagnostic> semantic) {
    std::vector<std::string> reported;
    for (const Diagnostic& d : decoded) {
        reported.push_back(d.field);
    }
    for (Diagnostic& d : semantic) {
        bool covered = std::any_of(reported.begin(), reported.end(), [&](const std::string& f) {
            if (f.empty() || d.field.compare(0, f.size(), f) != 0) {
                return false;
            }
            return d.field.size() == f.size() || d.field[f.size()] == '.' ||
                   d.field[f.size()] == '[';
        });
        if (!covered) {
            decoded.push_back(std::move(d));
        }
    }
    sort_by_position(decoded);
}

// ---- daemon file --------------------------------------------------------------------------

void decode_daemon(Decoder& dec, const YAML::Node& root, DaemonConfig& cfg) {
    Fields top = dec.fields(root, "", position_of(root.Mark()),
                            {"data_dir", "accounts_dir", "imap", "admin", "log", "poll"});
    if (auto p = dec.path(dec.required(top, "data_dir"))) {
        cfg.data_dir = *p;
    }
    if (auto p = dec.path(dec.required(top, "accounts_dir"))) {
        cfg.accounts_dir = *p;
    }
    auto endpoint = [&](const Entry& e) {
        return dec.parsed<Endpoint>(&e, "an address host:port", parse_endpoint);
    };
    if (const Entry* e = dec.required(top, "imap")) {
        Fields imap =
            dec.fields(e->value, "imap", e->value_pos,
                       {"listen", "listen_tls", "tls", "allow_plaintext_auth", "login_delay",
                        "login_delay_max", "timeouts", "limits", "structure_cache"});
        if (auto v = dec.list<Endpoint>(imap.get("listen"), "addresses", endpoint)) {
            cfg.imap.listen = std::move(*v);
        }
        if (auto v = dec.list<Endpoint>(imap.get("listen_tls"), "addresses", endpoint)) {
            cfg.imap.listen_tls = std::move(*v);
        }
        if (const Entry* t = imap.get("tls")) {
            Fields tls = dec.fields(t->value, "imap.tls", t->value_pos, {"cert", "key"});
            // Set even when a key is bad, so validate() does not also say "tls is missing".
            auto cert = dec.path(dec.required(tls, "cert"));
            auto key = dec.path(dec.required(tls, "key"));
            cfg.imap.tls = TlsFiles{cert.value_or(fs::path()), key.value_or(fs::path())};
        }
        if (auto b = dec.boolean(imap.get("allow_plaintext_auth"))) {
            cfg.imap.allow_plaintext_auth = *b;
        }
        if (auto d = dec.parsed<std::chrono::milliseconds>(imap.get("login_delay"), "a duration",
                                                           parse_duration_ms)) {
            cfg.imap.login_delay = *d;
        }
        if (auto d = dec.parsed<std::chrono::milliseconds>(imap.get("login_delay_max"),
                                                           "a duration", parse_duration_ms)) {
            cfg.imap.login_delay_max = *d;
        }
        if (const Entry* t = imap.get("timeouts")) {
            Fields f = dec.fields(t->value, "imap.timeouts", t->value_pos,
                                  {"tls_handshake", "login", "autologout"});
            ImapTimeouts& out = cfg.imap.timeouts;
            for (auto [key, dst] : {std::pair{"tls_handshake", &out.tls_handshake},
                                    {"login", &out.login},
                                    {"autologout", &out.autologout}}) {
                if (auto v = dec.parsed<std::chrono::seconds>(f.get(key), "a duration",
                                                              parse_duration)) {
                    *dst = *v;
                }
            }
        }
        if (const Entry* t = imap.get("limits")) {
            Fields f = dec.fields(t->value, "imap.limits", t->value_pos,
                                  {"max_line_pre_auth", "max_line", "max_bad_commands_pre_auth",
                                   "max_bad_commands", "max_connections"});
            ImapLimits& out = cfg.imap.limits;
            for (auto [key, dst] : {std::pair{"max_line_pre_auth", &out.max_line_pre_auth},
                                    {"max_line", &out.max_line}}) {
                if (auto v = dec.parsed<std::uint64_t>(f.get(key), "a size", parse_size)) {
                    *dst = *v;
                }
            }
            for (auto [key, dst] :
                 {std::pair{"max_bad_commands_pre_auth", &out.max_bad_commands_pre_auth},
                  {"max_bad_commands", &out.max_bad_commands}}) {
                if (auto v = dec.integer(f.get(key), 1, kMaxBadCommands)) {
                    *dst = static_cast<unsigned>(*v);
                }
            }
            if (auto v = dec.integer(f.get("max_connections"), 1, kMaxMaxImapConnections)) {
                out.max_connections = static_cast<unsigned>(*v);
            }
        }
        if (auto v = dec.parsed<std::uint64_t>(imap.get("structure_cache"), "a size", parse_size)) {
            cfg.imap.structure_cache = *v;
        }
    }
    if (const Entry* e = top.get("admin")) {
        Fields admin = dec.fields(e->value, "admin", e->value_pos, {"listen"});
        if (const Entry* l = admin.get("listen")) {
            cfg.admin.listen = endpoint(*l);
        }
    }
    if (const Entry* e = top.get("log")) {
        Fields log = dec.fields(e->value, "log", e->value_pos, {"level", "format"});
        if (auto v =
                dec.one_of<LogLevel>(log.get("level"), {"trace", "debug", "info", "warn", "error"},
                                     {LogLevel::Trace, LogLevel::Debug, LogLevel::Info,
                                      LogLevel::Warn, LogLevel::Error})) {
            cfg.log.level = *v;
        }
        if (auto v = dec.one_of<LogFormat>(log.get("format"), {"text", "json"},
                                           {LogFormat::Text, LogFormat::Json})) {
            cfg.log.format = *v;
        }
    }
    if (const Entry* e = top.get("poll")) {
        Fields poll = dec.fields(
            e->value, "poll", e->value_pos,
            {"max_connections", "connect_timeout", "read_timeout", "token_command_timeout"});
        if (auto v = dec.integer(poll.get("max_connections"), 1, kMaxMaxConnections)) {
            cfg.poll.max_connections = static_cast<unsigned>(*v);
        }
        for (auto [key, dst] : {std::pair{"connect_timeout", &cfg.poll.connect_timeout},
                                {"read_timeout", &cfg.poll.read_timeout},
                                {"token_command_timeout", &cfg.poll.token_command_timeout}}) {
            if (auto v =
                    dec.parsed<std::chrono::seconds>(poll.get(key), "a duration", parse_duration)) {
                *dst = *v;
            }
        }
    }
}

tl::expected<DaemonConfig, std::vector<Diagnostic>> decode_daemon_text(std::string_view text,
                                                                       const fs::path& path) {
    Decoder dec(path);
    DaemonConfig cfg;
    cfg.source_file = path.string();
    auto root = dec.parse_root(text);
    if (!root) {
        return tl::make_unexpected(std::move(dec.diagnostics()));
    }
    decode_daemon(dec, *root, cfg);
    std::vector<Diagnostic> diags = std::move(dec.diagnostics());
    merge(diags, validate(cfg, dec.where()));
    if (!diags.empty()) {
        return tl::make_unexpected(std::move(diags));
    }
    return cfg;
}

// ---- account files ------------------------------------------------------------------------

bool valid_env_name(std::string_view name) {
    if (name.empty() || (name.front() >= '0' && name.front() <= '9')) {
        return false;
    }
    return std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
               c == '_';
    });
}

// Reads the credential of one upstream from whichever source key is set. A second source is
// an error pointing at its key.
void decode_secret(Decoder& dec, const Fields& f, Upstream& up) {
    static constexpr std::array<std::string_view, 5> kSources = {
        "password", "password_file", "password_env", "token_file", "token_command"};
    const Entry* chosen = nullptr;
    for (const Entry& e : f.entries) {
        if (std::find(kSources.begin(), kSources.end(), e.key) == kSources.end() ||
            e.value.IsNull()) {
            continue;
        }
        if (chosen) {
            dec.error(e.key_pos, e.path,
                      "only one of " + join(kSources) + " may be set; " + chosen->key +
                          " is already set");
            continue;
        }
        chosen = &e;
    }
    if (!chosen) {
        return;
    }
    const Entry& e = *chosen;
    if (e.key == "password") {
        up.secret_source = SecretSource::Password;
        if (auto s = dec.string(&e, "a string", /*secret=*/true)) {
            up.secret = Secret(std::move(*s));
        }
    } else if (e.key == "password_file") {
        up.secret_source = SecretSource::PasswordFile;
        auto p = dec.path(&e);
        if (!p) {
            return;
        }
        up.secret_file = *p;
        std::string why;
        auto content = read_text_file(*p, kMaxSecretFileSize, why);
        if (!content) {
            dec.error(e, "cannot read " + quote(p->string()) + ": " + why);
            return;
        }
        if (!content->empty() && content->back() == '\n') {
            content->pop_back();
            if (!content->empty() && content->back() == '\r') {
                content->pop_back();
            }
        }
        if (content->empty()) {
            dec.error(e, "file " + quote(p->string()) + " is empty");
        }
        up.secret = Secret(std::move(*content));
    } else if (e.key == "password_env") {
        up.secret_source = SecretSource::PasswordEnv;
        auto name = dec.string(&e, "an environment variable name");
        if (!name) {
            return;
        }
        if (!valid_env_name(*name)) {
            dec.error(e, "expected an environment variable name, got " + quote(*name));
            return;
        }
        up.secret_env = *name;
        const char* value = std::getenv(name->c_str());
        if (!value) {
            dec.error(e, "environment variable " + *name + " is not set");
        } else if (!*value) {
            dec.error(e, "environment variable " + *name + " is empty");
        } else {
            up.secret = Secret(value);
        }
    } else if (e.key == "token_file") {
        up.secret_source = SecretSource::TokenFile;
        if (auto p = dec.path(&e)) {
            up.secret_file = *p;
        }
    } else {
        up.secret_source = SecretSource::TokenCommand;
        if (e.value.IsScalar()) {
            std::istringstream words(e.value.Scalar());
            std::string word;
            while (words >> word) {
                up.token_command.push_back(word);
            }
        } else if (auto argv = dec.list<std::string>(&e, "strings", [&](const Entry& item) {
                       return dec.string(&item, "a string");
                   })) {
            up.token_command = std::move(*argv);
        }
    }
}

void decode_upstream(Decoder& dec, const Entry& item, Upstream& up) {
    Fields f = dec.fields(item.value, item.path, item.value_pos,
                          {"name",           "host",
                           "port",           "tls",
                           "ca_file",        "pin_sha256",
                           "username",       "auth",
                           "password",       "password_file",
                           "password_env",   "token_file",
                           "token_command",  "poll_every",
                           "keep_on_server", "delete_upstream_on_expunge",
                           "import_since",   "max_message_size",
                           "folder",         "allow_plaintext"});
    if (!f.ok) {
        return;
    }
    if (auto s = dec.string(dec.required(f, "name"))) {
        up.name = *s;
    }
    if (auto s = dec.string(dec.required(f, "host"))) {
        up.host = *s;
    }
    if (auto v = dec.one_of<TlsMode>(f.get("tls"), {"implicit", "starttls", "none"},
                                     {TlsMode::Implicit, TlsMode::StartTls, TlsMode::None})) {
        up.tls = *v;
    }
    up.port = default_port(up.tls);
    if (auto v = dec.integer(f.get("port"), 1, 65535)) {
        up.port = static_cast<std::uint16_t>(*v);
    }
    if (const Entry* e = f.get("ca_file")) {
        up.ca_file = dec.path(e);
    }
    if (const Entry* e = f.get("pin_sha256")) {
        up.pin_sha256 = dec.parsed<Sha256>(e, "a SHA-256 fingerprint", parse_sha256_fingerprint);
    }
    if (auto s = dec.string(dec.required(f, "username"))) {
        up.username = *s;
    }
    if (auto v = dec.one_of<AuthMethod>(f.get("auth"),
                                        {"pass", "apop", "plain", "xoauth2", "oauthbearer"},
                                        {AuthMethod::Pass, AuthMethod::Apop, AuthMethod::Plain,
                                         AuthMethod::XOAuth2, AuthMethod::OAuthBearer})) {
        up.auth = *v;
    }
    decode_secret(dec, f, up);
    if (auto v =
            dec.parsed<std::chrono::seconds>(f.get("poll_every"), "a duration", parse_duration)) {
        up.poll_every = *v;
    }
    if (auto s = dec.string(f.get("keep_on_server"), "true, false or a duration")) {
        if (is_true(*s)) {
            up.keep_on_server = {Retention::Kind::Keep, {}};
        } else if (is_false(*s)) {
            up.keep_on_server = {Retention::Kind::DeleteAfterDownload, {}};
        } else if (auto age = parse_duration(*s)) {
            up.keep_on_server = {Retention::Kind::DeleteAfterAge, *age};
        } else {
            dec.error(*f.get("keep_on_server"),
                      "expected true, false or a duration such as 14d, got " + quote(*s));
        }
    }
    if (auto b = dec.boolean(f.get("delete_upstream_on_expunge"))) {
        up.delete_upstream_on_expunge = *b;
    }
    if (auto s = dec.string(f.get("import_since"), "a duration or a date")) {
        const Entry& e = *f.get("import_since");
        if (s->find('-') != std::string::npos) {
            if (auto date = parse_date(*s)) {
                up.import_since = ImportSince{ImportSince::Kind::Date, {}, *date};
            } else {
                dec.error(e, date.error());
            }
        } else if (auto age = parse_duration(*s)) {
            up.import_since = ImportSince{ImportSince::Kind::Age, *age, {}};
        } else {
            dec.error(e, "expected a duration such as 30d or a date YYYY-MM-DD, got " + quote(*s));
        }
    }
    if (auto v = dec.parsed<std::uint64_t>(f.get("max_message_size"), "a size", parse_size)) {
        up.max_message_size = *v;
    }
    if (auto s = dec.string(f.get("folder"))) {
        up.folder = *s;
    }
    if (auto b = dec.boolean(f.get("allow_plaintext"))) {
        up.allow_plaintext = *b;
    }
}

void decode_account(Decoder& dec, const YAML::Node& root, Account& account) {
    Fields top =
        dec.fields(root, "", position_of(root.Mark()), {"user", "password_hash", "upstreams"});
    if (auto s = dec.string(dec.required(top, "user"))) {
        account.user = *s;
    }
    // Not echoed in messages: clear-text passwords end up here by mistake.
    if (auto s = dec.string(dec.required(top, "password_hash"), "a crypt(3) hash",
                            /*secret=*/true)) {
        account.password_hash = *s;
    }
    const Entry* ups = top.get("upstreams");
    if (!ups) {
        return;
    }
    if (!ups->value.IsSequence()) {
        dec.error(*ups, "expected a list of upstreams, got " + describe_node(ups->value));
        return;
    }
    std::size_t i = 0;
    for (const YAML::Node& node : ups->value) {
        std::string path = "upstreams[" + std::to_string(i++) + "]";
        Position pos = node.IsNull() ? ups->value_pos : position_of(node.Mark());
        Entry item{"upstreams", path, node, pos, pos};
        // Always add one, so indexes in later messages match the file even after a bad item.
        decode_upstream(dec, item, account.upstreams.emplace_back());
    }
}

struct DecodedAccount {
    Account account;
    std::vector<Diagnostic> diagnostics;
    Position user_pos;
};

DecodedAccount decode_account_text(std::string_view text, const fs::path& path) {
    DecodedAccount out;
    out.account.source_file = path.string();
    Decoder dec(path);
    auto root = dec.parse_root(text);
    if (!root) {
        out.diagnostics = std::move(dec.diagnostics());
        return out;
    }
    decode_account(dec, *root, out.account);
    out.diagnostics = std::move(dec.diagnostics());
    merge(out.diagnostics, validate(out.account, dec.where()));
    out.user_pos = dec.where().find("user");
    return out;
}

DecodedAccount decode_account_file(const fs::path& path) {
    std::string why;
    auto text = read_text_file(path, kMaxConfigFileSize, why);
    if (!text) {
        DecodedAccount out;
        out.account.source_file = path.string();
        out.diagnostics.push_back(Diagnostic{path.string(), 0, 0, "", "cannot read file: " + why});
        return out;
    }
    return decode_account_text(*text, path);
}

tl::expected<Account, std::vector<Diagnostic>> to_expected(DecodedAccount decoded) {
    if (!decoded.diagnostics.empty()) {
        return tl::make_unexpected(std::move(decoded.diagnostics));
    }
    return std::move(decoded.account);
}

} // namespace

tl::expected<DaemonConfig, std::vector<Diagnostic>>
parse_daemon_config(std::string_view yaml, const std::filesystem::path& path) {
    return decode_daemon_text(yaml, path);
}

tl::expected<DaemonConfig, std::vector<Diagnostic>>
load_daemon_config(const std::filesystem::path& path) {
    std::string why;
    auto text = read_text_file(path, kMaxConfigFileSize, why);
    if (!text) {
        return tl::make_unexpected(std::vector<Diagnostic>{
            Diagnostic{path.string(), 0, 0, "", "cannot read file: " + why}});
    }
    return decode_daemon_text(*text, path);
}

tl::expected<Account, std::vector<Diagnostic>> parse_account(std::string_view yaml,
                                                             const std::filesystem::path& path) {
    return to_expected(decode_account_text(yaml, path));
}

tl::expected<Account, std::vector<Diagnostic>> load_account(const std::filesystem::path& path) {
    return to_expected(decode_account_file(path));
}

namespace {

// A warning when `path` (holding a secret) may be read by group or others.
void warn_if_readable(const fs::path& path, const std::string& what, const std::string& label,
                      std::vector<Diagnostic>& out) {
    std::error_code ec;
    fs::perms p = fs::status(path, ec).permissions();
    if (ec)
        return;
    if ((p & (fs::perms::group_read | fs::perms::others_read)) == fs::perms::none)
        return;
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", unsigned(p & fs::perms::mask));
    out.push_back(Diagnostic{label, 0, 0, "",
                             what + " " + path.string() + " is readable by group or others (mode " +
                                 mode + "); chmod 600 it"});
}

void warn_readable_secrets(const Account& account, const fs::path& file,
                           std::vector<Diagnostic>& out) {
    bool inline_secret = false;
    for (const Upstream& up : account.upstreams) {
        if (up.secret_source == SecretSource::Password)
            inline_secret = true;
        if ((up.secret_source == SecretSource::PasswordFile ||
             up.secret_source == SecretSource::TokenFile) &&
            !up.secret_file.empty())
            warn_if_readable(up.secret_file,
                             "upstream " + up.name + ": " + std::string(key_name(up.secret_source)),
                             file.string(), out);
    }
    if (inline_secret)
        warn_if_readable(file, "account file with an inline password", file.string(), out);
}

} // namespace

AccountsLoad load_accounts(const std::filesystem::path& accounts_dir) {
    AccountsLoad out;
    std::vector<fs::path> files;
    std::error_code ec;
    fs::directory_iterator it(accounts_dir, ec);
    if (ec) {
        out.errors.push_back(Diagnostic{accounts_dir.string(), 0, 0, "",
                                        "cannot read accounts directory: " + ec.message()});
        return out;
    }
    for (; it != fs::directory_iterator(); it.increment(ec)) {
        const fs::path& p = it->path();
        std::string name = p.filename().string();
        std::string ext = p.extension().string();
        if (name.empty() || name.front() == '.' || (ext != ".yaml" && ext != ".yml")) {
            continue;
        }
        std::error_code type_ec;
        if (!fs::is_regular_file(p, type_ec)) {
            continue;
        }
        files.push_back(p);
    }
    if (ec) {
        out.errors.push_back(Diagnostic{accounts_dir.string(), 0, 0, "",
                                        "cannot list accounts directory: " + ec.message()});
    }
    std::sort(files.begin(), files.end(),
              [](const fs::path& a, const fs::path& b) { return a.filename() < b.filename(); });

    std::map<std::string, std::string> owner; // user -> file that defined it
    for (const fs::path& file : files) {
        DecodedAccount decoded = decode_account_file(file);
        if (decoded.diagnostics.empty()) {
            auto [at, inserted] = owner.emplace(decoded.account.user, file.string());
            if (!inserted) {
                decoded.diagnostics.push_back(Diagnostic{
                    file.string(), decoded.user_pos.line, decoded.user_pos.column, "user",
                    "user " + quote(decoded.account.user) + " is already defined in " + at->second +
                        "; this file is disabled"});
            }
        }
        if (!decoded.diagnostics.empty()) {
            for (Diagnostic& d : decoded.diagnostics) {
                out.errors.push_back(std::move(d));
            }
            out.disabled_files.push_back(file.string());
            continue;
        }
        warn_readable_secrets(decoded.account, file, out.warnings);
        out.accounts.push_back(std::move(decoded.account));
    }
    return out;
}

} // namespace popbridge::config
