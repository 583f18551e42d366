#include "config/diagnostic.h"

#include <catch2/catch.hpp>

using namespace popbridge::config;

TEST_CASE("Diagnostic::to_string formats file:line:col: field: message", "[config]") {
    CHECK(Diagnostic{"a.yaml", 7, 10, "upstreams[0].tls", "bad"}.to_string() ==
          "a.yaml:7:10: upstreams[0].tls: bad");
    CHECK(Diagnostic{"a.yaml", 2, 1, "", "YAML syntax error: x"}.to_string() ==
          "a.yaml:2:1: YAML syntax error: x");
    CHECK(Diagnostic{"a.yaml", 0, 0, "", "cannot read file: x"}.to_string() ==
          "a.yaml: cannot read file: x");
    CHECK(Diagnostic{"a.yaml", 0, 0, "user", "m"}.to_string() == "a.yaml: user: m");
}

TEST_CASE("SourceMap::find falls back to the closest parent field", "[config]") {
    SourceMap map;
    map.file = "f.yaml";
    map.positions["upstreams"] = {3, 12};
    map.positions["upstreams[1]"] = {9, 5};
    map.positions["upstreams[1].tls"] = {11, 10};
    CHECK(map.find("upstreams[1].tls").line == 11);
    CHECK(map.find("upstreams[1].name").line == 9);
    CHECK(map.find("upstreams[2].name").line == 3);
    CHECK(map.find("user").line == 0);
    CHECK(map.at("upstreams[1].name", "m").to_string() == "f.yaml:9:5: upstreams[1].name: m");
}

TEST_CASE("sort_by_position is stable", "[config]") {
    std::vector<Diagnostic> d = {
        {"f", 5, 1, "c", ""}, {"f", 2, 3, "a", ""}, {"f", 5, 1, "d", ""}, {"f", 2, 1, "b", ""}};
    sort_by_position(d);
    CHECK(d[0].field == "b");
    CHECK(d[1].field == "a");
    CHECK(d[2].field == "c");
    CHECK(d[3].field == "d");
}
