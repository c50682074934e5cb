#pragma once
// SPDX-License-Identifier: MIT
// plumb/detail/exec/runner.hpp: Runner, one run of a planned pipeline: its links, its workers
// (in the calling thread, in threads, in forked processes), their supervision, and its end
// (the sink's value, or the first error).

#include <plumb/codec.hpp>
#include <plumb/detail/core/assert.hpp>
#include <plumb/detail/core/describe.hpp>
#include <plumb/detail/core/format.hpp>
#include <plumb/detail/core/type_rules.hpp>
#include <plumb/detail/exec/done_signal.hpp>
#include <plumb/detail/exec/executor.hpp>
#include <plumb/detail/exec/links.hpp>
#include <plumb/detail/exec/process_executor.hpp>
#include <plumb/detail/exec/remote_result.hpp>
#include <plumb/detail/exec/supervisor.hpp>
#include <plumb/detail/exec/thread_executor.hpp>
#include <plumb/detail/exec/worker_body.hpp>
#include <plumb/detail/run/monitor.hpp>
#include <plumb/detail/run/plan.hpp>
#include <plumb/detail/run/run_state.hpp>
#include <plumb/detail/run/setup.hpp>
#include <plumb/detail/run/shared_memory.hpp>
#include <plumb/detail/stats/tally.hpp>
#include <plumb/detail/worker/chain.hpp>
#include <plumb/detail/worker/stage_chain.hpp>
#include <plumb/error.hpp>
#include <plumb/run_options.hpp>
#include <plumb/stats.hpp>
#include <plumb/worker.hpp>

#include <chrono>
#include <cstddef>
#include <exception>
#include <optional>
#include <stop_token>
#include <string>
#include <thread>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace plumb::detail {

// One run of a pipeline. Every mode takes this one path: the plan says where each group's
// workers run (the calling thread, a ThreadExecutor, a ProcessExecutor) and the LinkSet which
// link joins two groups; every worker runs a WorkerBody.
//
// Order of the start: the shared mapping (if any worker is a process), the links, the worker
// processes (forked before any thread of the run exists: fork copies only the forking thread),
// the stop_token callback, the worker threads; then the calling thread works or supervises.
template <class... Stages>
class Runner {
  static constexpr std::size_t kCount = sizeof...(Stages);
  static constexpr std::size_t kSink = kCount - 1;
  using Body = WorkerBody<Stages...>;
  using Result = typename Body::Result;

 public:
  // What a stream's caller iterates: the packets of the stage before the caller's.
  using Streamed = typename StageRules<(kSink > 0 ? kSink - 1 : 0), Stages...>::output;

  // `arena`: the Pipeline's mapping from earlier runs (reused when large enough), which receives
  // this run's. `stats`: receives the run's statistics when it ends (with or without an error).
  // `streams`: the last stage stands for the calling thread, which iterates the packets of the
  // stage before it (start_stream(), stream_next(), close_stream()).
  Runner(std::tuple<const Stages&...> specs, RunSetup<kCount>& setup, ArenaCache& arena,
         Stats& stats, bool streams = false)
      : specs_(specs),
        setup_(setup),
        plan_(setup.plan()),
        state_(setup.state()),
        stats_(stats),
        streams_(streams),
        start_(std::chrono::steady_clock::now()),
        links_(plan_, setup.names(), setup.max_message_sizes(), lending_of(setup.options())),
        processes_(state_, arena, infos_, done_),
        body_(specs_, plan_, infos_, group_of_, links_, state_),
        threads_(state_, done_) {
    for (std::size_t g = 0; g < plan_.groups.size(); ++g) {
      const GroupPlan& group = plan_.groups[g];
      for (std::size_t worker = 0; worker < group.workers; ++worker) {
        std::vector<WorkerInfo> infos(kCount);
        for (std::size_t stage = group.first; stage <= group.last; ++stage) {
          infos[stage] = WorkerInfo{setup.names()[stage], stage, worker, group.workers};
        }
        infos_.push_back(std::move(infos));
        group_of_.push_back(g);
      }
    }
  }

  // A run that started and did not finish (an error between start() and the first packet of a
  // stream) is stopped and waited for. A stop request that arrives after the run must not wake
  // the links, which die with the Runner; what the caller held of a stream goes first (it
  // refers to the links).
  ~Runner() {
    if (started_ && !finished_) abandon();
    close_caller();
    state_.clear_wakers();
  }
  Runner(const Runner&) = delete;
  Runner& operator=(const Runner&) = delete;

  // Runs to completion. Returns the sink's value or rethrows the run's first error.
  Result run() {
    start();
    if (caller_runs_source_) {
      // The calling thread runs the source's group. With no other worker it also drives the
      // monitor per packet (as in sequential mode); otherwise a helper thread supervises (and
      // if that thread cannot start, the calling thread supervises once the source is done).
      const bool alone = plan_.thread_workers() == 0 && plan_.process_workers() == 0;
      Monitor* inline_monitor = alone && Monitor::wanted_inline(options()) ? &*monitor_ : nullptr;
      if (!alone) start_helper();
      run_worker(0, inline_monitor);
      caller_leaves();
    }
    return finish();
  }

  // --- Streams (Pipeline::stream()) ------------------------------------------------------------

  // Starts every worker; the caller then calls stream_next() until it returns nullptr, or
  // close_stream(). A whole-pipeline sequential stream runs its stages in the calling thread,
  // inside stream_next().
  void start_stream() {
    PLUMB_ASSERT(streams_, "plumb: start_stream() on a Runner that does not stream");
    start();
    const std::size_t id = infos_.size() - 1;  // the caller's worker: the last one
    const GroupPlan& group = plan_.groups.back();
    chain_in_caller_ = !group.caller;  // one sequential group: the caller resumes the chain
    caller_tally_.emplace(blocks_->clock(id), blocks_->slots(id), options().timing, ns_per_tick_);
    caller_tally_->start();
    Monitor* inline_monitor =
        chain_in_caller_ && Monitor::wanted_inline(options()) ? &*monitor_ : nullptr;
    caller_context_.emplace(state_.stop_flag(), infos_[id], *caller_tally_, inline_monitor);
    if (!chain_in_caller_) {
      start_helper();
      if (!supervised_) {
        // The caller cannot supervise while it iterates: without a supervisor a dead worker
        // process would leave it waiting forever.
        state_.fail(std::make_exception_ptr(Error(
                        "plumb.error: could not start the thread that supervises a stream")),
                    std::nullopt);
      }
    }
    try {
      std::optional<CurrentStopWordScope> stop_word_scope;
      if (chain_in_caller_) stop_word_scope.emplace(&state_.stop_flag().word());
      HandToCaller end{caller_input_};
      body_.open(group, caller_chain_, *caller_context_, end);
    } catch (...) {
      caller_failed();
    }
  }

  // The next packet for the caller, valid until the next call; nullptr once the stream ended
  // (then the run is over: its statistics are published). Throws the run's first error.
  Streamed* stream_next() {
    if (caller_input_ != nullptr) {
      try {
        std::optional<CurrentStopWordScope> stop_word_scope;
        if (chain_in_caller_) stop_word_scope.emplace(&state_.stop_flag().word());
        if (Streamed* packet = caller_input_->next()) return packet;
      } catch (const Stopped&) {
        // the run's error is recorded elsewhere
      } catch (...) {
        caller_failed();
      }
    }
    end_stream();
    finish();
    return nullptr;
  }

  // Stops the run before its stream ended (the caller left the loop), without an error of its
  // own, and waits for every worker. Throws the run's first error if one happened before.
  void close_stream() {
    state_.fail(std::make_exception_ptr(StreamClosed{}), std::nullopt);
    end_stream();
    try {
      finish();
    } catch (const StreamClosed&) {
      // the caller's own stop: not an error
    }
  }

 private:
  // The end of the caller's chain: kept for stream_next().
  struct HandToCaller {
    Input<Streamed>*& input;

    template <std::size_t Index, class In>
    void at_sink(Input<In>* in) {
      if constexpr (std::is_same_v<In, Streamed>) {
        input = in;
      } else {
        PLUMB_ASSERT(false, "plumb: unreachable: the caller's stage reads what it streams");
      }
    }
    template <std::size_t Index, class Out>
    void at_output(GeneratorInput<Out>& /*output*/) {
      PLUMB_ASSERT(false, "plumb: unreachable: the caller's chain ends before its stage");
    }
  };

  [[nodiscard]] const RunOptions& options() const noexcept { return setup_.options(); }

  // A worker of the caller's chain (sequential stream) threw, or building the chain did.
  void caller_failed() noexcept {
    body_.fail(*caller_context_, infos_.back()[chain_in_caller_ ? kSink - 1 : kSink]);
  }

  // The caller is done with the stream: it lets go of its last packet and counts as a
  // finished worker.
  void end_stream() noexcept {
    close_caller();
    if (caller_tally_) caller_tally_->finish();
    caller_leaves();
  }

  // The calling thread no longer works as a worker (it was counted from start()).
  void caller_leaves() noexcept {
    if (!caller_working_) return;
    caller_working_ = false;
    threads_.leave();
  }

  // Stops a run that started and was not finished, and waits for every worker (errors are
  // dropped: the Runner is going away because of another one).
  void abandon() noexcept {
    try {
      state_.fail(std::make_exception_ptr(StreamClosed{}), std::nullopt);
    } catch (...) {
      state_.fail(std::current_exception(), std::nullopt);
    }
    close_caller();
    caller_leaves();
    try {
      finish();
    } catch (...) {
    }
  }

  void close_caller() noexcept {
    caller_input_ = nullptr;
    caller_chain_.clear();
  }

  // --- Start and finish ----------------------------------------------------------------------------

  void start() {
    PLUMB_ASSERT(!started_, "plumb: a Runner runs once");
    links_.check_serializable();
    check_result_serializable();
    TickClock::init();  // before any fork (tally.hpp)
    // Lent workers measure their steps (lend.hpp) even with timing off.
    ns_per_tick_ = options().timing || links_.any_lends() ? TickClock::ns_per_tick() : 1.0;
    const bool processes = plan_.process_workers() > 0;
    if (processes) {
      map_shared_memory();
    } else {
      blocks_.emplace(infos_.size(), kCount);
    }
    monitor_.emplace(options(), state_, *blocks_,
                     RunLayout{setup_.names(), plan_, links_.shared(), group_of_, nullptr,
                               processes ? shared_memory_stats(processes_.arena())
                                         : SharedMemoryStats{}},
                     start_);
    links_.make(state_, processes ? &processes_.arena() : nullptr);

    // Who runs each worker: a process, a thread, or the calling thread (the source's group in
    // sequential mode; in a stream the caller's own group, or every stage when all are fused).
    chain_in_caller_ = streams_ && !plan_.groups.back().caller;
    caller_runs_source_ = !streams_ && plan_.groups.front().mode == Mode::sequential;
    std::vector<ForkedWorker> forked;
    for (std::size_t id = 0; id < infos_.size(); ++id) {
      const GroupPlan& group = plan_.groups[group_of_[id]];
      if (group.mode == Mode::process) {
        forked.push_back(ForkedWorker{id, group.first});
      } else if (!group.caller && !chain_in_caller_ &&
                 (group.mode == Mode::thread || (streams_ && group.mode == Mode::sequential))) {
        thread_ids_.push_back(id);
      }
    }
    // Worker processes first, before any thread of the run exists, and before the
    // stop_callback, which another thread could be running (holding RunState's mutex) at the
    // instant of a fork. From the first fork on, nothing may throw until finish() reaped them.
    started_ = true;
    if (!forked.empty()) {
      auto child_main = [this](std::size_t id) noexcept { return run_in_process(id); };
      processes_.fork(forked, child_main);
    }
    // The callback dies before the links (finish() resets it), and ~Runner clears the wakers it
    // could reach.
    on_cancel_.emplace(options().stop_token, CancelRun{&state_});
    if (caller_runs_source_ || streams_) {
      threads_.enter();
      caller_working_ = true;
    }
    threads_.start(thread_ids_.size(), [this](std::size_t i) noexcept { run_worker(thread_ids_[i], nullptr); });
  }

  // A helper thread supervises while the calling thread works; if it cannot start, the calling
  // thread supervises in finish().
  void start_helper() noexcept {
    try {
      helper_ = std::jthread([this] { supervise_workers(); });
      supervised_ = true;
    } catch (...) {
    }
  }

  void supervise_workers() noexcept {
    Executor* const executors[] = {&threads_, &processes_};
    LendingWatch watch{links_};
    supervise(executors, done_, *monitor_, state_, options().grace_period,
              links_.any_lends() ? &watch : nullptr);
  }

  // The supervisor's look at the lent workers (HelpDesk::watch()).
  struct LendingWatch final : Watch {
    explicit LendingWatch(LinkSet<Stages...>& set) noexcept : links(set) {}
    [[nodiscard]] std::chrono::milliseconds period() const noexcept override {
      return lent ? LinkSet<Stages...>::kWatchPeriod : LinkSet<Stages...>::kIdleWatchPeriod;
    }
    void check() noexcept override { lent = links.watch(); }
    LinkSet<Stages...>& links;
    bool lent = true;  // until the first look
  };

  static Lending lending_of(const RunOptions& options) noexcept {
    if (options.scheduling == Scheduling::pinned) return Lending::never;
    // Relaxed: set by a test before its runs.
    return lending_override_for_tests().load(std::memory_order_relaxed);
  }

  // Waits for every worker, then returns the sink's value or rethrows the run's first error.
  Result finish() {
    finished_ = true;
    if (!supervised_) supervise_workers();
    if (helper_.joinable()) helper_.join();
    threads_.join();
    on_cancel_.reset();
    processes_.release();

    processes_.adopt_unreported_failure();
    const std::exception_ptr error = state_.error();
    publish_stats(!error);
    if (error) std::rethrow_exception(error);
    monitor_->report_finished(stats_);
    if constexpr (!std::is_void_v<Result>) {
      if (plan_.groups.back().mode == Mode::process) {
        if constexpr (is_serializable_v<Result>) return read_remote_result<Result>(processes_.result());
      }
      PLUMB_ASSERT(body_.result().has_value(), "plumb: the sink finished without a result");
      return std::move(*body_.result());
    }
  }

  // The final statistics, into the Pipeline's last_stats(). Losing them to a failed allocation
  // must not hide the run's outcome.
  void publish_stats(bool finished) noexcept {
    try {
      stats_ = monitor_->snapshot(finished);
    } catch (...) {
      stats_ = Stats{};
    }
  }

  // --- Workers ---------------------------------------------------------------------------------------

  Outcome run_worker(std::size_t id, Monitor* inline_monitor) noexcept {
    WorkerTally tally(blocks_->clock(id), blocks_->slots(id), options().timing, ns_per_tick_);
    return body_.run(id, tally, inline_monitor);
  }

  // In a worker process: the worker, then the sink's value for the caller.
  Outcome run_in_process(std::size_t id) noexcept {
    Outcome outcome = run_worker(id, nullptr);
    if constexpr (!std::is_void_v<Result> && is_serializable_v<Result>) {
      if (outcome == Outcome::finished && plan_.groups[group_of_[id]].last == kSink &&
          !write_remote_result(processes_.result(), processes_.result_capacity(),
                               *body_.result(), infos_[id][kSink], state_)) {
        outcome = Outcome::failed;
      }
    }
    return outcome;
  }

  // --- Shared memory (runs with worker processes) --------------------------------------------------

  // A sink in a worker process whose value cannot cross back is rejected before anything starts.
  void check_result_serializable() const {
    if constexpr (!std::is_void_v<Result>) {
      if (plan_.groups.back().mode == Mode::process && !is_serializable_v<Result>) {
        throw ConfigError(detail::format(
            "plumb.config_error: {} runs in a worker process and returns {}, which cannot be "
            "serialized back to the caller; specialize plumb::Codec<{}> for it, or run the sink "
            "in Mode::thread",
            describe_stage(kSink, setup_.names()[kSink]), type_name<Result>(), type_name<Result>()));
      }
    }
  }

  // One anonymous shared mapping for everything the processes share, made before any fork:
  // the process executor's parts, the statistics blocks and the links between processes.
  void map_shared_memory() {
    const bool sink_in_process = plan_.groups.back().mode == Mode::process;
    std::byte* blocks = processes_.map_run(links_, StatsBlocks::bytes_for(infos_.size(), kCount),
                                           sink_in_process ? setup_.max_message_sizes()[kSink] : 0);
    blocks_.emplace(infos_.size(), kCount, blocks);
  }

  std::tuple<const Stages&...> specs_;
  RunSetup<kCount>& setup_;
  const Plan& plan_;
  RunState& state_;
  Stats& stats_;
  bool streams_ = false;
  std::chrono::steady_clock::time_point start_;
  std::vector<std::vector<WorkerInfo>> infos_;  // per worker id, per stage of its group
  std::vector<std::size_t> group_of_;           // per worker id
  std::vector<std::size_t> thread_ids_;         // the workers that run as threads

  std::optional<StatsBlocks> blocks_;
  double ns_per_tick_ = 1.0;  // TickClock's, as of the start of the run
  std::optional<Monitor> monitor_;
  LinkSet<Stages...> links_;
  DoneSignal done_;
  ProcessExecutor processes_;
  Body body_;
  ThreadExecutor threads_;  // joined by finish(), before what the threads use dies

  bool started_ = false;         // the workers were started: finish() must run
  bool finished_ = false;
  bool caller_working_ = false;  // the calling thread is counted as a running worker
  bool caller_runs_source_ = false;
  bool chain_in_caller_ = false;
  bool supervised_ = false;  // helper_ supervises
  std::jthread helper_;
  std::optional<std::stop_callback<CancelRun>> on_cancel_;

  // The caller's end of a stream (after the links: destroyed before them).
  std::optional<WorkerTally> caller_tally_;
  std::optional<WorkerContext> caller_context_;
  ChainStore caller_chain_;
  Input<Streamed>* caller_input_ = nullptr;
};

}  // namespace plumb::detail
