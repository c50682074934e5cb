#pragma once
// SPDX-License-Identifier: MIT
// benchmarks/registry.hpp: how the suite registers its benchmarks, and reports a failed run.

#include <benchmark/benchmark.h>

#include <array>
#include <exception>
#include <string>
#include <string_view>
#include <utility>

namespace bench {

struct Config;

enum class Workload { small, big, image };

constexpr std::string_view workload_name(Workload workload) {
  switch (workload) {
    case Workload::small: return "small";
    case Workload::big: return "big";
    case Workload::image: return "image";
  }
  return "?";
}

// Each file of the suite registers its runners for one workload and config; main() calls them in
// table order, so the runners of one row run side by side.
void register_plumb(Workload workload, const Config& config);  // pipeline_bench.cpp
void register_tbb(Workload workload, const Config& config);    // tbb_bench.cpp
void register_limits();                                        // limits_bench.cpp
// examples/parallel_gzip against pigz and gzip, when the example is built.
void register_gzip();                                          // gzip_bench.cpp
// examples/redis_worker, 1 and 2 instances on one stream, when it is built.
void register_redis();                                         // redis_bench.cpp
// graph/<row>/<runner>: a diamond plumb::Graph against oneTBB's flow graph.
void register_graph();                                         // graph_bench.cpp
// The rows of graph_bench.cpp and its runners, for the table.
inline constexpr std::array<std::string_view, 2> kGraphRows{"graph/diamond", "graph/diamond_cpu"};
inline constexpr std::array<std::string_view, 4> kGraphRunners{"plumb_sequential", "plumb_thread",
                                                               "plumb_process", "tbb_flow"};
// Thread-mode rows run with Scheduling::adaptive and ::pinned side by side.
void register_scheduling();                                    // scheduling_bench.cpp
// Runs small/deep once per mode with a progress line and prints its statistics table.
void show_stats();                                             // pipeline_bench.cpp

// The rows of scheduling_bench.cpp, each run as <row>/adaptive and <row>/pinned.
inline constexpr std::array<std::string_view, 4> kSchedulingRows{
    "sched/sleepers", "sched/cpu20us/in_flight:4", "sched/cpu20us/in_flight:1024", "sched/mixed"};
// The work of the sched/cpu20us rows in one plain loop on one thread.
inline constexpr std::string_view kSchedulingOneThread = "sched/cpu20us/one_thread";

// Registers `body` as benchmark `name` (<workload>/<config>/<runner>). `real_time`: the work
// runs on other threads or processes, so CPU time of the calling thread would mean nothing.
// A `big` run moves 4 GB, an `image` run 1 GB, and each takes seconds: two iterations each.
// Returns the registered benchmark, for further settings.
template <class Body>
benchmark::internal::Benchmark* add(const std::string& name, bool real_time, Body&& body) {
  auto* benchmark = benchmark::RegisterBenchmark(
      name.c_str(), [body = std::forward<Body>(body)](benchmark::State& state) {
        try {
          body(state);
        } catch (const std::exception& error) {
          state.SkipWithError(error.what());
        }
      });
  benchmark->Unit(benchmark::kMillisecond);
  if (real_time) benchmark->UseRealTime();
  if (std::string_view(name).starts_with("big/") || std::string_view(name).starts_with("image/")) {
    benchmark->Iterations(2);
  } else {
    // Short runs on a shared machine: three repetitions, and the tables use the median.
    benchmark->Repetitions(3)->ReportAggregatesOnly(true);
  }
  return benchmark;
}

}  // namespace bench
