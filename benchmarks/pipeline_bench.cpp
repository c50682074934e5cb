// SPDX-License-Identifier: MIT
// benchmarks/pipeline_bench.cpp: a 3-stage pipeline of small messages, source -> +1 -> sink,
// through plumb's modes and a plain loop (the floor).

#include <plumb/plumb.hpp>

#include <benchmark/benchmark.h>

#include <array>
#include <vector>
#include <cstdint>

namespace {

// ~100 bytes, like the Python reference's small-message benchmark.
struct Small {
  std::int64_t id = 0;
  std::array<std::int32_t, 23> values{};
};
static_assert(sizeof(Small) == 104);

constexpr int kMessages = 50'000;

plumb::Generator<Small> source(int count) {
  for (int i = 0; i < count; ++i) {
    Small message;
    message.id = i;
    message.values.fill(i);
    co_yield std::move(message);
  }
}

plumb::Generator<Small> add_one(plumb::Stream<Small> in) {
  for (Small& message : in) {
    for (std::int32_t& value : message.values) ++value;
    co_yield std::move(message);
  }
}

std::int64_t sink(plumb::Stream<Small> in) {
  std::int64_t sum = 0;
  for (const Small& message : in) sum += message.values[0] + message.id;
  return sum;
}

void report(benchmark::State& state) {
  state.SetItemsProcessed(state.iterations() * kMessages);
  state.SetBytesProcessed(state.iterations() * kMessages * static_cast<std::int64_t>(sizeof(Small)));
}

void small_loop(benchmark::State& state) {
  for (auto _ : state) {
    std::int64_t sum = 0;
    for (int i = 0; i < kMessages; ++i) {
      Small message;
      message.id = i;
      message.values.fill(i);
      benchmark::DoNotOptimize(message);
      for (std::int32_t& value : message.values) ++value;
      benchmark::DoNotOptimize(message);
      sum += message.values[0] + message.id;
    }
    benchmark::DoNotOptimize(sum);
  }
  report(state);
}

void small_plumb(benchmark::State& state, plumb::Mode mode) {
  const auto in_flight = state.range(0);
  plumb::Pipeline pipeline{plumb::stage(source, kMessages).in_flight(in_flight),
                           plumb::stage(add_one).in_flight(in_flight), plumb::stage(sink)};
  for (auto _ : state) benchmark::DoNotOptimize(pipeline.run(mode));
  report(state);
}

void small_sequential(benchmark::State& state) { small_plumb(state, plumb::Mode::sequential); }
void small_thread(benchmark::State& state) { small_plumb(state, plumb::Mode::thread); }
void small_process(benchmark::State& state) { small_plumb(state, plumb::Mode::process); }

// --- big: 100 messages of 10,000,000 int32 (40 MB), source -> sink ----------------------------

using Frame = std::vector<std::int32_t>;
constexpr int kFrames = 100;
constexpr std::size_t kFrameInts = 10'000'000;
constexpr std::size_t kFrameSlot = kFrameInts * sizeof(std::int32_t) + 64;

plumb::Generator<Frame> frames(int count) {
  for (int i = 0; i < count; ++i) co_yield Frame(kFrameInts, i);
}

std::int64_t sum_frames(plumb::Stream<Frame> in) {
  std::int64_t sum = 0;
  for (const Frame& frame : in) sum += frame[frame.size() / 2] + frame.back();
  return sum;
}

std::int64_t sum_views(plumb::Stream<plumb::View<Frame>> in) {
  std::int64_t sum = 0;
  for (const auto& frame : in) sum += frame[frame.size() / 2] + frame.back();
  return sum;
}

template <class Sink>
void big_plumb(benchmark::State& state, plumb::Mode mode, Sink sink) {
  plumb::Pipeline pipeline{plumb::stage(frames, kFrames).in_flight(3).max_message_size(kFrameSlot),
                           plumb::stage(sink)};
  for (auto _ : state) benchmark::DoNotOptimize(pipeline.run(mode));
  state.SetItemsProcessed(state.iterations() * kFrames);
  state.SetBytesProcessed(state.iterations() * kFrames * static_cast<std::int64_t>(kFrameSlot - 64));
}

void big_thread(benchmark::State& state) { big_plumb(state, plumb::Mode::thread, sum_frames); }
void big_process_copy(benchmark::State& state) { big_plumb(state, plumb::Mode::process, sum_frames); }
void big_process_view(benchmark::State& state) { big_plumb(state, plumb::Mode::process, sum_views); }

}  // namespace

BENCHMARK(small_loop)->Name("small/loop")->Unit(benchmark::kMillisecond);
BENCHMARK(small_sequential)->Name("small/plumb_sequential")->Arg(1)->Unit(benchmark::kMillisecond);
BENCHMARK(small_thread)
    ->Name("small/plumb_thread/in_flight")
    ->Arg(1)
    ->Arg(4)
    ->Arg(1024)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(small_process)
    ->Name("small/plumb_process/in_flight")
    ->Arg(4)
    ->Arg(1024)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(big_thread)->Name("big/plumb_thread")->Iterations(2)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(big_process_copy)->Name("big/plumb_process_copy")->Iterations(2)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(big_process_view)->Name("big/plumb_process_zero_copy")->Iterations(2)->UseRealTime()->Unit(benchmark::kMillisecond);
