#pragma once
// Process-wide counters and gauges for the admin endpoint's /metrics (Prometheus text
// exposition format 0.0.4), plus a small writer for that format.
//
// Threading: plain integers, no atomics. Every increment and every read happens on the
// event-loop thread (IMAP sessions, pollers, StoreSync completions, the admin endpoint
// all run there). Do not touch metrics() from a thread-pool worker.
//
// Per-upstream POP3 numbers are not kept here: the admin endpoint reads them from each
// Pop3Poller::status() at scrape time, so they disappear with the account.
//
// Usage from other modules (all cheap, no allocation on the hot path except the first
// time a command name is seen):
//   metrics().imap.connection_opened();   ... connection_closed();
//   metrics().imap.login(ok);
//   metrics().imap.command("FETCH");      // the command-table name, never client text
//   metrics().imap.idle_started();        ... idle_ended();
//   metrics().store.commit_finished(duration, operations);

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace popbridge::proxy {

// Cumulative-bucket latency histogram with fixed bounds (seconds), Prometheus style.
class LatencyHistogram {
public:
    static constexpr std::array<double, 14> kBounds = {
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

    void observe(std::chrono::microseconds d);

    uint64_t count() const { return count_; }
    // Sum of all observations, in seconds.
    double sum_seconds() const { return double(sum_us_) / 1e6; }
    // Observations <= kBounds[i] (cumulative), i < kBounds.size().
    uint64_t cumulative(size_t i) const;
    std::chrono::microseconds last() const { return last_; }

private:
    std::array<uint64_t, kBounds.size()> buckets_{}; // non-cumulative counts per bucket
    uint64_t count_ = 0;
    uint64_t sum_us_ = 0;
    std::chrono::microseconds last_{0};
};

struct ImapMetrics {
    // Distinct command names kept; further new names count under "OTHER" so a bug that
    // passes client text cannot grow the map without bound.
    static constexpr size_t kMaxCommandNames = 64;

    uint64_t connections_current = 0;
    uint64_t connections_total = 0;
    uint64_t logins_ok = 0;
    uint64_t logins_failed = 0;
    uint64_t idle_current = 0;
    uint64_t idle_total = 0;
    std::map<std::string, uint64_t, std::less<>> commands; // by upper-case name

    void connection_opened() {
        ++connections_current;
        ++connections_total;
    }
    void connection_closed() {
        if (connections_current)
            --connections_current;
    }
    void login(bool ok) { ++(ok ? logins_ok : logins_failed); }
    // `name` is the command's name from the command table (e.g. "UID FETCH" or "FETCH").
    void command(std::string_view name);
    void idle_started() {
        ++idle_current;
        ++idle_total;
    }
    void idle_ended() {
        if (idle_current)
            --idle_current;
    }
};

struct StoreMetrics {
    LatencyHistogram commit_latency; // one group commit (file + journal + dir fsyncs)
    uint64_t commits = 0;
    uint64_t operations = 0; // mutations made durable by those commits

    void commit_finished(std::chrono::microseconds duration, uint64_t ops) {
        commit_latency.observe(duration);
        ++commits;
        operations += ops;
    }
};

struct AdminMetrics {
    uint64_t requests = 0;
    uint64_t bad_requests = 0; // 4xx answers (malformed, too large, unknown path)
};

struct Metrics {
    ImapMetrics imap;
    StoreMetrics store;
    AdminMetrics admin;
    std::chrono::system_clock::time_point started = std::chrono::system_clock::now();
};

// The process-wide registry (loop thread only).
Metrics& metrics();

// Builds a Prometheus text-format document. Families must be declared before their
// samples; a family is declared once. Label values are escaped (\\, \", \n).
class PrometheusWriter {
public:
    using Labels = std::vector<std::pair<std::string_view, std::string_view>>;

    // type: "counter", "gauge" or "histogram".
    void family(std::string_view name, std::string_view type, std::string_view help);
    void sample(std::string_view name, const Labels& labels, double value);
    void sample(std::string_view name, double value) { sample(name, {}, value); }
    // Writes name_bucket{le=...}, name_sum and name_count for a declared histogram family.
    void histogram(std::string_view name, const Labels& labels, const LatencyHistogram& h);

    const std::string& text() const { return out_; }
    std::string take() { return std::move(out_); }

private:
    std::string out_;
};

// "a\"b" -> a\"b escaped for a label value.
std::string escape_label_value(std::string_view v);
// Prometheus number formatting: integers without exponent, "+Inf", "NaN".
std::string format_metric_value(double v);

// Writes the families held in `m` (IMAP, store commit, admin, process start time).
void write_core_metrics(PrometheusWriter& w, const Metrics& m);

} // namespace popbridge::proxy
