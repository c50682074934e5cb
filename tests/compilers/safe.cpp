// SPDX-License-Identifier: MIT
// tests/compilers/safe.cpp: input of the co_yield scan (cmake/plumbScanCoYield.cmake), never
// compiled. The safe forms: the scan must report none of them.
#include <plumb/plumb.hpp>

#include <string>
#include <utility>
#include <vector>

struct Job { std::string id; int size; };
struct Scored { std::string id; std::vector<int> scores; };

Scored make_scored(const Job& job) { return Scored{job.id, {}}; }

plumb::Generator<Scored> score(plumb::Stream<Job> in) {
  for (Job& job : in) {
    Scored scored{job.id, {}};
    co_yield std::move(scored);
    co_yield scored;
    co_yield make_scored(job);
    auto chosen = job.size > 2 ? make_scored(job) : Scored{};
    co_yield std::move(chosen);
    co_yield std::move(job.id == "?" ? scored : chosen);  // inside a call: not affected
    co_yield [&] { return make_scored(job); }();
    co_yield f("a ? b {");
    co_yield g('?');
  }
}
