#pragma once
// SPDX-License-Identifier: MIT
// plumb/pipeline.hpp: Pipeline<Stages...>, its compile-time type rules and run().

#include <plumb/detail/assert.hpp>
#include <plumb/detail/run_state.hpp>
#include <plumb/detail/plan.hpp>
#include <plumb/detail/runner.hpp>
#include <plumb/detail/type_rules.hpp>
#include <plumb/detail/validate.hpp>
#include <plumb/error.hpp>
#include <plumb/run_options.hpp>
#include <plumb/stage.hpp>
#include <plumb/stats.hpp>
#include <plumb/worker.hpp>

#include <fmt/format.h>

#include <array>
#include <atomic>
#include <cstddef>
#include <optional>
#include <stop_token>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace plumb {

namespace detail {

template <class... Stages>
constexpr bool pipeline_ok() {
  if constexpr (sizeof...(Stages) < 2 || !(IsStage<Stages>::value && ...)) {
    return false;
  } else {
    return all_stages_ok<Stages...>(std::index_sequence_for<Stages...>{});
  }
}

template <bool Ok, class... Stages>
struct PipelineResult {
  using type = Invalid;
};
template <class... Stages>
struct PipelineResult<true, Stages...> {
  using type = typename StageRules<sizeof...(Stages) - 1, Stages...>::result;
};

// Marks a Pipeline object as running, so that two concurrent run() calls on it abort (a
// contract violation) instead of corrupting last_failure().
class RunGuard {
 public:
  explicit RunGuard(std::atomic<bool>& running) noexcept : running_(running) {
    PLUMB_ASSERT(!running_.exchange(true, std::memory_order_acquire),
                 "plumb::Pipeline: run() called while the same Pipeline object is running");
  }
  ~RunGuard() { running_.store(false, std::memory_order_release); }
  RunGuard(const RunGuard&) = delete;
  RunGuard& operator=(const RunGuard&) = delete;

 private:
  std::atomic<bool>& running_;
};

}  // namespace detail

/// A linear chain of stages: a source, any number of processors, and a sink.
///
/// Built with class template argument deduction from `plumb::stage()` specs. At compile time it
/// checks that the first stage is a source, that each later stage takes `Stream<T>` where the
/// stage before it returns `Generator<T>`, that only the last stage is a sink, and that the
/// constants fit each callable; every broken rule is a `static_assert` starting `plumb::`.
///
/// Thread or process affinity: `run()` may be called from any thread, one call at a time per
/// Pipeline object (a second concurrent call aborts). A Pipeline can be run again after a run
/// ended, with or without an error.
///
/// Example:
/// ```cpp
/// plumb::Pipeline pipeline{
///     plumb::stage(numbers, 101).in_flight(8),
///     plumb::stage(group, 5).workers(2).in_flight(4).name("group"),
///     plumb::stage(total),
/// };
/// long sum = pipeline.run(plumb::Mode::sequential);
/// ```
template <class... Stages>
class Pipeline {
  static_assert(sizeof...(Stages) >= 2,
                "plumb::Pipeline: needs a source stage and at least one more stage (a sink)");
  static_assert((detail::IsStage<Stages>::value && ...),
                "plumb::Pipeline: every argument must be a stage, written "
                "plumb::stage(callable, constants...)");
  static constexpr bool kShapeOk = sizeof...(Stages) >= 2 && (detail::IsStage<Stages>::value && ...);
  static constexpr bool kOk = detail::pipeline_ok<Stages...>();
  static_assert(!kShapeOk || kOk,
                "plumb::Pipeline: the stages do not fit together; the first plumb:: error above "
                "names the rule and the stage");

 public:
  /// What `run()` returns: the sink's return type.
  using result_type = typename detail::PipelineResult<kOk, Stages...>::type;
  /// Number of stages.
  static constexpr std::size_t size = sizeof...(Stages);

  /// Takes the stages in order: source first, sink last.
  explicit Pipeline(Stages... stages) : stages_(std::move(stages)...) {}

  /// Takes over the stages of `other` and the results of its last run (`last_failure()`,
  /// `last_stats()`).
  ///
  /// Preconditions: `other` is not running.
  Pipeline(Pipeline&& other) noexcept
      : stages_(std::move(other.stages_)),
        last_failure_(std::move(other.last_failure_)),
        last_stats_(std::move(other.last_stats_)) {}
  /// Replaces the stages and the results of the last run with those of `other`.
  ///
  /// Preconditions: neither pipeline is running.
  Pipeline& operator=(Pipeline&& other) noexcept {
    stages_ = std::move(other.stages_);
    last_failure_ = std::move(other.last_failure_);
    last_stats_ = std::move(other.last_stats_);
    return *this;
  }
  Pipeline(const Pipeline&) = delete;
  Pipeline& operator=(const Pipeline&) = delete;
  ~Pipeline() = default;

  /// Runs the pipeline in `Mode::thread` to completion.
  /// Throws: as `run(const RunOptions&)`.
  result_type run() { return run(RunOptions{}); }

  /// Runs the pipeline in `mode` to completion.
  /// Throws: as `run(const RunOptions&)`.
  result_type run(Mode mode) {
    RunOptions options;
    options.mode = mode;
    return run(options);
  }

  /// Runs the pipeline to completion and returns the sink's value.
  ///
  /// Throws: `ConfigError` before anything runs if a stage's options are invalid; otherwise the
  /// first error of the run: a stage's own exception (the original object, in sequential and
  /// thread mode), `StageError`, `InactivityError` or `CancelledError`. After an error,
  /// `last_failure()` names the stage and worker that raised it.
  result_type run(const RunOptions& options) {
    if constexpr (kOk) {
      const detail::RunGuard guard(running_);
      last_failure_.reset();
      last_stats_ = Stats{};
      const std::vector<std::string> names = stage_names();
      const std::array<const StageOptions*, size> stage_options = options_of_stages();
      constexpr bool kSinkReturnsValue = !std::is_void_v<result_type>;
      detail::validate_stages(stage_options, names, kSinkReturnsValue);
      detail::validate_run_options(options);
      const detail::Plan plan =
          detail::make_plan(stage_options, names, options.mode, kSinkReturnsValue);

      detail::RunState state;
      try {
        return detail::Runner<Stages...>(stages_, options, state, names, plan, arena_, last_stats_)
            .run();
      } catch (...) {
        last_failure_ = state.failure();
        throw;
      }
    } else {
      return result_type{};
    }
  }

  /// The stage and worker that raised the error of the last run, if it ended with one raised
  /// by a stage (empty after a successful run, a ConfigError, a cancellation or a timeout).
  ///
  /// Example:
  /// ```cpp
  /// try { pipeline.run(); } catch (const std::exception& e) {
  ///   if (auto failure = pipeline.last_failure())
  ///     std::cerr << failure->stage_name << " worker " << failure->worker_index << ": " << e.what();
  /// }
  /// ```
  [[nodiscard]] const std::optional<Failure>& last_failure() const noexcept { return last_failure_; }

  /// What the last run measured, per stage and per worker, after it ended with or without an
  /// error (empty before the first run, and after a run rejected by a ConfigError). See
  /// plumb/stats.hpp.
  ///
  /// Example:
  /// ```cpp
  /// pipeline.run();
  /// std::cout << pipeline.last_stats().table();   // names the bottleneck stage
  /// std::ofstream("pipeline.dot") << pipeline.last_stats().dot();
  /// ```
  [[nodiscard]] const Stats& last_stats() const noexcept { return last_stats_; }

  /// The stage specs, in order.
  [[nodiscard]] const std::tuple<Stages...>& stages() const noexcept { return stages_; }

 private:
  std::vector<std::string> stage_names() const {
    std::vector<std::string> names;
    names.reserve(size);
    std::apply(
        [&](const auto&... stage) {
          (names.push_back(stage.options().name.empty() ? fmt::format("stage {}", names.size())
                                                        : stage.options().name),
           ...);
        },
        stages_);
    return names;
  }

  std::array<const StageOptions*, size> options_of_stages() const {
    return std::apply(
        [](const auto&... stage) { return std::array<const StageOptions*, size>{&stage.options()...}; },
        stages_);
  }

  std::tuple<Stages...> stages_;
  std::optional<Failure> last_failure_;
  Stats last_stats_;
  std::atomic<bool> running_{false};
  detail::ArenaCache arena_;  // the shared mapping of the last process-mode run, reused
};

/// Lets `plumb::Pipeline pipeline{plumb::stage(a), plumb::stage(b)}` deduce the stage types.
template <class... Stages>
Pipeline(Stages...) -> Pipeline<Stages...>;

}  // namespace plumb
