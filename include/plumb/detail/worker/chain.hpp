#pragma once
// SPDX-License-Identifier: MIT
// plumb/detail/worker/chain.hpp: the pieces a worker chains its stages with: its context, a fused
// stage's generator as the next stage's input, and the call of a stage body.

#include <plumb/detail/buffer/stage_buffers.hpp>
#include <plumb/detail/core/format.hpp>
#include <plumb/detail/core/input.hpp>
#include <plumb/detail/core/type_rules.hpp>
#include <plumb/detail/order/order_gate.hpp>
#include <plumb/detail/run/monitor.hpp>
#include <plumb/detail/run/run_state.hpp>
#include <plumb/detail/stats/tally.hpp>
#include <plumb/detail/sync/stop_flag.hpp>
#include <plumb/detail/worker/split_check.hpp>
#include <plumb/error.hpp>
#include <plumb/generator.hpp>
#include <plumb/stream.hpp>
#include <plumb/worker.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <span>
#include <tuple>
#include <utility>

namespace plumb::detail {

// What one worker needs while it runs its group of stages: the run's stop flag, its own
// WorkerInfo for each stage of the group, its tally (counters and times), and which stage an
// exception in flight came from.
//
// Thread affinity: the worker's thread only.
class WorkerContext {
 public:
  WorkerContext(StopFlag stop, std::span<const WorkerInfo> infos, WorkerTally& tally,
                Monitor* inline_monitor) noexcept
      : stop_(stop), infos_(infos), tally_(tally), inline_monitor_(inline_monitor) {}

  [[nodiscard]] const WorkerInfo& info(std::size_t stage) const noexcept { return infos_[stage]; }
  [[nodiscard]] WorkerTally& tally() noexcept { return tally_; }

  // Throws Stopped once the run is stopping.
  void check_stop() const { stop_.check(); }

  [[nodiscard]] StopFlag stop() const noexcept { return stop_; }
  [[nodiscard]] Monitor* inline_monitor() const noexcept { return inline_monitor_; }

  // The worker's place in its ordered group, if the group is ordered.
  [[nodiscard]] OrderCursor* order() const noexcept { return order_; }
  void set_order(OrderCursor* order) noexcept { order_ = order; }

  // Called where an exception leaves a stage body: remembers that stage as the exception's
  // origin unless the exception is already known (it came from further upstream and only
  // passed through this stage's body).
  void attribute(const WorkerInfo& info, std::exception_ptr error) noexcept {
    if (error != origin_error_) {
      origin_error_ = std::move(error);
      origin_ = &info;
    }
  }
  void attribute_current(const WorkerInfo& info) noexcept {
    attribute(info, std::current_exception());
  }

  // The failure report of `error`, which left the worker: the stage it came from, else
  // `fallback` (the stage at the worker's outer end).
  [[nodiscard]] Failure failure_of(const std::exception_ptr& error,
                                   const WorkerInfo& fallback) const {
    const WorkerInfo& info = (error == origin_error_ && origin_ != nullptr) ? *origin_ : fallback;
    return make_failure(info, error);
  }

 private:
  StopFlag stop_;
  std::span<const WorkerInfo> infos_;
  WorkerTally& tally_;
  Monitor* inline_monitor_;
  OrderCursor* order_ = nullptr;
  std::exception_ptr origin_error_;
  const WorkerInfo* origin_ = nullptr;
};

// A processor or sink returned while its input still had packets.
[[noreturn]] inline void throw_returned_early(WorkerContext& context, const WorkerInfo& info) {
  auto error = std::make_exception_ptr(StageError(
      detail::format("plumb.stage_error: {} worker {} returned while its input still had packets, "
                  "which would be lost; read the whole plumb::Stream to its end before returning",
                  describe_stage(info.stage_index, info.stage_name), info.index),
      info.stage_index, info.stage_name, info.index));
  context.attribute(info, error);
  std::rethrow_exception(error);
}

// The generator of a stage, as the input of whoever consumes its packets in this worker: the
// stage fused after it (no link, no copy: the consumer reads the object the generator
// yielded), or the loop that moves them into the group's output link.
template <class T>
class GeneratorInput final : public Input<T> {
 public:
  // `upstream` is the stage's own input (nullptr for a source). `feeds_fused`: the next stage
  // is fused (runs in this worker), so this generator's resumes are sampled (ResumeSchedule).
  // `keep_buffers`: for a stage that yields plumb::Buffer, the free blocks its pool keeps.
  GeneratorInput(Generator<T>&& generator, const WorkerInfo& info, InputBase* upstream,
                 WorkerContext& context, bool feeds_fused,
                 std::size_t keep_buffers = kDefaultKeptBuffers)
      : generator_(std::move(generator)),
        info_(info),
        upstream_(upstream),
        context_(context),
        stop_(context.stop()),
        slot_(context.tally().slot(info.stage_index)),
        monitor_(context.inline_monitor()),
        schedule_(feeds_fused && context.tally().timing(), info.stage_index,
                  context.tally().ns_per_tick()),
        buffers_(keep_buffers) {}

  // What serves the stage's make_buffer() (for a stage that yields plumb::Buffer).
  [[nodiscard]] StageBuffers<T>& buffers() noexcept { return buffers_; }

  // For a worker of a source stage with several workers, not .unpartitioned(): checks that
  // the body splits the work (SplitCheck), until its first packet.
  void check_split(std::uint64_t calls_before_call) noexcept { split_.arm(calls_before_call); }

 private:
  // The per-packet path of sequential mode: keep it to a stop check, the resume, a counter and
  // one compare for the timing schedule (whose path is out of line).
  T* pull() override {
    if (stop_.stopping()) [[unlikely]] throw Stopped{};
    // One writer (this worker): the count read here is the one after() increments.
    const std::uint64_t count = slot_.out.load(std::memory_order_relaxed);
    if (schedule_.due(count)) [[unlikely]] return pull_timed(count);
    return after(resume(), count);
  }

  [[gnu::noinline]] T* pull_timed(std::uint64_t count) {
    const WorkerTally::Timing timing = context_.tally().begin_timing();
    T* packet = resume();
    context_.tally().end_timing(timing, slot_, count, schedule_);
    return after(packet, count);
  }

  T* resume() {
    const CurrentWorkerScope scope(&info_);
    const typename StageBuffers<T>::Scope buffers(buffers_);
    try {
      if (split_.armed()) [[unlikely]] {
        return split_.watch(info_, [this] { return GeneratorAccess<T>::next(generator_); });
      }
      return GeneratorAccess<T>::next(generator_);
    } catch (...) {
      context_.attribute_current(info_);
      throw;
    }
  }

  T* after(T* packet, std::uint64_t count) {
    if (packet != nullptr) [[likely]] {
      slot_.out.store(count + 1, std::memory_order_relaxed);
      if (monitor_ != nullptr) [[unlikely]] monitor_->on_packet();
    } else if (upstream_ != nullptr && upstream_->has_unread()) {
      throw_returned_early(context_, info_);
    }
    return packet;
  }

  Generator<T> generator_;
  const WorkerInfo& info_;
  InputBase* upstream_;
  WorkerContext& context_;
  const StopFlag stop_;
  StageSlot& slot_;
  Monitor* monitor_;
  ResumeSchedule schedule_;
  SplitCheck split_;
  [[no_unique_address]] StageBuffers<T> buffers_;
};

// Calls a stage body: `callable` with the Stream over `input` (none for a source) and the
// `constants`, as the worker `info`; an exception is attributed to that stage.
template <class F, class Constants, class In>
decltype(auto) invoke_stage(F& callable, Constants& constants, Input<In>* input,
                            const WorkerInfo& info, WorkerContext& context) {
  const CurrentWorkerScope scope(&info);
  try {
    return std::apply(
        [&](auto&... values) -> decltype(auto) {
          if constexpr (std::is_void_v<In>) {
            return std::invoke(callable, values...);
          } else {
            return std::invoke(callable, StreamAccess<In>::over(*input), values...);
          }
        },
        constants);
  } catch (...) {
    context.attribute_current(info);
    throw;
  }
}

// Calls stage `Index` of `specs` with this worker's own copies of the callable and constants
// (alive until `use` returns, so a generator may keep referring to them), and passes the result
// to `use`.
template <std::size_t Index, class Specs, class In, class Use>
decltype(auto) call_stage(const Specs& specs, Input<In>* input, const WorkerInfo& info,
                          WorkerContext& context, Use&& use) {
  const auto& spec = std::get<Index>(specs);
  auto callable = spec.callable();
  auto constants = spec.constants();
  auto invoke = [&]() -> decltype(auto) {
    return invoke_stage(callable, constants, input, info, context);
  };
  return std::forward<Use>(use)(invoke);
}

}  // namespace plumb::detail
