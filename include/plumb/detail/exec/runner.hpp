#pragma once
// SPDX-License-Identifier: MIT
// plumb/detail/exec/runner.hpp: runs a planned pipeline: links between groups, workers as forked
// processes, threads or the calling thread, and the supervisor that waits, monitors, kills
// after the grace period and collects the first error.

#include <plumb/codec.hpp>
#include <plumb/detail/core/assert.hpp>
#include <plumb/detail/worker/chain.hpp>
#include <plumb/detail/core/describe.hpp>
#include <plumb/detail/exec/fork_output.hpp>
#include <plumb/detail/exec/fork_thread.hpp>
#include <plumb/detail/run/monitor.hpp>
#include <plumb/detail/run/plan.hpp>
#include <plumb/detail/exec/process_supervisor.hpp>
#include <plumb/detail/run/remote_error.hpp>
#include <plumb/detail/link/ring_link.hpp>
#include <plumb/detail/run/run_state.hpp>
#include <plumb/detail/run/shared_memory.hpp>
#include <plumb/detail/link/shm_link.hpp>
#include <plumb/detail/stats/tally.hpp>
#include <plumb/detail/core/type_rules.hpp>
#include <plumb/detail/link/view_input.hpp>
#include <plumb/detail/run/validate.hpp>
#include <plumb/run_options.hpp>
#include <plumb/stats.hpp>
#include <plumb/worker.hpp>

#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <stop_token>
#include <string>
#include <thread>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace plumb::detail {

// Calls f(std::integral_constant<std::size_t, I>{}) for the I equal to `index` (< Count).
template <std::size_t Count, class F>
void with_index(std::size_t index, F&& f) {
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    (void)((index == I && (f(std::integral_constant<std::size_t, I>{}), true)) || ...);
  }(std::make_index_sequence<Count>{});
}

// Stands in for ShmLink<T> where T cannot be serialized (such a link is rejected before the
// run starts, so it is never used).
struct NoShmLink {};

// The sink's value, when the sink runs in a worker process: serialized there, read by the
// caller after the process exited.
struct ResultBlock {
  std::atomic<std::uint32_t> written{0};
  std::uint64_t size = 0;
  // followed by `capacity` bytes
};

// What a worker's run ended with.
enum class Outcome { finished, failed, stopped };

// One run of a pipeline. Sequential, thread and process modes share this one path and differ
// only in where each group's workers run (the calling thread, threads, processes) and in the
// kind of each link (none between fused stages, a RingLink inside one process, a ShmLink across
// a process boundary).
//
// Every worker runs its group's first stage over its input (a LinkInput or ShmInput, or nothing
// for the source), chains the fused stages after it through GeneratorInputs, and either drains
// the last generator into the group's output link (produce) or is the sink.
template <class... Stages>
class Runner {
  static constexpr std::size_t kCount = sizeof...(Stages);
  static constexpr std::size_t kSink = kCount - 1;
  using Result = typename StageRules<kSink, Stages...>::result;
  using ResultStore = std::conditional_t<std::is_void_v<Result>, std::monostate, std::optional<Result>>;
  template <std::size_t Index>
  using Output = typename StageRules<Index, Stages...>::output;
  template <std::size_t Index>
  using InputType = typename StageRules<Index, Stages...>::input;
  // What stage Index's Stream yields: its InputType, or a View of it (read in place).
  template <std::size_t Index>
  static constexpr bool kReadsViews = IsView<typename StageRules<Index, Stages...>::element>::value;
  template <std::size_t Index>
  using ShmLinkOf =
      std::conditional_t<is_serializable_v<Output<Index>>, ShmLink<Output<Index>>, NoShmLink>;

  template <std::size_t... Index>
  static auto ring_tuple(std::index_sequence<Index...>)
      -> std::tuple<std::unique_ptr<RingLink<Output<Index>>>...>;
  template <std::size_t... Index>
  static auto shm_tuple(std::index_sequence<Index...>)
      -> std::tuple<std::unique_ptr<ShmLinkOf<Index>>...>;
  using RingLinks = decltype(ring_tuple(std::make_index_sequence<kSink>{}));
  using ShmLinks = decltype(shm_tuple(std::make_index_sequence<kSink>{}));

 public:
  // `arena` is the pipeline's mapping from earlier runs (reused when large enough) and receives
  // this run's.
  // `stats` receives the run's statistics when it ends (with or without an error).
  // `streams`: the last stage stands for the calling thread, which iterates the packets of the
  // stage before it (Pipeline::stream(): start_stream(), stream_next(), close_stream()).
  Runner(std::tuple<const Stages&...> specs, const RunOptions& options, RunState& state,
         std::span<const std::string> names, const Plan& plan, ArenaCache& arena, Stats& stats,
         bool streams = false)
      : specs_(specs),
        options_(options),
        state_(state),
        names_(names),
        plan_(plan),
        arena_(arena),
        stats_(stats),
        start_(std::chrono::steady_clock::now()),
        streams_(streams) {
    for (std::size_t g = 0; g < plan_.groups.size(); ++g) {
      const GroupPlan& group = plan_.groups[g];
      for (std::size_t worker = 0; worker < group.workers; ++worker) {
        std::vector<WorkerInfo> infos(kCount);
        for (std::size_t stage = group.first; stage <= group.last; ++stage) {
          infos[stage] = WorkerInfo{names_[stage], stage, worker, group.workers};
        }
        infos_.push_back(std::move(infos));
        group_of_worker_.push_back(g);
      }
    }
    shared_link_.assign(kCount, false);
    for (std::size_t g = 0; g + 1 < plan_.groups.size(); ++g) {
      shared_link_[plan_.groups[g].last] =
          plan_.groups[g].mode == Mode::process || plan_.groups[g + 1].mode == Mode::process;
    }
  }

  // The links die with the Runner; a stop request that arrives later must not wake them. What
  // the caller held of a stream goes first (it refers to the links).
  ~Runner() {
    close_caller_input();
    destroy_parked();
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
      const bool alone = plan_.thread_workers() == 0 && children_.empty();
      Monitor* inline_monitor = alone && Monitor::wanted_inline(options_) ? &*monitor_ : nullptr;
      if (!alone) start_helper();
      thread_main(plan_.groups.front(), 0, inline_monitor);
    }
    return finish();
  }

  // --- Streams (Pipeline::stream()): the calling thread consumes the last stage's input -------

  using Streamed = Output<(kSink > 0 ? kSink - 1 : 0)>;

  // Starts every worker; the caller then calls stream_next() until it returns nullptr, or
  // close_stream(). A whole-pipeline sequential stream runs its stages in the calling thread,
  // inside stream_next().
  void start_stream() {
    PLUMB_ASSERT(streams_, "plumb: start_stream() on a Runner that does not stream");
    start();
    const std::size_t id = infos_.size() - 1;  // the caller's worker: the last one
    caller_tally_.emplace(blocks_->clock(id), blocks_->slots(id), options_.timing, ns_per_tick_);
    caller_tally_->start();
    if (!plan_.groups.back().caller) {
      // One sequential group: the caller resumes the chain of generators itself.
      Monitor* inline_monitor = Monitor::wanted_inline(options_) ? &*monitor_ : nullptr;
      caller_context_.emplace(stop(), infos_[id], *caller_tally_, inline_monitor);
      try {
        const CurrentStopWordScope stop_word_scope(&stop().word());
        caller_input_ = open_chain<0>(static_cast<Input<void>*>(nullptr), *caller_context_);
      } catch (...) {
        caller_failed();
      }
      return;
    }
    caller_context_.emplace(stop(), infos_[id], *caller_tally_, nullptr);
    start_helper();
    if (!supervised_) {
      // The caller cannot supervise while it iterates: without a supervisor a dead worker
      // process would leave it waiting forever.
      state_.fail(std::make_exception_ptr(Error(
                      "plumb.error: could not start the thread that supervises a stream")),
                  std::nullopt);
    }
    constexpr std::size_t kLast = kSink - 1;
    if (!shared_link_[kLast]) {
      caller_input_ = &caller_ring_input_.emplace(*std::get<kLast>(ring_links_), stop(), *caller_tally_);
    } else if constexpr (is_serializable_v<Streamed>) {
      caller_input_ = &caller_shm_input_.emplace(*std::get<kLast>(shm_links_), stop(), *caller_tally_);
    }
  }

  // The next packet for the caller, valid until the next call; nullptr once the stream ended
  // (then the run is over: its statistics are published). Throws the run's first error.
  Streamed* stream_next() {
    if (caller_input_ != nullptr) {
      try {
        std::optional<CurrentStopWordScope> stop_word_scope;
        if (!plan_.groups.back().caller) stop_word_scope.emplace(&stop().word());
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
  // The marker error of close_stream(); never reaches the caller.
  struct StreamClosed {};

  // A worker of the caller's chain (sequential stream) threw, or building the chain did.
  void caller_failed() noexcept {
    const std::exception_ptr error = std::current_exception();
    std::optional<Failure> failure;
    try {
      failure = caller_context_->failure_of(
          error, infos_.back()[plan_.groups.back().caller ? kSink : kSink - 1]);
    } catch (...) {
    }
    state_.fail(error, std::move(failure));
  }

  // The caller is done with the stream: it lets go of its last packet and counts as a
  // finished worker.
  void end_stream() noexcept {
    close_caller_input();
    if (caller_tally_) caller_tally_->finish();
    {
      std::lock_guard lock(mutex_);
      --running_;
    }
    finished_cv_.notify_all();
    thread_done_.notify();
  }

  void close_caller_input() noexcept {
    caller_input_ = nullptr;
    caller_ring_input_.reset();
    caller_shm_input_.reset();
    // The chain's generators first, then the inputs they read (last to first).
    while (!chain_.empty()) chain_.pop_back();
  }

  // A node of the caller's chain in a sequential stream: this worker's copies of stage Index's
  // callable and constants, and its generator as the input of the next stage.
  struct ChainNode {
    ChainNode() = default;
    ChainNode(const ChainNode&) = delete;
    ChainNode& operator=(const ChainNode&) = delete;
    virtual ~ChainNode() = default;
  };
  template <std::size_t Index>
  struct StageNode final : ChainNode {
    using Spec = std::tuple_element_t<Index, std::tuple<Stages...>>;
    explicit StageNode(const Spec& spec) : callable(spec.callable()), constants(spec.constants()) {}
    typename Spec::callable_type callable;
    typename Spec::constants_type constants;
    std::optional<GeneratorInput<Output<Index>>> output;
  };
  template <class T>
  struct ViewNode final : ChainNode {
    explicit ViewNode(Input<T>& inner) : views(inner) {}
    ViewInput<T> views;
  };

  // Calls stage Index over `input` and the stages after it, up to the last one before the
  // caller, each over the generator of the one before; returns the last generator.
  template <std::size_t Index, class In>
  Input<Streamed>* open_chain(Input<In>* input, WorkerContext& context) {
    if constexpr (Index + 1 >= kCount) {
      PLUMB_ASSERT(false, "plumb: unreachable: the chain ends before the caller's stage");
      return nullptr;
    } else {
      auto& node = static_cast<StageNode<Index>&>(
          *chain_.emplace_back(std::make_unique<StageNode<Index>>(std::get<Index>(specs_))));
      const WorkerInfo& info = context.info(Index);
      node.output.emplace(invoke_stage(node.callable, node.constants, input, info, context), info,
                          input, context, true);
      if constexpr (Index + 1 == kSink) {
        return &*node.output;
      } else if constexpr (kReadsViews<Index + 1>) {
        auto& views = static_cast<ViewNode<Output<Index>>&>(
            *chain_.emplace_back(std::make_unique<ViewNode<Output<Index>>>(*node.output)));
        return open_chain<Index + 1>(static_cast<Input<View<Output<Index>>>*>(&views.views), context);
      } else {
        return open_chain<Index + 1>(static_cast<Input<Output<Index>>*>(&*node.output), context);
      }
    }
  }

  // --- Start and finish (run() and streams) ---------------------------------------------------

  // Cancellation through the stop_token.
  struct CancelRun {
    Runner* runner;
    void operator()() const {
      runner->state_.fail(std::make_exception_ptr(CancelledError(
                              "plumb.cancelled: the run was cancelled through RunOptions::stop_token")),
                          std::nullopt);
    }
  };

  // Everything up to the running workers: links, worker processes, worker threads.
  void start() {
    check_serializable();
    TickClock::init();  // before any fork (tally.hpp)
    ns_per_tick_ = options_.timing ? TickClock::ns_per_tick() : 1.0;
    const bool processes = plan_.process_workers() > 0;
    if (processes) {
      map_shared_memory();
    } else {
      blocks_.emplace(infos_.size(), kCount);
    }
    monitor_.emplace(options_, state_, *blocks_,
                     RunLayout{names_, plan_, shared_link_, group_of_worker_}, start_);
    make_links();
    // Who runs each group that has no process of its own: a thread, or the calling thread (the
    // source's group in sequential mode, or in a stream the caller's own).
    const bool chain_in_caller = streams_ && !plan_.groups.back().caller;
    caller_runs_source_ = !streams_ && plan_.groups.front().mode == Mode::sequential;
    const auto needs_thread = [&](const GroupPlan& group) {
      if (group.caller || chain_in_caller) return false;
      return group.mode == Mode::thread || (streams_ && group.mode == Mode::sequential);
    };
    std::size_t threads = 0;
    for (const GroupPlan& group : plan_.groups) {
      if (needs_thread(group)) threads += group.workers;
    }
    // Nothing may throw between the first fork and the reaping of every child (a child would be
    // left running): reserve first.
    workers_.reserve(threads);
    children_.reserve(plan_.process_workers());

    // Worker processes first, before any thread of the run exists (fork copies only the
    // calling thread), and before the stop_callback, which another thread could be running
    // (holding RunState's mutex) at the instant of a fork.
    if (processes) fork_workers();

    // The callback dies before the links (finish() resets it), and ~Runner clears the wakers it
    // could reach.
    on_cancel_.emplace(options_.stop_token, CancelRun{this});

    const bool caller_works = caller_runs_source_ || streams_;
    running_ = threads + (caller_works ? 1 : 0);
    try {
      for (std::size_t id = 0; id < infos_.size(); ++id) {
        const GroupPlan& group = plan_.groups[group_of_worker_[id]];
        if (!needs_thread(group)) continue;
        workers_.emplace_back([this, &group, id] { thread_main(group, id); });
      }
    } catch (...) {
      // Could not start a thread: stop the ones that started; those never started count as
      // finished.
      state_.fail(std::current_exception(), std::nullopt);
      std::lock_guard lock(mutex_);
      running_ -= threads - workers_.size();
    }
  }

  // A helper thread supervises while the calling thread works; if it cannot start, the calling
  // thread supervises in finish().
  void start_helper() noexcept {
    try {
      helper_ = std::jthread([this] { supervise(); });
      supervised_ = true;
    } catch (...) {
    }
  }

  // Waits for every worker, then returns the sink's value or rethrows the run's first error.
  Result finish() {
    if (!supervised_) supervise();
    if (helper_.joinable()) helper_.join();
    for (std::thread& worker : workers_) worker.join();
    workers_.clear();
    on_cancel_.reset();
    fork_thread_.release();  // every child was reaped: its parent-death signal is moot
    close_pidfds(children_);

    adopt_unreported_failure();
    const std::exception_ptr error = state_.error();
    publish_stats(!error);
    if (error) std::rethrow_exception(error);
    monitor_->report_finished(stats_);
    if constexpr (!std::is_void_v<Result>) {
      if (plan_.groups.back().mode == Mode::process) return read_remote_result();
      PLUMB_ASSERT(result_.has_value(), "plumb: the sink finished without a result");
      return std::move(*result_);
    }
  }

 private:
  // The run's stop flag (in shared memory once map_shared_memory() ran).
  StopFlag stop() const noexcept { return state_.stop_flag(); }

  // The final statistics, into the Pipeline's last_stats(). Losing them to a failed allocation
  // must not hide the run's outcome.
  void publish_stats(bool finished) noexcept {
    try {
      stats_ = monitor_->snapshot(finished);
    } catch (...) {
      stats_ = Stats{};
    }
  }

  // --- Set-up ---------------------------------------------------------------------------------

  // A type that cannot cross a process boundary is rejected before anything starts.
  void check_serializable() const {
    for (std::size_t g = 0; g + 1 < plan_.groups.size(); ++g) {
      const std::size_t producer = plan_.groups[g].last;
      if (!shared_link_[producer]) continue;
      with_index<kSink>(producer, [&](auto index) {
        using T = Output<decltype(index)::value>;
        if constexpr (!is_serializable_v<T>) {
          throw ConfigError(fmt::format(
              "plumb.config_error: {} sends {} to {} across a process boundary, but that type "
              "cannot be serialized; specialize plumb::Codec<{}> for it, or run both stages in "
              "one process (Mode::thread)",
              describe_stage(producer, names_[producer]), type_name<T>(),
              describe_stage(producer + 1, names_[producer + 1]), type_name<T>()));
        }
      });
    }
    if constexpr (!std::is_void_v<Result>) {
      if (plan_.groups.back().mode == Mode::process && !is_serializable_v<Result>) {
        throw ConfigError(fmt::format(
            "plumb.config_error: {} runs in a worker process and returns {}, which cannot be "
            "serialized back to the caller; specialize plumb::Codec<{}> for it, or run the sink "
            "in Mode::thread",
            describe_stage(kSink, names_[kSink]), type_name<Result>(), type_name<Result>()));
      }
    }
  }

  // One anonymous shared mapping for everything the processes share, made before any fork.
  void map_shared_memory() {
    ArenaLayout layout;
    const std::size_t control_at = layout.add(sizeof(SharedControl));
    const std::size_t blocks_at = layout.add(StatsBlocks::bytes_for(infos_.size(), kCount));
    const std::size_t outcomes_at = layout.add(infos_.size() * sizeof(std::atomic<WorkerOutcome>));
    const std::size_t result_bytes = plan_.groups.back().mode == Mode::process
                                         ? specs_options(kSink).max_message_size
                                         : 0;
    const std::size_t result_at = layout.add(sizeof(ResultBlock) + result_bytes);
    std::vector<std::size_t> link_at(kCount, 0);
    std::vector<std::size_t> link_bytes(kCount, 0);
    for (std::size_t g = 0; g + 1 < plan_.groups.size(); ++g) {
      const std::size_t producer = plan_.groups[g].last;
      if (!shared_link_[producer]) continue;
      with_index<kSink>(producer, [&](auto index) {
        constexpr std::size_t kIndex = decltype(index)::value;
        if constexpr (is_serializable_v<Output<kIndex>>) {
          // Cannot overflow: at most 2^20 slots of 2^40 bytes (validate.hpp's limits).
          link_bytes[kIndex] = ShmLink<Output<kIndex>>::bytes_for(plan_.capacity[kIndex], slot_bytes<kIndex>());
          link_at[kIndex] = layout.add(link_bytes[kIndex]);
        }
      });
    }
    std::vector<std::size_t> gate_at(plan_.groups.size(), 0);
    for (std::size_t g = 0; g + 1 < plan_.groups.size(); ++g) {
      if (plan_.groups[g].ordered) {
        gate_at[g] = layout.add(OrderGate::bytes_for(plan_.capacity[plan_.groups[g].last]));
      }
    }
    if (layout.overflowed() || layout.size() > kMaxArenaBytes) throw_arena_too_large(layout, link_bytes);
    if (!arena_ || arena_->size() < layout.size()) {
      arena_.reset();  // unmap the old one first: both at once could exceed memory
      arena_.emplace(layout.size());
    }
    control_ = new (arena_->at(control_at)) SharedControl{};
    state_.share(*control_);
    blocks_.emplace(infos_.size(), kCount, arena_->at(blocks_at));
    for (std::size_t id = 0; id < infos_.size(); ++id) {
      new (arena_->at(outcomes_at) + id * sizeof(std::atomic<WorkerOutcome>))
          std::atomic<WorkerOutcome>(WorkerOutcome::running);
    }
    outcomes_ = std::launder(reinterpret_cast<std::atomic<WorkerOutcome>*>(arena_->at(outcomes_at)));
    result_block_ = new (arena_->at(result_at)) ResultBlock{};
    result_capacity_ = result_bytes;
    shm_offsets_ = std::move(link_at);
    gate_offsets_ = std::move(gate_at);
  }

  // The links between processes need more shared memory than a process can map: a
  // ConfigError naming the stage whose link is the largest, before anything starts.
  [[noreturn]] void throw_arena_too_large(const ArenaLayout& layout,
                                          const std::vector<std::size_t>& link_bytes) const {
    const auto largest = static_cast<std::size_t>(
        std::max_element(link_bytes.begin(), link_bytes.end()) - link_bytes.begin());
    const std::string total = layout.overflowed() ? std::string("more than 2^64 bytes")
                                                  : fmt::format("{} bytes", layout.size());
    throw ConfigError(fmt::format(
        "plumb.config_error: the links between this run's worker processes need {} of shared "
        "memory, over the {} bytes a process can map; the largest is the output link of {}: "
        "in_flight({}) slots of max_message_size({}) bytes ({} bytes); lower in_flight or "
        "max_message_size there or on the other process links",
        total, kMaxArenaBytes, describe_stage(largest, names_[largest]), plan_.capacity[largest],
        specs_options(largest).max_message_size, link_bytes[largest]));
  }

  // Slot size of the shared link after stage Index: the exact size of its messages when every
  // message has the same size, else the stage's max_message_size.
  template <std::size_t Index>
  std::size_t slot_bytes() const {
    const std::size_t limit = specs_options(Index).max_message_size;
    const std::size_t fixed = kFixedEncodedSize<Output<Index>>;
    return fixed != 0 ? std::min(fixed, limit) : limit;
  }

  const StageOptions& specs_options(std::size_t stage) const {
    const StageOptions* options = nullptr;
    with_index<kCount>(stage, [&](auto index) { options = &std::get<decltype(index)::value>(specs_).options(); });
    return *options;
  }

  void make_links() {
    gates_.assign(plan_.groups.size(), nullptr);
    for (std::size_t g = 0; g + 1 < plan_.groups.size(); ++g) {
      const GroupPlan& group = plan_.groups[g];
      if (group.ordered) {
        const std::size_t window = plan_.capacity[group.last];
        if (arena_ && !gate_offsets_.empty()) {
          gates_[g] = OrderGate::create(arena_->at(gate_offsets_[g]), window);
        } else {
          auto& owned = owned_gates_.emplace_back(static_cast<std::byte*>(::operator new(
              OrderGate::bytes_for(window), std::align_val_t{kCacheLine})));
          gates_[g] = OrderGate::create(owned.get(), window);
        }
        OrderGate* gate = gates_[g];
        state_.on_stop([gate] { gate->wake_all(); });
      }
      with_index<kSink>(group.last, [&](auto index) {
        constexpr std::size_t kIndex = decltype(index)::value;
        if (!shared_link_[kIndex]) {
          auto& link = std::get<kIndex>(ring_links_);
          link = std::make_unique<RingLink<Output<kIndex>>>(plan_.capacity[kIndex], group.workers,
                                                            plan_.groups[g + 1].workers);
          auto* core = &link->core();
          state_.on_stop([core] { core->wake_all(); });
        } else if constexpr (is_serializable_v<Output<kIndex>>) {
          auto& link = std::get<kIndex>(shm_links_);
          link = std::make_unique<ShmLink<Output<kIndex>>>(
              arena_->at(shm_offsets_[kIndex]), plan_.capacity[kIndex],
              slot_bytes<kIndex>(), group.workers, plan_.groups[g + 1].workers);
          auto* core = &link->core();
          state_.on_stop([core] { core->wake_all(); });
        }
      });
    }
  }

  // --- Worker processes -------------------------------------------------------------------------

  // Forks every worker process from a thread of the run's own (fork_thread.hpp: their
  // parent-death signal must not come with the end of the thread that called stream()).
  void fork_workers() noexcept {
    flush_before_fork();  // or what the caller buffered would be written once per process
    auto fork_all = [this]() noexcept { fork_each_worker(); };
    if (const int error = fork_thread_.run(fork_all); error != 0) {
      try {
        state_.fail(std::make_exception_ptr(IpcError(
                        "plumb.ipc_error: could not start the thread that forks the worker "
                        "processes",
                        std::error_code(error, std::system_category()))),
                    std::nullopt);
      } catch (...) {
        state_.fail(std::current_exception(), std::nullopt);  // the message could not be built
      }
    }
  }

  // On the fork thread.
  void fork_each_worker() noexcept {
    const pid_t parent = ::getpid();
    for (std::size_t id = 0; id < infos_.size(); ++id) {
      const GroupPlan& group = plan_.groups[group_of_worker_[id]];
      if (group.mode != Mode::process) continue;
      const pid_t pid = ::fork();
      const int fork_errno = errno;
      if (pid < 0) {
        try {
          state_.fail(std::make_exception_ptr(IpcError(
                          fmt::format("plumb.ipc_error: fork() failed for {} worker {}",
                                      describe_stage(group.first, names_[group.first]),
                                      infos_[id][group.first].index),
                          std::error_code(fork_errno, std::system_category()))),
                      std::nullopt);
        } catch (...) {
          state_.fail(std::current_exception(), std::nullopt);  // the message could not be built
        }
        return;
      }
      if (pid == 0) process_main(group, id, parent);  // never returns
      // Reserved before the first fork: cannot throw.
      children_.push_back(Child{pid, open_pidfd(pid), id, group.first, infos_[id][group.first].index});
    }
  }

  [[noreturn]] void process_main(const GroupPlan& group, std::size_t id, pid_t parent) noexcept {
    arm_parent_death_signal(parent);
    drop_inherited_output();
    close_pidfds(children_);  // the earlier siblings' pidfds are the caller's business
    ::close(thread_done_.fd());
    state_.become_worker_process();
    Outcome outcome = run_worker(group, id, nullptr);
    if constexpr (!std::is_void_v<Result>) {
      if (outcome == Outcome::finished && group.last == kSink) outcome = write_remote_result(id);
    }
    const WorkerOutcome said = outcome == Outcome::finished ? WorkerOutcome::finished
                               : outcome == Outcome::failed ? WorkerOutcome::reported
                                                            : WorkerOutcome::stopped;
    outcomes_[id].store(said, std::memory_order_release);  // [sync W-O] pairs with [sync R-O]
    flush_own_output();
    ::_exit(static_cast<int>(outcome == Outcome::finished ? WorkerExit::finished
                             : outcome == Outcome::failed ? WorkerExit::reported
                                                          : WorkerExit::stopped));
  }

  // In the sink's worker process: the sink's value, serialized for the caller.
  Outcome write_remote_result(std::size_t id) noexcept {
    if constexpr (!std::is_void_v<Result> && is_serializable_v<Result>) {
      try {
        const std::size_t size = serialized_size(*result_);
        if (size > result_capacity_) {
          const WorkerInfo& info = infos_[id][kSink];
          throw StageError(
              fmt::format("plumb.stage_error: {} worker {} returned a value of {} bytes, over its "
                          "max_message_size({}); raise .max_message_size() on {}",
                          describe_stage(kSink, info.stage_name), info.index, size,
                          result_capacity_, describe_stage(kSink, info.stage_name)),
              kSink, info.stage_name, info.index);
        }
        auto* bytes = reinterpret_cast<std::byte*>(result_block_ + 1);
        Writer writer(std::span<std::byte>(bytes, size));
        writer.write(*result_);
        result_block_->size = size;
        result_block_->written.store(1, std::memory_order_release);  // [sync W-R]
        return Outcome::finished;
      } catch (...) {
        const std::exception_ptr error = std::current_exception();
        state_.fail(error, make_failure(infos_[id][kSink], error));
        return Outcome::failed;
      }
    } else {
      (void)id;
      return Outcome::finished;
    }
  }

  Result read_remote_result() {
    if constexpr (!std::is_void_v<Result> && is_serializable_v<Result>) {
      PLUMB_ASSERT(result_block_->written.load(std::memory_order_acquire) == 1,  // [sync W-R]
                   "plumb: the sink's process finished without a result");
      const auto* bytes = reinterpret_cast<const std::byte*>(result_block_ + 1);
      Reader reader(std::span<const std::byte>(bytes, result_block_->size));
      return reader.read<Result>();
    } else {
      PLUMB_ASSERT(false, "plumb: unreachable: a non-serializable result was rejected before");
      std::abort();
    }
  }

  // Judges a worker process that exited (reaped with waitid). Its exit status is believed only
  // where its outcome word agrees: exit(70) from user code is a death, not a report.
  void judge_exit(const Child& child, const siginfo_t& info) {
    const WorkerInfo& worker = infos_[child.worker_id][child.stage_index];
    const WorkerOutcome said = outcomes_[child.worker_id].load(std::memory_order_acquire);  // [sync R-O]
    if (info.si_code == CLD_EXITED) {
      const auto status = static_cast<WorkerExit>(info.si_status);
      if (status == WorkerExit::finished && said == WorkerOutcome::finished) return;
      if (status == WorkerExit::stopped && said == WorkerOutcome::stopped) return;
      if (status == WorkerExit::reported && said == WorkerOutcome::reported) return adopt_report();
      if (status == WorkerExit::finished) {
        return report_death(child, worker, "exited with status 0 before finishing its stream");
      }
      return report_death(child, worker, fmt::format("exited with status {}", info.si_status));
    }
    if (killed_after_grace_) return;  // we killed it: the run's error is already recorded
    report_death(child, worker, fmt::format("was killed by signal {}", signal_name(info.si_status)));
  }

  // A child whose exit status somebody else took (SIGCHLD ignored, or a waitpid(-1) elsewhere
  // in the application): judged by its outcome word alone.
  void judge_vanished(const Child& child) {
    const WorkerInfo& worker = infos_[child.worker_id][child.stage_index];
    switch (outcomes_[child.worker_id].load(std::memory_order_acquire)) {  // [sync R-O]
      case WorkerOutcome::finished:
      case WorkerOutcome::stopped:
        return;
      case WorkerOutcome::reported:
        return adopt_report();
      case WorkerOutcome::running:
        break;
    }
    if (killed_after_grace_) return;
    report_death(child, worker,
                 "ended without finishing its stream, and its exit status was collected by "
                 "someone else (is SIGCHLD ignored, or does the application call waitpid(-1)?)");
  }

  void adopt_report() {
    if (!control_->failure.written()) return;
    auto [error, failure] = rebuild_remote(control_->failure);
    state_.adopt(std::move(error), std::move(failure));
  }

  void report_death(const Child& child, const WorkerInfo& worker, const std::string& how) {
    state_.fail(std::make_exception_ptr(WorkerDiedError(
                    fmt::format("plumb.stage_error: {} worker {} (pid {}) {}",
                                describe_stage(worker.stage_index, worker.stage_name), worker.index,
                                child.pid, how),
                    worker.stage_index, worker.stage_name, worker.index, child.pid)),
                Failure{worker.stage_index, worker.stage_name, worker.index, how, child.pid});
  }

  // A worker process claimed the run's error but the caller did not adopt it (it died before
  // its exit status said so): take what it wrote, or say that it was lost.
  void adopt_unreported_failure() {
    if (control_ == nullptr || state_.error() || !state_.failed_anywhere()) return;
    if (control_->failure.written()) {
      auto [error, failure] = rebuild_remote(control_->failure);
      state_.adopt(std::move(error), std::move(failure));
    } else {
      state_.adopt(std::make_exception_ptr(Error(
                       "plumb.error: a worker process failed and died before it could report why")),
                   std::nullopt);
    }
  }

  // --- Workers (any kind) -------------------------------------------------------------------------

  // A worker thread (or the calling thread): runs, then tells the supervisor.
  void thread_main(const GroupPlan& group, std::size_t id, Monitor* inline_monitor = nullptr) noexcept {
    run_worker(group, id, inline_monitor);
    {
      std::lock_guard lock(mutex_);
      --running_;
    }
    finished_cv_.notify_all();
    thread_done_.notify();
  }

  // The body of one worker. Never throws: every error is recorded in state_.
  Outcome run_worker(const GroupPlan& group, std::size_t id, Monitor* inline_monitor) noexcept {
    WorkerTally tally(blocks_->clock(id), blocks_->slots(id), options_.timing, ns_per_tick_);
    tally.start();
    WorkerContext context(stop(), infos_[id], tally, inline_monitor);
    const CurrentStopWordScope stop_word_scope(&context.stop().word());  // for stop_requested()
    Outcome outcome = Outcome::finished;
    std::optional<OrderCursor> order;
    if (group.ordered) {
      order.emplace(*gates_[group_of_worker_[id]], output_ref(group.last));
      context.set_order(&*order);
    }
    OrderCursor* const cursor = order ? &*order : nullptr;
    try {
      context.check_stop();
      with_index<kCount>(group.first, [&](auto first) {
        constexpr std::size_t kFirst = decltype(first)::value;
        if constexpr (kFirst == 0) {
          run_from<0>(static_cast<Input<void>*>(nullptr), context);
        } else {
          using In = InputType<kFirst>;
          if (!shared_link_[kFirst - 1]) {
            LinkInput<In> input(*std::get<kFirst - 1>(ring_links_), stop(), tally);
            input.set_take_hook(cursor);
            run_viewed_or_not<kFirst>(input, context);
          } else if constexpr (is_serializable_v<In> && kReadsViews<kFirst>) {
            ShmViewInput<In> input(*std::get<kFirst - 1>(shm_links_), stop(), tally);
            input.set_take_hook(cursor);
            run_from<kFirst>(&input, context);
          } else if constexpr (is_serializable_v<In>) {
            ShmInput<In> input(*std::get<kFirst - 1>(shm_links_), stop(), tally);
            input.set_take_hook(cursor);
            run_from<kFirst>(&input, context);
          }
        }
      });
    } catch (const Stopped&) {
      outcome = Outcome::stopped;  // the run's error is recorded elsewhere
    } catch (...) {
      const std::exception_ptr error = std::current_exception();
      std::optional<Failure> failure;
      try {
        failure = context.failure_of(error, infos_[id][group.last]);
      } catch (...) {
        // Out of memory while describing it: report the error without the description.
      }
      state_.fail(error, std::move(failure));
      outcome = Outcome::failed;
    }
    if (group.last != kSink) producer_done(group.last);
    tally.finish();
    return outcome;
  }

  // After a stop, the packets that ordered groups parked in their in-process output links (they
  // never reached the ready ring, whose drain destroys the rest; L2).
  void destroy_parked() noexcept {
    for (std::size_t g = 0; g < gates_.size(); ++g) {
      if (gates_[g] == nullptr) continue;
      with_index<kSink>(plan_.groups[g].last, [&](auto index) {
        constexpr std::size_t kIndex = decltype(index)::value;
        auto& link = std::get<kIndex>(ring_links_);
        if (shared_link_[kIndex] || !link) return;
        gates_[g]->drain_parked([&](std::uint32_t slot) { link->destroy(slot); });
      });
    }
  }

  // The output link after `stage` (the last of an ordered group), for its OrderGate.
  OutputRef output_ref(std::size_t stage) noexcept {
    OutputRef ref;
    with_index<kSink>(stage, [&](auto index) {
      constexpr std::size_t kIndex = decltype(index)::value;
      if (!shared_link_[kIndex]) {
        ref = OutputRef::of(std::get<kIndex>(ring_links_)->core());
      } else if constexpr (is_serializable_v<Output<kIndex>>) {
        ref = OutputRef::of(std::get<kIndex>(shm_links_)->core());
      }
    });
    return ref;
  }

  void producer_done(std::size_t stage) noexcept {
    with_index<kSink>(stage, [&](auto index) {
      constexpr std::size_t kIndex = decltype(index)::value;
      if (!shared_link_[kIndex]) {
        std::get<kIndex>(ring_links_)->core().producer_done();
      } else if constexpr (is_serializable_v<Output<kIndex>>) {
        std::get<kIndex>(shm_links_)->core().producer_done();
      }
    });
  }

  // Runs stage Index on `input` in this worker, then the stages fused after it.
  template <std::size_t Index, class In>
  void run_from(Input<In>* input, WorkerContext& context) {
    using Rules = StageRules<Index, Stages...>;
    const WorkerInfo& info = context.info(Index);
    call_stage<Index>(specs_, input, info, context, [&](auto& invoke) {
      if constexpr (Rules::is_sink) {
        if constexpr (std::is_void_v<Result>) {
          invoke();
        } else {
          Result value = invoke();
          if (input->has_unread()) throw_returned_early(context, info);
          result_.emplace(std::move(value));
          return;
        }
        if (input->has_unread()) throw_returned_early(context, info);
      } else {
        const bool fused_next = plan_.fused[Index + 1];
        GeneratorInput<Output<Index>> output(invoke(), info, input, context, fused_next);
        if (fused_next) {
          run_viewed_or_not<Index + 1>(static_cast<Input<Output<Index>>&>(output), context);
        } else if (!shared_link_[Index]) {
          auto& link = *std::get<Index>(ring_links_);
          if (context.order() != nullptr) {
            produce_ordered(link.core(), output, context, info,
                            [&](std::uint32_t slot, Output<Index>& packet) {
                              link.fill(slot, std::move(packet), stop());
                            });
          } else {
            produce(link, output, context.tally());
          }
        } else if constexpr (is_serializable_v<Output<Index>>) {
          produce_shared(*std::get<Index>(shm_links_), output, context, info);
        }
      }
    });
  }

  // Runs stage Index on the packets of `input` in place: as they are, or as Views of them.
  template <std::size_t Index, class In>
  void run_viewed_or_not(Input<In>& input, WorkerContext& context) {
    if constexpr (kReadsViews<Index>) {
      ViewInput<In> views(input);
      run_from<Index>(static_cast<Input<View<In>>*>(&views), context);
    } else {
      run_from<Index>(&input, context);
    }
  }

  // Drains a group's last generator into its output link: a slot first (the generator is not
  // resumed before there is room), then the packet, handed to `publish(slot, packet)`.
  template <class Core, class T, class Publish>
  void produce(Core& core, Input<T>& output, WorkerTally& tally, Publish&& publish) {
    for (;;) {
      const std::uint32_t slot = core.acquire_slot(stop(), tally.output_timer());
      T* packet = nullptr;
      try {
        packet = output.next();
      } catch (...) {
        core.return_slot(slot, stop());
        throw;
      }
      if (packet == nullptr) {
        core.return_slot(slot, stop());
        return;
      }
      publish(slot, *packet);
    }
  }

  template <class T>
  void produce(RingLink<T>& link, Input<T>& output, WorkerTally& tally) {
    produce(link.core(), output, tally,
            [&](std::uint32_t slot, T& packet) { link.publish(slot, std::move(packet), stop()); });
  }

  // An ordered group's loop (OrderGate): the packet first, then a slot for it (a group that
  // already parked a packet waits for its turn before it takes a second slot: G2), then the
  // gate queues it in turn. `fill(slot, packet)` writes the packet into the slot (giving the
  // slot back if it throws).
  template <class Core, class T, class Fill>
  void produce_ordered(Core& core, Input<T>& output, WorkerContext& context,
                       const WorkerInfo& info, Fill&& fill) {
    OrderCursor& order = *context.order();
    for (;;) {
      T* packet = output.next();
      if (packet == nullptr) {
        order.finish(stop());
        return;
      }
      if (order.has_group()) {
        order.gate().before_slot(order.group(), stop());
      } else if (order.ended()) {
        order.gate().before_trailing_slot(order.total(), stop());
      } else {
        auto error = std::make_exception_ptr(StageError(
            fmt::format("plumb.stage_error: {} worker {} yielded a packet before it took its "
                        "first input, so the packet has no place in the order of its input "
                        "(ordered()); read from the plumb::Stream before yielding, or remove "
                        ".ordered()",
                        describe_stage(info.stage_index, info.stage_name), info.index),
            info.stage_index, info.stage_name, info.index));
        context.attribute(info, error);
        std::rethrow_exception(error);
      }
      const std::uint32_t slot = core.acquire_slot(stop(), context.tally().output_timer());
      fill(slot, *packet);
      order.publish(slot, stop());
    }
  }

  // Into a shared link the packet is serialized into the slot; one that does not fit is an
  // error of the producing stage.
  template <class T>
  void produce_shared(ShmLink<T>& link, Input<T>& output, WorkerContext& context,
                      const WorkerInfo& info) {
    if (context.order() != nullptr) {
      return produce_ordered(link.core(), output, context, info,
                             [&](std::uint32_t slot, const T& packet) {
                               const std::size_t size = link.publish(slot, packet, stop(), false);
                               if (size != 0) throw_too_big(link, context, info, size);
                             });
    }
    produce(link.core(), output, context.tally(), [&](std::uint32_t slot, const T& packet) {
      const std::size_t size = link.publish(slot, packet, stop());
      if (size != 0) throw_too_big(link, context, info, size);
    });
  }

  template <class T>
  [[noreturn]] void throw_too_big(ShmLink<T>& link, WorkerContext& context, const WorkerInfo& info,
                                  std::size_t size) {
    auto error = std::make_exception_ptr(StageError(
        fmt::format("plumb.stage_error: {} worker {} produced a message of {} bytes, over the "
                    "max_message_size({}) of its output link; raise .max_message_size() on {}",
                    describe_stage(info.stage_index, info.stage_name), info.index, size,
                    link.slot_bytes(), describe_stage(info.stage_index, info.stage_name)),
        info.stage_index, info.stage_name, info.index));
    context.attribute(info, error);
    std::rethrow_exception(error);
  }

  // --- Supervision ---------------------------------------------------------------------------------

  // Waits for every worker thread and process, driving the monitor, noticing each process's end
  // at once, and killing the remaining processes (all at once) once the grace period after the
  // first error has passed. Never throws: a failing monitor becomes the run's error.
  void supervise() noexcept {
    if (children_.empty()) return supervise_threads();
    using Clock = std::chrono::steady_clock;
    std::optional<Clock::time_point> kill_at;
    bool monitoring = true;  // until the progress callback throws
    for (;;) {
      reap_children();
      const bool threads_running = [&] {
        std::lock_guard lock(mutex_);
        return running_ != 0;
      }();
      const bool children_running =
          std::any_of(children_.begin(), children_.end(), [](const Child& child) { return !child.reaped; });
      if (!threads_running && !children_running) return;
      if (state_.stopping() && !kill_at) {
        // A worker process may have set the shared stop word: wake this process's own links
        // too (their futexes are private to it).
        try {
          state_.wake_local();
        } catch (...) {
        }
        // Saturated: a grace period of duration::max() means "never kill".
        kill_at = later_by(Clock::now(), options_.grace_period);
      }
      if (kill_at && children_running && Clock::now() >= *kill_at && !killed_after_grace_) {
        killed_after_grace_ = true;
        for (const Child& child : children_) {
          if (!child.reaped) kill_child(child);
        }
      }
      auto timeout = std::chrono::milliseconds(100);
      if (monitoring) timeout = std::min(timeout, std::chrono::duration_cast<std::chrono::milliseconds>(monitor_->tick()));
      if (kill_at && !killed_after_grace_) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(*kill_at - Clock::now());
        timeout = std::clamp(left + std::chrono::milliseconds(1), std::chrono::milliseconds(0), timeout);
      }
      wait_for_events(children_, thread_done_, timeout);
      thread_done_.drain();
      if (monitoring) {
        try {
          monitor_->poll();
        } catch (...) {
          state_.fail(std::current_exception(), std::nullopt);
          monitoring = false;
        }
      }
    }
  }

  void reap_children() noexcept {
    for (Child& child : children_) {
      if (child.reaped) continue;
      siginfo_t info{};
      const int reaped = ::waitid(P_PID, static_cast<id_t>(child.pid), &info, WEXITED | WNOHANG);
      const bool vanished = reaped != 0 && errno == ECHILD;
      if (reaped != 0 && !vanished) continue;  // EINTR: next round
      if (!vanished && info.si_pid == 0) continue;  // still running
      if (vanished && child.pidfd >= 0 && !pidfd_exited(child.pidfd)) continue;
      child.reaped = true;
      try {
        if (vanished) {
          judge_vanished(child);
        } else {
          judge_exit(child, info);
        }
      } catch (...) {
        state_.fail(std::current_exception(), std::nullopt);
      }
    }
  }

  // Only threads: wait on the condition variable, driving the monitor meanwhile.
  void supervise_threads() noexcept {
    std::unique_lock lock(mutex_);
    const auto finished = [this] { return running_ == 0; };
    bool monitoring = true;  // until the progress callback throws
    while (!finished()) {
      if (!monitoring) {
        finished_cv_.wait(lock, finished);
        break;
      }
      if (finished_cv_.wait_for(lock, monitor_->tick(), finished)) break;
      lock.unlock();
      try {
        monitor_->poll();
      } catch (...) {
        state_.fail(std::current_exception(), std::nullopt);
        monitoring = false;
      }
      lock.lock();
    }
  }

  std::tuple<const Stages&...> specs_;
  const RunOptions& options_;
  RunState& state_;
  std::span<const std::string> names_;
  const Plan& plan_;
  std::vector<std::vector<WorkerInfo>> infos_;  // per worker id, per stage of its group
  std::vector<std::size_t> group_of_worker_;    // per worker id
  std::vector<bool> shared_link_;               // per stage: its output link is a ShmLink

  ArenaCache& arena_;  // only used with worker processes
  SharedControl* control_ = nullptr;
  std::atomic<WorkerOutcome>* outcomes_ = nullptr;  // per worker id, set by its process
  ResultBlock* result_block_ = nullptr;
  std::size_t result_capacity_ = 0;
  std::vector<std::size_t> shm_offsets_;
  std::vector<std::size_t> gate_offsets_;  // per group: its OrderGate in the arena (processes)
  struct AlignedDelete {
    void operator()(std::byte* block) const noexcept {
      std::destroy_at(std::launder(reinterpret_cast<OrderGate*>(block)));
      ::operator delete(block, std::align_val_t{kCacheLine});
    }
  };
  std::vector<std::unique_ptr<std::byte, AlignedDelete>> owned_gates_;  // threads only
  std::vector<OrderGate*> gates_;  // per group: its OrderGate, if it is ordered
  std::vector<Child> children_;
  bool killed_after_grace_ = false;
  ForkThread fork_thread_;  // the worker processes' parent thread, until finish() reaped them

  Stats& stats_;
  std::chrono::steady_clock::time_point start_;
  std::optional<StatsBlocks> blocks_;
  double ns_per_tick_ = 1.0;  // TickClock's, as of the start of the run
  std::optional<Monitor> monitor_;  // from the start of run()
  RingLinks ring_links_;
  ShmLinks shm_links_;
  ResultStore result_;  // written by the sink worker, read after it was joined

  std::mutex mutex_;
  std::condition_variable finished_cv_;
  std::size_t running_ = 0;  // worker threads (and the caller, if it works) still running; mutex_
  ThreadDoneSignal thread_done_;

  bool streams_ = false;
  bool caller_runs_source_ = false;
  bool supervised_ = false;  // helper_ supervises
  std::vector<std::thread> workers_;
  std::jthread helper_;
  std::optional<std::stop_callback<CancelRun>> on_cancel_;

  // The caller's end of a stream (after the links: destroyed before them).
  std::optional<WorkerTally> caller_tally_;
  std::optional<WorkerContext> caller_context_;
  std::vector<std::unique_ptr<ChainNode>> chain_;  // sequential stream: the caller's stages
  std::optional<LinkInput<Streamed>> caller_ring_input_;
  std::optional<std::conditional_t<is_serializable_v<Streamed>, ShmInput<Streamed>, int>>
      caller_shm_input_;
  Input<Streamed>* caller_input_ = nullptr;
};

}  // namespace plumb::detail
