#pragma once
// SPDX-License-Identifier: MIT
// plumb/worker.hpp: WorkerInfo and this_worker(), a stage body's view of who runs it.

#include <atomic>
#include <cstddef>
#include <cstdint>
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
// The stop word of that worker's run (RunState::stop_flag(); in shared memory in a run with
// worker processes), for stop_requested().
inline constinit thread_local const std::atomic<std::uint32_t>* current_stop_word = nullptr;
// How many times the calling thread has called this_worker(): whether a source's body asked
// which share of the work is its own before its first packet (SplitCheck).
inline constinit thread_local std::uint64_t this_worker_calls = 0;

// Sets current_worker for one scope and restores the previous value at its end. Per call into
// and resume of a stage body: fused stages share a thread.
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

// Sets current_stop_word for the whole body of one worker (every stage a thread runs in one
// run shares one stop word, so once per worker, not per resume) and restores the previous
// value at its end (a run nested in a stage body has its own).
class CurrentStopWordScope {
 public:
  explicit CurrentStopWordScope(const std::atomic<std::uint32_t>* stop_word) noexcept
      : previous_(current_stop_word) {
    current_stop_word = stop_word;
  }
  ~CurrentStopWordScope() { current_stop_word = previous_; }
  CurrentStopWordScope(const CurrentStopWordScope&) = delete;
  CurrentStopWordScope& operator=(const CurrentStopWordScope&) = delete;

 private:
  const std::atomic<std::uint32_t>* previous_;
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
  ++detail::this_worker_calls;
  return detail::current_worker != nullptr ? *detail::current_worker : outside_a_pipeline;
}

/// True once the run that is calling this stage body is stopping: a stage failed, the run was
/// cancelled (`RunOptions::stop_token`) or timed out.
///
/// plumb stops a stage by itself the next time it yields or asks its input for a packet. A
/// stage that waits on something outside plumb between packets (a socket, a message broker, a
/// long loop) checks this between its waits and returns: a source simply ends. The run still
/// reports its first error; a source that ends this way adds none.
///
/// Outside a pipeline (a stage called directly, say in a unit test) it returns false.
/// Thread or process affinity: answers for the run of the calling thread's stage body.
/// Complexity: constant; one thread-local read and one relaxed atomic load.
///
/// Example:
/// ```cpp
/// plumb::Generator<Message> listen(Socket socket) {
///   while (!plumb::stop_requested()) {
///     if (std::optional<Message> message = socket.receive(std::chrono::milliseconds(200))) {
///       co_yield std::move(*message);
///     }
///   }
/// }
/// ```
[[nodiscard]] inline bool stop_requested() noexcept {
  // Relaxed: as RunState::stopping(); the answer only decides whether to return early.
  const std::atomic<std::uint32_t>* word = detail::current_stop_word;
  return word != nullptr && word->load(std::memory_order_relaxed) != 0;
}

}  // namespace plumb
