// SPDX-License-Identifier: MIT
// examples/search.cpp: the first matches of a search, as a range in the calling thread.
//
//   example_search [--lines N] [--limit K] [--mode sequential|thread|process]
//
// Searches N synthetic log lines (default 2000000) for requests that failed with a 5xx status
// and took over 900 ms:
//
//   read (batches of lines) -> match (2 workers) -> the caller's loop
//
// The caller prints matches as they arrive and leaves the loop after K of them (default 20):
// the pipeline stops there, without reading the rest. Exits 1 if a printed line does not
// match, if it saw fewer than K matches, or if the stop took the whole input to happen.

#include <plumb/plumb.hpp>

#include "support/mode.hpp"

#include <atomic>
#include <cstddef>
#include <cstdio>
#include <iostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <sys/mman.h>

namespace {

// How many lines the source made: it counts in a shared mapping, so that it can run in a worker
// process too.
std::atomic<long>* lines_read() {
  static auto* counter = [] {
    void* memory = ::mmap(nullptr, sizeof(std::atomic<long>), PROT_READ | PROT_WRITE,
                          MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (memory == MAP_FAILED) std::abort();
    return new (memory) std::atomic<long>(0);
  }();
  return counter;
}

std::string log_line(long i) {
  const int status = i % 97 == 0 ? 503 : (i % 13 == 0 ? 404 : 200);
  const long millis = (i * 7919) % 1000;
  char line[128];
  std::snprintf(line, sizeof line, "10.0.%ld.%ld GET /api/items/%ld %d %ldms", (i / 256) % 256,
                i % 256, i, status, millis);
  return line;
}

// Lines in batches of 1000: matching one line takes far less than handing a packet over.
plumb::Generator<std::vector<std::string>> read_lines(long count) {
  std::vector<std::string> batch;
  for (long i = 0; i < count; ++i) {
    batch.push_back(log_line(i));
    if (batch.size() == 1000) {
      lines_read()->fetch_add(static_cast<long>(batch.size()), std::memory_order_relaxed);
      auto full = std::exchange(batch, {});
      co_yield std::move(full);
    }
  }
  if (!batch.empty()) co_yield std::move(batch);
}

bool matches(std::string_view line) {
  const std::size_t status_at = line.rfind(' ', line.size() - 1);
  const std::size_t status_from = line.rfind(' ', status_at - 1) + 1;
  const std::string_view status = line.substr(status_from, status_at - status_from);
  const long millis = std::stol(std::string(line.substr(status_at + 1)));
  return status.front() == '5' && millis > 900;
}

plumb::Generator<std::string> match(plumb::Stream<std::vector<std::string>> in) {
  for (std::vector<std::string>& batch : in) {
    for (std::string& line : batch) {
      if (matches(line)) co_yield std::move(line);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  long lines = 2'000'000;
  std::size_t limit = 20;
  plumb::Mode mode = plumb::Mode::process;
  examples::CommandLine command_line{
      "example_search",
      "Prints the first K failed slow requests in N synthetic log lines, then stops the search"};
  command_line.add_option("--lines", lines, "Synthetic log lines to search")->check(examples::kPositive);
  command_line.add_option("--limit", limit, "Matches to print before leaving the loop")
      ->check(examples::kPositive);
  examples::add_mode_option(command_line, mode);
  CLI11_PARSE(command_line, argc, argv);

  lines_read();  // maps the counter before any worker process is forked
  plumb::Pipeline pipeline{plumb::stage(read_lines, lines).in_flight(4).max_message_size(1 << 20),
                           plumb::stage(match).workers(2).name("match")};
  std::size_t found = 0;
  bool ok = true;
  for (std::string& line : pipeline.stream(mode)) {
    std::cout << line << '\n';
    ok = ok && matches(line);
    if (++found == limit) break;  // stops the pipeline: no more lines are read
  }
  const long read = lines_read()->load();
  std::cout << found << " matches in the first " << read << " of " << lines << " lines\n";
  ok = ok && found == limit && read > 0 && read < lines;
  return ok ? 0 : 1;
}
