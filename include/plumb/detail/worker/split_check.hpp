#pragma once
// SPDX-License-Identifier: MIT
// plumb/detail/worker/split_check.hpp: SplitCheck, which stops a source stage with several
// workers whose body does not split the work between them (each packet would come out once per
// worker).

#include <plumb/detail/core/describe.hpp>
#include <plumb/detail/core/format.hpp>
#include <plumb/error.hpp>
#include <plumb/worker.hpp>

#include <cstdint>

namespace plumb::detail {

// Every worker of a source stage runs the whole body. A body that splits the work asks
// plumb::this_worker() which share is its own, before its first co_yield; one that does not
// would make every packet once per worker, silently. SplitCheck watches one source worker's
// resumes until its first packet: if the body asked this_worker() by then, the check ends;
// if it yielded first, the run fails with a StageError naming the stage and the two ways out
// (split by this_worker(), or `.unpartitioned()` for workers that share one queue or must each
// make every packet).
//
// How it tells: this_worker() counts its calls per thread (this_worker_calls). A resume runs on
// one thread from start to end (a lent step included), so the count before and after a resume,
// on that thread, says whether the body asked during it. A body that runs a nested pipeline
// whose stages ask counts as asking: the check can miss, never fail a body that splits.
//
// Thread affinity: the thread resuming the worker's body.
class SplitCheck {
 public:
  // Starts watching (a source worker of a stage with several workers, not .unpartitioned()).
  // `calls_before_call`: this_worker_calls before the stage's callable was called (a plain
  // callable may ask this_worker() before it makes the generator; the first packet comes on the
  // same thread).
  void arm(std::uint64_t calls_before_call) noexcept {
    armed_ = this_worker_calls == calls_before_call;
  }
  [[nodiscard]] bool armed() const noexcept { return armed_; }

  // Runs one resume of the body (`resume()`, returning the packet or nullptr at the end) and
  // judges it. Throws StageError for a first packet yielded before any this_worker() call.
  template <class Resume>
  auto watch(const WorkerInfo& info, Resume&& resume) {
    const std::uint64_t before = this_worker_calls;
    auto* packet = resume();
    if (this_worker_calls != before) {
      armed_ = false;  // the body asked which share is its own
    } else if (packet != nullptr) {
      throw StageError(
          detail::format(
              "plumb.stage_error: {} has {} workers, and worker {} yielded its first packet "
              "without asking plumb::this_worker(): every worker runs the whole source body, so "
              "each packet would come out {} times. Split the work by this_worker().index and "
              ".count before the first co_yield; or, if the workers never make the same packet "
              "(they take jobs from one shared queue) or should each make all of them, say so "
              "with .unpartitioned() on the stage",
              describe_stage(info.stage_index, info.stage_name), info.count, info.index,
              info.count),
          info.stage_index, info.stage_name, info.index);
    }
    return packet;
  }

 private:
  bool armed_ = false;
};

}  // namespace plumb::detail
