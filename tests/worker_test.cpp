// SPDX-License-Identifier: MIT
// tests/worker_test.cpp: plumb::this_worker() inside and outside a pipeline.

#include <plumb/plumb.hpp>

#include <catch2/catch.hpp>

#include <string>
#include <vector>

namespace {

std::vector<plumb::WorkerInfo> seen;

plumb::Generator<int> source(int count) {
  seen.push_back(plumb::this_worker());
  for (int i = 0; i < count; ++i) co_yield i;
  seen.push_back(plumb::this_worker());
}

plumb::Generator<int> middle(plumb::Stream<int> in) {
  for (int x : in) {
    seen.push_back(plumb::this_worker());
    co_yield x;
  }
}

void sink(plumb::Stream<int> in) {
  for (int x : in) {
    (void)x;
    seen.push_back(plumb::this_worker());
  }
}

}  // namespace

TEST_CASE("this_worker outside a pipeline is a single anonymous worker", "[worker]") {
  const plumb::WorkerInfo info = plumb::this_worker();
  CHECK(info.stage_name.empty());
  CHECK(info.stage_index == 0);
  CHECK(info.index == 0);
  CHECK(info.count == 1);
}

TEST_CASE("in sequential mode each fused stage sees its own identity", "[worker]") {
  seen.clear();
  plumb::Pipeline pipeline{plumb::stage(source, 2).name("src").workers(3),
                           plumb::stage(middle).workers(2), plumb::stage(sink).name("out")};
  pipeline.run(plumb::Mode::sequential);
  // source start, then per packet: middle, sink; then source end.
  REQUIRE(seen.size() == 6);
  CHECK(seen[0].stage_name == "src");
  CHECK(seen[0].stage_index == 0);
  CHECK(seen[0].count == 1);  // workers are validated but not used in sequential mode
  for (std::size_t packet = 0; packet < 2; ++packet) {
    CHECK(seen[1 + 2 * packet].stage_name == "stage 1");
    CHECK(seen[1 + 2 * packet].stage_index == 1);
    CHECK(seen[2 + 2 * packet].stage_name == "out");
    CHECK(seen[2 + 2 * packet].stage_index == 2);
  }
  CHECK(seen[5].stage_index == 0);
  CHECK(plumb::this_worker().stage_name.empty());  // restored after the run
}
