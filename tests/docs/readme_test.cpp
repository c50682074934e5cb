// SPDX-License-Identifier: MIT
// tests/docs/readme_test.cpp: the README's code fragments, in a program that compiles and runs
// them. Each fragment appears here verbatim (tests/docs/check_snippets.cmake checks it); edit
// both together.

#include <plumb/plumb.hpp>

#include <catch2/catch.hpp>

#include <cstddef>
#include <fstream>
#include <iostream>
#include <string>
#include <utility>
#include <vector>

namespace {

// The README's complete example, without its main().
plumb::Generator<std::vector<int>> group(plumb::Stream<int> in, std::size_t size) {  // processor
  std::vector<int> batch;
  for (int x : in) {                                            // 0..n outputs per input
    batch.push_back(x);
    if (batch.size() == size) {
      std::vector<int> full = std::exchange(batch, {});
      co_yield std::move(full);
    }
  }
  if (!batch.empty()) co_yield std::move(batch);
}

plumb::Generator<int> numbers(int count) {
  for (int i = 0; i < count; ++i) co_yield i;
}

long sum_all(plumb::Stream<int> in) {
  long sum = 0;
  for (int x : in) sum += x;
  return sum;
}

struct Job {
  int id = 0;
};

struct Scored {
  int id = 0;
  std::string label = "unscored";
};

plumb::Generator<Scored> score(plumb::Stream<Job> in) {
  for (const Job& job : in) {
    Scored scored{job.id};
    co_yield std::move(scored);
  }
}

}  // namespace

TEST_CASE("README: each stage is testable without a pipeline") {
  std::vector<std::vector<int>> out;
  for (auto& batch : group(plumb::Stream<int>{1, 2, 3}, 2)) out.push_back(batch);  // {1,2} {3}
  CHECK(out == std::vector<std::vector<int>>{{1, 2}, {3}});
}

TEST_CASE("README: statistics, progress and pictures after a run") {
  plumb::Pipeline pipeline{plumb::stage(numbers, 100), plumb::stage(sum_all)};
  pipeline.run({.progress = plumb::ProgressLine{}});  // a live line: packets/s per stage
  const plumb::Stats& stats = pipeline.last_stats();
  std::cout << stats.table();                          // per stage: busy, starved, blocked, queue
  std::ofstream("pipeline.dot") << stats.dot();        // or stats.mermaid()
  CHECK(stats.stages.size() == 2);
  CHECK(std::ifstream("pipeline.dot").good());
}

TEST_CASE("README: name the packet before co_yield") {
  std::vector<int> ids;
  for (const Scored& scored : score(plumb::Stream<Job>{Job{1}, Job{2}})) ids.push_back(scored.id);
  CHECK(ids == std::vector<int>{1, 2});
}
