#pragma once
// SPDX-License-Identifier: MIT
// benchmarks/spin.hpp: simulated CPU work of a set length, for the rows whose stages compute
// (scheduling_bench.cpp, graph_bench.cpp).

#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>

namespace bench {

// `rounds` steps of a linear congruential generator from `seed`, each kept by DoNotOptimize so
// the compiler can neither drop nor shorten the loop. A count of rounds, not a clock deadline:
// a thread that loses its core still has all its work to do, as with real work.
inline std::uint64_t spin(std::uint64_t rounds, std::uint64_t seed) {
  for (std::uint64_t round = 0; round < rounds; ++round) {
    seed = seed * 6364136223846793005u + 1442695040888963407u;
    benchmark::DoNotOptimize(seed);
  }
  return seed;
}

// Rounds of spin() per microsecond on this machine, measured once: the fastest of several
// timed runs, so that a run which lost its core to another thread does not count.
inline double rounds_per_us() {
  static const double rate = [] {
    constexpr std::uint64_t kRounds = 200'000;
    double fastest_us = std::numeric_limits<double>::max();
    for (std::uint64_t trial = 0; trial < 20; ++trial) {
      const auto start = std::chrono::steady_clock::now();
      benchmark::DoNotOptimize(spin(kRounds, trial));
      const std::chrono::duration<double, std::micro> took = std::chrono::steady_clock::now() - start;
      fastest_us = std::min(fastest_us, took.count());
    }
    return static_cast<double>(kRounds) / std::max(fastest_us, 1.0);
  }();
  return rate;
}

// Rounds of spin() in about `microseconds` on this machine.
inline std::uint64_t rounds_for(double microseconds) {
  return static_cast<std::uint64_t>(std::llround(microseconds * rounds_per_us()));
}

}  // namespace bench
