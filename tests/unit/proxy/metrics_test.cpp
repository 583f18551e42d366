// Unit tests for proxy/metrics.h: counters, histogram buckets and the text format.

#include <catch2/catch.hpp>

#include <chrono>
#include <string>

#include "proxy/metrics.h"

using namespace popbridge::proxy;
using std::chrono::microseconds;

TEST_CASE("metrics: histogram buckets are cumulative", "[metrics]") {
    LatencyHistogram h;
    h.observe(microseconds(400));        // <= 0.0005
    h.observe(microseconds(500));        // <= 0.0005 (bounds are inclusive)
    h.observe(microseconds(3000));       // <= 0.005
    h.observe(microseconds(20'000'000)); // above every bound: only +Inf
    CHECK(h.count() == 4);
    CHECK(h.cumulative(0) == 2);
    CHECK(h.cumulative(2) == 2);
    CHECK(h.cumulative(3) == 3);
    CHECK(h.cumulative(LatencyHistogram::kBounds.size() - 1) == 3);
    CHECK(h.sum_seconds() == Approx(20.0039));
    CHECK(h.last() == microseconds(20'000'000));
}

TEST_CASE("metrics: IMAP counters and command name cap", "[metrics]") {
    ImapMetrics m;
    m.connection_opened();
    m.connection_opened();
    m.connection_closed();
    m.connection_closed();
    m.connection_closed(); // never below zero
    CHECK(m.connections_current == 0);
    CHECK(m.connections_total == 2);
    m.login(true);
    m.login(false);
    m.login(false);
    CHECK(m.logins_ok == 1);
    CHECK(m.logins_failed == 2);
    for (int i = 0; i < 100; ++i)
        m.command("CMD" + std::to_string(i));
    m.command("CMD0");
    CHECK(m.commands.size() == ImapMetrics::kMaxCommandNames + 1); // + "OTHER"
    CHECK(m.commands.at("CMD0") == 2);
    CHECK(m.commands.at("OTHER") == 100 - ImapMetrics::kMaxCommandNames);
}

TEST_CASE("metrics: Prometheus text exposition", "[metrics]") {
    PrometheusWriter w;
    w.family("x_total", "counter", "Help with \\ and\nnewline.");
    w.sample("x_total", {{"a", "q\"uo\\te\nd"}, {"b", "2"}}, 3);
    w.sample("x_total", 1.5);
    CHECK(w.text() == "# HELP x_total Help with \\\\ and\\nnewline.\n"
                      "# TYPE x_total counter\n"
                      "x_total{a=\"q\\\"uo\\\\te\\nd\",b=\"2\"} 3\n"
                      "x_total 1.5\n");
    CHECK(format_metric_value(1e20) == "1e+20");
    CHECK(format_metric_value(12345678) == "12345678");
    CHECK(format_metric_value(0.25) == "0.25");
}

TEST_CASE("metrics: histogram family output", "[metrics]") {
    LatencyHistogram h;
    h.observe(microseconds(2000));
    PrometheusWriter w;
    w.family("c_seconds", "histogram", "h");
    w.histogram("c_seconds", {}, h);
    const std::string& t = w.text();
    CHECK(t.find("c_seconds_bucket{le=\"0.001\"} 0\n") != std::string::npos);
    CHECK(t.find("c_seconds_bucket{le=\"0.0025\"} 1\n") != std::string::npos);
    CHECK(t.find("c_seconds_bucket{le=\"+Inf\"} 1\n") != std::string::npos);
    CHECK(t.find("c_seconds_sum 0.002\n") != std::string::npos);
    CHECK(t.find("c_seconds_count 1\n") != std::string::npos);
}

TEST_CASE("metrics: core families are declared and present", "[metrics]") {
    Metrics m;
    m.imap.command("FETCH");
    m.store.commit_finished(microseconds(1500), 4);
    PrometheusWriter w;
    write_core_metrics(w, m);
    const std::string& t = w.text();
    for (const char* s :
         {"popbridge_imap_connections 0\n", "popbridge_imap_logins_total{result=\"ok\"} 0\n",
          "popbridge_imap_commands_total{command=\"FETCH\"} 1\n",
          "popbridge_store_commits_total 1\n", "popbridge_store_operations_total 4\n",
          "popbridge_store_commit_seconds_count 1\n",
          "popbridge_imap_login_throttled_addresses 0\n"}) {
        INFO(s);
        CHECK(t.find(s) != std::string::npos);
    }
}
