// SPDX-License-Identifier: MIT
// examples/tutorial.cpp: the code of docs/tutorial.md, one function per section. Each section
// checks what the tutorial says it does; the program exits 1 if one does not.
//
//   example_tutorial

#include <plumb/graph.hpp>
#include <plumb/plumb.hpp>

#include "support/cli.hpp"

#include <chrono>
#include <cmath>
#include <cstdint>
#include <iostream>
#include <mutex>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

namespace {

using namespace std::chrono_literals;

// --- 1. A first pipeline --------------------------------------------------------------------

struct Job {
  int id = 0;
  std::string text;
};

struct Result {
  int id = 0;
  std::uint64_t checksum = 0;
};

// A source: no input stream; its arguments are the stage's constants.
plumb::Generator<Job> jobs(int count) {
  for (int id = 0; id < count; ++id) {
    Job job{id, "job " + std::to_string(id)};
    co_yield std::move(job);
  }
}

// A processor: one input stream, 0..n outputs per input. `cost` stands for real work.
plumb::Generator<Result> work(plumb::Stream<Job> in, std::chrono::milliseconds cost) {
  for (const Job& job : in) {
    std::this_thread::sleep_for(cost);
    std::uint64_t checksum = 0;
    for (const char c : job.text) checksum = checksum * 31 + static_cast<unsigned char>(c);
    Result result{job.id, checksum};
    co_yield std::move(result);
  }
}

// A sink: consumes its stream; its return value is run()'s.
std::uint64_t total(plumb::Stream<Result> in) {
  std::uint64_t sum = 0;
  for (const Result& result : in) sum += result.checksum;
  return sum;
}

bool first_pipeline() {
  // A stage is testable on its own: feed it a Stream built from values.
  std::vector<Result> results;
  for (Result& result : work(plumb::Stream<Job>{Job{1, "a"}, Job{2, "b"}}, 0ms)) {
    results.push_back(result);  // or check each result here
  }
  const bool unit = results.size() == 2 && results[0].checksum == 'a' && results[1].id == 2;

  plumb::Pipeline pipeline{
      plumb::stage(jobs, 20),
      plumb::stage(work, 1ms),
      plumb::stage(total),
  };
  const std::uint64_t sequential = pipeline.run(plumb::Mode::sequential);  // one thread
  const std::uint64_t threads = pipeline.run();                            // a thread per stage
  std::cout << "1. first pipeline: " << sequential << " " << threads << "\n";
  return unit && sequential == threads;
}

// --- 2. Workers and packets in flight -------------------------------------------------------

double seconds_with(std::size_t workers) {
  plumb::Pipeline pipeline{
      plumb::stage(jobs, 40).in_flight(8),
      plumb::stage(work, 5ms).workers(workers).in_flight(8),
      plumb::stage(total),
  };
  const auto start = std::chrono::steady_clock::now();
  pipeline.run();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

bool workers_and_in_flight() {
  const double one = seconds_with(1), four = seconds_with(4);
  std::cout << "2. 40 jobs of 5 ms: 1 worker " << one << " s, 4 workers " << four << " s\n";
  return true;  // timings are shown, not checked: a shared machine may be slow at any moment
}

// --- 3. Synchronous processing: in_flight(1) ------------------------------------------------

// Each stage writes what it does into a shared log.
struct Log {
  std::mutex mutex;
  std::vector<std::string> lines;
  void add(std::string line) {
    const std::lock_guard lock(mutex);
    lines.push_back(std::move(line));
  }
};

plumb::Generator<int> take(Log* log, int count) {
  for (int id = 0; id < count; ++id) {
    log->add("take " + std::to_string(id));
    co_yield id;
  }
}

plumb::Generator<int> handle(plumb::Stream<int> in, Log* log) {
  for (int id : in) {
    log->add("handle " + std::to_string(id));
    co_yield id;
  }
}

void finish(plumb::Stream<int> in, Log* log) {
  for (int id : in) log->add("finish " + std::to_string(id));
}

bool synchronous() {
  Log log;
  plumb::Pipeline pipeline{
      plumb::stage(take, &log, 3).in_flight(1),
      plumb::stage(handle, &log).in_flight(1),
      plumb::stage(finish, &log),
  };
  pipeline.run(plumb::Mode::thread);
  // log.lines: take 0, handle 0, finish 0, take 1, handle 1, finish 1, take 2, handle 2, finish 2
  std::vector<std::string> expected;
  for (int id = 0; id < 3; ++id) {
    for (const char* step : {"take ", "handle ", "finish "}) expected.push_back(step + std::to_string(id));
  }
  std::cout << "3. in_flight 1:";
  for (const std::string& line : log.lines) std::cout << " | " << line;
  std::cout << "\n";
  return log.lines == expected;
}

// --- 4. Threads, processes, fused stages ----------------------------------------------------

plumb::Generator<Job> drop_empty(plumb::Stream<Job> in) {
  for (Job& job : in) {
    if (!job.text.empty()) co_yield std::move(job);
  }
}

bool modes() {
  plumb::Pipeline pipeline{
      plumb::stage(jobs, 40),
      // Fused into the source: the group's output link takes this, its last stage's, options.
      plumb::stage(drop_empty).mode(plumb::Mode::sequential).in_flight(6),
      plumb::stage(work, 2ms).workers(3).in_flight(6).name("work"),
      plumb::stage(total),
  };
  const std::uint64_t threads = pipeline.run(plumb::Mode::thread);
  const std::uint64_t processes = pipeline.run(plumb::Mode::process);  // the same: 3 work processes
  std::cout << "4. threads " << threads << ", processes " << processes << "\n";
  return threads == processes;
}

// --- 5. Errors ------------------------------------------------------------------------------

plumb::Generator<Result> fragile(plumb::Stream<Job> in) {
  for (const Job& job : in) {
    if (job.id == 13) throw std::invalid_argument("job 13 is malformed");
    Result result{job.id, 0};
    co_yield std::move(result);
  }
}

bool errors_in(plumb::Mode mode) {
  plumb::Pipeline pipeline{
      plumb::stage(jobs, 100),
      plumb::stage(fragile).workers(2).name("fragile"),
      plumb::stage(total),
  };
  try {
    pipeline.run(mode);
  } catch (const std::invalid_argument& error) {  // the stage's own exception type, in every mode
    const plumb::Failure& failure = *pipeline.last_failure();  // a std::optional, set by a failed run
    // failure.stage_name == "fragile", failure.worker_index, failure.pid (process mode),
    // failure.what (the message)
    std::cout << "5. caught \"" << error.what() << "\" from stage '" << failure.stage_name << "' worker "
              << failure.worker_index << (failure.pid != 0 ? " (a process)" : "") << "\n";
    return failure.stage_name == "fragile" && failure.what == error.what();
  }
  return false;  // not reached: the error stops the run
}

// RunOptions bound a run in time and cancel it on request.
bool options() {
  plumb::Pipeline pipeline{plumb::stage(jobs, 10), plumb::stage(work, 0ms), plumb::stage(total)};
  std::stop_source stop_source;
  const std::uint64_t sum =
      pipeline.run({.mode = plumb::Mode::process,
                    .inactivity_timeout = std::chrono::seconds(30),  // InactivityError if stuck
                    .stop_token = stop_source.get_token()});         // CancelledError on request
  stop_source.request_stop();
  bool cancelled = false;
  try {
    pipeline.run({.mode = plumb::Mode::thread, .stop_token = stop_source.get_token()});
  } catch (const plumb::CancelledError&) {
    cancelled = true;
  }
  std::cout << "5. with RunOptions: " << sum << ", cancelled: " << cancelled << "\n";
  return sum != 0 && cancelled;
}

bool errors() { return errors_in(plumb::Mode::thread) && errors_in(plumb::Mode::process) && options(); }

// --- 6. Big packets without copies ----------------------------------------------------------

plumb::Generator<std::vector<float>> frames(int count, std::size_t size) {
  std::vector<float> frame;
  for (int i = 0; i < count; ++i) {
    frame.assign(size, static_cast<float>(i));
    co_yield std::move(frame);
  }
}

// Reads each frame in place, in the shared-memory slot it arrived in.
double brightness(plumb::Stream<plumb::View<std::vector<float>>> in) {
  double sum = 0;
  for (const auto& frame : in) {
    for (const float pixel : frame) sum += pixel;
  }
  return sum;
}

bool zero_copy() {
  constexpr std::size_t kPixels = 1 << 20;  // 4 MiB frames
  plumb::Pipeline pipeline{
      plumb::stage(frames, 8, kPixels).in_flight(2).max_message_size(kPixels * sizeof(float) + 4096),
      plumb::stage(brightness),
  };
  const double sum = pipeline.run(plumb::Mode::process);
  std::cout << "6. brightness " << sum << "\n";
  return sum == 28.0 * kPixels;  // 0 + 1 + ... + 7 per pixel
}

// --- 7. Where does the time go? -------------------------------------------------------------

bool statistics() {
  plumb::Pipeline pipeline{
      plumb::stage(jobs, 60).in_flight(8).name("jobs"),
      plumb::stage(work, 3ms).workers(2).in_flight(8).name("work"),
      plumb::stage(total).name("total"),
  };
  pipeline.run({.progress = plumb::ProgressLine{}});  // a live line on stderr
  std::cout << pipeline.last_stats().table();
  const plumb::Stats& stats = pipeline.last_stats();
  std::cout << "7. bottleneck: stage " << stats.bottleneck().value_or(99) << "\n";
  return stats.bottleneck() == 1;  // `work`: busy nearly all the time
}

// --- 8. Branches and joins: plumb::Graph ----------------------------------------------------

plumb::Generator<int> numbers(int count) {
  for (int i = 0; i < count; ++i) co_yield i;
}
plumb::Generator<int> square(plumb::Stream<int> in) {
  for (int x : in) co_yield x * x;
}
plumb::Generator<std::string> spell(plumb::Stream<int> in) {
  for (int x : in) co_yield std::to_string(x);
}
long check(plumb::Stream<std::tuple<int, std::string>> in) {
  long pairs = 0;
  for (auto& [squared, text] : in) pairs += squared == std::stoi(text) * std::stoi(text);
  return pairs;
}
struct Root {  // the join's key: the number a packet came from
  int operator()(int squared) const { return static_cast<int>(std::lround(std::sqrt(squared))); }
  int operator()(const std::string& text) const { return std::stoi(text); }
};

bool graph() {
  plumb::Graph graph{
      plumb::node<"numbers">(plumb::stage(numbers, 1000)),
      plumb::node<"square">(plumb::stage(square).workers(2).in_flight(8), plumb::from<"numbers">),
      plumb::node<"spell">(plumb::stage(spell), plumb::from<"numbers">),
      plumb::node<"check">(plumb::stage(check), plumb::join_by_key<"square", "spell">(Root{})),
  };
  const long pairs = graph.run(plumb::Mode::process);  // 1000
  std::cout << "8. " << pairs << " pairs\n" << graph.last_stats().table();
  return pairs == 1000;
}

}  // namespace

int main(int argc, char** argv) {
  examples::CommandLine command_line{
      "example_tutorial", "The code of docs/tutorial.md: runs each section and checks what it claims"};
  CLI11_PARSE(command_line, argc, argv);
  bool ok = true;
  for (bool (*section)() : {first_pipeline, workers_and_in_flight, synchronous, modes, errors,
                            zero_copy, statistics, graph}) {
    ok &= section();
  }
  std::cout << (ok ? "all sections behaved as described\n" : "a section did not behave as described\n");
  return ok ? 0 : 1;
}
