// SPDX-License-Identifier: MIT
// tests/fork_test.cpp: the life of worker processes around fork(): whose thread they are tied
// to (a stream or a Service started on a thread that then ended), the caller's buffered output
// (written once, never again by a worker), a stopped worker.

#include <plumb/plumb.hpp>

#include "support/eventually.hpp"
#include "support/shared_counter.hpp"
#include "support/stages.hpp"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <exception>
#include <fstream>
#include <future>
#include <iostream>
#include <locale>
#include <map>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using plumb::Generator;
using plumb::Mode;
using plumb::Stream;
using namespace plumb::test;

namespace {

// --- Threads that end before the run does ------------------------------------------------------

// Its workers start together: each one holds one of the in_flight slots of its output link
// until every one holds one (else the first could fill them all, the others waiting for a
// slot before their generator ever ran).
Generator<int> doubled(Stream<int> in, std::atomic<long>* started) {
  const long workers = static_cast<long>(plumb::this_worker().count);
  started->fetch_add(1, std::memory_order_relaxed);  // a count: no data published with it
  if (!eventually([&] { return started->load(std::memory_order_relaxed) >= workers; })) {
    throw std::logic_error("the other workers did not start");
  }
  for (int x : in) co_yield 2 * x;
}

// The stream is started on a thread that ends once every worker runs its stage (a worker
// process has armed its parent-death signal by then), and read on this one.
void check_stream_outlives_its_thread(Mode mode, std::optional<Mode> middle) {
  constexpr int kCount = 20000;
  SharedCounter started;
  auto doubling = plumb::stage(doubled, started.get()).workers(2);
  if (middle) doubling.mode(*middle);
  plumb::Pipeline pipeline{plumb::stage(numbers, kCount).in_flight(2), doubling};
  std::optional<plumb::Results<int>> results;
  // A sequential stream runs its stages only when read.
  const long workers = mode == Mode::sequential ? 0 : 2;
  bool running = false;
  std::exception_ptr error;
  std::thread([&] {
    try {
      results.emplace(pipeline.stream(mode));
      running = eventually([&] { return (*started).load() == workers; });
    } catch (...) {
      error = std::current_exception();
    }
  }).join();
  if (error) std::rethrow_exception(error);
  INFO("mode " << static_cast<int>(mode) << ", middle stage " << static_cast<int>(middle.value_or(mode))
               << ": " << (*started).load() << " workers started");
  REQUIRE(running);
  long sum = 0;
  for (const int x : *results) sum += x;
  CHECK(sum == 2L * (kCount - 1) * kCount / 2);
  CHECK_FALSE(pipeline.last_failure().has_value());
}

// The Service is started on a thread that ends once a first answer came back (its workers run).
void check_service_outlives_its_thread(Mode mode) {
  plumb::Service service{plumb::stage(plus, 1).workers(2)};
  std::thread([&] {
    service.start(mode);
    CHECK(service.submit(41).get() == 42);
  }).join();
  std::vector<std::future<int>> answers;
  for (int i = 0; i < 50; ++i) answers.push_back(service.submit(i));
  for (int i = 0; i < 50; ++i) CHECK(answers[i].get() == i + 1);
  service.close();
  CHECK_FALSE(service.broken());
}

// --- Output: a helper process whose stdout and stderr go to a file -----------------------------

// Runs `body` in a child process with stdout and stderr redirected into a file, and returns
// what was written there once the child exited (with status 0: `body` returned).
std::string output_of(void (*body)()) {
  char path[] = "/tmp/plumb_fork_test_XXXXXX";
  const int file = ::mkstemp(path);
  REQUIRE(file >= 0);
  ::unlink(path);
  REQUIRE(::fcntl(file, F_SETFL, O_APPEND) == 0);
  std::cout.flush();  // nothing of the test runner's is written by the child too
  std::fflush(nullptr);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    int status = 0;
    try {
      if (::dup2(file, STDOUT_FILENO) < 0 || ::dup2(file, STDERR_FILENO) < 0) ::_exit(2);
      body();
    } catch (...) {
      status = 1;
    }
    std::cout.flush();
    std::clog.flush();
    std::wcout.flush();
    std::fflush(nullptr);
    ::_exit(status);
  }
  int status = -1;
  const bool ended = eventually([&] { return ::waitpid(child, &status, WNOHANG) == child; }, 20s);
  if (!ended) {
    ::kill(child, SIGKILL);
    ::waitpid(child, &status, 0);
  }
  std::string output;
  char chunk[65536];
  for (off_t at = 0;;) {
    const ssize_t got = ::pread(file, chunk, sizeof chunk, at);
    if (got <= 0) break;
    output.append(chunk, static_cast<std::size_t>(got));
    at += got;
  }
  ::close(file);
  REQUIRE(ended);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  return output;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// "line x count" per distinct line, sorted: readable in a failed CHECK.
std::string count_lines(const std::vector<std::string>& lines) {
  std::map<std::string, int> counts;
  for (const std::string& line : lines) ++counts[line];
  std::string text;
  for (const auto& [line, count] : counts) text += line + " x" + std::to_string(count) + "\n";
  return text;
}

// Each worker of a process stage writes its own lines, left in its buffers for its exit.
Generator<int> chatty(Stream<int> in) {
  for (int x : in) co_yield x;
  // One insertion per line: an unbuffered stderr writes each one at once, and the workers'
  // writes would interleave within a line.
  const std::string index = std::to_string(plumb::this_worker().index);
  std::cout << ("cout worker " + index + "\n");
  std::clog << ("clog worker " + index + "\n");
  std::printf("printf worker %s\n", index.c_str());
}

constexpr int kChattyWorkers = 3;

// Writes before and after a process-mode run of 5 worker processes, 3 of them chatty.
void report() {
  std::cout << "cout header\n";
  std::clog << "clog header\n";
  std::printf("printf header\n");
  plumb::Pipeline pipeline{plumb::stage(numbers, 100), plumb::stage(chatty).workers(kChattyWorkers),
                           plumb::stage(sum_ints)};
  if (pipeline.run(Mode::process) != 99 * 100 / 2) throw std::logic_error("wrong sum");
  std::cout << "cout footer\n";
}

void report_synced() { report(); }

void report_unsynced() {
  std::ios::sync_with_stdio(false);  // std::cout and std::clog get buffers of their own
  report();
}

void check_report(const std::string& output) {
  const std::vector<std::string> lines = lines_of(output);
  std::vector<std::string> expected{"cout header", "clog header", "printf header", "cout footer"};
  for (int worker = 0; worker < kChattyWorkers; ++worker) {
    for (const char* kind : {"cout", "clog", "printf"}) {
      expected.push_back(std::string(kind) + " worker " + std::to_string(worker));
    }
  }
  CHECK(count_lines(lines) == count_lines(expected));
  // The caller's lines before the run come out before any worker's.
  REQUIRE(lines.size() >= 3);
  for (std::size_t i = 0; i < 3; ++i) CHECK(lines[i].ends_with(" header"));
}

// Each worker writes a wide line that only a UTF-8 codecvt can convert.
Generator<int> wide_chatty(Stream<int> in) {
  for (int x : in) co_yield x;
  std::wcout << L"caf\u00e9 worker " << plumb::this_worker().index << L"\n";
}

// The caller imbues std::wcout with a UTF-8 locale (the global locale stays "C", which cannot
// convert the accent), then runs 2 worker processes that write through std::wcout.
void report_wide_unsynced() {
  std::ios::sync_with_stdio(false);  // std::wcout gets a buffer of its own, with a codecvt
  std::wcout.imbue(std::locale("C.UTF-8"));
  plumb::Pipeline pipeline{plumb::stage(numbers, 10), plumb::stage(wide_chatty).workers(2),
                           plumb::stage(sum_ints)};
  if (pipeline.run(Mode::process) != 45) throw std::logic_error("wrong sum");
  std::wcout << L"caf\u00e9 caller\n";
}

// A thread logs numbered lines through stdout (C stdio and std::cout, synchronized) without
// pause while the calling thread runs ten process-mode pipelines.
void log_during_runs() {
  std::atomic<bool> stop{false};
  long logged = 0;
  std::thread logger([&] {
    constexpr long kAtMost = 2'000'000;  // a bound, should the runs take very long
    while (!stop.load(std::memory_order_relaxed) && logged < kAtMost) {  // a flag: no data with it
      if (logged % 2 == 0) {
        std::printf("log %ld\n", logged);
      } else {
        std::cout << ("log " + std::to_string(logged) + "\n");
      }
      ++logged;
    }
  });
  for (int run = 0; run < 10; ++run) {
    plumb::Pipeline pipeline{plumb::stage(numbers, 200), plumb::stage(plus, 1).workers(3),
                             plumb::stage(sum_ints)};
    if (pipeline.run(Mode::process) != 199 * 200 / 2 + 200) throw std::logic_error("wrong sum");
  }
  stop.store(true, std::memory_order_relaxed);
  logger.join();
  std::printf("logged %ld\n", logged);
}

// --- A stopped worker ---------------------------------------------------------------------------

// The state letter of /proc/<pid>/stat ('T': stopped), or 0 if there is no such process.
char state_of(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return 0;
  const auto close = line.rfind(')');
  return close != std::string::npos && line.size() > close + 2 ? line[close + 2] : 0;
}

// Stops its own process (SIGSTOP) at packet `at`, after publishing its pid.
Generator<int> stop_at(Stream<int> in, int at, std::atomic<long>* pid) {
  for (int x : in) {
    if (x == at) {
      pid->store(::getpid(), std::memory_order_relaxed);  // read after the stop (a syscall apart)
      ::raise(SIGSTOP);
    }
    co_yield x;
  }
}

}  // namespace

TEST_CASE("process mode: a stream started on a thread that ended is read on another, in every mode",
          "[process][stream][fork]") {
  // Regression (issue 18): the workers were forked by the thread that called stream(); their
  // parent-death signal fired when it ended, and the loop threw WorkerDiedError (SIGKILL).
  check_stream_outlives_its_thread(Mode::process, Mode::process);
  check_stream_outlives_its_thread(Mode::process, Mode::thread);  // mixed
  check_stream_outlives_its_thread(Mode::thread, Mode::process);  // mixed
  check_stream_outlives_its_thread(Mode::thread, Mode::thread);
  check_stream_outlives_its_thread(Mode::sequential, std::nullopt);
}

TEST_CASE("process mode: a Service started on a thread that ended answers others, in every mode",
          "[process][service][fork]") {
  check_service_outlives_its_thread(Mode::process);
  check_service_outlives_its_thread(Mode::thread);
  check_service_outlives_its_thread(Mode::sequential);
}

TEST_CASE("process mode: output buffered before a run is written once and first, each worker's "
          "own once",
          "[process][fork][output]") {
  // Regression (issue 18): with sync_with_stdio(false) std::cout and std::clog buffer on their
  // own; only stdio was flushed before the forks, and every worker flushed its copy at exit
  // (each header 6 times).
  SECTION("iostreams synchronized with stdio (the default)") { check_report(output_of(&report_synced)); }
  SECTION("sync_with_stdio(false)") { check_report(output_of(&report_unsynced)); }
}

TEST_CASE("process mode: a worker's std::wcout keeps the locale the caller imbued",
          "[process][fork][output]") {
  // Regression (issue 18 review): a worker's fresh std::wcout buffer took the global locale,
  // so every wide character outside ASCII failed to convert and the line was lost.
  bool has_utf8 = true;
  try {
    (void)std::locale("C.UTF-8");
  } catch (const std::runtime_error&) {
    has_utf8 = false;
  }
  REQUIRE(has_utf8);  // glibc >= 2.35 builds C.UTF-8 in
  const std::vector<std::string> lines = lines_of(output_of(&report_wide_unsynced));
  CHECK(count_lines(lines) ==
        count_lines({"caf\xc3\xa9 worker 0", "caf\xc3\xa9 worker 1", "caf\xc3\xa9 caller"}));
}

TEST_CASE("process mode: what another thread logs to stdout during runs is written exactly once",
          "[process][fork][output]") {
  // Regression (issue 18): what the logger buffered between the caller's flush and a fork was
  // flushed again by each worker at its exit (lines 2-5 times).
  const std::vector<std::string> lines = lines_of(output_of(&log_during_runs));
  REQUIRE_FALSE(lines.empty());
  long logged = -1;
  REQUIRE(std::sscanf(lines.back().c_str(), "logged %ld", &logged) == 1);
  std::vector<int> seen(static_cast<std::size_t>(logged), 0);
  std::size_t other = 0;
  for (std::size_t i = 0; i + 1 < lines.size(); ++i) {
    long number = -1;
    char rest = 0;
    if (std::sscanf(lines[i].c_str(), "log %ld%c", &number, &rest) == 1 && number >= 0 &&
        number < logged) {
      ++seen[static_cast<std::size_t>(number)];
    } else {
      ++other;
    }
  }
  CHECK(other == 0);
  std::size_t missing = 0;
  std::size_t repeated = 0;
  for (const int times : seen) {
    missing += times == 0 ? 1 : 0;
    repeated += times > 1 ? 1 : 0;
  }
  CHECK(missing == 0);
  CHECK(repeated == 0);
  CHECK(lines.size() == static_cast<std::size_t>(logged) + 1);
}

TEST_CASE("process mode: a stopped worker is no death: continued, the run ends with every packet",
          "[process][fork]") {
  // Without an inactivity timeout nothing judges a stopped worker (job control stops and
  // continues a whole process group; a debugger stops processes): once continued, it goes on.
  SharedCounter pid;
  std::thread continuer([&] {
    const bool stopped = eventually([&] {
      const long worker = (*pid).load(std::memory_order_relaxed);
      return worker != 0 && state_of(static_cast<pid_t>(worker)) == 'T';
    });
    if (stopped) ::kill(static_cast<pid_t>((*pid).load(std::memory_order_relaxed)), SIGCONT);
  });
  plumb::Pipeline pipeline{plumb::stage(numbers, 1000), plumb::stage(stop_at, 500, pid.get()),
                           plumb::stage(sum_ints)};
  CHECK(pipeline.run(Mode::process) == 999 * 1000 / 2);
  continuer.join();
}

TEST_CASE("process mode: only the inactivity timeout catches a stopped worker, which is then killed",
          "[process][fork][errors]") {
  SharedCounter pid;
  plumb::Pipeline pipeline{plumb::stage(numbers, 1000), plumb::stage(stop_at, 500, pid.get()),
                           plumb::stage(sum_ints)};
  CHECK_THROWS_AS(pipeline.run({.mode = Mode::process, .inactivity_timeout = 300ms, .grace_period = 100ms}),
                  plumb::InactivityError);
  const auto worker = static_cast<pid_t>((*pid).load(std::memory_order_relaxed));
  REQUIRE(worker != 0);
  CHECK(state_of(worker) == 0);  // killed and reaped
}
