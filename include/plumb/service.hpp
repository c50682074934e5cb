#pragma once
// SPDX-License-Identifier: MIT
// plumb/service.hpp: Service, a pipeline started once that answers each submitted item through
// a std::future (request/response use).

#include <plumb/codec.hpp>
#include <plumb/detail/core/describe.hpp>
#include <plumb/detail/core/format.hpp>
#include <plumb/detail/exec/runner.hpp>
#include <plumb/detail/run/setup.hpp>
#include <plumb/detail/service/core.hpp>
#include <plumb/detail/service/items.hpp>
#include <plumb/detail/service/rules.hpp>
#include <plumb/detail/service/stages.hpp>
#include <plumb/error.hpp>
#include <plumb/run_options.hpp>
#include <plumb/stage.hpp>
#include <plumb/stats.hpp>
#include <plumb/worker.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <future>
#include <optional>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

namespace plumb {


/// The least `max_message_size` of the links after a Service's stages: room for an item's error
/// (its texts are cut to SharedFailure's sizes).
inline constexpr std::size_t kItemErrorRoom = detail::kItemErrorRoom;



/// A pipeline that is started once and answers items one at a time: `submit(item)` returns a
/// `std::future` of what the last stage yields for it. For request/response use, from any
/// number of threads.
///
/// Every stage takes a `plumb::Stream<In>` and yields exactly one output per input (a stage
/// that yields none or two for one input stops the Service with a StageError naming it). The
/// stages run as in a Pipeline: with workers, in threads or worker processes, with the same
/// bounded links; the items are numbered, so outputs need not come back in order.
///
/// Errors:
/// - An exception a stage throws for an item fails that item's future with it (the original
///   object in threads; a std exception of the same type, or `RemoteError`, from a worker
///   process), and the Service goes on: the stage's next item starts a new call of the stage.
/// - Anything else that stops the run (a stage breaking the one-output rule, a worker process
///   that dies, a throw outside any item) ends the Service: every unanswered future fails with
///   that error, `submit()` throws it, and `broken()` is true. Nothing restarts.
///
/// Shutdown: `close()` answers every accepted item, then ends the run; `cancel()` stops it now
/// (unanswered futures get `CancelledError`). The destructor calls `close()`. `close()` throws
/// the error that ended a broken Service (which its unanswered futures got too), never an
/// item's own error.
///
/// Statistics: a failed item passes the later stages by and counts as their packet; the stage
/// that failed it counts it in `StageStats::failed_items`.
///
/// Sizes, with worker processes: an item that encodes to more than the first stage's
/// `max_message_size` is refused by submit() (a `plumb::Error` to that caller). An output that
/// encodes to more than its stage's `max_message_size`, where the link after that stage crosses
/// a process boundary (either stage in a worker process), fails that item's future with a
/// `StageError` naming the stage, the size and the limit, and the Service goes on. The slots of
/// the links after your stages are at least `kItemErrorRoom` bytes, room for an item's error.
///
/// In errors and statistics the Service's own two stages appear around yours: stage 0,
/// "submit", feeds your first stage (which is stage 1), and the last, "answers", sets the
/// futures.
///
/// Example:
/// ```cpp
/// plumb::Service service{plumb::stage(parse), plumb::stage(infer, model).workers(4)};
/// service.start(plumb::Mode::process);
/// std::future<Label> label = service.submit(request);
/// ...
/// service.close();
/// ```
///
/// Thread safety: submit(), try_submit() and broken() from any thread; start(), close() and
/// cancel() from one thread at a time; every submit() must have returned before the Service is
/// destroyed. last_failure() and last_stats() once close() or cancel() returned.
template <class... Stages>
class Service {
  static_assert(sizeof...(Stages) >= 1, "plumb::Service: give it at least one stage");
  using Rules = detail::ServiceRules<Stages...>;
  // Instantiated with the class, so it runs the stages' checks: each broken rule is one
  // static_assert naming the stage (detail/service/rules.hpp).
  using Checked = std::bool_constant<Rules::ok>;

 public:
  /// The type submit() takes: what the first stage's Stream yields.
  using input_type = typename Rules::input;
  /// The type of the futures: what the last stage yields.
  using output_type = typename Rules::output;

 private:
  using Core = detail::ServiceCore<input_type, output_type>;
  using Submit = Stage<detail::SubmitStage<input_type, output_type>>;
  using Answer = Stage<detail::AnswerStage<input_type, output_type>>;
  template <class UserStage>
  using Serve = Stage<detail::ServeStage<UserStage>>;
  using Runner = detail::Runner<Submit, Serve<Stages>..., Answer>;
  static constexpr std::size_t kCount = sizeof...(Stages) + 2;

 public:
  /// Takes the stage specs, as Pipeline does. Nothing runs before start().
  explicit Service(Stages... stages)
      : submit_(plumb::stage(detail::SubmitStage<input_type, output_type>{&core_})
                    .max_message_size(std::get<0>(std::tie(stages...)).options().max_message_size)),
        serve_(serve_stage(std::move(stages))...),
        answer_(plumb::stage(detail::AnswerStage<input_type, output_type>{&core_})) {
    submit_.name(detail::kSubmitStageName);
    answer_.name(detail::kAnswerStageName);
    // Every worker of the first stage busy, and one item ready for the first to finish.
    submit_.in_flight(std::get<0>(serve_).options().workers + 1);
  }
  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;

  /// Calls close(), and swallows its error (see broken()).
  ~Service() {
    try {
      close();
    } catch (...) {
    }
  }

  /// Starts the stages in `Mode::thread`. Throws: as `start(const RunOptions&)`.
  void start() { start(RunOptions{}); }

  /// Starts the stages in `mode`. Throws: as `start(const RunOptions&)`.
  void start(Mode mode) {
    RunOptions options;
    options.mode = mode;
    start(options);
  }

  /// Starts every stage's workers, and returns once the Service takes items.
  ///
  /// Throws: `ConfigError` if a stage's options are invalid, or `options.inactivity_timeout` is
  /// set (a Service is idle between items); `plumb::Error` if it was started before; the run's
  /// error if it failed while starting.
  void start(const RunOptions& options) {
    if (started_.load(std::memory_order_relaxed)) {
      throw Error("plumb.error: Service::start() called twice; a Service starts once");
    }
    if (options.inactivity_timeout > std::chrono::steady_clock::duration::zero()) {
      throw ConfigError(
          "plumb.config_error: a Service waits for submit() between items, so an "
          "inactivity_timeout would stop an idle Service; leave RunOptions::inactivity_timeout "
          "at zero");
    }
    // The submit and answers stages run in this process: in their own threads, or, when every
    // stage is sequential, in the Service's thread with the rest.
    const bool all_sequential =
        options.mode == Mode::sequential &&
        std::apply([](const auto&... serve) {
          return ((serve.options().mode.value_or(Mode::sequential) == Mode::sequential) && ...);
        }, serve_);
    if (options.mode != Mode::sequential) submit_.mode(Mode::thread);
    // The submit stage waits for submit() between items: on its own thread, never in a step
    // lent to the stage after it (which would then wait inside it, Scheduling::adaptive).
    submit_.pinned();
    if (!all_sequential) answer_.mode(Mode::thread);

    setup_.emplace(specs(), options, false);
    std::vector<std::size_t> limits = detail::process_link_limits(setup_->plan(), setup_->max_message_sizes());
    // Where items cross into a worker process right away, too large ones are refused in
    // submit(); a stage's output too large for its link fails its item (fit_to_link).
    size_limit_ = limits[0];
    core_.set_link_limits(std::move(limits));

    core_.set_service_process();
    setup_->state().on_stop([core = &core_] { core->on_stop(); });
    try {
      thread_ = std::thread([this] { run(); });
    } catch (...) {
      setup_->state().clear_wakers();
      throw;
    }
    // Release: submit() from other threads sees the set-up above once it sees started_.
    started_.store(true, std::memory_order_release);
    if (const std::exception_ptr error = core_.wait_started()) {
      thread_.join();
      std::rethrow_exception(error);
    }
  }

  /// Submits one item and returns the future of its output. Waits while the Service is full
  /// (backpressure): the first stage's link holds one item more than that stage has workers,
  /// and one more waits for room in it.
  ///
  /// Throws: `plumb::Error` if the Service was not started, or after close() or cancel(); the
  /// error that ended the Service, once it is broken.
  std::future<output_type> submit(input_type item) {
    check_started();
    check_size(item);
    return *core_.submit(item, true);
  }

  /// As submit(), but returns nothing instead of waiting when the Service is full; `item` is
  /// then left as it was.
  std::optional<std::future<output_type>> try_submit(input_type&& item) {
    check_started();
    check_size(item);
    return core_.submit(item, false);
  }
  /// As try_submit(input_type&&), with a copy of `item`.
  std::optional<std::future<output_type>> try_submit(const input_type& item) {
    check_started();
    check_size(item);
    input_type copy(item);
    return core_.submit(copy, false);
  }

  /// Takes no more items, waits until every accepted one is answered and the workers ended.
  /// Does nothing if the Service was not started or is closed already.
  ///
  /// Throws: the error that ended the Service, if it broke (as submit() would).
  void close() {
    if (!thread_.joinable()) return;
    core_.close();
    thread_.join();
    if (const std::exception_ptr error = core_.error()) std::rethrow_exception(error);
  }

  /// Stops the Service now: items not answered yet fail with `CancelledError`, and the call
  /// returns once every worker ended. Does nothing if it was not started or is closed already.
  void cancel() {
    if (!thread_.joinable()) return;
    if (core_.request_cancel()) {
      setup_->state().fail(std::make_exception_ptr(
                      CancelledError("plumb.cancelled: Service::cancel() stopped the service")),
                  std::nullopt);
    }
    thread_.join();
  }

  /// True once the Service ended with an error (including cancel()): submit() throws it.
  [[nodiscard]] bool broken() const { return core_.ended() && core_.error() != nullptr; }

  /// The stage and worker that raised the error that ended the Service (as
  /// Pipeline::last_failure()); read it once close() or cancel() returned.
  [[nodiscard]] const std::optional<Failure>& last_failure() const noexcept { return failure_; }

  /// The run's statistics; read them once close() or cancel() returned (empty before start()).
  [[nodiscard]] const Stats& last_stats() const noexcept { return stats_; }

 private:
  template <class UserStage>
  Serve<UserStage> serve_stage(UserStage user) {
    const StageOptions options = user.options();
    Serve<UserStage> serve = plumb::stage(detail::ServeStage<UserStage>{std::move(user), &core_});
    detail::copy_options(serve, options);
    return serve;
  }

  void check_started() const {
    // Acquire: pairs with the release in start().
    if (!started_.load(std::memory_order_acquire)) {
      throw Error("plumb.error: submit() before Service::start()");
    }
  }

  // An item larger than the first link's slots would stop the Service in the submit stage:
  // refused here instead, to its own caller. The packet codec counts the bytes it would write.
  void check_size(const input_type& item) const {
    if constexpr (is_serializable_v<input_type>) {
      if (size_limit_ == 0) return;
      const std::size_t size = Codec<detail::Tagged<input_type>>::size_with(item);
      if (size > size_limit_) {
        throw Error(detail::format(
            "plumb.error: the item encodes to {} bytes, over the max_message_size({}) of {}, "
            "the Service's first stage, which runs in a worker process; raise its "
            ".max_message_size()",
            size, size_limit_, detail::describe_stage(1, setup_->names()[1])));
      }
    }
  }

  std::tuple<const Submit&, const Serve<Stages>&..., const Answer&> specs() const noexcept {
    return std::apply(
        [&](const auto&... serve) {
          return std::tuple<const Submit&, const Serve<Stages>&..., const Answer&>(submit_, serve..., answer_);
        },
        serve_);
  }

  // The Service's thread: one run of the stages, until the submit stage ends or the run fails.
  void run() {
    std::exception_ptr error;
    try {
      if constexpr (Checked::value) {  // a broken rule's error stands alone
        Runner(specs(), *setup_, arena_, stats_).run();
      }
    } catch (...) {
      error = std::current_exception();
      failure_ = setup_->failure();
    }
    // Every answer is in: the failed items per stage (the answers stage counted them).
    const std::vector<std::uint64_t> failed = core_.failed_items();
    for (std::size_t i = 0; i < failed.size() && i < stats_.stages.size(); ++i) {
      stats_.stages[i].failed_items = failed[i];
    }
    core_.end(error);
  }

  Core core_;
  Submit submit_;
  std::tuple<Serve<Stages>...> serve_;
  Answer answer_;
  std::optional<detail::RunSetup<kCount>> setup_;  // from start()
  detail::ArenaCache arena_;
  Stats stats_;
  std::optional<Failure> failure_;
  std::size_t size_limit_ = 0;  // of an encoded item, when the first stage is in a process
  std::atomic<bool> started_{false};
  std::thread thread_;
};

/// Lets `plumb::Service service{plumb::stage(a), plumb::stage(b)}` deduce the stage types.
template <class... Stages>
Service(Stages...) -> Service<Stages...>;

}  // namespace plumb
