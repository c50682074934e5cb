#pragma once
// SPDX-License-Identifier: MIT
// plumb/detail/runner.hpp: runs a planned pipeline: links between groups, one worker per thread
// (or the calling thread), the supervisor that waits, monitors and collects the first error.

#include <plumb/detail/assert.hpp>
#include <plumb/detail/chain.hpp>
#include <plumb/detail/monitor.hpp>
#include <plumb/detail/plan.hpp>
#include <plumb/detail/ring_link.hpp>
#include <plumb/detail/run_state.hpp>
#include <plumb/detail/type_rules.hpp>
#include <plumb/detail/wait.hpp>
#include <plumb/run_options.hpp>
#include <plumb/worker.hpp>

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

// One run of a pipeline: Sequential, thread and (mixed) fused modes share this one path and
// differ only in where each group's workers run and whether a link sits between two stages.
//
// Every worker runs its group's first stage over its input (a LinkInput, or nothing for the
// source), chains the fused stages after it through GeneratorInputs, and either drains the last
// generator into the group's output link (produce) or is the sink.
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

  template <std::size_t... Index>
  static auto link_tuple(std::index_sequence<Index...>)
      -> std::tuple<std::unique_ptr<RingLink<Output<Index>>>...>;
  using Links = decltype(link_tuple(std::make_index_sequence<kSink>{}));

 public:
  // The links die with the Runner; a stop request that arrives later must not wake them.
  ~Runner() { state_.clear_wakers(); }
  Runner(const Runner&) = delete;
  Runner& operator=(const Runner&) = delete;

  Runner(const std::tuple<Stages...>& specs, const RunOptions& options, RunState& state,
         std::span<const std::string> names, const Plan& plan)
      : specs_(specs), options_(options), state_(state), names_(names), plan_(plan) {
    for (const GroupPlan& group : plan_.groups) {
      for (std::size_t worker = 0; worker < group.workers; ++worker) {
        std::vector<WorkerInfo> infos(kCount);
        for (std::size_t stage = group.first; stage <= group.last; ++stage) {
          infos[stage] = WorkerInfo{names_[stage], stage, worker, group.workers};
        }
        infos_.push_back(std::move(infos));
      }
    }
  }

  // Runs to completion. Returns the sink's value or rethrows the run's first error.
  Result run() {
    counters_.emplace(infos_.size(), kSink);
    if (Monitor::wanted(options_)) monitor_.emplace(options_, state_, *counters_, kSink);
    const std::size_t threads = plan_.thread_workers();
    make_links(SpinPolicy{});
    // Cancellation through the stop_token; the callback dies before the links (it is a local
    // of this function), and ~Runner clears the wakers it could reach.
    const std::stop_callback on_cancel(options_.stop_token, [this] {
      state_.fail(std::make_exception_ptr(CancelledError(
                      "plumb.cancelled: the run was cancelled through RunOptions::stop_token")),
                  std::nullopt);
    });

    const bool caller_runs_source = plan_.groups.front().mode == Mode::sequential;
    running_ = threads + (caller_runs_source ? 1 : 0);
    std::vector<std::thread> workers;
    workers.reserve(threads);
    try {
      std::size_t worker_id = caller_runs_source ? 1 : 0;
      for (std::size_t g = caller_runs_source ? 1 : 0; g < plan_.groups.size(); ++g) {
        const GroupPlan& group = plan_.groups[g];
        for (std::size_t worker = 0; worker < group.workers; ++worker, ++worker_id) {
          workers.emplace_back([this, &group, worker_id] { run_worker(group, worker_id, nullptr); });
        }
      }
    } catch (...) {
      // Could not start a thread: stop the ones that started. Workers never started count as
      // finished.
      state_.fail(std::current_exception(), std::nullopt);
      std::lock_guard lock(mutex_);
      running_ -= threads - workers.size();
    }

    bool supervised = false;
    if (caller_runs_source) {
      // The calling thread runs the source's group. With no other thread it also drives the
      // monitor per packet (as in sequential mode); otherwise a helper thread supervises (and
      // if that thread cannot start, the calling thread supervises once the source is done).
      std::jthread helper;
      if (monitor_ && threads > 0) {
        try {
          helper = std::jthread([this] { supervise(); });
          supervised = true;
        } catch (...) {
        }
      }
      run_worker(plan_.groups.front(), 0, threads == 0 && monitor_ ? &*monitor_ : nullptr);
    }
    if (!supervised) supervise();
    for (std::thread& worker : workers) worker.join();

    if (const std::exception_ptr error = state_.error()) std::rethrow_exception(error);
    if (monitor_) monitor_->report_finished();
    if constexpr (!std::is_void_v<Result>) {
      PLUMB_ASSERT(result_.has_value(), "plumb: the sink finished without a result");
      return std::move(*result_);
    }
  }

 private:
  template <std::size_t Index>
  RingLink<Output<Index>>& link() noexcept {
    return *std::get<Index>(links_);
  }

  void make_links(SpinPolicy spin) {
    for (std::size_t g = 0; g + 1 < plan_.groups.size(); ++g) {
      const GroupPlan& group = plan_.groups[g];
      with_index<kSink>(group.last, [&](auto index) {
        constexpr std::size_t kIndex = decltype(index)::value;
        auto& slot = std::get<kIndex>(links_);
        slot = std::make_unique<RingLink<Output<kIndex>>>(plan_.capacity[kIndex], group.workers, spin);
        RingLinkCore* core = slot.get();
        state_.on_stop([core] { core->wake_all(); });
      });
    }
  }

  // The body of one worker thread (or of the calling thread for a sequential source group).
  // Never throws: every error is recorded in state_.
  void run_worker(const GroupPlan& group, std::size_t worker_id, Monitor* inline_monitor) noexcept {
    WorkerContext context(state_, infos_[worker_id], counters_->block(worker_id), inline_monitor);
    try {
      context.check_stop();
      with_index<kCount>(group.first, [&](auto first) {
        constexpr std::size_t kFirst = decltype(first)::value;
        if constexpr (kFirst == 0) {
          run_from<0>(static_cast<Input<void>*>(nullptr), context);
        } else {
          LinkInput<InputType<kFirst>> input(link<kFirst - 1>(), state_);
          run_from<kFirst>(&input, context);
        }
      });
    } catch (const Stopped&) {
      // The run's error is recorded elsewhere.
    } catch (...) {
      const std::exception_ptr error = std::current_exception();
      state_.fail(error, context.failure_of(error, infos_[worker_id][group.last]));
    }
    if (group.last != kSink) output_core(group.last).producer_done();
    {
      std::lock_guard lock(mutex_);
      --running_;
    }
    finished_.notify_all();
  }

  RingLinkCore& output_core(std::size_t stage) noexcept {
    RingLinkCore* core = nullptr;
    with_index<kSink>(stage, [&](auto index) { core = std::get<decltype(index)::value>(links_).get(); });
    return *core;
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
        GeneratorInput<Output<Index>> output(invoke(), info, input, context);
        if (plan_.fused[Index + 1]) {
          run_from<Index + 1>(static_cast<Input<Output<Index>>*>(&output), context);
        } else {
          produce(link<Index>(), output);
        }
      }
    });
  }

  // Drains a group's last generator into its output link: a slot first, then the packet.
  template <class T>
  void produce(RingLink<T>& link, Input<T>& output) {
    for (;;) {
      const std::uint32_t slot = link.acquire_slot(state_);
      T* packet = nullptr;
      try {
        packet = output.next();
      } catch (...) {
        link.return_slot(slot);
        throw;
      }
      if (packet == nullptr) {
        link.return_slot(slot);
        return;
      }
      link.publish(slot, std::move(*packet));
    }
  }

  // Waits for every worker, driving the monitor meanwhile. Never throws: a failing monitor (a
  // progress callback that throws) becomes the run's error and monitoring stops.
  void supervise() noexcept {
    std::unique_lock lock(mutex_);
    const auto finished = [this] { return running_ == 0; };
    bool monitoring = monitor_.has_value();
    while (!finished()) {
      if (!monitoring) {
        finished_.wait(lock, finished);
        break;
      }
      if (finished_.wait_for(lock, monitor_->tick(), finished)) break;
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

  const std::tuple<Stages...>& specs_;
  const RunOptions& options_;
  RunState& state_;
  std::span<const std::string> names_;
  const Plan& plan_;
  std::vector<std::vector<WorkerInfo>> infos_;  // per worker (id), per stage of its group
  std::optional<PacketCounters> counters_;
  std::optional<Monitor> monitor_;
  Links links_;
  ResultStore result_;  // written by the sink worker, read after it was joined

  std::mutex mutex_;
  std::condition_variable finished_;
  std::size_t running_ = 0;  // workers still running; guarded by mutex_
};

}  // namespace plumb::detail
