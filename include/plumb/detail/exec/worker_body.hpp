#pragma once
// SPDX-License-Identifier: MIT
// plumb/detail/exec/worker_body.hpp: WorkerBody, what every worker runs wherever it runs (the
// calling thread, a thread, a process): its input, its group's chain of stages, and the end of
// the chain (drained into the output link, or the sink called, or handed to a stream's caller).

#include <plumb/detail/core/assert.hpp>
#include <plumb/detail/core/input.hpp>
#include <plumb/detail/core/type_rules.hpp>
#include <plumb/detail/core/with_index.hpp>
#include <plumb/detail/exec/executor.hpp>
#include <plumb/detail/exec/links.hpp>
#include <plumb/detail/order/order_gate.hpp>
#include <plumb/detail/run/monitor.hpp>
#include <plumb/detail/run/plan.hpp>
#include <plumb/detail/run/run_state.hpp>
#include <plumb/detail/stats/tally.hpp>
#include <plumb/detail/worker/chain.hpp>
#include <plumb/detail/worker/stage_chain.hpp>
#include <plumb/worker.hpp>

#include <cstddef>
#include <exception>
#include <optional>
#include <span>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace plumb::detail {

template <class... Stages>
class WorkerBody {
  static constexpr std::size_t kCount = sizeof...(Stages);
  static constexpr std::size_t kSink = kCount - 1;
  template <std::size_t Index>
  using Output = typename StageRules<Index, Stages...>::output;

 public:
  using Result = typename StageRules<kSink, Stages...>::result;
  // The sink's value: written by the one worker that runs the sink, read after it ended.
  using ResultStore = std::conditional_t<std::is_void_v<Result>, std::monostate, std::optional<Result>>;

  // `infos[id]`: worker id's WorkerInfo per stage of its group; `group_of[id]`: its group.
  WorkerBody(const std::tuple<const Stages&...>& specs, const Plan& plan,
             const std::vector<std::vector<WorkerInfo>>& infos,
             const std::vector<std::size_t>& group_of, LinkSet<Stages...>& links,
             RunState& state) noexcept
      : specs_(specs), plan_(plan), infos_(infos), group_of_(group_of), links_(links), state_(state) {}

  // Runs worker `id` to the end of its input (or the run's stop). Never throws: an error is
  // recorded in the run's state, charged to the stage it came from.
  Outcome run(std::size_t id, WorkerTally& tally, Monitor* inline_monitor) noexcept {
    const std::size_t g = group_of_[id];
    const GroupPlan& group = plan_.groups[g];
    tally.start();
    WorkerContext context(state_.stop_flag(), infos_[id], tally, inline_monitor);
    const CurrentStopWordScope stop_word_scope(&context.stop().word());  // for stop_requested()
    std::optional<OrderCursor> order;
    if (group.ordered) order.emplace(links_.gate(g), links_.gate_output(g));
    context.set_order(order ? &*order : nullptr);
    Outcome outcome = Outcome::finished;
    try {
      context.check_stop();
      ChainStore store;
      RunToEnd end{*this, context};
      open(group, store, context, end);
    } catch (const Stopped&) {
      outcome = Outcome::stopped;  // the run's error is recorded elsewhere
    } catch (...) {
      fail(context, infos_[id][group.last]);
      outcome = Outcome::failed;
    }
    if (group.last != kSink) links_.producer_done(group.last);
    tally.finish();
    return outcome;
  }

  // Builds the chain of `group` for the worker of `context` in `store`, from its input (a
  // consumer end of the link before it, or nothing for the source) to `end` (see ChainBuilder).
  template <class End>
  void open(const GroupPlan& group, ChainStore& store, WorkerContext& context, End& end) {
    with_index<kCount>(group.first, [&](auto first) {
      constexpr std::size_t kFirst = decltype(first)::value;
      ChainBuilder<Stages...> chain(specs_, plan_, store, context);
      if constexpr (kFirst == 0) {
        chain.template open<0>(static_cast<Input<void>*>(nullptr), end);
      } else {
        chain.template open<kFirst>(
            links_.template open_input<kFirst>(store, context.stop(), context.tally(), context.order(),
                                               context.info(kFirst).index),
            end);
      }
    });
  }

  // The exception in flight left the worker of `context`: the run's error (if it is the
  // first), charged to the stage it came from, else to `fallback`.
  void fail(WorkerContext& context, const WorkerInfo& fallback) noexcept {
    const std::exception_ptr error = std::current_exception();
    std::optional<Failure> failure;
    try {
      failure = context.failure_of(error, fallback);
    } catch (...) {
      // Out of memory while describing it: report the error without the description.
    }
    state_.fail(error, std::move(failure));
  }

  [[nodiscard]] ResultStore& result() noexcept { return result_; }

 private:
  // The end of a worker's chain: the chain runs to its end inside open().
  struct RunToEnd {
    WorkerBody& body;
    WorkerContext& context;

    template <std::size_t Index, class In>
    void at_sink(Input<In>* input) {
      body.call_sink<Index>(input, context);
    }
    template <std::size_t Index>
    void at_output(GeneratorInput<Output<Index>>& output) {
      const WorkerInfo& info = context.info(Index);
      body.links_.template drain<Index>(output, context, info, [this, &info] { body.fail(context, info); });
    }
  };

  // Calls the sink over `input` and keeps its value; it must have read its input to the end.
  template <std::size_t Index, class In>
  void call_sink(Input<In>* input, WorkerContext& context) {
    const WorkerInfo& info = context.info(Index);
    call_stage<Index>(specs_, input, info, context, [&](auto& invoke) {
      if constexpr (std::is_void_v<Result>) {
        invoke();
        if (input->has_unread()) throw_returned_early(context, info);
      } else {
        Result value = invoke();
        if (input->has_unread()) throw_returned_early(context, info);
        result_.emplace(std::move(value));
      }
    });
  }

  const std::tuple<const Stages&...>& specs_;
  const Plan& plan_;
  const std::vector<std::vector<WorkerInfo>>& infos_;  // filled by the owner before any run
  const std::vector<std::size_t>& group_of_;
  LinkSet<Stages...>& links_;
  RunState& state_;
  ResultStore result_;
};

}  // namespace plumb::detail
