// SPDX-License-Identifier: MIT
// tests/compilers/unsafe.cpp: input of the co_yield scan (cmake/plumbScanCoYield.cmake), never
// compiled. Every line the scan must report ends with a comment `finds: <reason>`, the reason
// the scan gives; no other line may be reported. The forms below crash or corrupt memory with
// GCC 12 (docs/guide.md, "GCC 12 and co_yield"): do not copy them.
#include <plumb/plumb.hpp>

#include <string>
#include <utility>
#include <vector>

struct Job { std::string id; int size; };
struct Scored { std::string id; std::vector<int> scores; };
Scored make_scored(const Job& job);

plumb::Generator<Scored> score(plumb::Stream<Job> in) {
  for (Job& job : in) {
    co_yield Scored{job.id, {}};  // finds: braced temporary
    co_yield {job.id};  // finds: braced temporary
    co_yield ::Scored{job.id};  // finds: braced temporary
    co_yield std::pair<std::string, int>{job.id, 1};  // finds: braced temporary
    co_yield job.size > 2 ? Scored{job.id} : Scored{};  // finds: braced temporary
    co_yield  // finds: braced temporary
        Scored{
            job.id,
            {}};
    co_yield std::move(Scored{job.id});  // finds: braced temporary
    co_yield make_scored(Scored{job.id}.id);  // finds: braced temporary
    co_yield (job.size ? make_scored(job) : Scored());  // finds: conditional expression
    co_yield job.size ? std::string("a") : job.id;  // finds: conditional expression
    /// co_yield Scored{job.id};  // finds: braced temporary (documentation comments are code)
    // Not reported: comments, strings, identifiers that merely contain the word.
    // co_yield Scored{job.id};
    const char* text = "co_yield Scored{job.id};";
    my_co_yield Scored{job.id};
    co_yield Scored{job.id};  // plumb-scan: ignore (as docs that show the bug do)
  }
}
