#pragma once
// SPDX-License-Identifier: MIT
// plumb/pipeline.hpp: Pipeline<Stages...>, its compile-time type rules and run().

#include <plumb/detail/core/assert.hpp>
#include <plumb/detail/run/setup.hpp>
#include <plumb/detail/exec/runner.hpp>
#include <plumb/detail/core/type_rules.hpp>
#include <plumb/error.hpp>
#include <plumb/results.hpp>
#include <plumb/run_options.hpp>
#include <plumb/stage.hpp>
#include <plumb/stats.hpp>
#include <plumb/worker.hpp>

#include <memory>
#include <atomic>
#include <cstddef>
#include <optional>
#include <stop_token>
#include <tuple>
#include <utility>

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

// What run() returns (the sink's result; void for a pipeline whose last stage yields) and what
// stream() iterates (the last stage's packets; void for a pipeline that ends in a sink).
template <bool Ok, class... Stages>
struct PipelineResult {
  using type = Rejected;
  using streamed = void;
  static constexpr bool yields = false;
};
template <class... Stages>
struct PipelineResult<true, Stages...> {
  using Last = PipelineRules<sizeof...(Stages) - 1, Stages...>;
  static constexpr bool yields = Last::returns_generator;
  using type = std::conditional_t<yields, void, typename Last::result>;
  using streamed = std::conditional_t<yields, typename Last::output, void>;
};

// The caller's stage of a stream: a sink that stands for the thread iterating the Results. Its
// body never runs (the runner lets the caller take the packets).
template <class T>
struct CallerStage {
  void operator()(Stream<T>) const {}
};
inline constexpr const char* kCallerStageName = "caller";

// Marks a Pipeline or Graph object as running, so that two concurrent run() calls on it abort (a
// contract violation) instead of corrupting last_failure().
class RunGuard {
 public:
  explicit RunGuard(std::atomic<bool>& running) noexcept : running_(running) {
    PLUMB_ASSERT(!running_.exchange(true, std::memory_order_acquire),
                 "plumb: run() or stream() called on a Pipeline or Graph object that is already running "
                 "(a stream not yet ended counts as running)");
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
  // Every broken rule is one static_assert, in the stage's check (core/type_rules.hpp).
  static constexpr bool kOk = detail::pipeline_ok<Stages...>();

 public:
  /// What `run()` returns: the sink's return type (void when the last stage yields).
  using result_type = typename detail::PipelineResult<kOk, Stages...>::type;
  /// What `stream()` iterates: the last stage's packets (void when the last stage is a sink).
  using value_type = typename detail::PipelineResult<kOk, Stages...>::streamed;
  /// True when the last stage yields (a generator): the results are read with `stream()`.
  static constexpr bool yields = detail::PipelineResult<kOk, Stages...>::yields;

 private:
  // What Results iterates: value_type, or a placeholder for a pipeline that ends in a sink (so
  // that stream()'s declaration stays valid and its static_assert is the one error).
  using streamed_type = std::conditional_t<yields, value_type, detail::Rejected>;

 public:
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
    static_assert(!kOk || !yields,
                  "plumb::Pipeline: the last stage must be a sink that returns void or a value, "
                  "not a plumb::Generator, for run(); iterate its packets with pipeline.stream(), "
                  "or add a sink stage that consumes them");
    if constexpr (kOk && !yields) {
      const detail::RunGuard guard(running_);
      last_failure_.reset();
      last_stats_ = Stats{};
      const std::tuple<const Stages&...> specs = stage_refs();
      detail::RunSetup<size> setup(specs, options, !std::is_void_v<result_type>);
      try {
        return detail::Runner<Stages...>(specs, setup, arena_, last_stats_).run();
      } catch (...) {
        last_failure_ = setup.failure();
        throw;
      }
    } else if constexpr (!std::is_void_v<result_type>) {
      return result_type{};  // not reached: the static_assert above has failed
    }
  }

  /// Starts the pipeline in `Mode::thread` and returns its last stage's packets as a range.
  /// Throws: as `stream(const RunOptions&)`.
  Results<streamed_type> stream() { return stream(RunOptions{}); }

  /// Starts the pipeline in `mode` and returns its last stage's packets as a range.
  /// Throws: as `stream(const RunOptions&)`.
  Results<streamed_type> stream(Mode mode) {
    RunOptions options;
    options.mode = mode;
    return stream(options);
  }

  /// Starts the pipeline, whose last stage yields (returns `plumb::Generator<T>`), and returns
  /// that stage's packets as a single-pass range for the calling thread (`plumb::Results<T>`):
  /// `for (T& packet : pipeline.stream(options)) ...`.
  ///
  /// The calling thread is the consumer of the last stage's output link, with its `in_flight`
  /// slots: a packet stays valid (and holds its slot) until the loop moves on. In
  /// `Mode::sequential` the stages run in the calling thread, inside the loop's `++`; otherwise
  /// they run in their threads and processes meanwhile. Leaving the loop early stops the
  /// pipeline cleanly; the first error of any stage is thrown from the iteration (and named by
  /// `last_failure()`). `last_stats()` shows the caller as a last stage named "caller".
  ///
  /// Preconditions: the Pipeline outlives the Results, and is not run or streamed again before
  /// the Results is closed, finished or destroyed (a second use aborts).
  /// Throws: `ConfigError` before anything runs if a stage's options are invalid.
  Results<streamed_type> stream(const RunOptions& options) {
    static_assert(!kOk || yields,
                  "plumb::Pipeline: stream() iterates the packets of a last stage that yields "
                  "(returns plumb::Generator<T>), but this pipeline ends in a sink; call run(), "
                  "or end the pipeline with the stage whose packets you want");
    if constexpr (kOk && yields) {
      auto run = std::make_unique<StreamRun>(*this, options);
      run->start();
      return Results<streamed_type>(std::move(run));
    } else {
      return Results<streamed_type>(nullptr);
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
  std::tuple<const Stages&...> stage_refs() const noexcept {
    return std::apply([](const auto&... stage) { return std::tuple<const Stages&...>(stage...); },
                      stages_);
  }

  // One stream() run: the pipeline's stages and a caller's stage after them.
  class StreamRun;

  std::tuple<Stages...> stages_;
  std::optional<Failure> last_failure_;
  Stats last_stats_;
  std::atomic<bool> running_{false};
  detail::ArenaCache arena_;  // the shared mapping of the last process-mode run, reused
};

template <class... Stages>
class Pipeline<Stages...>::StreamRun final : public detail::ResultsSource<streamed_type> {
  using Caller = decltype(plumb::stage(detail::CallerStage<streamed_type>{}));
  using Runner = detail::Runner<Stages..., Caller>;
  static constexpr std::size_t kCount = size + 1;

 public:
  StreamRun(Pipeline& pipeline, const RunOptions& options)
      : pipeline_(pipeline), guard_(pipeline.running_) {
    pipeline_.last_failure_.reset();
    pipeline_.last_stats_ = Stats{};
    // The caller is a stage of its own, unless every stage runs in the calling thread anyway.
    const bool all_sequential = std::apply(
        [&](const auto&... stage) {
          return ((stage.options().mode.value_or(options.mode) == Mode::sequential) && ...);
        },
        pipeline_.stages_);
    caller_.mode(all_sequential ? Mode::sequential : Mode::thread);
    setup_.emplace(specs_, options, false, true);
  }
  StreamRun(const StreamRun&) = delete;
  StreamRun& operator=(const StreamRun&) = delete;
  ~StreamRun() override = default;

  void start() {
    runner_.emplace(specs_, *setup_, pipeline_.arena_, pipeline_.last_stats_, true);
    guarded([&] { runner_->start_stream(); });
  }

  streamed_type* next() override {
    return guarded([&] { return runner_->stream_next(); });
  }

  void close(bool quiet) override {
    try {
      guarded([&] { runner_->close_stream(); });
    } catch (...) {
      if (!quiet) throw;
    }
  }

 private:
  template <class F>
  decltype(auto) guarded(F&& f) {
    try {
      return f();
    } catch (...) {
      pipeline_.last_failure_ = setup_->failure();
      throw;
    }
  }

  Pipeline& pipeline_;
  detail::RunGuard guard_;
  Caller caller_ = plumb::stage(detail::CallerStage<streamed_type>{}).name(detail::kCallerStageName);
  std::tuple<const Stages&..., const Caller&> specs_ = std::apply(
      [this](const auto&... stage) { return std::tuple<const Stages&..., const Caller&>(stage..., caller_); },
      pipeline_.stages_);
  std::optional<detail::RunSetup<kCount>> setup_;
  std::optional<Runner> runner_;
};

/// Lets `plumb::Pipeline pipeline{plumb::stage(a), plumb::stage(b)}` deduce the stage types.
template <class... Stages>
Pipeline(Stages...) -> Pipeline<Stages...>;

}  // namespace plumb
