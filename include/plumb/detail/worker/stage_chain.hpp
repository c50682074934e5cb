#pragma once
// SPDX-License-Identifier: MIT
// plumb/detail/worker/stage_chain.hpp: how a worker builds the stages of its group into one chain
// (each over the generator of the one before) and keeps it alive while it runs: ChainStore and
// ChainBuilder.

#include <plumb/detail/core/input.hpp>
#include <plumb/detail/core/type_rules.hpp>
#include <plumb/detail/link/view_input.hpp>
#include <plumb/detail/run/plan.hpp>
#include <plumb/detail/worker/chain.hpp>
#include <plumb/worker.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <tuple>
#include <utility>
#include <vector>

namespace plumb::detail {

// The objects of one worker's chain: its input, each stage's own copies of its callable and
// constants with the generator they returned, and the View adapters between them. Built front
// to back, destroyed back to front: a generator before what it reads, an input before the link.
//
// Thread affinity: the worker's thread (or the caller's, for a stream).
class ChainStore {
 public:
  ChainStore() = default;
  ChainStore(const ChainStore&) = delete;
  ChainStore& operator=(const ChainStore&) = delete;
  ~ChainStore() { clear(); }

  // Constructs a T that lives until clear().
  template <class T, class... Args>
  T& add(Args&&... args) {
    nodes_.reserve(nodes_.size() + 1);  // so that push_back cannot throw after the T exists
    auto node = std::make_unique<Holder<T>>(std::forward<Args>(args)...);
    T& value = node->value;
    nodes_.push_back(std::move(node));
    return value;
  }

  void clear() noexcept {
    while (!nodes_.empty()) nodes_.pop_back();
  }

 private:
  struct Node {
    Node() = default;
    Node(const Node&) = delete;
    Node& operator=(const Node&) = delete;
    virtual ~Node() = default;
  };
  template <class T>
  struct Holder final : Node {
    template <class... Args>
    explicit Holder(Args&&... args) : value(std::forward<Args>(args)...) {}
    T value;
  };

  std::vector<std::unique_ptr<Node>> nodes_;
};

// Builds a worker's chain from stage Index on: calls each stage (with this worker's own copies
// of its callable and constants) over the generator of the one before, while the next stage is
// fused, and hands the end to `end`:
//   end.template at_sink<I>(Input<E>* input)     stage I is the sink, reading `input`;
//   end.template at_output<I>(GeneratorInput<Out>& output) stage I is the last of the group,
//                                                 and `output` its generator (the next stage has workers of
//                                                 its own, behind a link).
// The end may run the rest at once (a worker) or keep the chain for later (a stream's caller).
template <class... Stages>
class ChainBuilder {
  static constexpr std::size_t kCount = sizeof...(Stages);
  template <std::size_t Index>
  using Output = typename StageRules<Index, Stages...>::output;
  template <std::size_t Index>
  static constexpr bool kReadsViews = IsView<typename StageRules<Index, Stages...>::element>::value;

 public:
  ChainBuilder(const std::tuple<const Stages&...>& specs, const Plan& plan, ChainStore& store,
               WorkerContext& context) noexcept
      : specs_(specs), plan_(plan), store_(store), context_(context) {}

  template <std::size_t Index, class In, class End>
  void open(Input<In>* input, End& end) {
    if constexpr (StageRules<Index, Stages...>::is_sink) {
      end.template at_sink<Index>(input);
    } else {
      using Spec = std::remove_cvref_t<std::tuple_element_t<Index, std::tuple<const Stages&...>>>;
      auto& node = store_.add<StageNode<Spec, Output<Index>>>(std::get<Index>(specs_));
      const WorkerInfo& info = context_.info(Index);
      const bool fused_next = plan_.fused[Index + 1];
      const std::uint64_t asked_before = this_worker_calls;  // SplitCheck
      // A Buffer-yielding stage's pool keeps a block per packet its link can hold, and two.
      auto& output = node.output.emplace(
          invoke_stage(node.callable, node.constants, input, info, context_), info, input,
          context_, fused_next, plan_.capacity[Index] + 2);
      if constexpr (Index == 0) {
        if (info.count > 1 && !std::get<Index>(specs_).options().unpartitioned) output.check_split(asked_before);
      }
      if (!fused_next) return end.template at_output<Index>(output);
      if constexpr (kReadsViews<Index + 1>) {
        auto& views = store_.add<ViewInput<Output<Index>>>(static_cast<Input<Output<Index>>&>(output));
        open<Index + 1>(static_cast<Input<View<Output<Index>>>*>(&views), end);
      } else {
        open<Index + 1>(static_cast<Input<Output<Index>>*>(&output), end);
      }
    }
  }

 private:
  // A stage of the chain: this worker's copies of its callable and constants (alive as long as
  // the generator, which may refer to them), and its generator as the next stage's input.
  template <class Spec, class Out>
  struct StageNode {
    explicit StageNode(const Spec& spec) : callable(spec.callable()), constants(spec.constants()) {}
    typename Spec::callable_type callable;
    typename Spec::constants_type constants;
    std::optional<GeneratorInput<Out>> output;
  };

  const std::tuple<const Stages&...>& specs_;
  const Plan& plan_;
  ChainStore& store_;
  WorkerContext& context_;
};

}  // namespace plumb::detail
