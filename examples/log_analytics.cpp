// SPDX-License-Identifier: MIT
// examples/log_analytics.cpp: web server log analytics, the same pipeline fused, in threads and
// in processes.
//
//   example_log_analytics [--lines N] [--file ACCESS_LOG]
//
// Without --file, writes N lines (default 200000) of a synthetic access log in Apache's
// combined format to a temporary file first. Then, three times:
//
//   read (batches of lines) -> parse (2 workers) -> count (2 workers, a partial tally each)
//     -> merge (one tally)
//
// once fused into the calling thread (Mode::sequential), once with a thread per worker, once
// with a process per worker. Prints the time of each and the report; exits 1 if the three
// reports differ. Lines are sent in batches: parsing a line takes well under a microsecond,
// less than handing a packet to another thread, so one packet per line would measure the
// hand-off.
// The counters are a map-reduce: each count worker tallies what it sees and yields its tally
// once, at the end of its input; merge adds the tallies up.

#include <plumb/plumb.hpp>

#include "support/cli.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <unistd.h>

namespace {

namespace fs = std::filesystem;

using Lines = std::vector<std::string>;

struct Hit {
  std::uint16_t status = 0;
  std::uint8_t hour = 0;
  std::uint64_t bytes = 0;
  std::string path;
  bool bot = false;
};

struct Tally {
  std::uint64_t requests = 0;
  std::uint64_t malformed = 0;
  std::uint64_t bytes = 0;
  std::uint64_t bots = 0;
  std::array<std::uint64_t, 24> per_hour{};
  std::map<std::uint16_t, std::uint64_t> per_status;
  std::map<std::string, std::uint64_t> per_path;

  void add(const Tally& other) {
    requests += other.requests;
    malformed += other.malformed;
    bytes += other.bytes;
    bots += other.bots;
    for (std::size_t h = 0; h < per_hour.size(); ++h) per_hour[h] += other.per_hour[h];
    for (const auto& [status, count] : other.per_status) per_status[status] += count;
    for (const auto& [path, count] : other.per_path) per_path[path] += count;
  }
  bool operator==(const Tally&) const = default;
};

// ---------------------------------------------------------------------------------------------
// A synthetic log: deterministic, with a few malformed lines.

void write_log(const fs::path& file, std::size_t lines) {
  static constexpr std::array<std::string_view, 8> kPaths{
      "/", "/index.html", "/api/v1/items", "/api/v1/items/42", "/static/app.js",
      "/static/style.css", "/login", "/search?q=plumb"};
  static constexpr std::array<std::uint16_t, 6> kStatus{200, 200, 200, 304, 404, 500};
  static constexpr std::array<std::string_view, 3> kAgents{
      "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0", "curl/7.88.1",
      "Googlebot/2.1 (+http://www.google.com/bot.html)"};
  std::ofstream out(file);
  std::uint64_t state = 42;
  auto next = [&] {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<std::size_t>(state >> 33);
  };
  for (std::size_t i = 0; i < lines; ++i) {
    if (next() % 1000 == 0) {
      out << "garbage line " << i << "\n";
      continue;
    }
    const std::size_t hour = i * 24 / lines;
    out << "10.0." << next() % 256 << '.' << next() % 256 << " - - [21/Nov/2026:" << std::setw(2)
        << std::setfill('0') << hour << ':' << std::setw(2) << next() % 60 << ':' << std::setw(2)
        << next() % 60 << " +0000] \"GET " << kPaths[next() % kPaths.size()] << " HTTP/1.1\" "
        << kStatus[next() % kStatus.size()] << ' ' << next() % 50000 << " \"-\" \""
        << kAgents[next() % kAgents.size()] << "\"\n";
  }
}

// ---------------------------------------------------------------------------------------------
// The stages.

// Batches of whole lines, about `batch_bytes` each as the codec counts them (a line is its
// characters and an 8-byte length): every batch fits a slot of batch_bytes plus one line.
plumb::Generator<Lines> read_lines(std::string path, std::size_t batch_bytes) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("read: cannot open '" + path + "'");
  Lines batch;
  std::size_t bytes = 0;
  for (std::string line; std::getline(in, line);) {
    bytes += line.size() + sizeof(std::uint64_t);
    batch.push_back(std::move(line));
    if (bytes >= batch_bytes) {
      auto full = std::exchange(batch, {});
      co_yield std::move(full);
      bytes = 0;
    }
  }
  if (!batch.empty()) co_yield std::move(batch);
}

// `line` in combined format: IP - USER [DD/Mon/YYYY:HH:MM:SS ZONE] "METHOD PATH PROTO" STATUS
// BYTES "REFERER" "AGENT". False if it is not.
bool parse_line(std::string_view line, Hit& hit) {
  const auto open = line.find('[');
  const auto request = line.find('"');
  if (open == std::string_view::npos || request == std::string_view::npos || request < open ||
      open + 15 > line.size()) {
    return false;
  }
  const std::string_view hour = line.substr(open + 13, 2);  // [21/Nov/2026:HH
  unsigned value = 0;
  if (std::from_chars(hour.data(), hour.data() + 2, value).ptr != hour.data() + 2 || value > 23) {
    return false;
  }
  hit.hour = static_cast<std::uint8_t>(value);
  const auto request_end = line.find('"', request + 1);
  if (request_end == std::string_view::npos) return false;
  const std::string_view text = line.substr(request + 1, request_end - request - 1);
  const auto space = text.find(' ');
  const auto space2 = text.rfind(' ');
  if (space == std::string_view::npos || space2 <= space) return false;
  hit.path.assign(text.substr(space + 1, space2 - space - 1));
  const char* cursor = line.data() + request_end + 2;
  const char* end = line.data() + line.size();
  if (cursor >= end) return false;
  auto [after_status, e1] = std::from_chars(cursor, end, hit.status);
  if (e1 != std::errc{} || after_status + 1 >= end) return false;
  auto [after_bytes, e2] = std::from_chars(after_status + 1, end, hit.bytes);
  if (e2 != std::errc{}) return false;
  hit.bot = std::string_view(after_bytes, end).find("bot") != std::string_view::npos;
  return true;
}

// A parse failure is data, not an error: it is counted (status 0).
plumb::Generator<std::vector<Hit>> parse(plumb::Stream<Lines> batches) {
  for (const Lines& batch : batches) {
    std::vector<Hit> hits(batch.size());
    for (std::size_t i = 0; i < batch.size(); ++i) {
      if (!parse_line(batch[i], hits[i])) hits[i] = Hit{};
    }
    co_yield std::move(hits);
  }
}

// Each worker tallies the hits it sees and yields its tally once, when its input ends.
plumb::Generator<Tally> count(plumb::Stream<std::vector<Hit>> batches) {
  Tally tally;
  for (const std::vector<Hit>& hits : batches) {
    for (const Hit& hit : hits) {
      if (hit.status == 0) {
        ++tally.malformed;
        continue;
      }
      ++tally.requests;
      tally.bytes += hit.bytes;
      tally.bots += hit.bot ? 1 : 0;
      ++tally.per_hour[hit.hour];
      ++tally.per_status[hit.status];
      ++tally.per_path[hit.path];
    }
  }
  co_yield std::move(tally);
}

Tally merge(plumb::Stream<Tally> tallies) {
  Tally total;
  for (const Tally& tally : tallies) total.add(tally);
  return total;
}

void print(const Tally& tally) {
  std::cout << tally.requests << " requests, " << tally.malformed << " malformed lines, "
            << tally.bytes / 1000000 << " MB sent, " << tally.bots << " from bots\n  status:";
  for (const auto& [status, n] : tally.per_status) std::cout << ' ' << status << " x" << n;
  std::vector<std::pair<std::uint64_t, std::string>> paths;
  for (const auto& [path, n] : tally.per_path) paths.emplace_back(n, path);
  std::sort(paths.rbegin(), paths.rend());
  std::cout << "\n  top paths:";
  for (std::size_t i = 0; i < std::min<std::size_t>(3, paths.size()); ++i) {
    std::cout << ' ' << paths[i].second << " x" << paths[i].first;
  }
  std::cout << "\n";
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t lines = 200000;
  std::string file;
  examples::CommandLine command_line{
      "example_log_analytics",
      "Tallies an Apache access log fused, in threads and in processes, and compares the three"};
  command_line.add_option("--lines", lines, "Lines of the synthetic log written when there is no --file")
      ->check(examples::kPositive);
  command_line.add_option("--file", file, "An access log in Apache's combined format (default: a synthetic one)")
      ->check(CLI::ExistingFile);
  CLI11_PARSE(command_line, argc, argv);
  const bool temporary = file.empty();
  if (temporary) {
    file = (fs::temp_directory_path() / ("plumb-access-" + std::to_string(::getpid()) + ".log")).string();
    write_log(file, lines);
  }

  // Slots: a batch is at most kBatchBytes plus one line (lines up to 1 MiB); its hits are
  // smaller than its lines; a tally grows with the distinct paths (16 MiB: about 200,000 of
  // them), and merge returns one.
  constexpr std::size_t kBatchBytes = 64 * 1024;
  constexpr std::size_t kTallyBytes = std::size_t{16} << 20;
  plumb::Pipeline pipeline{
      plumb::stage(read_lines, file, kBatchBytes).name("read").in_flight(4)
          .max_message_size(kBatchBytes + (std::size_t{1} << 20)),
      plumb::stage(parse).name("parse").workers(2).in_flight(4)
          .max_message_size(kBatchBytes + (std::size_t{1} << 20)),
      plumb::stage(count).name("count").workers(2).max_message_size(kTallyBytes),
      plumb::stage(merge).name("merge").max_message_size(kTallyBytes),
  };
  std::vector<Tally> reports;
  std::cout << "mode        seconds   lines/s\n";
  for (const plumb::Mode mode : {plumb::Mode::sequential, plumb::Mode::thread, plumb::Mode::process}) {
    const auto start = std::chrono::steady_clock::now();
    try {
      reports.push_back(pipeline.run(mode));
    } catch (const std::exception& error) {
      std::cerr << "log_analytics: " << error.what() << "\n";
      if (temporary) fs::remove(file);
      return 1;
    }
    const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
    const Tally& report = reports.back();
    std::cout << std::left << std::setw(10) << (mode == plumb::Mode::sequential ? "fused"
                                                : mode == plumb::Mode::thread   ? "threads"
                                                                                : "processes")
              << std::right << std::fixed << std::setprecision(3) << std::setw(9) << took.count()
              << std::setprecision(0) << std::setw(10)
              << static_cast<double>(report.requests + report.malformed) / took.count() << "\n";
  }
  if (temporary) fs::remove(file);
  std::cout.unsetf(std::ios::fixed);
  print(reports.front());
  std::cout << "\nlast run (processes):\n" << pipeline.last_stats().table();
  if (reports[1] != reports[0] || reports[2] != reports[0]) {
    std::cerr << "the three modes disagree\n";
    return 1;
  }
  return 0;
}
