// SPDX-License-Identifier: MIT
// benchmarks/tbb_bench.cpp: the peer baseline, oneTBB's parallel_pipeline on the same work with
// the same token counts: serial source, processor parallel when the config gives it several
// workers (serial and in order otherwise), serial sink. Messages travel by value, as a user
// would write it.

#include "context_switches.hpp"
#include "registry.hpp"
#include "workloads.hpp"

#include <benchmark/benchmark.h>
#include <fmt/format.h>
#include <oneapi/tbb/parallel_pipeline.h>

#include <cstdint>
#include <stdexcept>

namespace bench {
namespace {

template <class Work>
void run_tbb(benchmark::State& state, Config config) {
  using Message = typename Work::Message;
  namespace tbb = oneapi::tbb;
  const auto middle = config.middle_workers > 1 ? tbb::filter_mode::parallel
                                                : tbb::filter_mode::serial_in_order;
  const auto last = config.middle_workers > 1 ? tbb::filter_mode::serial_out_of_order
                                              : tbb::filter_mode::serial_in_order;
  const ContextSwitches switches;
  for (auto _ : state) {
    std::int64_t next = 0;
    std::int64_t sum = 0;
    tbb::parallel_pipeline(
        static_cast<std::size_t>(config.in_flight),
        tbb::make_filter<void, Message>(tbb::filter_mode::serial_in_order,
                                        [&](tbb::flow_control& control) {
                                          if (next == Work::count) {
                                            control.stop();
                                            return Message{};
                                          }
                                          return Work::make(next++);
                                        }) &
            tbb::make_filter<Message, Message>(middle,
                                               [](Message message) {
                                                 Work::bump(message);
                                                 return message;
                                               }) &
            tbb::make_filter<Message, void>(
                last, [&](const Message& message) { sum += Work::digest(message); }));
    if (sum != expected_checksum<Work>()) {
      throw std::runtime_error(fmt::format("{} tbb: checksum {} instead of {}", Work::name, sum,
                                           expected_checksum<Work>()));
    }
  }
  switches.report(state, Work::count);
  state.SetItemsProcessed(state.iterations() * Work::count);
  state.SetBytesProcessed(state.iterations() * Work::count * Work::bytes);
}

}  // namespace

void register_tbb(Workload workload, const Config& config) {
  const auto name = fmt::format("{}/{}/tbb", workload_name(workload), config.name);
  switch (workload) {
    case Workload::small:
      add(name, true, [config](benchmark::State& state) { run_tbb<SmallWork>(state, config); });
      break;
    case Workload::big:
      add(name, true, [config](benchmark::State& state) { run_tbb<BigWork>(state, config); });
      break;
    case Workload::image:
      add(name, true, [config](benchmark::State& state) { run_tbb<ImageWork>(state, config); });
      break;
  }
}

}  // namespace bench
