#pragma once
// SPDX-License-Identifier: MIT
// plumb/detail/service/stages.hpp: the stages a Service runs: the submit stage (a source over
// the accepted items), each user stage fed one item at a time, and the answers stage (a sink that
// sets the futures).

#include <plumb/codec.hpp>
#include <plumb/detail/core/describe.hpp>
#include <plumb/detail/core/format.hpp>
#include <plumb/detail/run/plan.hpp>
#include <plumb/detail/service/core.hpp>
#include <plumb/detail/service/items.hpp>
#include <plumb/detail/service/rules.hpp>
#include <plumb/error.hpp>
#include <plumb/generator.hpp>
#include <plumb/stage.hpp>
#include <plumb/stream.hpp>
#include <plumb/worker.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

namespace plumb::detail {

// --- The stages a Service runs -----------------------------------------------------------------

// The submit stage: a source over the accepted items.
// The body of the submit stage: the accepted items, until close() (after the last one) or the
// run's stop.
template <class In, class Out>
PLUMB_DETAIL_HEADER_COROUTINE Generator<Tagged<In>> submitted_items(ServiceCore<In, Out>* core) {
  for (;;) {
    Tagged<In> packet;
    if (!core->next_item(packet)) co_return;
    co_yield std::move(packet);
  }
}

template <class In, class Out>
struct SubmitStage {
  ServiceCore<In, Out>* core = nullptr;
  Generator<Tagged<In>> operator()() const { return submitted_items(core); }
};

// The answers stage: a sink that sets each item's future.
template <class In, class Out>
struct AnswerStage {
  ServiceCore<In, Out>* core = nullptr;
  void operator()(Stream<Tagged<Out>> in) const {
    for (Tagged<Out>& packet : in) core->answer(packet);
  }
};

// A user stage's body, fed one item at a time: pull() hands over the item the Service offered,
// once; a second pull() before the body yielded breaks the one-output-per-input rule.
template <class T>
class ItemInput final : public Input<T> {
 public:
  struct RuleBroken {};

  void offer(T* item) noexcept {
    pending_ = item;
    offered_ = true;
  }
  void end() noexcept { ending_ = true; }
  // The body took the item offered last (false before the first offer).
  [[nodiscard]] bool taken() const noexcept { return offered_ && pending_ == nullptr; }
  [[nodiscard]] bool rule_broken() const noexcept { return rule_broken_; }

 private:
  T* pull() override {
    if (pending_ != nullptr) return std::exchange(pending_, nullptr);
    if (ending_) return nullptr;
    rule_broken_ = true;
    throw RuleBroken{};
  }

  T* pending_ = nullptr;
  bool offered_ = false;
  bool ending_ = false;
  bool rule_broken_ = false;
};

[[noreturn]] inline void throw_rule_broken(std::string_view what) {
  const WorkerInfo& worker = this_worker();
  throw StageError(
      detail::format("plumb.service_error: {} worker {} {}; every stage of a plumb::Service yields "
                  "exactly one output per input (a stage that splits, drops or merges items "
                  "belongs in a Pipeline)",
                  describe_stage(worker.stage_index, worker.stage_name), worker.index, what),
      worker.stage_index, worker.stage_name, worker.index);
}

// An output too large for the slots of the link after its stage, where that link crosses a
// process boundary, would be refused by the link as an error of the whole stage and end the run
// for every client: it fails its own item instead (and so does an output whose Codec throws
// while its size is counted). Runs in the worker of the stage that yielded `packet`; the size is
// counted once more by the link as it writes the packet (a size pass, no copy).
template <class Out>
void fit_to_link(Tagged<Out>& packet, ServiceErrors& errors) {
  if constexpr (is_serializable_v<Out>) {
    const WorkerInfo& worker = this_worker();
    const std::size_t limit = errors.link_limit(worker.stage_index);
    if (limit == 0) return;
    std::exception_ptr error;
    try {
      const std::size_t size = serialized_size(packet);
      if (size <= limit) return;
      throw StageError(
          detail::format("plumb.stage_error: {} worker {} yielded an output of {} bytes for one item, "
                      "over the max_message_size({}) of the link after it, which crosses a "
                      "process boundary; that item fails and the Service goes on; raise "
                      ".max_message_size() on {}",
                      describe_stage(worker.stage_index, worker.stage_name), worker.index, size,
                      limit, describe_stage(worker.stage_index, worker.stage_name)),
          worker.stage_index, worker.stage_name, worker.index);
    } catch (...) {
      error = std::current_exception();
    }
    packet.value.reset();
    packet.error = errors.item_error(packet.id, std::move(error));
  } else {
    (void)packet;
    (void)errors;
  }
}

// Runs a user stage's body over the items of a Service, one at a time: it offers an item, then
// resumes the body until it yields that item's output. An item that failed earlier passes by.
//
// An exception of the body while it holds an item (it took the offered one) fails that item
// and ends the body: the next item starts a new call of the stage. An exception outside any
// item (while setting up, or after yielding and before taking the next item) is the stage's
// error: it ends the run, as in a Pipeline.
//
// The body's item stays valid until it takes the next one (the Stream rule), but the packet it
// came in is released by this coroutine's own `++ in`, before the body resumes: the item is
// moved into one of two buffers, used in turns; a buffer is refilled only once the body took
// the item after the one it holds.
template <class In, class Out, class F, class Constants>
PLUMB_DETAIL_HEADER_COROUTINE Generator<Tagged<Out>> serve_items(Stream<Tagged<In>> in, F callable,
                                                                 Constants constants,
                                                                 ServiceErrors* errors) {
  std::unique_ptr<ItemInput<In>> input;
  std::optional<Generator<Out>> body;
  std::array<std::optional<In>, 2> items;
  std::size_t turn = 0;
  bool first = true;
  for (Tagged<In>& packet : in) {
    if (packet.error) {
      Tagged<Out> failed{packet.id, std::nullopt, std::move(packet.error)};
      co_yield std::move(failed);
      continue;
    }
    std::exception_ptr error;
    Out* out = nullptr;
    try {
      if (!body) {
        input = std::make_unique<ItemInput<In>>();
        first = true;
        body.emplace(std::apply(
            [&](auto&... values) {
              return std::invoke(callable, StreamAccess<In>::over(*input), values...);
            },
            constants));
      }
      turn ^= 1;
      In& item = items[turn].emplace(std::move(*packet.value));
      input->offer(&item);
      out = GeneratorAccess<Out>::next(*body);
    } catch (...) {
      error = std::current_exception();
    }
    if (input && input->rule_broken()) {
      throw_rule_broken("took a second input before it yielded the output of the first");
    }
    if (error) {
      if (!input || !input->taken()) std::rethrow_exception(error);  // outside any item
      body.reset();
      input.reset();
      Tagged<Out> failed{packet.id, std::nullopt, errors->item_error(packet.id, std::move(error))};
      co_yield std::move(failed);
      continue;
    }
    if (out == nullptr) {
      throw_rule_broken(input->taken() ? "returned without yielding the output of its input"
                                       : "returned before its input ended");
    }
    if (!input->taken()) {
      throw_rule_broken(first ? "yielded an output before it took its first input"
                              : "yielded two outputs for one input");
    }
    first = false;
    Tagged<Out> answered{packet.id, std::move(*out), std::nullopt};
    fit_to_link(answered, *errors);
    co_yield std::move(answered);
  }
  if (body) {
    input->end();
    if (GeneratorAccess<Out>::next(*body) != nullptr) {
      throw_rule_broken("yielded an output after its input ended");
    }
  }
}

// A user stage as a Service runs it: same callable, constants and options.
template <class UserStage>
struct ServeStage {
  using In = typename ServiceTypes<UserStage>::input;
  using Out = typename ServiceTypes<UserStage>::output;

  UserStage user;
  ServiceErrors* errors = nullptr;

  Generator<Tagged<Out>> operator()(Stream<Tagged<In>> in) const {
    return serve_items<In, Out>(std::move(in), user.callable(), user.constants(), errors);
  }
};


// The least `max_message_size` of the links after a Service's stages: room for an item's error
// (its texts are cut to SharedFailure's sizes).
inline constexpr std::size_t kItemErrorRoom = sizeof(SharedFailure) + 1024;


// For each stage, the slot size of the link after it where that link crosses a process
// boundary (Plan::crosses_processes, as LinkSet decides), else 0: a Service's packets have no
// fixed size, so the slots are max_message_size bytes.
// `sizes`: each stage's max_message_size for this run (RunSetup::max_message_sizes()).
template <std::size_t Count>
std::vector<std::size_t> process_link_limits(const Plan& plan, const std::array<std::size_t, Count>& sizes) {
  std::vector<std::size_t> limits(Count, 0);
  for (std::size_t g = 0; g + 1 < plan.groups.size(); ++g) {
    const std::size_t producer = plan.groups[g].last;
    if (plan.crosses_processes(g)) {
      limits[producer] = sizes[producer];
    }
  }
  return limits;
}

template <class Spec>
void copy_options(Spec& to, const StageOptions& from) {
  to.workers(from.workers);
  if (from.in_flight) to.in_flight(*from.in_flight);
  to.max_message_size(std::max(from.max_message_size, kItemErrorRoom));
  if (!from.name.empty()) to.name(from.name);
  if (from.mode) to.mode(*from.mode);
  to.ordered(from.ordered);
}


}  // namespace plumb::detail
