#pragma once
// SPDX-License-Identifier: MIT
// plumb/detail/graph/join.hpp: JoinInput, the input of a joining node: the packets of its inputs,
// which reach it through one link as std::variant<A, B, ...> (the index is the input), paired
// into std::tuple<A, B, ...> by order or by key, within a bounded window.

#include <plumb/detail/core/describe.hpp>
#include <plumb/detail/core/format.hpp>
#include <plumb/detail/core/input.hpp>
#include <plumb/error.hpp>
#include <plumb/worker.hpp>

#include <cstddef>
#include <deque>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <variant>

namespace plumb::detail {

// What a join's errors name: the joining node (its worker) and its inputs, in port order.
struct JoinLabels {
  const WorkerInfo* info = nullptr;
  std::span<const std::string_view> inputs;

  [[nodiscard]] std::string node() const { return describe_stage(info->stage_index, info->stage_name); }
  [[nodiscard]] std::string input(std::size_t port) const { return detail::format("'{}'", inputs[port]); }
  [[noreturn]] void fail(const std::string& what) const {
    throw StageError(detail::format("plumb.stage_error: {} worker {}: {}", node(), info->index, what),
                     info->stage_index, info->stage_name, info->index);
  }
};

// Pairs the i-th packet of each input (plumb::join). Holds the packets that wait for their
// partners, one queue per input.
template <class... T>
class OrderMatcher {
 public:
  using Tuple = std::tuple<T...>;
  static constexpr std::size_t kPorts = sizeof...(T);

  // Takes the packet of input `Port`; returns a complete tuple when it made one.
  template <std::size_t Port, class Value>
  std::optional<Tuple> accept(Value&& value, const JoinLabels& /*labels*/) {
    std::get<Port>(queues_).push_back(std::forward<Value>(value));
    ++held_;
    if (!all_waiting(std::index_sequence_for<T...>{})) return std::nullopt;
    Tuple tuple = pop(std::index_sequence_for<T...>{});
    held_ -= kPorts;  // after the pop: a move that throws leaves the count true
    return tuple;
  }

  [[nodiscard]] std::size_t held() const noexcept { return held_; }

  // At the end of every input: a packet still waiting has no partner and would be lost.
  void check_end(const JoinLabels& labels) const {
    if (held_ == 0) return;
    std::string waiting;
    std::size_t port = 0;
    std::apply(
        [&](const auto&... queue) {
          ((queue.empty() ? void()
                          : void(waiting += detail::format("{}{} from {}", waiting.empty() ? "" : ", ",
                                                           queue.size(), labels.input(port))),
            ++port),
           ...);
        },
        queues_);
    labels.fail(detail::format(
        "its inputs ended with packets that have no partner ({}); a join pairs the i-th packet of "
        "each input, so every input must yield as many packets; use plumb::join_by_key if an "
        "input drops or adds packets",
        waiting));
  }

  // Which inputs run ahead, for the window's error.
  [[nodiscard]] std::string describe(const JoinLabels& labels) const {
    std::string text;
    std::size_t port = 0;
    std::apply(
        [&](const auto&... queue) {
          ((text += detail::format("{}{} from {}", port == 0 ? "" : ", ", queue.size(), labels.input(port)),
            ++port),
           ...);
        },
        queues_);
    return text;
  }

 private:
  template <std::size_t... P>
  bool all_waiting(std::index_sequence<P...>) const noexcept {
    return (!std::get<P>(queues_).empty() && ...);
  }
  template <std::size_t... P>
  Tuple pop(std::index_sequence<P...>) {
    Tuple tuple(std::move(std::get<P>(queues_).front())...);
    (std::get<P>(queues_).pop_front(), ...);
    return tuple;
  }

  std::tuple<std::deque<T>...> queues_;
  std::size_t held_ = 0;
};

// Pairs the packets of equal key, one from each input (plumb::join_by_key).
template <class Key, class KeyFn, class... T>
class KeyMatcher {
 public:
  using Tuple = std::tuple<T...>;
  static constexpr std::size_t kPorts = sizeof...(T);

  explicit KeyMatcher(const KeyFn& key) : key_(key) {}

  template <std::size_t Port, class Value>
  std::optional<Tuple> accept(Value&& value, const JoinLabels& labels) {
    Key key = key_(std::as_const(value));
    auto [at, fresh] = waiting_.try_emplace(std::move(key));
    Partial& partial = at->second;
    auto& part = std::get<Port>(partial.parts);
    if (part.has_value()) {
      labels.fail(detail::format(
          "input {} yielded a second packet with the key of a packet that still waits for its "
          "partners; join_by_key joins each key once, so keys must be unique per input",
          labels.input(Port)));
    }
    part.emplace(std::forward<Value>(value));
    ++held_;
    if (++partial.have < kPorts) return std::nullopt;
    Tuple tuple = take(partial, std::index_sequence_for<T...>{});
    waiting_.erase(at);
    held_ -= kPorts;
    return tuple;
  }

  [[nodiscard]] std::size_t held() const noexcept { return held_; }

  void check_end(const JoinLabels& labels) const {
    if (held_ == 0) return;
    labels.fail(detail::format(
        "its inputs ended with {} packets whose key never arrived from every input ({} keys); "
        "each key must come once from each input",
        held_, waiting_.size()));
  }

  [[nodiscard]] std::string describe(const JoinLabels& /*labels*/) const {
    return detail::format("{} keys incomplete", waiting_.size());
  }

 private:
  struct Partial {
    std::tuple<std::optional<T>...> parts;
    std::size_t have = 0;
  };
  template <std::size_t... P>
  static Tuple take(Partial& partial, std::index_sequence<P...>) {
    return Tuple(std::move(*std::get<P>(partial.parts))...);
  }

  KeyFn key_;
  std::unordered_map<Key, Partial> waiting_;
  std::size_t held_ = 0;
};

// A joining node's Stream: reads the variants of its one input link (`raw`) and yields each
// tuple its Matcher completes. At most `window` packets wait for partners; one more is the
// node's error (a branch that runs ahead of the others by more than the window, or drops
// packets), never a hang: the join never stops reading its link for want of a partner, so every
// branch can always deliver (docs/design/graph.md).
//
// Thread affinity: the node's one worker.
template <class Matcher, class... T>
class JoinInput final : public Input<std::tuple<T...>> {
 public:
  JoinInput(Input<std::variant<T...>>& raw, Matcher matcher, std::size_t window, JoinLabels labels)
      : raw_(raw), matcher_(std::move(matcher)), window_(window), labels_(labels) {}

 private:
  std::tuple<T...>* pull() override {
    current_.reset();
    for (;;) {
      std::variant<T...>* packet = raw_.next();
      if (packet == nullptr) {
        matcher_.check_end(labels_);
        return nullptr;
      }
      std::optional<std::tuple<T...>> done = accept(*packet, std::index_sequence_for<T...>{});
      if (done) {
        current_ = std::move(done);
        return &*current_;
      }
      if (matcher_.held() > window_) {
        labels_.fail(detail::format(
            "more than window({}) packets wait for their partners ({}); one input runs ahead of "
            "the others or drops packets; raise .window() on the join, or check that every input "
            "yields a partner for each packet",
            window_, matcher_.describe(labels_)));
      }
    }
  }

  template <std::size_t... P>
  std::optional<std::tuple<T...>> accept(std::variant<T...>& packet, std::index_sequence<P...>) {
    std::optional<std::tuple<T...>> done;
    ((packet.index() == P ? (void)(done = matcher_.template accept<P>(std::move(*std::get_if<P>(&packet)), labels_))
                          : (void)0),
     ...);
    return done;
  }

  Input<std::variant<T...>>& raw_;
  Matcher matcher_;
  std::size_t window_;
  JoinLabels labels_;
  std::optional<std::tuple<T...>> current_;
};

}  // namespace plumb::detail
