// SPDX-License-Identifier: MIT
// tests/stats_test.cpp: Pipeline::last_stats(), Stats (bottleneck, table, pictures), progress
// snapshots and ProgressLine, on pipelines whose behaviour is known: a stage that sleeps 10 ms
// per packet must be the bottleneck, busy nearly all the time, with its upstream blocked and its
// downstream starved, in every mode.

#include "support/modes.hpp"
#include "support/stages.hpp"

#include <plumb/plumb.hpp>

#include <catch2/catch.hpp>

#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using plumb::Generator;
using plumb::Mode;
using plumb::Stream;
using namespace plumb::test;

namespace {

constexpr int kPackets = 40;
constexpr auto kSlow = 10ms;

// Sleeps 10 ms per packet: sleeping is time in user code, so it counts as busy.
Generator<int> slow(Stream<int> in) {
  for (int x : in) {
    std::this_thread::sleep_for(kSlow);
    co_yield x;
  }
}

Generator<int> slow_source(int count) {
  for (int i = 0; i < count; ++i) {
    std::this_thread::sleep_for(kSlow);
    co_yield i;
  }
}

long slow_sink(Stream<int> in) {
  long sum = 0;
  for (int x : in) {
    std::this_thread::sleep_for(kSlow);
    sum += x;
  }
  return sum;
}

// Sums of counts over workers equal the stage's totals, and each link's packets arrive.
void check_counts(const plumb::Stats& stats) {
  for (std::size_t i = 0; i < stats.stages.size(); ++i) {
    const plumb::StageStats& stage = stats.stages[i];
    CAPTURE(i, stage.name);
    REQUIRE(stage.per_worker.size() == stage.workers);
    std::uint64_t in = 0;
    std::uint64_t out = 0;
    for (const plumb::WorkerStats& worker : stage.per_worker) {
      in += worker.packets_in;
      out += worker.packets_out;
      CHECK_FALSE(worker.running);
      CHECK((worker.busy + worker.starved + worker.blocked) <= stats.elapsed);
    }
    CHECK(in == stage.packets_in);
    CHECK(out == stage.packets_out);
    if (i + 1 < stats.stages.size()) {
      CHECK(stats.stages[i + 1].packets_in == stage.packets_out);
      if (stage.output) CHECK(stage.output->queued == 0);
    }
  }
}

// Which of busy, starved and blocked took most of a stage's time. The tests compare the parts
// of one run with each other rather than with fixed thresholds: on a loaded machine every
// fraction moves (CI once saw a 10 ms-per-packet source 74% busy in a run stretched to 0.97 s),
// but what a stage spent most of its time on does not.
std::string dominant(const plumb::StageStats& stage) {
  if (stage.busy_fraction >= stage.starved_fraction && stage.busy_fraction >= stage.blocked_fraction)
    return "busy";
  return stage.starved_fraction >= stage.blocked_fraction ? "starved" : "blocked";
}

// source -> slow (10 ms per packet) -> sink, in `mode`.
void check_slow_middle(Mode mode) {
  plumb::Pipeline pipeline{plumb::stage(numbers, kPackets).name("source").in_flight(4),
                           plumb::stage(slow).name("slow").in_flight(4),
                           plumb::stage(sum_ints).name("sink")};
  // Pinned: the source reads ahead into its link on its own thread (lent to the slow stage, it
  // would make each packet when asked, and both links would stay empty).
  CHECK(pipeline.run({.mode = mode, .scheduling = plumb::Scheduling::pinned}) == kPackets * (kPackets - 1) / 2);
  const plumb::Stats& stats = pipeline.last_stats();
  INFO(stats.table());
  REQUIRE(stats.stages.size() == 3);
  CHECK(stats.finished);
  CHECK(stats.elapsed >= kPackets * kSlow);
  CHECK(stats.stages[0].packets_out == kPackets);
  CHECK(stats.stages[2].packets_in == kPackets);
  check_counts(stats);
  REQUIRE(stats.bottleneck() == 1u);
  CHECK(dominant(stats.stages[1]) == "busy");
  // Exact where the stage has workers of its own (a sampled share when fused).
  if (mode != Mode::sequential) CHECK(stats.stages[1].busy >= kPackets * kSlow);
  // The rate is packets per second of the run (not asserted against the sleep from below: on a
  // loaded machine a 10 ms sleep can take 25; CI saw 39/s once). It cannot beat the sleep.
  const double seconds = std::chrono::duration<double>(stats.elapsed).count();
  CHECK(stats.stages[1].rate == Approx(static_cast<double>(kPackets) / seconds).epsilon(1e-9));
  CHECK(stats.stages[1].rate < 1.1 / std::chrono::duration<double>(kSlow).count());
  if (mode == Mode::sequential) {
    // One thread runs every stage: no links, no waits; the sampled split gives the sleeping
    // stage nearly all of the time.
    for (const plumb::StageStats& stage : stats.stages) {
      CHECK(stage.mode == Mode::sequential);
      CHECK_FALSE(stage.output.has_value());
      CHECK(stage.starved.count() == 0);
      CHECK(stage.blocked.count() == 0);
    }
    CHECK(stats.stages[0].busy_fraction + stats.stages[2].busy_fraction < stats.stages[1].busy_fraction / 4);
  } else {
    // The source fills its 4 slots and then waits for the slow stage; the sink waits for it.
    CHECK(dominant(stats.stages[0]) == "blocked");
    CHECK(dominant(stats.stages[2]) == "starved");
    CHECK(stats.stages[1].starved_fraction + stats.stages[1].blocked_fraction < stats.stages[1].busy_fraction);
    REQUIRE(stats.stages[0].output.has_value());
    CHECK(stats.stages[0].output->capacity == 4);
    CHECK(stats.stages[0].output->shared == (mode == Mode::process));
    // The slow stage's input stays nearly full, its output nearly empty.
    CHECK(stats.stages[0].output->mean_queued > stats.stages[1].output->mean_queued);
  }
  const std::string table = stats.table();
  CHECK_THAT(table, Catch::Matchers::Contains("bottleneck: stage 'slow' busy"));
  if (mode != Mode::sequential) {
    CHECK_THAT(table, Catch::Matchers::Contains("upstream blocked"));
    CHECK_THAT(table, Catch::Matchers::Contains("downstream starved"));
  }
}

}  // namespace

TEST_CASE("a stage that sleeps 10 ms per packet is the bottleneck (threads, fused, processes)",
          "[stats][process]") {
  const Mode mode = GENERATE(modes({Mode::thread, Mode::sequential, Mode::process}));
  INFO("mode " << mode_name(mode));
  check_slow_middle(mode);
}

TEST_CASE("mixed: stats of a sequential source, worker processes and a thread sink", "[stats][process]") {
  plumb::Pipeline pipeline{plumb::stage(numbers, kPackets).name("source").in_flight(4),
                           plumb::stage(slow).name("slow").mode(Mode::process).workers(2).in_flight(4),
                           plumb::stage(sum_ints).name("sink").mode(Mode::thread)};
  CHECK(pipeline.run(Mode::sequential) == kPackets * (kPackets - 1) / 2);
  const plumb::Stats& stats = pipeline.last_stats();
  INFO(stats.table());
  check_counts(stats);
  CHECK(stats.stages[0].mode == Mode::sequential);
  CHECK(stats.stages[1].mode == Mode::process);
  CHECK(stats.stages[2].mode == Mode::thread);
  REQUIRE(stats.bottleneck() == 1u);
  CHECK(dominant(stats.stages[1]) == "busy");  // both workers busy
  for (const plumb::WorkerStats& worker : stats.stages[1].per_worker) {
    CHECK(worker.packets_in > 0);
    CHECK(worker.busy >= worker.packets_in * kSlow);
  }
  CHECK(dominant(stats.stages[0]) == "blocked");
  CHECK(dominant(stats.stages[2]) == "starved");
}

TEST_CASE("a slow source or a slow sink is the bottleneck, with the others starved or blocked",
          "[stats]") {
  plumb::Pipeline producer_bound{plumb::stage(slow_source, kPackets).name("read").in_flight(4),
                                 plumb::stage(plus, 1).name("work").in_flight(4),
                                 plumb::stage(sum_ints).name("write")};
  // Pinned: the comparison of queue depths is about workers on their own threads (a cheap
  // stage lent to the next one queues nothing: it makes each packet when asked).
  producer_bound.run({.scheduling = plumb::Scheduling::pinned});
  const plumb::Stats& producer = producer_bound.last_stats();
  plumb::Pipeline consumer_bound{plumb::stage(numbers, kPackets).name("read").in_flight(4),
                                 plumb::stage(plus, 1).name("work").in_flight(4),
                                 plumb::stage(slow_sink).name("write")};
  consumer_bound.run({.scheduling = plumb::Scheduling::pinned});
  const plumb::Stats& consumer = consumer_bound.last_stats();
  INFO(producer.table() << "\n" << consumer.table());

  CHECK(producer.bottleneck() == 0u);
  CHECK(dominant(producer.stages[0]) == "busy");
  CHECK(producer.stages[0].busy >= kPackets * kSlow);
  CHECK(dominant(producer.stages[1]) == "starved");
  CHECK(dominant(producer.stages[2]) == "starved");
  CHECK_THAT(producer.table(), Catch::Matchers::Contains("bottleneck: stage 'read' busy"));

  CHECK(consumer.bottleneck() == 2u);
  CHECK(dominant(consumer.stages[2]) == "busy");
  CHECK(consumer.stages[2].busy >= kPackets * kSlow);
  CHECK(dominant(consumer.stages[1]) == "blocked");

  // The link after the fast middle stage runs nearly empty when the source is slow and stays
  // nearly full when the sink is.
  CHECK(producer.stages[1].output->mean_queued < consumer.stages[1].output->mean_queued);
  CHECK(producer.stages[0].output->mean_queued < consumer.stages[0].output->mean_queued);
}

TEST_CASE("the busy time of fused stages is split among them by sampling", "[stats][fused]") {
  // Four stages in two worker threads: source, then plus fused with slow fused with plus.
  plumb::Pipeline pipeline{
      plumb::stage(numbers, kPackets).name("source").in_flight(4),
      plumb::stage(plus, 1).name("before").workers(2).in_flight(4),
      plumb::stage(slow).name("slow").mode(Mode::sequential),
      plumb::stage(plus, 1).name("after").mode(Mode::sequential).in_flight(4),
      plumb::stage(sum_ints).name("sink")};
  CHECK(pipeline.run() == kPackets * (kPackets - 1) / 2 + 2 * kPackets);
  const plumb::Stats& stats = pipeline.last_stats();
  INFO(stats.table());
  check_counts(stats);
  CHECK_FALSE(stats.stages[1].fused);
  CHECK(stats.stages[2].fused);
  CHECK(stats.stages[3].fused);
  CHECK(stats.stages[2].workers == 2);
  CHECK_FALSE(stats.stages[1].output.has_value());
  CHECK_FALSE(stats.stages[2].output.has_value());
  REQUIRE(stats.stages[3].output.has_value());
  REQUIRE(stats.bottleneck() == 2u);
  CHECK(dominant(stats.stages[2]) == "busy");
  CHECK(stats.stages[1].busy_fraction + stats.stages[3].busy_fraction < stats.stages[2].busy_fraction / 4);
  // The run's waits go to its ends: starved to its first stage, blocked to its last.
  CHECK(stats.stages[2].starved.count() == 0);
  CHECK(stats.stages[2].blocked.count() == 0);
  CHECK_THAT(stats.dot(), Catch::Matchers::Contains("subgraph cluster_1"));
  CHECK_THAT(stats.mermaid(), Catch::Matchers::Contains("subgraph fused1"));
}

TEST_CASE("counts are exact with several workers, fan-out and dropping stages", "[stats]") {
  auto fan_out = [](Stream<int> in) -> Generator<int> {
    for (int x : in) {
      for (int i = 0; i < x % 3; ++i) co_yield x;  // 0, 1 or 2 outputs
    }
  };
  auto evens = [](Stream<int> in) -> Generator<int> {
    for (int x : in) {
      if (x % 2 == 0) co_yield x;
    }
  };
  constexpr int kCount = 3000;
  // Outputs of fan_out: x % 3 copies of each x; evens keeps the even ones.
  std::uint64_t fanned = 0;
  std::uint64_t kept = 0;
  for (int x = 0; x < kCount; ++x) {
    fanned += static_cast<std::uint64_t>(x % 3);
    if (x % 2 == 0) kept += static_cast<std::uint64_t>(x % 3);
  }
  for (const Mode mode : {Mode::sequential, Mode::thread, Mode::process}) {
    SECTION(mode_name(mode)) {
      plumb::Pipeline pipeline{plumb::stage(numbers, kCount).workers(3).in_flight(8),
                               plumb::stage(fan_out).workers(2).in_flight(4),
                               plumb::stage(evens).mode(Mode::sequential).in_flight(2),
                               plumb::stage(sum_ints).workers(1)};
      pipeline.run(mode);
      const plumb::Stats& stats = pipeline.last_stats();
      INFO(stats.table());
      check_counts(stats);
      CHECK(stats.stages[0].packets_out == kCount);
      CHECK(stats.stages[1].packets_in == kCount);
      CHECK(stats.stages[1].packets_out == fanned);
      CHECK(stats.stages[2].packets_in == fanned);
      CHECK(stats.stages[2].packets_out == kept);
      CHECK(stats.stages[3].packets_in == kept);
      CHECK(stats.stages[3].packets_out == 0);
      if (mode != Mode::sequential) {
        CHECK(stats.stages[0].per_worker.size() == 3);
        for (const plumb::WorkerStats& worker : stats.stages[0].per_worker) {
          CHECK(worker.packets_out == kCount / 3);
        }
      }
    }
  }
}

TEST_CASE("a failed run keeps its stats, which show where it stood", "[stats][errors]") {
  auto failing = [](Stream<int> in) -> Generator<int> {
    for (int x : in) {
      if (x == 25) throw std::runtime_error("boom");
      co_yield x;
    }
  };
  plumb::Pipeline pipeline{plumb::stage(numbers, 1000).in_flight(4), plumb::stage(failing).name("failing"),
                           plumb::stage(sum_ints)};
  CHECK_THROWS_WITH(pipeline.run(), "boom");
  const plumb::Stats& stats = pipeline.last_stats();
  REQUIRE_FALSE(stats.empty());
  CHECK_FALSE(stats.finished);
  CHECK(stats.stages[1].packets_in == 26);
  CHECK(stats.stages[1].packets_out == 25);
  CHECK(stats.stages[2].packets_in == 25);
  CHECK_THAT(stats.table(), Catch::Matchers::Contains("not finished"));
  // A ConfigError leaves no stats; a later good run replaces them.
  plumb::Pipeline bad{plumb::stage(numbers, 10).workers(0), plumb::stage(sum_ints)};
  CHECK_THROWS_AS(bad.run(), plumb::ConfigError);
  CHECK(bad.last_stats().empty());
  CHECK_FALSE(bad.last_stats().bottleneck().has_value());
}

TEST_CASE("after an inactivity timeout the stuck stage shows as busy", "[stats][errors]") {
  auto stuck = [](Stream<int> in) -> Generator<int> {
    for (int x : in) {
      if (x == 3) std::this_thread::sleep_for(600ms);
      co_yield x;
    }
  };
  plumb::Pipeline pipeline{plumb::stage(numbers, 100).name("source").in_flight(2),
                           plumb::stage(stuck).name("stuck"), plumb::stage(sum_ints).name("sink")};
  CHECK_THROWS_AS(pipeline.run({.inactivity_timeout = 150ms}), plumb::InactivityError);
  const plumb::Stats& stats = pipeline.last_stats();
  INFO(stats.table());
  CHECK(stats.bottleneck() == 1u);
  CHECK(dominant(stats.stages[1]) == "busy");
}

TEST_CASE("with timing off only packets are counted", "[stats]") {
  plumb::Pipeline pipeline{plumb::stage(numbers, 500), plumb::stage(plus, 1), plumb::stage(sum_ints)};
  for (const Mode mode : {Mode::sequential, Mode::thread}) {
    pipeline.run({.mode = mode, .timing = false});
    const plumb::Stats& stats = pipeline.last_stats();
    CHECK_FALSE(stats.timed);
    CHECK(stats.stages[1].packets_out == 500);
    CHECK(stats.stages[2].packets_in == 500);
    for (const plumb::StageStats& stage : stats.stages) {
      CHECK(stage.busy.count() == 0);
      CHECK(stage.starved.count() == 0);
      CHECK(stage.blocked.count() == 0);
    }
    CHECK_FALSE(stats.bottleneck().has_value());
    CHECK_THAT(stats.table(), Catch::Matchers::Contains("not timed"));
  }
}

TEST_CASE("progress reports carry growing stats snapshots and the final stats", "[stats][progress]") {
  for (const Mode mode : {Mode::thread, Mode::process}) {
    SECTION(mode_name(mode)) {
      std::mutex mutex;
      std::vector<plumb::Stats> reports;
      plumb::Pipeline pipeline{plumb::stage(numbers, 30).in_flight(2), plumb::stage(slow).name("slow"),
                               plumb::stage(sum_ints)};
      pipeline.run({.mode = mode,
                    .progress = [&](const plumb::Stats& stats) {
                      std::lock_guard lock(mutex);
                      reports.push_back(stats);
                    },
                    .progress_interval = 20ms});
      REQUIRE(reports.size() >= 3);
      const plumb::Stats& last = reports.back();
      CHECK(last.finished);
      CHECK(last.stages[2].packets_in == 30);
      CHECK(last.stages[1].packets_out == pipeline.last_stats().stages[1].packets_out);
      bool moving = false;
      for (std::size_t i = 0; i + 1 < reports.size(); ++i) {
        const plumb::Stats& report = reports[i];
        CHECK_FALSE(report.finished);
        REQUIRE(report.stages.size() == 3);
        // While it runs, the slow stage is seen busy with some packets done, not all.
        if (report.stages[1].packets_out > 0 && report.stages[1].packets_out < 30) moving = true;
        if (i > 0) {
          CHECK(report.elapsed >= reports[i - 1].elapsed);
          CHECK(report.stages[1].packets_out >= reports[i - 1].stages[1].packets_out);
        }
      }
      CHECK(moving);
      CHECK(reports[reports.size() / 2].stages[1].per_worker.at(0).running);
    }
  }
}

TEST_CASE("ProgressLine writes plain lines to a file and rewrites one line on a terminal",
          "[stats][progress]") {
  for (const bool in_place : {false, true}) {
    SECTION(in_place ? "in place" : "plain lines") {
      std::FILE* file = std::tmpfile();
      REQUIRE(file != nullptr);
      plumb::Pipeline pipeline{plumb::stage(numbers, 20).name("read").in_flight(2),
                               plumb::stage(slow).name("think"), plumb::stage(sum_ints).name("write")};
      pipeline.run({.progress = plumb::ProgressLine(file, in_place), .progress_interval = 30ms});
      std::rewind(file);
      std::string text;
      for (int c = std::fgetc(file); c != EOF; c = std::fgetc(file)) text += static_cast<char>(c);
      std::fclose(file);
      INFO(text);
      CHECK_THAT(text, Catch::Matchers::StartsWith(in_place ? "\r\x1b[Kplumb " : "plumb "));
      CHECK_THAT(text, Catch::Matchers::EndsWith("| done\n"));
      CHECK_THAT(text, Catch::Matchers::Contains("think* "));  // the bottleneck, marked
      CHECK_THAT(text, Catch::Matchers::Contains("write "));
      const auto lines = static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
      const auto returns = static_cast<std::size_t>(std::count(text.begin(), text.end(), '\r'));
      if (in_place) {
        CHECK(lines == 1);
        CHECK(returns >= 3);
        CHECK_THAT(text, Catch::Matchers::Contains("\x1b[K"));
      } else {
        CHECK(lines >= 3);
        CHECK(returns == 0);
      }
    }
  }
}

TEST_CASE("bottleneck() and its summary on hand-made stats", "[stats]") {
  plumb::Stats stats;
  CHECK(stats.empty());
  CHECK_FALSE(stats.bottleneck().has_value());
  stats.elapsed = 1s;
  for (const auto& [name, busy, starved, blocked] :
       {std::tuple{"a", 0.30, 0.0, 0.70}, std::tuple{"b", 0.90, 0.05, 0.05}, std::tuple{"c", 0.88, 0.12, 0.0},
        std::tuple{"d", 0.90, 0.10, 0.0}}) {
    plumb::StageStats stage;
    stage.name = name;
    stage.busy_fraction = busy;
    stage.starved_fraction = starved;
    stage.blocked_fraction = blocked;
    stage.output = plumb::LinkStats{4, false, 0, 0.0};
    stats.stages.push_back(stage);
  }
  stats.stages.back().output.reset();  // the sink
  CHECK(stats.bottleneck() == 1u);  // ties: the earliest
  CHECK(stats.bottleneck_summary() ==
        "bottleneck: stage 'b' busy 90%, upstream blocked 70%, downstream starved 12%; nearly as "
        "busy: 'c' 88%, 'd' 90%");
  stats.stages[1].busy_fraction = 0.99;
  CHECK(stats.bottleneck_summary() == "bottleneck: stage 'b' busy 99%, upstream blocked 70%, downstream starved 12%");
  stats.stages[0].busy_fraction = 1.0;
  CHECK(stats.bottleneck_summary() ==
        "bottleneck: stage 'a' busy 100%, downstream starved 5%; nearly as busy: 'b' 99%");
  // A fused neighbour shares the bottleneck's workers: it neither blocks nor starves on a link.
  stats.stages[0].output.reset();
  stats.stages[1].fused = true;
  CHECK(stats.bottleneck_summary() == "bottleneck: stage 'a' busy 100%; nearly as busy: 'b' 99%");
}

// Tiny work per packet and workers that mostly wait: the table adds what to do. Not with
// dearer packets, busy workers, or too few packets to tell.
TEST_CASE("the hint for tiny per-packet work, on hand-made stats", "[stats]") {
  plumb::Stats stats;
  stats.elapsed = 1s;
  // 100 000 packets; 30 ms of work in each stage: 0.3 us per packet; 3 workers for 1 s.
  for (const char* name : {"lines", "parse", "count"}) {
    plumb::StageStats stage;
    stage.name = name;
    stage.packets_in = std::string(name) == "lines" ? 0 : 100'000;
    stage.packets_out = std::string(name) == "count" ? 0 : 100'000;
    stage.busy = 30ms;
    stage.busy_fraction = 0.03;
    stage.output = plumb::LinkStats{1, false, 0, 0.2};
    stats.stages.push_back(stage);
  }
  stats.stages.back().output.reset();
  CHECK(stats.hint() ==
        "hint: no stage works more than 0.30 us per packet, and the workers spent 97% of the run waiting "
        "on links: passing a packet on costs more than making it. Batch (a std::vector of many items per "
        "packet), raise .in_flight() (the shortest link holds 1), or fuse cheap stages into the stage "
        "before them (.mode(plumb::Mode::sequential))");
  CHECK_THAT(stats.table(), Catch::Contains("\nhint: no stage works more than 0.30 us per packet"));
  plumb::Stats dear = stats;
  dear.stages[1].busy = 900ms;  // 9 us a packet
  CHECK(dear.hint().empty());
  plumb::Stats busy = stats;
  for (plumb::StageStats& stage : busy.stages) {  // 0.6 us a packet, but busy 60% of the run
    stage.packets_in = stage.packets_in == 0 ? 0 : 1'000'000;
    stage.packets_out = stage.packets_out == 0 ? 0 : 1'000'000;
    stage.busy = 600ms;
  }
  CHECK(busy.hint().empty());
  plumb::Stats few = stats;
  few.stages[0].packets_out = 999;
  CHECK(few.hint().empty());
  plumb::Stats untimed = stats;
  untimed.timed = false;
  CHECK(untimed.hint().empty());
  CHECK_THAT(untimed.table(), !Catch::Contains("hint:"));
}

TEST_CASE("the hint for large shared memory on 4 KiB pages, on hand-made stats", "[stats]") {
  plumb::Stats stats;
  stats.elapsed = 1s;
  for (const char* name : {"frames", "sink"}) {
    plumb::StageStats stage;
    stage.name = name;
    stage.mode = Mode::process;
    stats.stages.push_back(stage);
  }
  stats.stages[0].output = plumb::LinkStats{4, true, 0, 1.0};
  stats.shared_memory = plumb::SharedMemoryStats{std::size_t{160} << 20, false};
  if (!plumb::detail::shared_huge_pages_configurable()) {  // no THP: nothing an administrator can set
    CHECK(stats.hint().empty());
    return;
  }
  const std::string advice =
      "hint: the run's 160 MiB of shared memory are on 4 KiB pages, and every worker process faults in "
      "each page it touches, every run; allow huge pages for shared memory: echo advise | sudo tee "
      "/sys/kernel/mm/transparent_hugepage/shmem_enabled (see the guide, section 4)";
  CHECK(stats.hint() == advice);
  CHECK_THAT(stats.table(), Catch::Contains("\n" + advice + "\n"));
  plumb::Stats huge = stats;
  huge.shared_memory.huge_pages = true;
  CHECK(huge.hint().empty());
  plumb::Stats small = stats;
  small.shared_memory.bytes = plumb::Stats::kLargeSharedMemory - 1;
  CHECK(small.hint().empty());
  // With the tiny-work advice too: a line each.
  plumb::Stats both = stats;
  for (plumb::StageStats& stage : both.stages) {
    stage.packets_in = stage.name == "frames" ? 0 : 100'000;
    stage.packets_out = stage.name == "sink" ? 0 : 100'000;
    stage.busy = 30ms;
  }
  const std::string text = both.hint();
  CHECK_THAT(text, Catch::StartsWith("hint: no stage works more than 0.30 us per packet"));
  CHECK_THAT(text, Catch::EndsWith("\n" + advice));
}

// Vectors of `count` bytes, a size not known in advance: their slots are max_message_size.
Generator<std::vector<char>> chunks(int count) {
  for (int i = 0; i < count; ++i) {
    std::vector<char> chunk(static_cast<std::size_t>(i), 'x');
    co_yield chunk;
  }
}

long total_size(Stream<std::vector<char>> in) {
  long total = 0;
  for (const std::vector<char>& chunk : in) total += static_cast<long>(chunk.size());
  return total;
}

TEST_CASE("process mode: Stats::shared_memory reports the run's mapping and its pages", "[stats][process]") {
  constexpr std::size_t kSlot = std::size_t{4} << 20;  // 4 slots of 4 MiB: a mapping over 16 MiB
  plumb::Pipeline large{plumb::stage(chunks, kPackets).in_flight(4).max_message_size(kSlot),
                        plumb::stage(total_size)};
  CHECK(large.run(Mode::process) == kPackets * (kPackets - 1) / 2);
  const plumb::SharedMemoryStats mapped = large.last_stats().shared_memory;
  CHECK(mapped.bytes >= 4 * kSlot);
  // The mapping's own flag (compared with the kernel's answer in shared_memory_test).
  CHECK(mapped.huge_pages == plumb::detail::shared_huge_pages_allowed());
  CHECK(large.last_stats().hint().find("of shared memory are on 4 KiB pages") == std::string::npos);  // < 64 MiB
  CHECK(large.run(Mode::thread) == kPackets * (kPackets - 1) / 2);
  CHECK(large.last_stats().shared_memory.bytes == 0);  // no worker process, no mapping
  CHECK_FALSE(large.last_stats().shared_memory.huge_pages);

  plumb::Pipeline small{plumb::stage(numbers, kPackets).in_flight(2), plumb::stage(sum_ints)};
  CHECK(small.run(Mode::process) == kPackets * (kPackets - 1) / 2);
  CHECK(small.last_stats().shared_memory.bytes > 0);
  CHECK(small.last_stats().shared_memory.bytes < plumb::detail::kHugeArena);
  CHECK_FALSE(small.last_stats().shared_memory.huge_pages);  // small: not advised
}

TEST_CASE("the dot and Mermaid pictures show every stage, link and the bottleneck", "[stats][picture]") {
  plumb::Pipeline pipeline{plumb::stage(numbers, kPackets).name("say \"hi\"").in_flight(6),
                           plumb::stage(slow).name("slow").workers(2).in_flight(3),
                           plumb::stage(plus, 1).name("fused").mode(Mode::sequential).in_flight(5),
                           plumb::stage(sum_ints).name("sink")};
  pipeline.run();
  const plumb::Stats& stats = pipeline.last_stats();
  const std::string dot = stats.dot();
  INFO(dot);
  CHECK_THAT(dot, Catch::Matchers::StartsWith("digraph plumb {"));
  CHECK_THAT(dot, Catch::Matchers::Contains("s0 [label=\"say \\\"hi\\\"\\n1 thread, in_flight 6"));
  CHECK_THAT(dot, Catch::Matchers::Contains("s1 [label=\"slow\\n2 threads\\nbusy"));
  CHECK_THAT(dot, Catch::Matchers::Contains("s2 [label=\"fused\\nfused, in_flight 5"));
  CHECK_THAT(dot, Catch::Matchers::Contains("s0 -> s1 [label=\"6 slots, "));
  CHECK_THAT(dot, Catch::Matchers::Contains("s1 -> s2 [style=dashed, label=\"no link\"]"));
  CHECK_THAT(dot, Catch::Matchers::Contains("s2 -> s3 [label=\"5 slots, "));
  CHECK_THAT(dot, Catch::Matchers::Contains("label=\"bottleneck: stage 'slow' busy"));
  // Exactly one stage is outlined: the bottleneck.
  const auto count = [](const std::string& text, const std::string& what) {
    std::size_t n = 0;
    for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
    return n;
  };
  CHECK(count(dot, "penwidth=3, color") == 1);
  const std::string mermaid = stats.mermaid();
  INFO(mermaid);
  CHECK_THAT(mermaid, Catch::Matchers::StartsWith("flowchart LR\n"));
  CHECK_THAT(mermaid, Catch::Matchers::Contains("s0[\"<b>say #quot;hi#quot;</b><br/>1 thread, in_flight 6"));
  CHECK_THAT(mermaid, Catch::Matchers::Contains("s0 -->|\"6 slots, "));
  CHECK_THAT(mermaid, Catch::Matchers::Contains("s1 -.->|no link| s2"));
  CHECK(count(mermaid, "stroke-width:3px") == 1);
  CHECK(count(mermaid, "\n  style s") == 4);

  // Graphviz itself accepts the graph, if it is installed (CI installs it).
  if (std::system("command -v dot > /dev/null 2>&1") != 0) {
    WARN("Graphviz's dot is not installed: the graph was not rendered");
    return;
  }
  const auto dir = std::filesystem::temp_directory_path();
  const auto source = dir / "plumb_stats_test.dot";
  const auto svg = dir / "plumb_stats_test.svg";
  std::ofstream(source) << dot;
  const int status = std::system(("dot -Tsvg '" + source.string() + "' -o '" + svg.string() + "'").c_str());
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(std::filesystem::file_size(svg) > 1000);
  std::filesystem::remove(source);
  std::filesystem::remove(svg);
}
