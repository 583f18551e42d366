#include "proxy/metrics.h"

#include <cmath>
#include <cstdio>

#include "proxy/login_throttle.h"

namespace popbridge::proxy {

void LatencyHistogram::observe(std::chrono::microseconds d) {
    if (d.count() < 0)
        d = std::chrono::microseconds(0);
    double s = double(d.count()) / 1e6;
    size_t i = 0;
    while (i < kBounds.size() && s > kBounds[i])
        ++i;
    if (i < kBounds.size())
        ++buckets_[i];
    ++count_;
    sum_us_ += uint64_t(d.count());
    last_ = d;
}

uint64_t LatencyHistogram::cumulative(size_t i) const {
    uint64_t n = 0;
    for (size_t j = 0; j <= i && j < buckets_.size(); ++j)
        n += buckets_[j];
    return n;
}

void ImapMetrics::command(std::string_view name) {
    auto it = commands.find(name);
    if (it != commands.end()) {
        ++it->second;
        return;
    }
    if (commands.size() >= kMaxCommandNames) {
        ++commands["OTHER"];
        return;
    }
    commands.emplace(std::string(name), 1);
}

Metrics& metrics() {
    static Metrics m;
    return m;
}

std::string escape_label_value(std::string_view v) {
    std::string out;
    out.reserve(v.size());
    for (char c : v) {
        switch (c) {
        case '\\':
            out += "\\\\";
            break;
        case '"':
            out += "\\\"";
            break;
        case '\n':
            out += "\\n";
            break;
        default:
            out += c;
        }
    }
    return out;
}

std::string format_metric_value(double v) {
    if (std::isnan(v))
        return "NaN";
    if (std::isinf(v))
        return v > 0 ? "+Inf" : "-Inf";
    char buf[64];
    if (v == std::floor(v) && std::fabs(v) < 1e15)
        std::snprintf(buf, sizeof buf, "%.0f", v);
    else
        std::snprintf(buf, sizeof buf, "%.9g", v);
    return buf;
}

void PrometheusWriter::family(std::string_view name, std::string_view type, std::string_view help) {
    out_ += "# HELP ";
    out_ += name;
    out_ += ' ';
    // HELP text escapes only backslash and newline.
    for (char c : help) {
        if (c == '\\')
            out_ += "\\\\";
        else if (c == '\n')
            out_ += "\\n";
        else
            out_ += c;
    }
    out_ += "\n# TYPE ";
    out_ += name;
    out_ += ' ';
    out_ += type;
    out_ += '\n';
}

void PrometheusWriter::sample(std::string_view name, const Labels& labels, double value) {
    out_ += name;
    if (!labels.empty()) {
        out_ += '{';
        bool first = true;
        for (const auto& [k, v] : labels) {
            if (!first)
                out_ += ',';
            first = false;
            out_ += k;
            out_ += "=\"";
            out_ += escape_label_value(v);
            out_ += '"';
        }
        out_ += '}';
    }
    out_ += ' ';
    out_ += format_metric_value(value);
    out_ += '\n';
}

void PrometheusWriter::histogram(std::string_view name, const Labels& labels,
                                 const LatencyHistogram& h) {
    std::string bucket = std::string(name) + "_bucket";
    for (size_t i = 0; i < LatencyHistogram::kBounds.size(); ++i) {
        Labels l = labels;
        std::string le = format_metric_value(LatencyHistogram::kBounds[i]);
        l.emplace_back("le", le);
        sample(bucket, l, double(h.cumulative(i)));
    }
    Labels inf = labels;
    inf.emplace_back("le", "+Inf");
    sample(bucket, inf, double(h.count()));
    sample(std::string(name) + "_sum", labels, h.sum_seconds());
    sample(std::string(name) + "_count", labels, double(h.count()));
}

void write_core_metrics(PrometheusWriter& w, const Metrics& m) {
    using std::chrono::duration_cast;
    using std::chrono::seconds;
    w.family("popbridge_start_time_seconds", "gauge", "Unix time the daemon started.");
    w.sample("popbridge_start_time_seconds",
             double(duration_cast<seconds>(m.started.time_since_epoch()).count()));

    w.family("popbridge_imap_connections", "gauge", "IMAP connections open now.");
    w.sample("popbridge_imap_connections", double(m.imap.connections_current));
    w.family("popbridge_imap_connections_total", "counter", "IMAP connections accepted.");
    w.sample("popbridge_imap_connections_total", double(m.imap.connections_total));
    w.family("popbridge_imap_logins_total", "counter", "IMAP login attempts by result.");
    w.sample("popbridge_imap_logins_total", {{"result", "ok"}}, double(m.imap.logins_ok));
    w.sample("popbridge_imap_logins_total", {{"result", "failed"}}, double(m.imap.logins_failed));
    w.family("popbridge_imap_login_throttled_addresses", "gauge",
             "Client addresses whose next login waits for a failed-login delay now.");
    w.sample("popbridge_imap_login_throttled_addresses",
             double(login_throttle().throttled_addresses(std::chrono::steady_clock::now())));
    w.family("popbridge_imap_commands_total", "counter", "IMAP commands received, by name.");
    for (const auto& [name, n] : m.imap.commands)
        w.sample("popbridge_imap_commands_total", {{"command", name}}, double(n));
    w.family("popbridge_imap_idle_sessions", "gauge", "IMAP sessions in IDLE now.");
    w.sample("popbridge_imap_idle_sessions", double(m.imap.idle_current));
    w.family("popbridge_imap_idle_total", "counter", "IDLE commands started.");
    w.sample("popbridge_imap_idle_total", double(m.imap.idle_total));

    w.family("popbridge_store_commit_seconds", "histogram",
             "Duration of one store group commit (writes and fsyncs).");
    w.histogram("popbridge_store_commit_seconds", {}, m.store.commit_latency);
    w.family("popbridge_store_commits_total", "counter", "Store group commits run.");
    w.sample("popbridge_store_commits_total", double(m.store.commits));
    w.family("popbridge_store_operations_total", "counter",
             "Store mutations made durable by group commits.");
    w.sample("popbridge_store_operations_total", double(m.store.operations));

    w.family("popbridge_admin_requests_total", "counter", "Admin HTTP requests answered.");
    w.sample("popbridge_admin_requests_total", double(m.admin.requests));
    w.family("popbridge_admin_bad_requests_total", "counter",
             "Admin HTTP requests answered with a 4xx status.");
    w.sample("popbridge_admin_bad_requests_total", double(m.admin.bad_requests));
}

} // namespace popbridge::proxy
