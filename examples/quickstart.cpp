// SPDX-License-Identifier: MIT
// examples/quickstart.cpp: the smallest whole pipeline: numbers -> groups of 5 -> total.

#include <plumb/plumb.hpp>

#include "support/cli.hpp"

#include <cstddef>
#include <iostream>
#include <utility>
#include <vector>

plumb::Generator<int> numbers(int count) {
  for (int i = 0; i < count; ++i) co_yield i;
}

plumb::Generator<std::vector<int>> group(plumb::Stream<int> in, std::size_t size) {
  std::vector<int> batch;
  for (int x : in) {
    batch.push_back(x);
    if (batch.size() == size) {
      std::vector<int> full = std::exchange(batch, {});
      co_yield std::move(full);
    }
  }
  if (!batch.empty()) co_yield std::move(batch);
}

long total(plumb::Stream<std::vector<int>> in) {
  long sum = 0;
  for (auto& batch : in) {
    for (int x : batch) sum += x;
  }
  return sum;
}

int main(int argc, char** argv) {
  examples::CommandLine command_line{
      "example_quickstart", "The README's example: the numbers 0..100 in groups of 5, summed in each mode"};
  CLI11_PARSE(command_line, argc, argv);
  plumb::Pipeline pipeline{
      plumb::stage(numbers, 101).in_flight(8),
      plumb::stage(group, std::size_t{5}).workers(2).in_flight(4).max_message_size(4096).name("group"),
      plumb::stage(total),
  };
  bool ok = true;
  for (const plumb::Mode mode : {plumb::Mode::sequential, plumb::Mode::thread, plumb::Mode::process}) {
    const long sum = pipeline.run(mode);
    std::cout << "sum of 0..100 = " << sum << '\n';
    ok = ok && sum == 5050;
  }
  return ok ? 0 : 1;
}
