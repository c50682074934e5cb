// SPDX-License-Identifier: MIT
// benchmarks/redis_bench.cpp: jobs per second of examples/redis_worker, 1 and 2 instances
// sharing one Redis Stream on this machine (a redis-server of its own on a free loopback port).
// Each repetition fills the stream, starts the instances (each: read -> score in 2 worker
// processes -> store -> acknowledge), and times from their start until every job has a result
// and none is pending; the instances' idle wait before they exit is not timed.
// Names: redis/<work>/instances:<n>. Work "cpu": 500 us of arithmetic per job (the 2 cores
// are the limit). Work "wait": 2 ms of waiting per job and 50 us of arithmetic, as for a
// remote model or a GPU (the instances' in-flight jobs are the limit).

#include "registry.hpp"

#ifdef PLUMB_REDIS_WORKER  // defined where examples/redis_worker and plumb::redis are built
#include <plumb/redis.hpp>

#include "redis/server.hpp"  // tests/redis/server.hpp: a redis-server on a free loopback port

#include <fmt/format.h>

#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>
#endif

namespace bench {
#ifdef PLUMB_REDIS_WORKER
namespace {

struct Work {
  const char* name;
  int jobs;
  int cpu_us;
  int wait_us;
};

// Starts one instance of the example; it exits after the stream is empty for a second.
pid_t start_instance(int port, int index, const Work& work) {
  std::vector<std::string> args{PLUMB_REDIS_WORKER, "--port", std::to_string(port),
                                "--consumer", fmt::format("bench-{}", index),
                                "--cpu-us", std::to_string(work.cpu_us),
                                "--wait-us", std::to_string(work.wait_us),
                                "--idle-ms", "1000", "--quiet"};
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork() failed");
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  return pid;
}

long long integer(plumb::redis::Connection& connection, std::initializer_list<std::string_view> command) {
  const plumb::redis::Reply reply = connection.command(command);
  if (reply->type == REDIS_REPLY_INTEGER) return reply->integer;
  if (reply->type == REDIS_REPLY_ARRAY && reply->elements > 0 && reply->element[0]->type == REDIS_REPLY_INTEGER) {
    return reply->element[0]->integer;  // XPENDING's summary
  }
  throw std::runtime_error("unexpected reply");
}

void add_runner(const Work& work, int instances) {
  add(fmt::format("redis/{}/instances:{}", work.name, instances), false, [work, instances](benchmark::State& state) {
    static const plumb::test::RedisServer server;  // one for the suite, stopped at exit
    plumb::redis::Connection connection = server.connect();
    const plumb::redis::Queue queue{.stream = "jobs", .group = "workers"};
    for (auto _ : state) {
      connection.command({"DEL", "jobs", "jobs:results"});
      plumb::redis::create_group(connection, queue);
      for (int n = 0; n < work.jobs; ++n) {
        connection.add("jobs", {{"n", std::to_string(n)}, {"text", fmt::format("job {}: alpha beta gamma delta", n)}});
      }
      const auto start = std::chrono::steady_clock::now();
      std::vector<pid_t> pids;
      for (int i = 0; i < instances; ++i) pids.push_back(start_instance(server.port(), i, work));
      while (integer(connection, {"HLEN", "jobs:results"}) < work.jobs ||
             integer(connection, {"XPENDING", "jobs", "workers"}) > 0) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
        if (std::chrono::steady_clock::now() - start > std::chrono::minutes(2)) {
          for (const pid_t pid : pids) ::kill(pid, SIGKILL);
          for (const pid_t pid : pids) ::waitpid(pid, nullptr, 0);
          throw std::runtime_error("the instances did not finish the jobs in 2 minutes");
        }
      }
      state.SetIterationTime(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
      for (const pid_t pid : pids) {
        int status = 0;
        ::waitpid(pid, &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
          throw std::runtime_error(fmt::format("an instance of {} failed", PLUMB_REDIS_WORKER));
        }
      }
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * work.jobs);
  })->UseManualTime();
}

}  // namespace
#endif

void register_redis() {
#ifdef PLUMB_REDIS_WORKER
  for (const Work& work : {Work{"cpu", 2000, 500, 0}, Work{"wait", 1000, 50, 2000}}) {
    for (const int instances : {1, 2}) add_runner(work, instances);
  }
#endif
}

}  // namespace bench
