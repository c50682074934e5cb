// SPDX-License-Identifier: MIT
// tests/pipeline_process_test.cpp: what only worker processes do, in process mode and in mixed
// pipelines: shared-memory links, deaths, the grace period, signals, leaks of processes and
// mappings. The behaviour every mode shares is tested in each mode in pipeline_test.cpp.

#include <plumb/graph.hpp>
#include <plumb/plumb.hpp>

#include "support/stages.hpp"

#include <catch2/catch.hpp>

#include <dirent.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <fstream>
#include <sstream>
#include <chrono>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using plumb::Generator;
using plumb::Mode;
using plumb::Stream;
using namespace plumb::test;  // the shared stages: numbers, plus, sum_ints, ...

namespace {
using Clock = std::chrono::steady_clock;

struct Message {
  std::string name;
  std::vector<double> values;
  std::map<std::string, std::vector<int>> tags;
  std::vector<std::string> empty;
};

std::size_t open_fds() {
  std::size_t count = 0;
  if (DIR* dir = ::opendir("/proc/self/fd")) {
    while (::readdir(dir) != nullptr) ++count;
    ::closedir(dir);
  }
  return count;
}

std::set<std::string> shm_entries() {
  std::set<std::string> names;
  if (DIR* dir = ::opendir("/dev/shm")) {
    while (const dirent* entry = ::readdir(dir)) names.insert(entry->d_name);
    ::closedir(dir);
  }
  return names;
}

bool has_children() {
  return ::waitpid(-1, nullptr, WNOHANG) != -1 || errno != ECHILD;
}

}  // namespace

TEST_CASE("process mode: structs, strings, maps and zero-length vectors survive the trip",
          "[process]") {
  auto make = [](int count) -> Generator<Message> {
    for (int i = 0; i < count; ++i) {
      Message message{"m" + std::to_string(i), std::vector<double>(static_cast<std::size_t>(i % 3), 0.5),
                      {{"k", std::vector<int>(static_cast<std::size_t>(i % 2), i)}, {"", {}}}, {}};
      co_yield std::move(message);
    }
  };
  auto check = [](Stream<Message> in) -> Generator<std::string> {
    for (Message& message : in) {
      const bool ok = message.values.size() <= 2 && message.tags.size() == 2 && message.empty.empty() &&
                      message.tags[""].empty();
      // Not `co_yield ok ? a : "x" + b`: GCC 12 destroys that temporary twice (docs/guide.md).
      std::string verdict = ok ? message.name : "corrupt " + message.name;
      co_yield std::move(verdict);
    }
  };
  auto collect = [](Stream<std::string> in) {
    std::vector<std::string> names;
    for (std::string& name : in) names.push_back(std::move(name));
    return names;
  };
  plumb::Pipeline pipeline{plumb::stage(make, 200), plumb::stage(check).workers(3).in_flight(6),
                           plumb::stage(collect)};
  const std::vector<std::string> names = pipeline.run(Mode::process);  // the sink's value comes back
  REQUIRE(names.size() == 200);
  std::set<std::string> unique(names.begin(), names.end());
  CHECK(unique.size() == 200);
  CHECK(unique.count("m0") == 1);
  CHECK(unique.count("m199") == 1);
  for (const std::string& name : names) CHECK(name.rfind("corrupt", 0) == std::string::npos);
}

TEST_CASE("process mode: a worker killed by SIGKILL under heavy traffic is reported at once",
          "[process][errors]") {
  auto victim = [](Stream<int> in) -> Generator<int> {
    const auto& me = plumb::this_worker();
    int seen = 0;
    for (int x : in) {
      if (me.index == 2 && ++seen == 2000) ::raise(SIGKILL);
      co_yield x;
    }
  };
  plumb::Pipeline pipeline{plumb::stage(forever).in_flight(16), plumb::stage(victim).workers(4).in_flight(16).name("victim"),
                           plumb::stage(sum_ints)};
  const auto start = Clock::now();
  try {
    pipeline.run(Mode::process);
    FAIL("run() returned");
  } catch (const plumb::WorkerDiedError& error) {
    CHECK_THAT(error.what(), Catch::Matchers::StartsWith("plumb.worker_died: "));
    CHECK_THAT(error.what(), Catch::Matchers::Contains("stage 1 ('victim') worker 2"));
    CHECK_THAT(error.what(), Catch::Matchers::Contains("was killed by signal SIGKILL (9)"));
    CHECK(error.pid() > 0);
  }
  CHECK(Clock::now() - start < 10s);
  CHECK_FALSE(has_children());
}

TEST_CASE("process mode: a worker exiting with status 0 mid-stream is an error, not a hang",
          "[process][errors]") {
  auto quitter = [](Stream<int> in) -> Generator<int> {
    int seen = 0;
    for (int x : in) {
      if (++seen == 8) ::_exit(0);
      co_yield x;
    }
  };
  plumb::Pipeline pipeline{plumb::stage(forever), plumb::stage(quitter), plumb::stage(sum_ints)};
  // No inactivity timeout: the death alone must end the run.
  CHECK_THROWS_WITH(pipeline.run(Mode::process),
                    Catch::Matchers::Contains("exited with status 0 before finishing its stream"));
}

// 8 workers stuck in their own code, and the sink waiting for them. After a cancellation they
// get the whole grace period to end on their own, then all are killed at once; after an
// InactivityError (they are stuck by definition) at most plumb's short kInactivityGrace.
TEST_CASE("process mode: 8 workers stuck in user code are killed after the grace period, at once after "
          "an inactivity timeout",
          "[process][errors]") {
  auto stuck = [](Stream<int> in) -> Generator<int> {
    for (int x : in) {
      std::this_thread::sleep_for(60s);  // never touches its stream again
      co_yield x;
    }
  };
  plumb::Pipeline pipeline{plumb::stage(numbers, 100).in_flight(8), plumb::stage(stuck).workers(8).in_flight(8),
                           plumb::stage(sum_ints)};
  SECTION("cancelled: the grace period is honoured") {
    std::stop_source stop;
    const auto start = Clock::now();
    std::jthread canceller([&] {
      std::this_thread::sleep_for(300ms);
      stop.request_stop();
    });
    CHECK_THROWS_AS(pipeline.run({.mode = Mode::process, .grace_period = 1s, .stop_token = stop.get_token()}),
                    plumb::CancelledError);
    const auto took = Clock::now() - start;
    CHECK(took >= 1300ms);  // the stop at 300 ms, then the whole 1 s grace
    CHECK(took < 5s);
  }
  SECTION("inactive: killed at once, not after the 5 s grace period") {
    const auto start = Clock::now();
    CHECK_THROWS_AS(pipeline.run({.mode = Mode::process, .inactivity_timeout = 300ms, .grace_period = 5s}),
                    plumb::InactivityError);
    const auto took = Clock::now() - start;
    CHECK(took >= 300ms);
    CHECK(took < 3s);  // 300 ms, a tick, 200 ms for the workers to end, the kill (sanitizers: slower)
  }
  CHECK_FALSE(has_children());
}

TEST_CASE("process mode: a message over max_message_size names the stage, size and limit",
          "[process][errors]") {
  auto big = [](int bytes) -> Generator<std::string> { co_yield std::string(static_cast<std::size_t>(bytes), 'x'); };
  auto length = [](Stream<std::string> in) {
    std::size_t total = 0;
    for (auto& text : in) total += text.size();
    return total;
  };
  plumb::Pipeline pipeline{plumb::stage(big, 5000).max_message_size(1024).name("big"), plumb::stage(length)};
  CHECK_THROWS_WITH(pipeline.run(Mode::process),
                    Catch::Matchers::Contains("stage 0 ('big') worker 0 produced a message of 5008 bytes, "
                                              "over the max_message_size(1024)"));
  plumb::Pipeline roomy{plumb::stage(big, 5000).max_message_size(8192), plumb::stage(length)};
  CHECK(roomy.run(Mode::process) == 5000);
}

// 300 000-byte strings through two process links and a 300 000-byte result: each over the
// 128 KiB default. RunOptions::max_message_size raises every stage's slots at once.
TEST_CASE("process mode: RunOptions::max_message_size raises every stage's slots, its result's too",
          "[process][errors]") {
  auto big = [](int count) -> Generator<std::string> {
    for (int i = 0; i < count; ++i) co_yield std::string(300'000, static_cast<char>('a' + i));
  };
  auto pass = [](Stream<std::string> in) -> Generator<std::string> {
    for (std::string& text : in) co_yield std::move(text);
  };
  auto last = [](Stream<std::string> in) {
    std::string kept;
    for (std::string& text : in) kept = std::move(text);
    return kept;
  };
  plumb::Pipeline pipeline{plumb::stage(big, 3).name("big"), plumb::stage(pass).name("pass"), plumb::stage(last)};
  CHECK_THROWS_WITH(pipeline.run(Mode::process), Catch::Contains("stage 0 ('big') worker 0 produced a message") &&
                                                     Catch::Contains("over the max_message_size(131072)"));
  CHECK(pipeline.run({.mode = Mode::process, .max_message_size = 400'000}) == std::string(300'000, 'c'));
  // A stage's own larger size stands; a smaller one is raised to the run's.
  plumb::Pipeline mixed{plumb::stage(big, 2).max_message_size(1024), plumb::stage(pass).max_message_size(1 << 20),
                        plumb::stage(last)};
  CHECK(mixed.run({.mode = Mode::process, .max_message_size = 400'000}) == std::string(300'000, 'b'));
  CHECK_THROWS_WITH(mixed.run({.mode = Mode::process, .max_message_size = 200'000}),
                    Catch::Contains("stage 0 worker 0 produced a message of 300008 bytes, over the max_message_size(200000)"));
  CHECK_THROWS_WITH(pipeline.run({.mode = Mode::process, .max_message_size = plumb::kMaxMessageSize + 1}),
                    Catch::Contains("plumb.config_error: RunOptions::max_message_size("));
  // A graph's nodes too.
  plumb::Graph graph{plumb::node<"big">(plumb::stage(big, 2)), plumb::node<"last">(plumb::stage(last), plumb::from<"big">)};
  CHECK_THROWS_AS(graph.run(Mode::process), plumb::StageError);
  CHECK(graph.run({.mode = Mode::process, .max_message_size = 400'000}) == std::string(300'000, 'b'));
}

TEST_CASE("process mode: 50 runs, failing ones included, leave no zombie, fd or /dev/shm entry",
          "[process]") {
  const std::size_t fds_before = open_fds();
  const std::set<std::string> shm_before = shm_entries();
  auto maybe_fail = [](Stream<int> in, int at) -> Generator<int> {
    for (int x : in) {
      if (x == at) throw std::runtime_error("planned");
      co_yield x;
    }
  };
  int failures = 0;
  for (int round = 0; round < 50; ++round) {
    plumb::Pipeline pipeline{plumb::stage(numbers, 200).in_flight(4),
                             plumb::stage(maybe_fail, round % 3 == 0 ? 77 : -1).workers(2),
                             plumb::stage(sum_ints)};
    long result = -1;
    try {
      result = pipeline.run(Mode::process);
    } catch (const std::runtime_error&) {
      ++failures;
      continue;
    }
    CHECK(result == 199 * 200 / 2);
  }
  CHECK(failures == 17);
  CHECK_FALSE(has_children());
  CHECK(open_fds() == fds_before);
  CHECK(shm_entries() == shm_before);
}

namespace {
// Processes whose parent is `parent` (from /proc/<pid>/stat), zombies excluded.
std::vector<pid_t> live_children_of(pid_t parent) {
  std::vector<pid_t> children;
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return children;
  while (const dirent* entry = ::readdir(proc)) {
    const std::string name = entry->d_name;
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream stat("/proc/" + name + "/stat");
    std::string line;
    if (!std::getline(stat, line)) continue;
    const auto close = line.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(line.substr(close + 2));
    char state = 0;
    pid_t ppid = 0;
    rest >> state >> ppid;
    if (ppid == parent && state != 'Z') children.push_back(static_cast<pid_t>(std::stoi(name)));
  }
  ::closedir(proc);
  return children;
}

bool alive(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return false;
  const auto close = line.rfind(')');
  return close != std::string::npos && line.size() > close + 2 && line[close + 2] != 'Z';
}

}  // namespace

namespace {

// The `count` live children of `driver`, once they all exist (up to 10 s).
std::vector<pid_t> wait_for_workers(pid_t driver, std::size_t count) {
  std::vector<pid_t> workers;
  const auto deadline = Clock::now() + 10s;
  while (workers.size() < count && Clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
    workers = live_children_of(driver);
  }
  REQUIRE(workers.size() == count);
  return workers;
}

// How many of `workers` are still alive after up to `limit` (returns as soon as none is).
std::size_t survivors_after(const std::vector<pid_t>& workers, Clock::duration limit) {
  const auto survivors = [&] {
    std::size_t count = 0;
    for (const pid_t worker : workers) count += alive(worker) ? 1 : 0;
    return count;
  };
  const auto gone_by = Clock::now() + limit;
  while (survivors() != 0 && Clock::now() < gone_by) std::this_thread::sleep_for(10ms);
  return survivors();
}

}  // namespace

TEST_CASE("SIGTERM or SIGINT to the caller leaves no worker process alive", "[process][signals]") {
  for (const int signal : {SIGTERM, SIGINT}) {
    const pid_t driver = ::fork();
    REQUIRE(driver >= 0);
    if (driver == 0) {
      // The caller of run(): default dispositions (Catch2 installs its own handlers).
      std::signal(SIGTERM, SIG_DFL);
      std::signal(SIGINT, SIG_DFL);
      plumb::Pipeline pipeline{plumb::stage(forever), plumb::stage(plus, 1).workers(3), plumb::stage(sum_ints)};
      try {
        pipeline.run(Mode::process);
      } catch (...) {
      }
      ::_exit(3);
    }
    const std::vector<pid_t> workers = wait_for_workers(driver, 5);  // source, 3 middle, sink
    REQUIRE(::kill(driver, signal) == 0);
    int status = 0;
    REQUIRE(::waitpid(driver, &status, 0) == driver);
    CHECK(WIFSIGNALED(status));
    CHECK(WTERMSIG(status) == signal);
    CHECK(survivors_after(workers, 5s) == 0);
  }
}

TEST_CASE("process mode: the caller SIGKILLed after the thread that started its stream ended leaves "
          "no worker alive",
          "[process][signals][fork]") {
  // The workers are tied to the run's own fork thread (issue 18): the caller's death still
  // takes them, although the thread that called stream() is long gone.
  const pid_t driver = ::fork();
  REQUIRE(driver >= 0);
  if (driver == 0) {
    plumb::Pipeline pipeline{plumb::stage(forever), plumb::stage(plus, 1).workers(3)};
    std::optional<plumb::Results<int>> results;
    try {
      std::thread([&] { results.emplace(pipeline.stream(Mode::process)); }).join();
      for (const int x : *results) {
        if (x < 0) break;
        std::this_thread::sleep_for(1ms);  // a slow reader, until it is killed
      }
    } catch (...) {
    }
    ::_exit(3);
  }
  const std::vector<pid_t> workers = wait_for_workers(driver, 4);  // source, 3 middle
  REQUIRE(::kill(driver, SIGKILL) == 0);
  int status = 0;
  REQUIRE(::waitpid(driver, &status, 0) == driver);
  CHECK(WIFSIGNALED(status));
  CHECK(survivors_after(workers, 5s) == 0);
}

TEST_CASE("process mode: exit(70) or exit(71) in user code is a death, not a report",
          "[process][errors]") {
  // Regression (review): those statuses are plumb's own "reported" and "stopped"; trusting the
  // status alone hung the run. The worker's outcome word in shared memory decides.
  for (const int status : {70, 71}) {
    auto quitter = [](Stream<int> in, int code) -> Generator<int> {
      int seen = 0;
      for (int x : in) {
        // _exit, not std::exit: the status is what is judged here, and under LeakSanitizer
        // std::exit's leak check in the worker would see the caller's objects as leaked (the
        // worker was forked from the run's fork thread, so the caller's stack is no thread's
        // stack there) and abort with SIGABRT instead of exiting with `code`.
        if (++seen == 5) ::_exit(code);
        co_yield x;
      }
    };
    plumb::Pipeline pipeline{plumb::stage(forever), plumb::stage(quitter, status), plumb::stage(sum_ints)};
    CHECK_THROWS_WITH(pipeline.run(Mode::process),
                      Catch::Matchers::Contains("exited with status " + std::to_string(status)));
  }
}

TEST_CASE("process mode works while SIGCHLD is ignored (children reaped by the kernel)",
          "[process][signals]") {
  // Regression (review): waitid then fails with ECHILD and the supervisor spun forever.
  const auto previous = std::signal(SIGCHLD, SIG_IGN);
  plumb::Pipeline fine{plumb::stage(numbers, 1000), plumb::stage(plus, 1).workers(2), plumb::stage(sum_ints)};
  long result = -1;
  const auto start = Clock::now();
  CHECK_NOTHROW(result = fine.run(Mode::process));
  CHECK(result == 999L * 1000 / 2 + 1000);
  auto fail_at = [](Stream<int> in) -> Generator<int> {
    for (int x : in) {
      if (x == 10) throw std::domain_error("domain 10");
      co_yield x;
    }
  };
  plumb::Pipeline failing{plumb::stage(numbers, 1000), plumb::stage(fail_at), plumb::stage(sum_ints)};
  CHECK_THROWS_MATCHES(failing.run(Mode::process), std::domain_error, Catch::Matchers::Message("domain 10"));
  std::signal(SIGCHLD, previous);
  CHECK(Clock::now() - start < 10s);
}

namespace {
// A Codec that writes more the second time it is called (counting pass, then writing pass).
struct Growing {
  int value = 0;
};
}  // namespace

template <>
struct plumb::Codec<Growing> {
  static void encode(const Growing& item, plumb::Writer& out) {
    static thread_local int calls = 0;
    out.write(item.value);
    if (++calls % 2 == 0) out.write(std::string(100, 'x'));  // lies on the writing pass
  }
  static Growing decode(plumb::Reader& in) { return Growing{in.read<int>()}; }
};

TEST_CASE("process mode: a Codec that writes past what it counted is an error, not a corruption",
          "[process][errors]") {
  auto make = []() -> Generator<Growing> {
    Growing growing{1};
    co_yield growing;
  };
  auto take = [](Stream<Growing> in) {
    for (auto& item : in) (void)item;
  };
  plumb::Pipeline pipeline{plumb::stage(make).max_message_size(64), plumb::stage(take)};
  CHECK_THROWS_WITH(pipeline.run(Mode::process), Catch::Matchers::StartsWith("plumb.encode_error:"));
}

TEST_CASE("negative durations in RunOptions are rejected before anything runs", "[process][config]") {
  plumb::Pipeline pipeline{plumb::stage(numbers, 10), plumb::stage(sum_ints)};
  CHECK_THROWS_WITH(pipeline.run({.mode = Mode::process, .grace_period = -1s}),
                    Catch::Matchers::Contains("RunOptions::grace_period is negative"));
  CHECK_THROWS_AS(pipeline.run({.inactivity_timeout = -1ms}), plumb::ConfigError);
  // duration::max() means "never kill": accepted.
  CHECK(pipeline.run({.mode = Mode::process, .grace_period = std::chrono::steady_clock::duration::max()}) == 45);
}

namespace {

// Vectors whose length goes up and down, with contents that depend on the index: a consumer
// that decodes into a reused buffer must never show stale elements or a stale length.
Generator<std::vector<int>> ragged(int count) {
  for (int i = 0; i < count; ++i) {
    std::vector<int> values(static_cast<std::size_t>((i * 7919) % 257), i);
    co_yield std::move(values);
  }
}

Generator<std::vector<int>> negate(Stream<std::vector<int>> in) {
  for (auto& values : in) {
    for (int& value : values) value = -value;
    co_yield std::move(values);
  }
}

long check_ragged(Stream<std::vector<int>> in) {
  long seen = 0;
  for (const auto& values : in) {
    const auto expected_size = static_cast<std::size_t>((seen * 7919) % 257);
    if (values.size() != expected_size) return -1 - seen;
    for (int value : values) {
      if (value != -seen) return -1 - seen;
    }
    ++seen;
  }
  return seen;
}

struct Fixed {
  std::int64_t id;
  std::array<std::int32_t, 30> payload;
};

Generator<Fixed> fixed_source(int count) {
  for (int i = 0; i < count; ++i) {
    Fixed message{};
    message.id = i;
    message.payload.fill(i);
    co_yield std::move(message);
  }
}

long sum_fixed(Stream<Fixed> in) {
  long sum = 0;
  for (const Fixed& message : in) sum += message.id + message.payload[29];
  return sum;
}

}  // namespace

TEST_CASE("process mode: one-to-one links keep order and contents of vectors of every length",
          "[process]") {
  // One worker on each side of every link: the single-producer single-consumer path, and the
  // consumers decode into reused buffers.
  const int count = 5'000;
  for (const int in_flight : {1, 3, 64}) {
    plumb::Pipeline pipeline{plumb::stage(ragged, count).in_flight(in_flight),
                             plumb::stage(negate).in_flight(in_flight),
                             plumb::stage(check_ragged)};
    CAPTURE(in_flight);
    CHECK(pipeline.run(Mode::process) == count);
    // Mixed: only the middle in a process, both links cross.
    plumb::Pipeline mixed{plumb::stage(ragged, count).in_flight(in_flight),
                          plumb::stage(negate).in_flight(in_flight).mode(Mode::process),
                          plumb::stage(check_ragged).mode(Mode::thread)};
    CHECK(mixed.run() == count);
  }
}

TEST_CASE("process mode: a pipeline run again reuses its mapping, and grows it when needed",
          "[process]") {
  const int count = 2'000;
  plumb::Pipeline small{plumb::stage(ragged, count).in_flight(2),
                        plumb::stage(negate).in_flight(2), plumb::stage(check_ragged)};
  for (int run = 0; run < 3; ++run) CHECK(small.run(Mode::process) == count);

  // Larger runs after smaller ones: a run whose layout no longer fits maps a bigger arena.
  int in_flight = 1;
  auto bigger = [&in_flight](int n) {
    return plumb::Pipeline{plumb::stage(numbers, n).in_flight(in_flight),
                           plumb::stage(plus, 1).workers(2).in_flight(in_flight * 2),
                           plumb::stage(sum_ints)};
  };
  for (; in_flight <= 64; in_flight *= 4) {
    auto pipeline = bigger(3'000);
    CAPTURE(in_flight);
    CHECK(pipeline.run(Mode::process) == 3'000L * 2'999 / 2 + 3'000);
    CHECK(pipeline.run(Mode::process) == 3'000L * 2'999 / 2 + 3'000);
  }
}

TEST_CASE("process mode: fixed-size messages get exact slots, still bounded by max_message_size",
          "[process]") {
  const int count = 20'000;
  const long expected = 2L * count * (count - 1) / 2;
  plumb::Pipeline exact{plumb::stage(fixed_source, count).in_flight(256), plumb::stage(sum_fixed)};
  CHECK(exact.run(Mode::process) == expected);

  // A limit below the message's size is still an error naming the stage, size and limit.
  plumb::Pipeline too_small{plumb::stage(fixed_source, count).max_message_size(64).name("fixed"),
                            plumb::stage(sum_fixed)};
  try {
    too_small.run(Mode::process);
    FAIL("a 128-byte message went through 64-byte slots");
  } catch (const plumb::StageError& error) {
    const std::string what = error.what();
    CHECK_THAT(what, Catch::Contains("'fixed'") && Catch::Contains("128 bytes") &&
                         Catch::Contains("max_message_size(64)"));
  }
}
