#pragma once
// SPDX-License-Identifier: MIT
// tests/support/stages.hpp: small stages the pipeline tests share.

#include <plumb/plumb.hpp>

#include <cstddef>
#include <utility>
#include <vector>

namespace plumb::test {
// Internal linkage, not `inline`: Clang 14 with AddressSanitizer cannot assemble inline
// (comdat) coroutines ("Cannot represent a difference across sections").
namespace {

// 0 .. count-1, split between the stage's workers (worker i yields i, i + count, ...).
[[maybe_unused]] plumb::Generator<int> numbers(int count) {
  const auto& me = plumb::this_worker();
  for (int i = static_cast<int>(me.index); i < count; i += static_cast<int>(me.count)) co_yield i;
}

[[maybe_unused]] plumb::Generator<int> forever() {
  for (int i = 0;; ++i) co_yield i;
}

[[maybe_unused]] plumb::Generator<int> plus(plumb::Stream<int> in, int increment) {
  for (int x : in) co_yield x + increment;
}

[[maybe_unused]] plumb::Generator<std::vector<int>> group(plumb::Stream<int> in, std::size_t size) {
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

[[maybe_unused]] long sum_ints(plumb::Stream<int> in) {
  long sum = 0;
  for (int x : in) sum += x;
  return sum;
}

[[maybe_unused]] long sum_batches(plumb::Stream<std::vector<int>> in) {
  long sum = 0;
  for (auto& batch : in) {
    for (int x : batch) sum += x;
  }
  return sum;
}

[[maybe_unused]] std::vector<int> collect(plumb::Stream<int> in) {
  std::vector<int> out;
  for (int x : in) out.push_back(x);
  return out;
}

}  // namespace
}  // namespace plumb::test
