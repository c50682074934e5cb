// SPDX-License-Identifier: MIT
// benchmarks/scheduling_bench.cpp: thread mode where a stage's own thread matters, each row run
// with Scheduling::adaptive and Scheduling::pinned side by side. Three stages: a source of
// numbered packets, a middle stage and a sink, each doing a set amount of CPU work per packet
// (the middle stage may sleep instead). Names: sched/<row>/<adaptive|pinned>, plus
// sched/cpu20us/one_thread, the cpu20us work in one plain loop.

#include "context_switches.hpp"
#include "registry.hpp"
#include "spin.hpp"

#include <benchmark/benchmark.h>
#include <fmt/format.h>
#include <plumb/plumb.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>

namespace bench {
namespace {

// --- the three stages ---------------------------------------------------------------------------

struct Packet {
  std::int64_t id = 0;
  std::uint64_t value = 0;  // the work's result, carried to the next stage
};

plumb::Generator<Packet> numbered(std::int64_t count, std::uint64_t rounds) {
  for (std::int64_t id = 0; id < count; ++id) {
    // Named first: GCC 12 may destroy a braced temporary in co_yield twice (docs/guide.md).
    Packet packet{id, spin(rounds, static_cast<std::uint64_t>(id))};
    co_yield std::move(packet);
  }
}

plumb::Generator<Packet> worked(plumb::Stream<Packet> in, std::uint64_t rounds,
                                std::chrono::microseconds nap) {
  for (Packet& packet : in) {
    if (nap > std::chrono::microseconds::zero()) std::this_thread::sleep_for(nap);
    packet.value = spin(rounds, packet.value);
    co_yield packet;
  }
}

// The checksum: the sum of id + 1 over the packets, so a lost or repeated packet shows.
std::int64_t tally(plumb::Stream<Packet> in, std::uint64_t rounds) {
  std::int64_t sum = 0;
  for (const Packet& packet : in) {
    benchmark::DoNotOptimize(spin(rounds, packet.value));
    sum += packet.id + 1;
  }
  return sum;
}

constexpr std::int64_t expected_tally(std::int64_t packets) { return packets * (packets + 1) / 2; }

void check(std::int64_t sum, std::int64_t packets, std::string_view runner) {
  if (sum != expected_tally(packets)) {
    throw std::runtime_error(fmt::format("sched {}: checksum {} instead of {}", runner, sum,
                                         expected_tally(packets)));
  }
}

// --- rows ---------------------------------------------------------------------------------------

struct Chain {
  std::int64_t packets = 0;
  int in_flight = 1;  // on the source's and the middle stage's output links
  double source_us = 0;
  double middle_us = 0;
  std::chrono::microseconds middle_nap{0};  // a sleep per packet in the middle stage
  int middle_workers = 1;
  double sink_us = 0;
  std::int64_t iterations = 1;  // per repetition: a few seconds for the whole row
};

// In the order of kSchedulingRows (registry.hpp).
constexpr std::array<Chain, 4> kChains{{
    // sleepers: the workers must overlap their sleeps (20 rounds of 10 ms, not 80). in_flight
    // 4: a packet for each sleeping worker.
    {.packets = 80, .in_flight = 4, .middle_nap = std::chrono::milliseconds{10}, .middle_workers = 4, .iterations = 2},
    // cpu20us: each stage's work is worth a thread of its own; 2 cores can run two at once.
    {.packets = 2000, .in_flight = 4, .source_us = 20, .middle_us = 20, .sink_us = 20, .iterations = 4},
    {.packets = 2000, .in_flight = 1024, .source_us = 20, .middle_us = 20, .sink_us = 20, .iterations = 4},
    // mixed: cheap ends around a middle stage that needs its 4 workers.
    {.packets = 20000, .in_flight = 12, .source_us = 0.2, .middle_us = 2, .middle_workers = 4,
     .sink_us = 0.05, .iterations = 5},
}};
static_assert(kChains.size() == kSchedulingRows.size());

void run_chain(benchmark::State& state, const Chain& chain, plumb::Scheduling scheduling) {
  plumb::Pipeline pipeline{
      plumb::stage(numbered, chain.packets, rounds_for(chain.source_us))
          .name("source")
          .in_flight(chain.in_flight),
      plumb::stage(worked, rounds_for(chain.middle_us), chain.middle_nap)
          .name("middle")
          .workers(chain.middle_workers)
          .in_flight(chain.in_flight),
      plumb::stage(tally, rounds_for(chain.sink_us)).name("sink")};
  const plumb::RunOptions options{.mode = plumb::Mode::thread, .scheduling = scheduling};
  const ContextSwitches switches;
  for (auto _ : state) {
    check(pipeline.run(options), chain.packets,
          scheduling == plumb::Scheduling::adaptive ? "adaptive" : "pinned");
  }
  switches.report(state, chain.packets);
  state.SetItemsProcessed(state.iterations() * chain.packets);
}

// The same work as run_chain() with its three stages in one loop on the calling thread.
void run_one_thread(benchmark::State& state, const Chain& chain) {
  const std::uint64_t source = rounds_for(chain.source_us);
  const std::uint64_t middle = rounds_for(chain.middle_us);
  const std::uint64_t sink = rounds_for(chain.sink_us);
  const ContextSwitches switches;
  for (auto _ : state) {
    std::int64_t sum = 0;
    for (std::int64_t id = 0; id < chain.packets; ++id) {
      const std::uint64_t value = spin(middle, spin(source, static_cast<std::uint64_t>(id)));
      benchmark::DoNotOptimize(spin(sink, value));
      sum += id + 1;
    }
    check(sum, chain.packets, "one thread");
  }
  switches.report(state, chain.packets);
  state.SetItemsProcessed(state.iterations() * chain.packets);
}

}  // namespace

void register_scheduling() {
  bool one_thread_added = false;
  for (std::size_t row = 0; row < kChains.size(); ++row) {
    const Chain& chain = kChains[row];
    if (kSchedulingRows[row].starts_with("sched/cpu20us/") && !one_thread_added) {
      // Real time, like the rows it is compared with: all of them see the same machine.
      add(std::string(kSchedulingOneThread), true,
          [&chain](benchmark::State& state) { run_one_thread(state, chain); })
          ->Iterations(chain.iterations);
      one_thread_added = true;
    }
    for (const auto& [scheduling, setting] : {std::pair{plumb::Scheduling::adaptive, "adaptive"},
                                              std::pair{plumb::Scheduling::pinned, "pinned"}}) {
      add(fmt::format("{}/{}", kSchedulingRows[row], setting), true,
          [&chain, scheduling = scheduling](benchmark::State& state) {
            run_chain(state, chain, scheduling);
          })
          ->Iterations(chain.iterations);
    }
  }
}

}  // namespace bench
