// SPDX-License-Identifier: MIT
// tests/redis/redis_test.cpp: plumb::redis against a real redis-server (tests/redis/server.hpp
// starts one per test on a free loopback port).

#include <plumb/plumb.hpp>
#include <plumb/redis.hpp>

#include "redis/server.hpp"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <chrono>
#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using plumb::Generator;
using plumb::Mode;
using plumb::Stream;
using plumb::redis::Job;
using plumb::redis::Queue;
using plumb::test::RedisServer;

namespace {

constexpr const char* kStream = "jobs";
constexpr const char* kGroup = "workers";

// Adds `count` jobs {n: i} and returns their ids, in order.
std::vector<std::string> fill(plumb::redis::Connection& connection, int count) {
  std::vector<std::string> ids;
  for (int i = 0; i < count; ++i) ids.push_back(connection.add(kStream, {{"n", std::to_string(i)}}));
  return ids;
}

Queue queue_of(const RedisServer& server, std::string consumer = {}) {
  return Queue{.server = server.server(),
               .stream = kStream,
               .group = kGroup,
               .consumer = std::move(consumer),
               .block = 100ms,
               .claim_idle = 60s,  // off in effect: no job here may be taken over by mistake
               .stop_when_idle = 1000ms};
}

// The group's pending entries (XPENDING summary form), all consumers.
long long pending(plumb::redis::Connection& connection) {
  const plumb::redis::Reply reply = connection.command({"XPENDING", kStream, kGroup});
  return reply->element[0]->integer;
}

// The ids pending for `consumer`.
std::set<std::string> pending_ids(plumb::redis::Connection& connection, const std::string& consumer) {
  const plumb::redis::Reply reply = connection.command({"XPENDING", kStream, kGroup, "-", "+", "1000", consumer});
  std::set<std::string> ids;
  for (std::size_t i = 0; i < reply->elements; ++i) ids.emplace(reply->element[i]->element[0]->str);
  return ids;
}

// A field of XINFO GROUPS for kGroup.
std::string group_info(plumb::redis::Connection& connection, std::string_view field) {
  const plumb::redis::Reply reply = connection.command({"XINFO", "GROUPS", kStream});
  const redisReply* group = reply->element[0];
  for (std::size_t i = 0; i + 1 < group->elements; i += 2) {
    if (std::string_view(group->element[i]->str) != field) continue;
    const redisReply* value = group->element[i + 1];
    if (value->type == REDIS_REPLY_INTEGER) return std::to_string(value->integer);
    return value->type == REDIS_REPLY_STRING ? std::string(value->str) : std::string("0");
  }
  FAIL("XINFO GROUPS has no field " << field);
  return {};
}

constexpr int kNever = 1 << 30;

// Work: waits `pause` per job, checks the payload, passes the job on. From job number
// `hang_from` on it never finishes (a stuck instance, to be killed).
Generator<Job> work(Stream<Job> in, std::chrono::milliseconds pause, int hang_from) {
  for (Job& job : in) {
    if (pause.count() > 0) std::this_thread::sleep_for(pause);
    const int n = std::stoi(job.field("n"));
    while (n >= hang_from) std::this_thread::sleep_for(1s);
    if (n < 0) throw std::runtime_error("bad payload in " + job.id);
    co_yield std::move(job);
  }
}

// The sink after acknowledge_each: what this instance finished, as "id" or "id*" (redelivered).
std::vector<std::string> finished(Stream<Job> in) {
  std::vector<std::string> ids;
  for (const Job& job : in) ids.push_back(job.redelivered ? job.id + "*" : job.id);
  return ids;
}

// Ids sorted as strings (not in stream order: "5-10" < "5-9"), to compare sets of ids.
std::vector<std::string> sorted(std::vector<std::string> ids) {
  std::sort(ids.begin(), ids.end());
  return ids;
}

std::vector<std::string> without_marks(std::vector<std::string> ids) {
  for (std::string& id : ids) {
    if (!id.empty() && id.back() == '*') id.pop_back();
  }
  return sorted(std::move(ids));
}

// Stream order of two entry ids "<ms>-<seq>".
bool stream_order_le(const std::string& a, const std::string& b) {
  auto split = [](const std::string& id) {
    const std::size_t dash = id.find('-');
    return std::pair{std::stoull(id.substr(0, dash)), std::stoull(id.substr(dash + 1))};
  };
  return split(a) <= split(b);
}

// The pipeline every instance runs: read -> work (2 workers) -> acknowledge -> keep the ids.
std::vector<std::string> run_instance(const Queue& queue, Mode mode, std::chrono::milliseconds pause,
                                      std::size_t in_flight = 1, int hang_from = kNever) {
  plumb::Pipeline pipeline{
      plumb::stage(plumb::redis::read_jobs, queue).name("read").in_flight(in_flight),
      plumb::stage(work, pause, hang_from).name("work").workers(2).in_flight(2),
      plumb::stage(plumb::redis::acknowledge_each<Job>, queue).name("ack").in_flight(1),
      plumb::stage(finished).name("finished").max_message_size(1 << 20)};
  return pipeline.run({.mode = mode});
}

// Runs `body` in a child process (its own process group) and returns its pid.
template <class Body>
pid_t spawn_instance(Body body) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::setpgid(0, 0);
    int status = 0;
    try {
      body();
    } catch (const std::exception& error) {
      if (::write(2, error.what(), std::strlen(error.what())) < 0) status = 2;
      status = 1;
    }
    ::_exit(status);
  }
  return pid;
}

int wait_exit(pid_t pid) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

void write_lines(const std::string& path, const std::vector<std::string>& lines) {
  std::ofstream out(path);
  for (const std::string& line : lines) out << line << '\n';
}

std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::string temp_path(const std::string& name) {
  return "/tmp/plumb_redis_test_" + std::to_string(::getpid()) + "_" + name;
}

}  // namespace

TEST_CASE("redis: read_jobs is a generator that can be tested on its own", "[redis]") {
  const RedisServer server;
  plumb::redis::Connection connection = server.connect();
  Queue queue = queue_of(server, "alone");
  queue.create_group = true;  // the stream does not exist yet: it is created with the group
  queue.max_jobs = 3;
  plumb::redis::create_group(connection, queue);
  const std::vector<std::string> ids = fill(connection, 5);
  std::vector<std::string> seen;
  for (Job& job : plumb::redis::read_jobs(queue)) {
    CHECK(job.field("n") == std::to_string(seen.size()));
    CHECK_FALSE(job.redelivered);
    CHECK_THROWS_WITH(job.field("missing"), Catch::Contains("has no field 'missing'"));
    seen.push_back(job.id);
  }
  CHECK(seen == std::vector<std::string>(ids.begin(), ids.begin() + 3));
  CHECK(pending(connection) == 3);  // read, not acknowledged
  // The same consumer, restarted, gets its own pending jobs first, marked as redelivered. A job
  // delivered again runs alone: the source reads the next one once it is acknowledged.
  queue.max_jobs = 4;
  std::vector<std::string> again;
  for (Job& job : plumb::redis::read_jobs(queue)) {
    again.push_back(job.redelivered ? job.id + "*" : job.id);
    CHECK(plumb::redis::ack(connection, queue, job.id));
  }
  CHECK(again == std::vector<std::string>{ids[0] + "*", ids[1] + "*", ids[2] + "*", ids[3]});
}

// Fills a stream with 300 jobs and runs one instance in `mode` until the stream is empty.
void check_exactly_once(Mode mode) {
  const RedisServer server;
  plumb::redis::Connection connection = server.connect();
  const Queue queue = queue_of(server);
  plumb::redis::create_group(connection, queue);
  const std::vector<std::string> ids = fill(connection, 300);
  CHECK(sorted(run_instance(queue, mode, 0ms)) == sorted(ids));  // each once, none redelivered
  CHECK(pending(connection) == 0);
}

TEST_CASE("redis: every job is processed and acknowledged exactly once", "[redis]") {
  SECTION("sequential") { check_exactly_once(Mode::sequential); }
  SECTION("thread") { check_exactly_once(Mode::thread); }
}

TEST_CASE("redis (process mode): every job is processed and acknowledged exactly once", "[redis][process]") {
  SECTION("process") { check_exactly_once(Mode::process); }
  SECTION("mixed, with the acknowledge sink") {
    const RedisServer server;
    plumb::redis::Connection connection = server.connect();
    Queue queue = queue_of(server);
    queue.create_group = true;
    fill(connection, 200);
    plumb::Pipeline pipeline{plumb::stage(plumb::redis::read_jobs, queue).name("read").in_flight(2),
                             plumb::stage(work, 0ms, kNever).name("work").workers(2).mode(Mode::process).in_flight(2),
                             plumb::stage(plumb::redis::acknowledge<Job>, queue).name("ack").mode(Mode::thread)};
    const plumb::redis::AckReport report = pipeline.run(Mode::sequential);
    CHECK(report.acknowledged == 200);
    CHECK(report.not_pending == 0);
    CHECK(pending(connection) == 0);
    CHECK(pipeline.last_stats().stages[1].packets_in == 200);
  }
}

TEST_CASE("redis: an instance holds no more jobs than its in_flight lets it start", "[redis]") {
  const RedisServer server;
  plumb::redis::Connection connection = server.connect();
  Queue queue = queue_of(server);
  plumb::redis::create_group(connection, queue);
  fill(connection, 40);
  for (const std::size_t in_flight : {std::size_t{1}, std::size_t{3}}) {
    CAPTURE(in_flight);
    // read -> work (one worker, 10 ms a job) -> acknowledge: at most in_flight jobs on the first
    // link (being read, queued or in work) and 1 on the second (queued or being acknowledged).
    std::atomic<bool> running{true};
    long long most = 0;
    std::thread watcher([&] {
      try {
        plumb::redis::Connection watching = server.connect();
        while (running.load(std::memory_order_relaxed)) {
          most = std::max(most, pending(watching));
          std::this_thread::sleep_for(1ms);
        }
      } catch (const std::exception&) {
        most = -1;  // fails the test below
      }
    });
    queue.max_jobs = 20;
    plumb::Pipeline pipeline{plumb::stage(plumb::redis::read_jobs, queue).in_flight(in_flight),
                             plumb::stage(work, 10ms, kNever).in_flight(1),
                             plumb::stage(plumb::redis::acknowledge<Job>, queue)};
    plumb::redis::AckReport report{};
    try {
      report = pipeline.run();
    } catch (...) {
      running = false;
      watcher.join();
      throw;
    }
    running = false;
    watcher.join();
    queue.max_jobs = 0;
    CHECK(report.acknowledged == 20);
    CHECK(most >= 1);
    CHECK(most <= static_cast<long long>(in_flight) + 1);
  }
  CHECK(pending(connection) == 0);
}

// Each way of failing to start, in `mode`: the message names the server and what to change.
void check_start_errors(Mode mode) {
  const RedisServer server("s3cret");
  const Queue queue = queue_of(server);
  {
    plumb::redis::Connection connection = server.connect();
    plumb::redis::create_group(connection, queue);
  }
  auto run = [mode](const Queue& q) {
    plumb::Pipeline pipeline{plumb::stage(plumb::redis::read_jobs, q).name("read"),
                             plumb::stage(plumb::redis::acknowledge<Job>, q).name("ack")};
    pipeline.run({.mode = mode});
  };
  Queue refused = queue;
  refused.server.port = plumb::test::free_loopback_port();
  CHECK_THROWS_WITH(run(refused), Catch::Contains("cannot connect to 127.0.0.1:" + std::to_string(refused.server.port)) &&
                                      Catch::Contains("Connection refused") &&
                                      Catch::Contains("is redis-server running"));
  Queue wrong = queue;
  wrong.server.password = "guess";
  CHECK_THROWS_WITH(run(wrong), Catch::Contains("refused the login") && Catch::Contains("WRONGPASS"));
  Queue none = queue;
  none.server.password.clear();
  CHECK_THROWS_WITH(run(none), Catch::Contains("NOAUTH") && Catch::Contains("set Server::password"));
  Queue no_stream = queue;
  no_stream.stream = "nope";
  CHECK_THROWS_WITH(run(no_stream), Catch::Contains("stream 'nope' does not exist on 127.0.0.1:") &&
                                        Catch::Contains("Queue::create_group"));
  Queue no_group = queue;
  no_group.group = "strangers";
  CHECK_THROWS_WITH(run(no_group), Catch::Contains("has no consumer group 'strangers'"));
}

TEST_CASE("redis: a refused connection, a refused password, a missing stream or group are named", "[redis]") {
  SECTION("sequential") { check_start_errors(Mode::sequential); }
  SECTION("thread") { check_start_errors(Mode::thread); }
  SECTION("outside a pipeline, as plumb::redis::Error") {
    const RedisServer server;
    Queue queue = queue_of(server);
    queue.server.port = plumb::test::free_loopback_port();
    CHECK_THROWS_AS(plumb::redis::Connection(queue.server), plumb::redis::Error);
    queue.group.clear();
    auto source = plumb::redis::read_jobs(queue);
    CHECK_THROWS_WITH(source.begin(), Catch::Contains("stream and group must be set"));
  }
}

TEST_CASE("redis (process mode): a refused connection, a refused password, a missing stream or group are named",
          "[redis][process]") {
  check_start_errors(Mode::process);
}

TEST_CASE("redis (process mode): a killed instance's jobs are taken over by another, none lost",
          "[redis][process]") {
  const RedisServer server;
  plumb::redis::Connection connection = server.connect();
  Queue queue = queue_of(server);
  plumb::redis::create_group(connection, queue);
  const std::vector<std::string> ids = fill(connection, 60);

  // Instance A: worker processes; jobs 0-9 finish, from job 10 on its workers are stuck (so
  // it cannot finish early on a fast machine); killed, its whole process group, once 10 jobs
  // are acknowledged.
  Queue queue_a = queue;
  queue_a.consumer = "A";
  const pid_t a = spawn_instance([&] { run_instance(queue_a, Mode::process, 5ms, 2, 10); });
  REQUIRE(a > 0);
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (std::stoll(group_info(connection, "entries-read")) - pending(connection) < 10) {
    REQUIRE(std::chrono::steady_clock::now() < deadline);
    std::this_thread::sleep_for(5ms);
  }
  ::kill(-a, SIGKILL);
  CHECK(wait_exit(a) == 128 + SIGKILL);
  while (::kill(-a, 0) == 0) {  // A's worker processes too
    REQUIRE(std::chrono::steady_clock::now() < deadline);
    std::this_thread::sleep_for(5ms);
  }
  const std::set<std::string> held_by_a = pending_ids(connection, "A");
  const std::string last_delivered = group_info(connection, "last-delivered-id");
  REQUIRE_FALSE(held_by_a.empty());  // A died with jobs in flight
  std::set<std::string> acked_by_a;
  for (const std::string& id : ids) {
    if (stream_order_le(id, last_delivered) && held_by_a.count(id) == 0) acked_by_a.insert(id);
  }
  CHECK(acked_by_a == std::set<std::string>(ids.begin(), ids.begin() + 10));

  // Instance B takes over A's jobs once they have been idle for claim_idle, and does the rest.
  Queue queue_b = queue;
  queue_b.consumer = "B";
  queue_b.claim_idle = 1000ms;  // B's own jobs take far less, so none of them is taken back
  queue_b.stop_when_idle = 2500ms;
  const std::vector<std::string> done = run_instance(queue_b, Mode::thread, 0ms);
  std::set<std::string> redelivered;
  for (const std::string& id : done) {
    if (id.back() == '*') redelivered.insert(id.substr(0, id.size() - 1));
  }
  CHECK(redelivered == held_by_a);
  std::vector<std::string> all = without_marks(done);
  CHECK(std::adjacent_find(all.begin(), all.end()) == all.end());  // B did none twice
  for (const std::string& id : all) CHECK(acked_by_a.count(id) == 0);  // nor any A finished
  all.insert(all.end(), acked_by_a.begin(), acked_by_a.end());
  CHECK(sorted(all) == sorted(ids));  // every job finished by A or B
  CHECK(pending(connection) == 0);
}

TEST_CASE("redis (process mode): two instances sharing one stream split the work", "[redis][process]") {
  const RedisServer server;
  plumb::redis::Connection connection = server.connect();
  const Queue queue = queue_of(server);
  plumb::redis::create_group(connection, queue, "$");
  // Both instances wait on the empty stream before any job arrives, so both get some.
  std::vector<pid_t> instances;
  std::vector<std::string> files;
  for (const std::string name : {"one", "two"}) {
    Queue mine = queue;
    mine.consumer = name;
    mine.stop_when_idle = 3000ms;  // the other instance may be slow to start on a loaded machine
    files.push_back(temp_path(name));
    const std::string file = files.back();
    instances.push_back(spawn_instance([mine, file] { write_lines(file, run_instance(mine, Mode::process, 5ms)); }));
  }
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (std::stoll(group_info(connection, "consumers")) < 2) {
    REQUIRE(std::chrono::steady_clock::now() < deadline);
    std::this_thread::sleep_for(5ms);
  }
  const std::vector<std::string> ids = fill(connection, 200);
  for (const pid_t pid : instances) CHECK(wait_exit(pid) == 0);
  const std::vector<std::string> one = read_lines(files[0]);
  const std::vector<std::string> two = read_lines(files[1]);
  for (const std::string& file : files) ::unlink(file.c_str());
  CHECK_FALSE(one.empty());
  CHECK_FALSE(two.empty());
  std::vector<std::string> all = one;
  all.insert(all.end(), two.begin(), two.end());
  CHECK(sorted(all) == sorted(ids));  // disjoint, complete, none redelivered (no "*")
  CHECK(pending(connection) == 0);
}

TEST_CASE("redis: a source waiting for jobs ends when another stage fails", "[redis]") {
  // stop_when_idle 0: the source would wait for jobs forever; the sink's error must end the run.
  const RedisServer server;
  plumb::redis::Connection connection = server.connect();
  Queue queue = queue_of(server);
  queue.stop_when_idle = 0ms;
  plumb::redis::create_group(connection, queue);
  fill(connection, 1);
  auto failing = [](Stream<Job> in) {
    for (const Job& job : in) throw std::runtime_error("cannot store " + job.field("n"));
  };
  plumb::Pipeline pipeline{plumb::stage(plumb::redis::read_jobs, queue).in_flight(2), plumb::stage(failing)};
  CHECK_THROWS_WITH(pipeline.run(), "cannot store 0");
  CHECK(pending(connection) == 1);  // not acknowledged: another consumer will take it over
}

TEST_CASE("redis: a fixed consumer name with several source workers gives each its own name", "[redis]") {
  const RedisServer server;
  plumb::redis::Connection connection = server.connect();
  Queue queue = queue_of(server, "fixed");
  plumb::redis::create_group(connection, queue);
  const std::vector<std::string> ids = fill(connection, 100);
  plumb::Pipeline pipeline{plumb::stage(plumb::redis::read_jobs, queue).workers(2).in_flight(2),
                           plumb::stage(work, 1ms, kNever).workers(2).in_flight(2),
                           plumb::stage(plumb::redis::acknowledge_each<Job>, queue).in_flight(1),
                           plumb::stage(finished).max_message_size(1 << 20)};
  CHECK(sorted(pipeline.run()) == sorted(ids));  // each once, none redelivered
  const plumb::redis::Reply consumers = connection.command({"XINFO", "CONSUMERS", kStream, kGroup});
  std::set<std::string> names;
  for (std::size_t i = 0; i < consumers->elements; ++i) names.emplace(consumers->element[i]->element[1]->str);
  CHECK(names == std::set<std::string>{"fixed-0", "fixed-1"});
}
