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
#include <string_view>
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

// The clients connected to the server (INFO clients), this test's own connection included.
long long connected_clients(plumb::redis::Connection& connection) {
  const plumb::redis::Reply reply = connection.command({"INFO", "clients"});
  const std::string_view info(reply->str, reply->len);
  const std::string_view key = "connected_clients:";
  const std::size_t at = info.find(key);
  REQUIRE(at != std::string_view::npos);
  return std::stoll(std::string(info.substr(at + key.size(), info.find('\r', at) - at - key.size())));
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
  // And the server is done with them: a command A's reader sent just before the kill may still
  // be unread in its socket (the server reads it before it sees the connection closed), and
  // would deliver one more job to A after the look below.
  while (connected_clients(connection) > 1) {
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
  // B's own jobs take far less (a few ms each), so none of them is taken back, even on a loaded
  // machine; A's are idle since before the kill.
  queue_b.claim_idle = 2000ms;
  queue_b.stop_when_idle = 4000ms;
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

// --- Dead letters -------------------------------------------------------------------------------

namespace {

bool has_field(const Job& job, std::string_view name) {
  return std::any_of(job.fields.begin(), job.fields.end(), [&](const auto& field) { return field.first == name; });
}

long long stream_length(plumb::redis::Connection& connection, const std::string& key) {
  return connection.command({"XLEN", key})->integer;
}

// Reads `queue` on its own (no pipeline) until it ends, acknowledging every job; the ids read.
std::vector<std::string> read_and_ack(plumb::redis::Connection& connection, const Queue& queue) {
  std::vector<std::string> ids;
  for (Job& job : plumb::redis::read_jobs(queue)) {
    ids.push_back(job.redelivered ? job.id + "*" : job.id);
    plumb::redis::ack(connection, queue, job.id);
  }
  return ids;
}

// A job of about 200 KB, over the default max_message_size (128 KiB) of a link between processes.
std::vector<std::pair<std::string, std::string>> large_job() {
  return {{"n", "7"}, {"blob", std::string(200'000, 'x')}};
}

void check_large_job_dead_lettered(Mode mode) {
  const RedisServer server;
  plumb::redis::Connection connection = server.connect();
  const Queue queue = queue_of(server);
  plumb::redis::create_group(connection, queue);
  std::vector<std::string> ids = fill(connection, 5);
  const std::string large = connection.add(kStream, large_job());
  const std::vector<std::string> behind = fill(connection, 5);
  ids.insert(ids.end(), behind.begin(), behind.end());
  CHECK(sorted(run_instance(queue, mode, 0ms)) == sorted(ids));  // every other job, once
  CHECK(pending(connection) == 0);
  const std::vector<plumb::redis::DeadLetter> letters = plumb::redis::dead_letters(connection, queue);
  REQUIRE(letters.size() == 1);
  CHECK(letters[0].job.id == large);
  CHECK(letters[0].job.fields == large_job());
  CHECK_THAT(letters[0].reason, Catch::Contains("over Queue::max_job_bytes (131072)") &&
                                    Catch::Contains(".max_message_size() on the read_jobs stage"));
}

}  // namespace

TEST_CASE("redis: a job larger than Queue::max_job_bytes is dead-lettered and the jobs behind it are processed",
          "[redis]") {
  SECTION("sequential") { check_large_job_dead_lettered(Mode::sequential); }
  SECTION("thread") { check_large_job_dead_lettered(Mode::thread); }
}

TEST_CASE("redis (process mode): a job larger than a process link's slot is dead-lettered, not a stage error, "
          "and the jobs behind it are processed",
          "[redis][process]") {
  check_large_job_dead_lettered(Mode::process);
}

TEST_CASE("redis: a dead letter carries the reason, where it came from and the job's fields, and can be replayed",
          "[redis]") {
  const RedisServer server;
  plumb::redis::Connection connection = server.connect();
  Queue queue = queue_of(server, "alone");
  queue.stop_when_idle = 200ms;
  queue.max_job_bytes = 100;
  std::vector<plumb::redis::DeadLetter> told;
  queue.on_dead_letter = [&told](const plumb::redis::DeadLetter& letter) { told.push_back(letter); };
  plumb::redis::create_group(connection, queue);
  const std::string small = connection.add(kStream, {{"n", "0"}});
  const std::vector<std::pair<std::string, std::string>> fields{{"n", "1"}, {"text", std::string(200, 't')}};
  const std::string large = connection.add(kStream, fields);
  CHECK(read_and_ack(connection, queue) == std::vector<std::string>{small});
  CHECK(pending(connection) == 0);  // acknowledged with the dead-lettering

  const std::vector<plumb::redis::DeadLetter> letters = plumb::redis::dead_letters(connection, queue);
  REQUIRE(letters.size() == 1);
  const plumb::redis::DeadLetter& letter = letters[0];
  CHECK(letter.job.id == large);
  CHECK(letter.job.fields == fields);
  CHECK(letter.stream == kStream);
  CHECK(letter.group == kGroup);
  CHECK(letter.consumer == "alone");
  CHECK(letter.deliveries == 1);
  CHECK_THAT(letter.reason, Catch::StartsWith("a job of ") && Catch::Contains("over Queue::max_job_bytes (100)"));
  REQUIRE(told.size() == 1);  // on_dead_letter saw the same
  CHECK(told[0].id == letter.id);
  CHECK(told[0].reason == letter.reason);
  // In the stream: the plumb.* fields first, then the job's own, for redis-cli users.
  const plumb::redis::Reply raw = connection.command({"XRANGE", "jobs:dead", "-", "+"});
  const redisReply* entry_fields = raw->element[0]->element[1];
  std::vector<std::string> names;
  for (std::size_t i = 0; i < entry_fields->elements; i += 2) names.emplace_back(entry_fields->element[i]->str);
  CHECK(names == std::vector<std::string>{"plumb.reason", "plumb.id", "plumb.stream", "plumb.group",
                                          "plumb.consumer", "plumb.deliveries", "n", "text"});

  // Replayed: back in the job stream as a new job with its own fields, gone from the dead letters.
  CHECK(plumb::redis::replay_dead_letters(connection, queue) == 1);
  CHECK(stream_length(connection, "jobs:dead") == 0);
  CHECK(plumb::redis::replay_dead_letter(connection, queue, letter).empty());  // not twice
  queue.max_job_bytes = 0;  // what made it fail, fixed
  queue.max_jobs = 1;
  std::vector<Job> again;
  for (Job& job : plumb::redis::read_jobs(queue)) again.push_back(job);
  REQUIRE(again.size() == 1);
  CHECK(again[0].id != large);
  CHECK(again[0].fields == fields);
  CHECK_FALSE(again[0].redelivered);
}

TEST_CASE("redis: replay_dead_letters replays only the dead letters chosen", "[redis]") {
  const RedisServer server;
  plumb::redis::Connection connection = server.connect();
  Queue queue = queue_of(server, "alone");
  queue.stop_when_idle = 200ms;
  queue.max_job_bytes = 60;
  plumb::redis::create_group(connection, queue);
  connection.add(kStream, {{"n", "0"}, {"pad", std::string(100, 'p')}});
  connection.add(kStream, {{"n", "1"}, {"pad", std::string(100, 'p')}});
  CHECK(read_and_ack(connection, queue).empty());
  REQUIRE(plumb::redis::dead_letters(connection, queue).size() == 2);
  const auto second = [](const plumb::redis::DeadLetter& letter) { return letter.job.field("n") == "1"; };
  CHECK(plumb::redis::replay_dead_letters(connection, queue, second) == 1);
  const std::vector<plumb::redis::DeadLetter> left = plumb::redis::dead_letters(connection, queue);
  REQUIRE(left.size() == 1);
  CHECK(left[0].job.field("n") == "0");
}

TEST_CASE("redis: a job delivered more than Queue::max_deliveries times is dead-lettered, and the next job is read",
          "[redis]") {
  const RedisServer server;
  plumb::redis::Connection connection = server.connect();
  Queue queue = queue_of(server, "restarted");
  queue.max_deliveries = 2;
  queue.max_jobs = 1;
  plumb::redis::create_group(connection, queue);
  const std::vector<std::string> ids = fill(connection, 2);
  // A consumer that dies with job 0 every time, restarted under its name: each restart re-reads
  // its own pending job 0 first, and the group counts one more delivery.
  auto first_job = [&queue] {
    for (Job& job : plumb::redis::read_jobs(queue)) return job.redelivered ? job.id + "*" : job.id;
    return std::string("none");
  };
  CHECK(first_job() == ids[0]);
  CHECK(first_job() == ids[0] + "*");
  CHECK(first_job() == ids[1]);  // the third delivery of job 0 is dead-lettered instead
  const std::vector<plumb::redis::DeadLetter> letters = plumb::redis::dead_letters(connection, queue);
  REQUIRE(letters.size() == 1);
  CHECK(letters[0].job.id == ids[0]);
  CHECK(letters[0].deliveries == 3);
  CHECK_THAT(letters[0].reason, Catch::StartsWith("delivered 3 times, over Queue::max_deliveries (2)"));
  CHECK(pending_ids(connection, "restarted") == std::set<std::string>{ids[1]});
}

namespace {

// Work that kills its own worker process on the job with a field "poison" (a crash in native
// code, say), takes 150 ms for a job with a field "slow", and counts every other job it does in
// the hash "processed".
Generator<Job> crash_on_poison(Stream<Job> in, plumb::redis::Server server) {
  plumb::redis::Connection connection(server);
  for (Job& job : in) {
    if (has_field(job, "poison")) ::raise(SIGKILL);
    if (has_field(job, "slow")) std::this_thread::sleep_for(150ms);
    connection.command({"HINCRBY", "processed", job.id, "1"});
    co_yield std::move(job);
  }
}

// One instance of the fleet: runs its pipeline again after every failed run (as a supervisor
// restarts a service), until a run ends because the stream stayed empty; exits with the number
// of failed runs, or 100 after 10 of them.
int run_restarting(const Queue& queue) {
  for (int failed = 0; failed < 10; ++failed) {
    plumb::Pipeline pipeline{
        plumb::stage(plumb::redis::read_jobs, queue).name("read").in_flight(2),
        plumb::stage(crash_on_poison, queue.server).name("work").workers(2).mode(Mode::process).in_flight(2),
        plumb::stage(plumb::redis::acknowledge<Job>, queue).name("ack")};
    try {
      pipeline.run(Mode::thread);
      return failed;
    } catch (const plumb::WorkerDiedError&) {
    }
  }
  return 100;
}

}  // namespace

TEST_CASE("redis (process mode): a job that crashes its worker every time is dead-lettered after max_deliveries, "
          "and a fleet of two keeps processing the jobs behind it",
          "[redis][process]") {
  const RedisServer server;
  plumb::redis::Connection connection = server.connect();
  Queue queue = queue_of(server);
  queue.claim_idle = 300ms;  // the other instance takes the job over too
  queue.stop_when_idle = 1000ms;
  queue.max_deliveries = 3;
  plumb::redis::create_group(connection, queue);
  std::vector<std::string> ids = fill(connection, 9);
  // A slow job just before the poison one: still in work when the poison job kills the run, it
  // is delivered again with it, and must not share its fate.
  ids.push_back(connection.add(kStream, {{"n", "9"}, {"slow", "yes"}}));
  const std::string poison = connection.add(kStream, {{"n", "10"}, {"poison", "yes"}});
  const std::vector<std::string> behind = fill(connection, 30);
  ids.insert(ids.end(), behind.begin(), behind.end());

  std::vector<pid_t> instances;
  for (const std::string name : {"one", "two"}) {
    Queue mine = queue;
    mine.consumer = name;  // a restart re-reads its own pending jobs first
    instances.push_back(spawn_instance([mine] { ::_exit(run_restarting(mine)); }));
  }
  int failed_runs = 0;
  for (const pid_t pid : instances) failed_runs += wait_exit(pid);
  CHECK(failed_runs == 3);  // the poison job ran max_deliveries times, each time killing a run

  const std::vector<plumb::redis::DeadLetter> letters = plumb::redis::dead_letters(connection, queue);
  REQUIRE(letters.size() == 1);  // no job that was beside it when it crashed
  CHECK(letters[0].job.id == poison);
  CHECK(letters[0].deliveries == 4);
  CHECK_THAT(letters[0].reason, Catch::Contains("over Queue::max_deliveries (3)"));
  CHECK(pending(connection) == 0);
  // Every other job was processed (more than once only if it was in flight when a run died)
  // and acknowledged.
  const plumb::redis::Reply processed = connection.command({"HKEYS", "processed"});
  std::vector<std::string> done;
  for (std::size_t i = 0; i < processed->elements; ++i) done.emplace_back(processed->element[i]->str);
  CHECK(sorted(done) == sorted(ids));
}

TEST_CASE("redis (process mode): a job delivered again runs alone, so the job beside a crashing one is not "
          "dead-lettered with it",
          "[redis][process]") {
  const RedisServer server;
  plumb::redis::Connection connection = server.connect();
  Queue queue = queue_of(server, "restarted");
  queue.stop_when_idle = 500ms;
  queue.max_deliveries = 3;
  plumb::redis::create_group(connection, queue);
  // The slow job is in work on one worker whenever the poison job kills the other, so both are
  // pending when the run dies, and a restart re-reads both (the slow one first): without running
  // alone, the slow job would be delivered as often as the poison one, and dead-lettered first.
  const std::string slow = connection.add(kStream, {{"n", "0"}, {"slow", "yes"}});
  const std::string poison = connection.add(kStream, {{"n", "1"}, {"poison", "yes"}});
  const std::vector<std::string> behind = fill(connection, 3);
  const pid_t instance = spawn_instance([queue] { ::_exit(run_restarting(queue)); });
  CHECK(wait_exit(instance) == 3);
  const std::vector<plumb::redis::DeadLetter> letters = plumb::redis::dead_letters(connection, queue);
  REQUIRE(letters.size() == 1);
  CHECK(letters[0].job.id == poison);
  CHECK(connection.command({"HGET", "processed", slow})->type == REDIS_REPLY_STRING);
  CHECK(pending(connection) == 0);
}

namespace {

// Passes jobs on, acknowledging job "n" == `early` itself first (as if another consumer had
// taken it over and finished it first).
Generator<Job> ack_early(Stream<Job> in, Queue queue, int early) {
  plumb::redis::Connection connection(queue.server);
  for (Job& job : in) {
    if (std::stoi(job.field("n")) == early) plumb::redis::ack(connection, queue, job.id);
    co_yield std::move(job);
  }
}

// read -> ack_early -> acknowledge_each -> finished.
std::vector<std::string> run_ack_each(const Queue& queue, Mode mode) {
  plumb::Pipeline pipeline{plumb::stage(plumb::redis::read_jobs, queue).name("read"),
                           plumb::stage(ack_early, queue, 3).name("ack early"),
                           plumb::stage(plumb::redis::acknowledge_each<Job>, queue).name("ack"),
                           plumb::stage(finished).name("finished").max_message_size(1 << 20)};
  return pipeline.run({.mode = mode});
}

}  // namespace

TEST_CASE("redis: acknowledge_each reports what each XACK answered through Queue::on_acknowledge", "[redis]") {
  for (const Mode mode : {Mode::sequential, Mode::thread}) {
    CAPTURE(mode);
    const RedisServer server;
    plumb::redis::Connection connection = server.connect();
    Queue queue = queue_of(server);
    plumb::redis::AckReport report;  // acknowledge_each has one worker: no other thread counts
    std::vector<std::string> not_pending;
    queue.on_acknowledge = [&](std::string_view id, bool was_pending) {
      ++(was_pending ? report.acknowledged : report.not_pending);
      if (!was_pending) not_pending.emplace_back(id);
    };
    plumb::redis::create_group(connection, queue);
    const std::vector<std::string> ids = fill(connection, 6);
    CHECK(sorted(run_ack_each(queue, mode)) == sorted(ids));
    CHECK(report.acknowledged == 5);
    CHECK(report.not_pending == 1);
    CHECK(not_pending == std::vector<std::string>{ids[3]});
  }
}

TEST_CASE("redis (process mode): acknowledge_each calls Queue::on_acknowledge in its worker process",
          "[redis][process]") {
  const RedisServer server;
  plumb::redis::Connection connection = server.connect();
  Queue queue = queue_of(server);
  // In a worker process the callback's captures are the process's own copies: report through
  // something outside it, here the Redis list "acks".
  queue.on_acknowledge = [server = queue.server](std::string_view id, bool was_pending) {
    plumb::redis::Connection(server).command({"RPUSH", "acks", std::string(id) + (was_pending ? "" : " not pending")});
  };
  plumb::redis::create_group(connection, queue);
  const std::vector<std::string> ids = fill(connection, 6);
  CHECK(sorted(run_ack_each(queue, Mode::process)) == sorted(ids));
  const plumb::redis::Reply acks = connection.command({"LRANGE", "acks", "0", "-1"});
  std::vector<std::string> said;
  for (std::size_t i = 0; i < acks->elements; ++i) said.emplace_back(acks->element[i]->str);
  std::vector<std::string> expected = ids;
  expected[3] += " not pending";
  CHECK(said == expected);
}
