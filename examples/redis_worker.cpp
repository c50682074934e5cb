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
// Options: --host H --port P --password S --stream NAME --group NAME --consumer NAME
//          --workers N (score processes, default 2) --cpu-us N (CPU work per job, default 200)
//          --wait-us N (a wait per job, as for a remote model or a GPU; default 0)
//          --idle-ms N (stop after the stream is empty this long; default 8000; 0: never)
//          --claim-ms N (take over jobs idle this long; default 5000) --max-jobs N --quiet
//          --max-deliveries N (dead-letter a job delivered more often; default 5; 0: never)
//          --max-job-bytes N (dead-letter a larger job; default 131072, the read link's slot)
//
// An instance killed mid-run leaves its jobs pending; another instance takes them over once
// they have been idle for --claim-ms (the default --idle-ms is longer, so it is still there).
// A job that kills every instance that runs it, or is too large, goes to the stream
// "<stream>:dead" instead (each instance prints a line for each); see docs/redis.md section 7.

#include <plumb/plumb.hpp>
#include <plumb/redis.hpp>

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

bool parse(int argc, char** argv, Options& options) {
  auto number = [](std::string_view flag, const char* text) {
    char* end = nullptr;
    const long long value = std::strtoll(text, &end, 10);
    if (end == text || *end != '\0' || value < 0) {
      std::cerr << "redis_worker: " << flag << " needs a non-negative number, not '" << text << "'\n";
      std::exit(2);
    }
    return value;
  };
  for (int i = 1; i < argc; ++i) {
    const std::string_view flag = argv[i];
    if (flag == "--quiet") {
      options.quiet = true;
      continue;
    }
    if (i + 1 >= argc) {
      std::cerr << "redis_worker: unknown option or missing value: " << flag << '\n';
      return false;
    }
    const char* value = argv[++i];
    plumb::redis::Queue& queue = options.queue;
    if (flag == "--host") queue.server.host = value;
    else if (flag == "--port") queue.server.port = static_cast<int>(number(flag, value));
    else if (flag == "--password") queue.server.password = value;
    else if (flag == "--stream") queue.stream = value;
    else if (flag == "--group") queue.group = value;
    else if (flag == "--consumer") queue.consumer = value;
    else if (flag == "--workers") options.workers = static_cast<std::size_t>(number(flag, value));
    else if (flag == "--cpu-us") options.cpu = std::chrono::microseconds(number(flag, value));
    else if (flag == "--wait-us") options.wait = std::chrono::microseconds(number(flag, value));
    else if (flag == "--idle-ms") queue.stop_when_idle = std::chrono::milliseconds(number(flag, value));
    else if (flag == "--claim-ms") queue.claim_idle = std::chrono::milliseconds(number(flag, value));
    else if (flag == "--max-jobs") queue.max_jobs = static_cast<std::uint64_t>(number(flag, value));
    else if (flag == "--max-deliveries") queue.max_deliveries = static_cast<std::uint64_t>(number(flag, value));
    else if (flag == "--max-job-bytes") queue.max_job_bytes = static_cast<std::size_t>(number(flag, value));
    else {
      std::cerr << "redis_worker: unknown option " << flag << '\n';
      return false;
    }
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  if (!parse(argc, argv, options)) return 2;
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
