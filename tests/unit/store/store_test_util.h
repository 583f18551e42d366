// Shared helpers for the store unit tests: a temp data dir and sync shortcuts.
#pragma once

#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <string_view>

#include "store/store.h"

namespace popbridge::store::test {

// mkdtemp directory, removed with everything in it on destruction.
struct TempDir {
    std::filesystem::path path;
    TempDir() {
        std::string tmpl = (std::filesystem::temp_directory_path() / "pb-store-XXXXXX").string();
        REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
        path = tmpl;
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
};

inline StoreOptions options_for(const TempDir& dir) {
    StoreOptions o;
    o.data_dir = dir.path / "data";
    o.hostname = "testhost";
    return o;
}

inline std::unique_ptr<Store> open_store(StoreOptions o) {
    auto s = Store::open(std::move(o));
    REQUIRE(s);
    return std::move(*s);
}

// Streams body into a new Incoming (in two pieces) and commits it.
inline Result<Ticket> ingest(Store& s, std::string_view user, std::string_view body,
                             std::string_view account, std::string_view uidl,
                             FolderId folder = kInbox, std::int64_t date = 1'700'000'000) {
    auto in = s.begin_incoming(user, folder);
    if (!in) {
        return tl::unexpected(in.error());
    }
    std::size_t half = body.size() / 2;
    REQUIRE(in->append(body.substr(0, half)));
    REQUIRE(in->append(body.substr(half)));
    return s.commit_incoming(std::move(*in), Origin{std::string(account), std::string(uidl)}, date);
}

// take -> run -> finish, requiring that there was a job.
inline std::vector<Outcome> sync(Store& s) {
    auto job = s.take_sync_job();
    REQUIRE(job);
    job->run();
    return s.finish_sync_job(std::move(job));
}

inline std::string read_file(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

inline std::string message_body(int i) {
    return "From: a@example.net\r\nSubject: m" + std::to_string(i) + "\r\n\r\nbody " +
           std::to_string(i) + "\r\n";
}

} // namespace popbridge::store::test
