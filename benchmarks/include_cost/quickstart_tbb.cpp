// SPDX-License-Identifier: MIT
// benchmarks/include_cost/quickstart_tbb.cpp: examples/quickstart.cpp's pipeline (the numbers
// 0..100 -> groups of 5 -> total) written with oneTBB's parallel_pipeline, as the baseline of
// benchmarks/include_cost.sh. Only compiled, to time it; it runs too (prints 5050, exits 0).

#include <tbb/parallel_pipeline.h>

#include <cstddef>
#include <iostream>
#include <optional>
#include <utility>
#include <vector>

namespace {

using Batch = std::vector<int>;

// A TBB filter maps one item to one item, so the source ends with -1: it tells the grouping
// filter to hand on its last, partial batch.
long sum_of_groups(int count, std::size_t size) {
  int next = 0;
  bool ended = false;
  Batch batch;
  long sum = 0;
  tbb::parallel_pipeline(
      8,
      tbb::make_filter<void, int>(tbb::filter_mode::serial_in_order,
                                  [&](tbb::flow_control& control) {
                                    if (next < count) return next++;
                                    if (ended) control.stop();
                                    ended = true;
                                    return -1;
                                  }) &
          tbb::make_filter<int, std::optional<Batch>>(
              tbb::filter_mode::serial_in_order,
              [&](int x) -> std::optional<Batch> {
                if (x >= 0) batch.push_back(x);
                if (batch.size() == size || (x < 0 && !batch.empty())) return std::exchange(batch, {});
                return std::nullopt;
              }) &
          tbb::make_filter<std::optional<Batch>, void>(
              tbb::filter_mode::serial_in_order, [&](const std::optional<Batch>& full) {
                if (!full) return;
                for (int x : *full) sum += x;
              }));
  return sum;
}

}  // namespace

int main() {
  const long sum = sum_of_groups(101, 5);
  std::cout << "sum of 0..100 = " << sum << '\n';
  return sum == 5050 ? 0 : 1;
}
