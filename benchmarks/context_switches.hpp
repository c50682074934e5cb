#pragma once
// SPDX-License-Identifier: MIT
// benchmarks/context_switches.hpp: the context switches of a benchmark's timed loop, as counters.

#include <benchmark/benchmark.h>
#include <sys/resource.h>

#include <cstdint>

namespace bench {

// Counts the context switches, voluntary and involuntary, from construction to report(): of
// every thread of this process (RUSAGE_SELF, which keeps the counts of threads that have ended)
// and of its child processes once they are reaped (RUSAGE_CHILDREN; plumb reaps its worker
// processes before run() returns). Construct it right before the timed loop and call report()
// right after it.
class ContextSwitches {
 public:
  ContextSwitches() : start_(now()) {}

  // Sets the counters `ctx_switches` (average per iteration) and `ctx_per_100_msgs` (per 100
  // messages, when each iteration moves `messages_per_iteration`).
  void report(benchmark::State& state, std::int64_t messages_per_iteration) const {
    const auto switches = static_cast<double>(now() - start_);
    state.counters["ctx_switches"] =
        benchmark::Counter(switches, benchmark::Counter::kAvgIterations);
    const double messages =
        static_cast<double>(state.iterations()) * static_cast<double>(messages_per_iteration);
    state.counters["ctx_per_100_msgs"] = messages > 0 ? 100 * switches / messages : 0.0;
  }

 private:
  static std::int64_t now() {
    std::int64_t total = 0;
    for (const int who : {RUSAGE_SELF, RUSAGE_CHILDREN}) {
      rusage usage{};
      getrusage(who, &usage);
      total += usage.ru_nvcsw + usage.ru_nivcsw;
    }
    return total;
  }

  std::int64_t start_;
};

}  // namespace bench
