// SPDX-License-Identifier: MIT
// tests/clang/natural_yield_test.cpp: built only with Clang (tests/CMakeLists.txt). The natural
// forms that GCC 12 miscompiles (`co_yield Scored{job.id};`, `co_yield ready ? a : b;`: it
// destroys the yielded object twice) work with Clang, in every mode. The ASan configuration runs
// these too, so a double free or a leak fails them. docs/guide.md, "GCC 12 and co_yield".

#include <plumb/generator.hpp>
#include <plumb/pipeline.hpp>
#include <plumb/stage.hpp>
#include <plumb/stream.hpp>

#include <catch2/catch.hpp>

#include <string>
#include <utility>
#include <vector>

#if !defined(__clang__)
#error "natural_yield_test.cpp shows forms that GCC 12 miscompiles: build it with Clang only"
#endif

namespace {

struct Job {
  std::string id;
  int size = 0;
};

struct Scored {
  std::string id;
  std::vector<int> scores;
};

// Ids longer than the small-string buffer, so that a double free or a shared buffer shows.
std::string long_id(int i) { return "job-" + std::string(40, 'x') + "-" + std::to_string(i); }

plumb::Generator<Job> jobs(int count) {
  for (int i = 0; i < count; ++i) co_yield Job{long_id(i), i % 5};  // plumb-scan: ignore
}

plumb::Generator<Scored> score(plumb::Stream<Job> in) {
  for (Job& job : in) co_yield Scored{job.id, std::vector<int>(static_cast<std::size_t>(job.size), 7)};  // plumb-scan: ignore
}

plumb::Generator<Scored> relabel(plumb::Stream<Scored> in) {
  const Scored empty{"empty", {}};
  for (Scored& scored : in) co_yield scored.scores.empty() ? empty : Scored{scored.id + "!", scored.scores};  // plumb-scan: ignore
}

std::vector<std::string> collect(plumb::Stream<Scored> in) {
  std::vector<std::string> out;
  for (Scored& scored : in) out.push_back(scored.id + ":" + std::to_string(scored.scores.size()));
  return out;
}

std::vector<std::string> expected(int count) {
  std::vector<std::string> out;
  for (int i = 0; i < count; ++i) {
    const int size = i % 5;
    out.push_back(size == 0 ? "empty:0" : long_id(i) + "!:" + std::to_string(size));
  }
  return out;
}

}  // namespace

TEST_CASE("clang: co_yield of a braced temporary and of a conditional, in every mode", "[generator]") {
  const plumb::Mode mode = GENERATE(plumb::Mode::sequential, plumb::Mode::thread, plumb::Mode::process);
  CAPTURE(mode);
  constexpr int kCount = 300;
  plumb::Pipeline pipeline{plumb::stage(jobs, kCount), plumb::stage(score), plumb::stage(relabel),
                           plumb::stage(collect)};
  CHECK(pipeline.run(mode) == expected(kCount));
}
