// SPDX-License-Identifier: MIT
// benchmarks/pipeline_bench.cpp: the reference's benchmark, source -> +1 -> sink, through every
// plumb runner, oneTBB's parallel_pipeline and a plain loop. Names: <workload>/<config>/<runner>.

#include "context_switches.hpp"
#include "registry.hpp"
#include "workloads.hpp"

#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <type_traits>

namespace bench {
namespace {

template <class Work>
void check(std::int64_t checksum, std::string_view runner) {
  if (checksum != expected_checksum<Work>()) {
    throw std::runtime_error(fmt::format("{} {}: checksum {} instead of {}", Work::name, runner,
                                         checksum, expected_checksum<Work>()));
  }
}

template <class Work>
void report(benchmark::State& state) {
  state.SetItemsProcessed(state.iterations() * Work::count);
  state.SetBytesProcessed(state.iterations() * Work::count * Work::bytes);
}

// The floor: one thread, no pipeline, the same work per message.
template <class Work>
void run_loop(benchmark::State& state) {
  const ContextSwitches switches;
  for (auto _ : state) {
    std::int64_t sum = 0;
    for (std::int64_t id = 0; id < Work::count; ++id) {
      auto message = Work::make(id);
      benchmark::DoNotOptimize(message);
      Work::bump(message);
      benchmark::DoNotOptimize(message);
      sum += Work::digest(message);
    }
    check<Work>(sum, "loop");
  }
  switches.report(state, Work::count);
  report<Work>(state);
}

// The floor with memory reused: one vector for every message, as a hand-written loop that knows
// its frames are all the same size would do (frame workloads only).
template <class Work>
void run_loop_reused(benchmark::State& state) {
  const ContextSwitches switches;
  for (auto _ : state) {
    std::int64_t sum = 0;
    typename Work::Message message;
    for (std::int64_t id = 0; id < Work::count; ++id) {
      message.assign(Work::elements, static_cast<std::int32_t>(id));
      benchmark::DoNotOptimize(message);
      Work::bump(message);
      benchmark::DoNotOptimize(message);
      sum += Work::digest(message);
    }
    check<Work>(sum, "loop_reused");
  }
  switches.report(state, Work::count);
  report<Work>(state);
}

enum class Runner { sequential, thread, process, zero_copy, mixed };

// Options of the source and processor stages: the config's in_flight, and slots big enough for
// the workload's messages where a link crosses processes.
template <class Work, class Stage>
auto configured(Stage stage, const Config& config) {
  stage.in_flight(config.in_flight);
  if (Work::slot_bytes != 0) stage.max_message_size(Work::slot_bytes);
  return stage;
}

template <class Work>
auto make_pipeline(const Config& config, Runner runner, bool ordered = false) {
  using plumb::Mode;
  auto source = configured<Work>(plumb::stage(bench::source<Work>).name("source"), config);
  auto middle = configured<Work>(
      plumb::stage(add_one<Work>).name("add_one").workers(config.middle_workers), config);
  middle.ordered(ordered);
  auto last = plumb::stage(sink<Work>).name("sink");
  if (runner == Runner::mixed) {
    // Cheap stages stay in the caller (the source in the calling thread, the sink in a thread of
    // its own); the processor runs in worker processes.
    source.mode(Mode::sequential);
    middle.mode(Mode::process);
    last.mode(Mode::thread);
  }
  return plumb::Pipeline{std::move(source), std::move(middle), std::move(last)};
}

plumb::Mode mode_of(Runner runner) {
  switch (runner) {
    case Runner::sequential: return plumb::Mode::sequential;
    case Runner::thread: return plumb::Mode::thread;
    default: return plumb::Mode::process;
  }
}

// How a row differs from its runner's plain row.
struct Variant {
  bool timing = true;    // RunOptions::timing (the statistics' clock reads; packets are counted either way)
  bool ordered = false;  // .ordered() on the middle stage
  plumb::Scheduling scheduling = plumb::Scheduling::adaptive;  // RunOptions::scheduling
};

template <class Work>
void run_plumb(benchmark::State& state, Config config, Runner runner, Variant variant = {}) {
  auto pipeline = make_pipeline<Work>(config, runner, variant.ordered);
  const plumb::RunOptions options{
      .mode = mode_of(runner), .timing = variant.timing, .scheduling = variant.scheduling};
  const ContextSwitches switches;
  for (auto _ : state) check<Work>(pipeline.run(options), "plumb");
  switches.report(state, Work::count);
  report<Work>(state);
}

template <class Work>
void run_zero_copy(benchmark::State& state, Config config) {
  auto pipeline = plumb::Pipeline{
      configured<Work>(plumb::stage(source<Work>).name("source"), config),
      configured<Work>(plumb::stage(add_one_view).name("add_one").workers(config.middle_workers), config),
      plumb::stage(sink_view<Work>).name("sink")};
  const ContextSwitches switches;
  for (auto _ : state) check<Work>(pipeline.run(plumb::Mode::process), "plumb zero-copy");
  switches.report(state, Work::count);
  report<Work>(state);
}

// The same three stages with plumb::Buffer packets (make_buffer), in `mode`.
template <class Work>
void run_buffers(benchmark::State& state, Config config, plumb::Mode mode) {
  auto pipeline = plumb::Pipeline{
      configured<Work>(plumb::stage(source_buffers<Work>).name("source"), config),
      configured<Work>(plumb::stage(add_one_buffers).name("add_one").workers(config.middle_workers), config),
      plumb::stage(sink_buffers<Work>).name("sink")};
  const ContextSwitches switches;
  for (auto _ : state) check<Work>(pipeline.run(mode), "plumb buffers");
  switches.report(state, Work::count);
  report<Work>(state);
}

// A process-mode run of `big` keeps in_flight slots of 40 MB per link in shared memory: 1024 of
// them (80 GB for two links) is more than the machine has.
template <class Work>
bool fits_in_shared_memory(const Config& config) {
  return Work::slot_bytes == 0 || 2 * Work::slot_bytes * config.in_flight < (std::size_t{8} << 30);
}

template <class Work>
void register_config(const Config& config) {
  const auto name = [&](std::string_view runner) {
    return fmt::format("{}/{}/{}", Work::name, config.name, runner);
  };
  // The cost of the statistics' timing: the same runner with RunOptions::timing off, right after
  // it (small messages only: that is where a per-packet cost shows).
  const auto add_plumb = [&](std::string_view runner_name, bool real_time, Runner runner) {
    add(name(runner_name), real_time,
        [config, runner](benchmark::State& state) { run_plumb<Work>(state, config, runner); });
    if constexpr (std::is_same_v<Work, SmallWork>) {
      // Thread mode with every worker kept on its own thread (Scheduling::pinned), right after
      // the default: what adaptive scheduling gains on short links.
      if (runner == Runner::thread) {
        add(name(fmt::format("{}_pinned", runner_name)), real_time, [config, runner](benchmark::State& state) {
          run_plumb<Work>(state, config, runner, {.scheduling = plumb::Scheduling::pinned});
        });
      }
      add(name(fmt::format("{}_untimed", runner_name)), real_time, [config, runner](benchmark::State& state) {
        run_plumb<Work>(state, config, runner, {.timing = false});
      });
      // The cost of .ordered() on the stage with several workers (issue 10), right after it.
      if (config.middle_workers > 1 && runner != Runner::sequential) {
        add(name(fmt::format("{}_ordered", runner_name)), real_time, [config, runner](benchmark::State& state) {
          run_plumb<Work>(state, config, runner, {.ordered = true});
        });
      }
    }
  };
  constexpr bool kFrames = !std::is_same_v<Work, SmallWork>;
  add(name("loop"), false, run_loop<Work>);
  if constexpr (kFrames) add(name("loop_reused"), false, run_loop_reused<Work>);
  add_plumb("plumb_sequential", false, Runner::sequential);
  add_plumb("plumb_thread", true, Runner::thread);
  // Generic, so that it is only instantiated for the frame workloads.
  const auto add_buffers = [&](std::string_view runner_name, bool real_time, plumb::Mode mode, auto work) {
    using Frames = typename decltype(work)::type;
    add(name(runner_name), real_time,
        [config, mode](benchmark::State& state) { run_buffers<Frames>(state, config, mode); });
  };
  if constexpr (kFrames) {
    add_buffers("plumb_sequential_buffers", false, plumb::Mode::sequential, std::type_identity<Work>{});
    add_buffers("plumb_thread_buffers", true, plumb::Mode::thread, std::type_identity<Work>{});
  }
  if (!fits_in_shared_memory<Work>(config)) return;
  add_plumb("plumb_process", true, Runner::process);
  if constexpr (kFrames) {
    add(name("plumb_process_zero_copy"), true,
        [config](benchmark::State& state) { run_zero_copy<Work>(state, config); });
    add_buffers("plumb_process_buffers", true, plumb::Mode::process, std::type_identity<Work>{});
  }
  add(name("plumb_mixed"), true,
      [config](benchmark::State& state) { run_plumb<Work>(state, config, Runner::mixed); });
}

}  // namespace

void show_stats() {
  for (const Runner runner : {Runner::thread, Runner::process}) {
    const Config& config = kConfigs[3];  // deep
    auto pipeline = make_pipeline<SmallWork>(config, runner);
    fmt::print("\n### small/{}, {} mode, with plumb::ProgressLine on stderr\n\n```\n", config.name,
               runner == Runner::thread ? "thread" : "process");
    std::fflush(stdout);
    check<SmallWork>(pipeline.run({.mode = mode_of(runner),
                                   .progress = plumb::ProgressLine{},
                                   .progress_interval = std::chrono::milliseconds(2)}),
                     "plumb");
    fmt::print("{}```\n", pipeline.last_stats().table());
  }
}

void register_plumb(Workload workload, const Config& config) {
  switch (workload) {
    case Workload::small: register_config<SmallWork>(config); break;
    case Workload::big: register_config<BigWork>(config); break;
    case Workload::image: register_config<ImageWork>(config); break;
  }
}

}  // namespace bench
