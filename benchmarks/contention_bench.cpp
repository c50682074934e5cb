// SPDX-License-Identifier: MIT
// benchmarks/contention_bench.cpp: plumb's waits on a machine shared with foreign CPU-bound
// work. numbers(30000) -> plus(+5).workers(W) -> group(10) -> sum, in thread and process mode,
// run quiet and beside two busy-loop hog threads that the benchmark starts and stops itself.
// Names: contention/<mode>/workers:<W>/<quiet|hogs>.
//
// Registered statically (not from main()'s table order): run it with
// --benchmark_filter=^contention/. A hog run takes one iteration: before the waits backed off
// from slow sched_yield()s, each took 1.3-3 minutes here (docs/design/link.md, "Waiting").

#include "context_switches.hpp"

#include <benchmark/benchmark.h>
#include <fmt/format.h>
#include <plumb/plumb.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <thread>
#include <vector>

namespace bench {
namespace {

constexpr int kNumbers = 30'000;
constexpr int kPlus = 5;
constexpr std::size_t kGroup = 10;

plumb::Generator<int> numbers(int count) {
  for (int i = 0; i < count; ++i) co_yield i;
}

plumb::Generator<int> plus(plumb::Stream<int> in, int addend) {
  for (int value : in) co_yield value + addend;
}

plumb::Generator<std::vector<int>> group(plumb::Stream<int> in, std::size_t size) {
  std::vector<int> batch;
  for (int value : in) {
    batch.push_back(value);
    if (batch.size() == size) {
      co_yield batch;
      batch.clear();
    }
  }
  if (!batch.empty()) co_yield batch;
}

std::int64_t sum(plumb::Stream<std::vector<int>> in) {
  std::int64_t total = 0;
  for (const auto& batch : in) {
    for (int value : batch) total += value;
  }
  return total;
}

constexpr std::int64_t kExpected =
    std::int64_t{kNumbers} * (kNumbers - 1) / 2 + std::int64_t{kNumbers} * kPlus;

// Foreign CPU-bound work: `count` threads that spin until destroyed. They live in this process
// (a fork copies only the forking thread), and end with the benchmark that made them.
class Hogs {
 public:
  explicit Hogs(int count) {
    for (int i = 0; i < count; ++i) {
      threads_.emplace_back([this] {
        std::uint64_t spins = 0;
        // Relaxed: only the flag itself is communicated, and a late look costs one more round.
        while (!stop_.load(std::memory_order_relaxed)) benchmark::DoNotOptimize(++spins);
      });
    }
  }
  Hogs(const Hogs&) = delete;
  Hogs& operator=(const Hogs&) = delete;
  ~Hogs() {
    stop_.store(true, std::memory_order_relaxed);  // see the load: nothing else is published
    for (std::thread& thread : threads_) thread.join();
  }

 private:
  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
};

void run(benchmark::State& state, plumb::Mode mode, int workers, int hogs) {
  plumb::Pipeline pipeline{plumb::stage(numbers, kNumbers),
                           plumb::stage(plus, kPlus).workers(workers), plumb::stage(group, kGroup),
                           plumb::stage(sum)};
  const Hogs running(hogs);
  const ContextSwitches switches;  // the hogs' own switches count too: they share the process
  for (auto _ : state) {
    const std::int64_t total = pipeline.run(mode);
    if (total != kExpected) {
      state.SkipWithError(fmt::format("sum {} instead of {}", total, kExpected).c_str());
      break;
    }
  }
  switches.report(state, kNumbers);
  state.SetItemsProcessed(state.iterations() * kNumbers);
}

[[maybe_unused]] const bool registered = [] {
  for (const auto& [mode, mode_name] : {std::pair{plumb::Mode::thread, "thread"},
                                        std::pair{plumb::Mode::process, "process"}}) {
    // 31 workers on 2 cores: peers of one pipeline share the cores (a yield usually goes to
    // the peer waited for), which the hog-aware waiting must not slow down.
    for (const int workers : {3, 15, 31}) {
      for (const int hogs : {0, 2}) {
        if (workers == 31 && hogs != 0) continue;
        const auto name = fmt::format("contention/{}/workers:{}/{}", mode_name, workers,
                                      hogs == 0 ? "quiet" : "hogs");
        auto* benchmark = benchmark::RegisterBenchmark(
            name.c_str(), [mode = mode, workers, hogs](benchmark::State& state) {
              try {
                run(state, mode, workers, hogs);
              } catch (const std::exception& error) {
                state.SkipWithError(error.what());
              }
            });
        benchmark->Unit(benchmark::kMillisecond)->UseRealTime();
        if (hogs == 0) {
          benchmark->Repetitions(3)->ReportAggregatesOnly(true);
        } else {
          benchmark->Iterations(1);
        }
      }
    }
  }
  return true;
}();

}  // namespace
}  // namespace bench
