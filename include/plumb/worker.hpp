#pragma once
// SPDX-License-Identifier: MIT
// plumb/worker.hpp: WorkerInfo and this_worker(), a stage body's view of who runs it.

#include <cstddef>
#include <string>

namespace plumb {

/// Identifies the worker that runs the current stage body.
struct WorkerInfo {
  /// The name given with `.name()`, or "stage N" when none was given.
  std::string stage_name;
  /// 0-based position of the stage in the pipeline.
  std::size_t stage_index = 0;
  /// 0-based index of this worker within its stage.
  std::size_t index = 0;
  /// Number of workers of the stage (1 in sequential mode).
  std::size_t count = 1;
};

namespace detail {

// The worker whose stage body the calling thread is running right now. Set by the runner around
// every call into and every resumption of a stage body, so that fused stages that share one
// thread each see their own identity.
inline constinit thread_local const WorkerInfo* current_worker = nullptr;

// Sets current_worker for one scope and restores the previous value at its end.
class CurrentWorkerScope {
 public:
  explicit CurrentWorkerScope(const WorkerInfo* info) noexcept : previous_(current_worker) {
    current_worker = info;
  }
  ~CurrentWorkerScope() { current_worker = previous_; }
  CurrentWorkerScope(const CurrentWorkerScope&) = delete;
  CurrentWorkerScope& operator=(const CurrentWorkerScope&) = delete;

 private:
  const WorkerInfo* previous_;
};

}  // namespace detail

/// Returns the identity of the worker running the calling stage body.
///
/// The reference stays valid while the stage body runs; copy the WorkerInfo to keep it longer.
/// Outside a pipeline (a stage called directly, say in a unit test) it returns a single worker:
/// `{stage_name = "", stage_index = 0, index = 0, count = 1}`, so a source that partitions its
/// work with `this_worker()` produces all of it.
///
/// Thread or process affinity: the value belongs to the calling thread.
/// Complexity: constant; one thread-local read.
///
/// Example:
/// ```cpp
/// plumb::Generator<int> numbers(int count) {
///   const auto me = plumb::this_worker();
///   for (int i = static_cast<int>(me.index); i < count; i += static_cast<int>(me.count)) co_yield i;
/// }
/// ```
[[nodiscard]] inline const WorkerInfo& this_worker() noexcept {
  static const WorkerInfo outside_a_pipeline{};
  return detail::current_worker != nullptr ? *detail::current_worker : outside_a_pipeline;
}

}  // namespace plumb
