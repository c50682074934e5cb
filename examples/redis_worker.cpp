// SPDX-License-Identifier: MIT
// examples/redis_worker.cpp: one instance of a scale-out service. Any number of these, on any
// number of machines, share the jobs of one Redis Stream through a consumer group
// (plumb/redis.hpp); examples/redis_producer.sh fills the stream. Each instance runs
//
//   read (thread) -> score (2 worker processes) -> store (thread) -> acknowledge (thread)
//
// and prints its own statistics when the stream has been empty for --idle-ms. A job is
// acknowledged only after its result is stored, so an instance that dies leaves its jobs to
// the others (after --claim-ms), never loses them.
//
//   redis-server --port 6400 &
//   redis-cli -p 6400 XGROUP CREATE jobs workers '$' MKSTREAM
//   example_redis_worker --port 6400 --consumer one &
//   example_redis_worker --port 6400 --consumer two &
//   bash examples/redis_producer.sh 6400 1000
//
// `example_redis_worker --help` lists the options and their defaults: the server, stream,
// group and consumer; the score workers and their work per job (--cpu-us, --wait-us); when to
// stop (--idle-ms, --max-jobs), take over jobs (--claim-ms) and dead-letter them
// (--max-deliveries, --max-job-bytes).
//
// An instance killed mid-run leaves its jobs pending; another instance takes them over once
// they have been idle for --claim-ms (the default --idle-ms is longer, so it is still there).
// A job that kills every instance that runs it, or is too large, goes to the stream
// "<stream>:dead" instead (each instance prints a line for each); see docs/redis.md section 7.

#include <plumb/plumb.hpp>
#include <plumb/redis.hpp>

#include "support/cli.hpp"

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <string>
#include <string_view>
#include <thread>

#include <unistd.h>

namespace {

using namespace std::chrono_literals;

struct Options {
  plumb::redis::Queue queue{.stream = "jobs", .group = "workers", .claim_idle = 5s, .stop_when_idle = 8s};
  std::size_t workers = 2;
  std::chrono::microseconds cpu{200};
  std::chrono::microseconds wait{0};
  bool quiet = false;
};

// A scored job: what the score workers send on. `id` is what acknowledge() needs.
struct Scored {
  std::string id;
  std::uint64_t words = 0;
  std::uint64_t score = 0;
};

// Stands in for a model: `cpu` of arithmetic on the text, then `wait` (a remote call).
plumb::Generator<Scored> score(plumb::Stream<plumb::redis::Job> jobs, std::chrono::microseconds cpu,
                               std::chrono::microseconds wait) {
  for (const plumb::redis::Job& job : jobs) {
    const std::string& text = job.field("text");
    std::uint64_t words = 0;
    bool in_word = false;
    for (const char c : text) {
      const bool letter = c != ' ';
      words += (letter && !in_word) ? 1 : 0;
      in_word = letter;
    }
    std::uint64_t hash = 1469598103934665603ULL;  // FNV-1a over the text, round after round
    const auto until = std::chrono::steady_clock::now() + cpu;
    do {
      for (const char c : text) hash = (hash ^ static_cast<unsigned char>(c)) * 1099511628211ULL;
    } while (std::chrono::steady_clock::now() < until);
    if (wait.count() > 0) std::this_thread::sleep_for(wait);
    Scored scored{job.id, words, hash % 1000};
    co_yield std::move(scored);
  }
}

// Stores each result in the hash "<stream>:results" (field: the job id), then passes it on to
// be acknowledged. Its connection is opened here, in the worker.
plumb::Generator<Scored> store(plumb::Stream<Scored> results, plumb::redis::Queue queue) {
  plumb::redis::Connection connection(queue.server);
  const std::string key = queue.stream + ":results";
  for (Scored& result : results) {
    const std::string value = std::to_string(result.words) + " words, score " + std::to_string(result.score);
    connection.command({"HSET", key, result.id, value});
    co_yield std::move(result);
  }
}

// A duration option, given as a count of the duration's unit; its default is `duration` now.
template <class Duration>
CLI::Option* add_duration(CLI::App& command_line, const std::string& name, Duration& duration,
                          const std::string& description) {
  using Count = typename Duration::rep;
  return command_line
      .add_option_function<Count>(name, [&duration](Count count) { duration = Duration(count); }, description)
      ->check(examples::kNonNegative)
      ->default_str(std::to_string(duration.count()));
}

// The command line onto `options`; each option's default is the value `options` holds now.
void add_options(CLI::App& command_line, Options& options) {
  plumb::redis::Queue& queue = options.queue;
  command_line.add_option("--host", queue.server.host, "Redis server: host name or address");
  command_line.add_option("--port", queue.server.port, "Redis server: TCP port")->check(CLI::Range(1, 65535));
  command_line.add_option("--password", queue.server.password, "Redis server: password (empty: no AUTH)");
  command_line.add_option("--stream", queue.stream, "The stream of jobs");
  command_line.add_option("--group", queue.group, "The consumer group the instances share");
  command_line.add_option("--consumer", queue.consumer,
                          "This instance's name in the group (empty: <host name>-<pid>-<n>)");
  command_line.add_option("--workers", options.workers, "Score worker processes")->check(examples::kPositive);
  add_duration(command_line, "--cpu-us", options.cpu, "Microseconds of CPU work per job");
  add_duration(command_line, "--wait-us", options.wait,
               "Microseconds of waiting per job, as for a remote model or a GPU");
  add_duration(command_line, "--idle-ms", queue.stop_when_idle,
               "Stop once the stream has been empty this long (0: never)");
  add_duration(command_line, "--claim-ms", queue.claim_idle, "Take over other instances' jobs idle this long");
  // Unsigned: the check turns away "-1", which CLI11 would wrap around to a huge count.
  command_line.add_option("--max-jobs", queue.max_jobs, "Stop after this many jobs (0: no limit)")
      ->check(examples::kNonNegative);
  command_line.add_option("--max-deliveries", queue.max_deliveries,
                          "Dead-letter a job delivered more often than this (0: never)")
      ->check(examples::kNonNegative);
  command_line.add_option("--max-job-bytes", queue.max_job_bytes,
                          "Dead-letter a larger job (the default is the read link's slot)")
      ->check(examples::kNonNegative);
  command_line.add_flag("--quiet", options.quiet, "Do not print the statistics table");
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  examples::CommandLine command_line{
      "example_redis_worker",
      "One instance of a scale-out service: scores the jobs of a Redis Stream with its consumer group"};
  add_options(command_line, options);
  CLI11_PARSE(command_line, argc, argv);
  // Runs in the read stage's worker; std::cerr is unbuffered, so the line is out before a crash.
  options.queue.on_dead_letter = [](const plumb::redis::DeadLetter& letter) {
    std::cerr << "dead letter " << letter.id << ": job " << letter.job.id << ": " << letter.reason << '\n';
  };
  const plumb::redis::Queue& queue = options.queue;
  const std::string name = queue.consumer.empty() ? "pid " + std::to_string(::getpid()) : queue.consumer;

  plumb::Pipeline pipeline{
      // One job queued per score worker beside the one it works on: a worker that finishes finds
      // its next job ready instead of waiting for a read (a round trip to Redis). The instance
      // holds at most 2 x workers jobs on this link; in_flight(workers) would hoard nothing
      // extra but leave the workers waiting for each read (see docs/redis.md).
      plumb::stage(plumb::redis::read_jobs, queue).name("read").in_flight(2 * options.workers),
      plumb::stage(score, options.cpu, options.wait)
          .name("score")
          .mode(plumb::Mode::process)
          .workers(options.workers)
          .in_flight(2 * options.workers),
      plumb::stage(store, queue).name("store").in_flight(2),
      plumb::stage(plumb::redis::acknowledge<Scored>, queue).name("acknowledge")};
  try {
    const plumb::redis::AckReport report = pipeline.run(plumb::Mode::thread);
    const plumb::Stats& stats = pipeline.last_stats();
    std::cout << "instance " << name << ": " << report.acknowledged << " jobs acknowledged in "
              << std::chrono::duration<double>(stats.elapsed).count() << " s (with the final idle wait), "
              << report.not_pending << " taken over by another instance first\n";
    if (!options.quiet) std::cout << stats.table() << '\n';
  } catch (const std::exception& error) {
    std::cerr << "instance " << name << " failed: " << error.what() << '\n';
    return 1;
  }
  return 0;
}
