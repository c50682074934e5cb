#pragma once
// SPDX-License-Identifier: MIT
// plumb/stage.hpp: stage(callable, constants...), the stage spec and its chainable options.

#include <plumb/run_options.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

namespace plumb {

/// Default `max_message_size`: 128 KiB per slot of a link that crosses a process boundary.
/// Links inside one process ignore it.
inline constexpr std::size_t kDefaultMaxMessageSize = std::size_t{128} * 1024;
/// Most workers a stage may have (128).
inline constexpr int kMaxWorkers = 128;
/// Largest `max_message_size` a stage may ask for (1 TiB).
inline constexpr std::size_t kMaxMessageSize = std::size_t{1} << 40;
/// Largest `in_flight` a stage may ask for (2^20).
inline constexpr std::int64_t kMaxInFlight = std::int64_t{1} << 20;

/// The options of one stage, as set with the chainable setters of `Stage`. Checked by
/// `Pipeline::run()` before anything runs (see `ConfigError`).
struct StageOptions {
  /// Independent instances of the stage (1 to 128).
  int workers = 1;
  /// Packets that may exist at once on the stage's output link; unset: the number of workers.
  std::optional<std::int64_t> in_flight{};
  /// Bytes per slot of the output link when it crosses a process boundary.
  std::size_t max_message_size = kDefaultMaxMessageSize;
  /// Shown in errors and in `WorkerInfo::stage_name`; empty: "stage N".
  std::string name{};
  /// Overrides the run's mode for this stage; unset: the run's mode.
  std::optional<Mode> mode{};
  /// The stage's output leaves in the order of its input (see `Stage::ordered()`).
  bool ordered = false;
  /// The stage's workers run only on their own threads (see `Stage::pinned()`).
  bool pinned = false;
  /// A source whose workers do not split the work by `this_worker()` (see
  /// `Stage::unpartitioned()`).
  bool unpartitioned = false;
};

/// A stage of a pipeline: a callable, the constants it is called with, and its options.
/// Build one with `plumb::stage()`.
///
/// Options chain on temporaries and on named stages alike:
/// `plumb::stage(group, 5).workers(2).in_flight(4).name("group")`.
template <class F, class... Constants>
class Stage {
 public:
  /// The stored callable's type (decayed by `plumb::stage()`).
  using callable_type = F;
  /// The stored constants, as a tuple (decayed by `plumb::stage()`).
  using constants_type = std::tuple<Constants...>;

  /// Stores the callable and the constants, with default options. Prefer `plumb::stage()`,
  /// which deduces `F` and `Constants` (decayed) from its arguments.
  template <class Callable, class... Args>
    requires(sizeof...(Args) == sizeof...(Constants) && std::is_constructible_v<F, Callable &&>)
  explicit Stage(Callable&& callable, Args&&... constants)
      : callable_(std::forward<Callable>(callable)), constants_(std::forward<Args>(constants)...) {}

  /// Runs `count` independent instances of the stage (1 to 128), each with its own copy of
  /// the callable and the constants, sharing one input.
  Stage& workers(int count) & {
    options_.workers = count;
    return *this;
  }
  /// As `workers()` above, on a temporary stage: returns the stage by value.
  Stage workers(int count) && { return std::move(workers(count)); }

  /// Packets that may exist at once on this stage's output link: being built by its workers,
  /// queued, or being worked on by the next stage. At least `workers`; default: `workers`.
  Stage& in_flight(std::int64_t count) & {
    options_.in_flight = count;
    return *this;
  }
  /// As `in_flight()` above, on a temporary stage: returns the stage by value.
  Stage in_flight(std::int64_t count) && { return std::move(in_flight(count)); }

  /// Bytes per slot when the output link crosses a process boundary (default 128 KiB).
  Stage& max_message_size(std::size_t bytes) & {
    options_.max_message_size = bytes;
    return *this;
  }
  /// As `max_message_size()` above, on a temporary stage: returns the stage by value.
  Stage max_message_size(std::size_t bytes) && { return std::move(max_message_size(bytes)); }

  /// The name used in errors and in `WorkerInfo::stage_name`.
  Stage& name(std::string text) & {
    options_.name = std::move(text);
    return *this;
  }
  /// As `name()` above, on a temporary stage: returns the stage by value.
  Stage name(std::string text) && { return std::move(name(std::move(text))); }

  /// Runs this stage in `mode` whatever the run's mode. `Mode::sequential` fuses the stage into
  /// the workers of the stage before it.
  Stage& mode(Mode value) & {
    options_.mode = value;
    return *this;
  }
  /// As `mode()` above, on a temporary stage: returns the stage by value.
  Stage mode(Mode value) && { return std::move(mode(value)); }

  /// Makes the output of this stage's workers leave in the order of its input: the packets
  /// yielded while a worker works on an input (after it took that input, before it takes the
  /// next) form one group, and groups leave in the order their inputs arrived, like oneTBB's
  /// `serial_in_order` and FastFlow's ordered farm. The reordering window is `in_flight`: a
  /// worker takes a new input only while fewer than `in_flight` inputs are taken and not yet
  /// passed on in order, and each waiting group keeps at most one packet in the output link (a
  /// second one waits for the group's turn). No effect with one worker; not allowed on the
  /// source (no input), the sink (no output) or a fused stage (put it on the stage whose workers
  /// run it). The group is decided by the input *last taken*: a stage that reads ahead before
  /// it yields (batching, or a filter fused after it) files its output under the later input.
  Stage& ordered(bool value = true) & {
    options_.ordered = value;
    return *this;
  }
  /// As `ordered()` above, on a temporary stage: returns the stage by value.
  Stage ordered(bool value = true) && { return std::move(ordered(value)); }

  /// Keeps every worker of this stage on its own thread: its body (set-up, every packet, end of
  /// input) never runs on another stage's thread. For code that depends on its thread:
  /// `thread_local` state, thread-affine handles (GUI, some GPU and database APIs), a lock held
  /// across `co_yield`. Without it, in thread mode a cheap worker may be run by the thread of
  /// the stage it feeds, between packets (see `Scheduling::adaptive`). No effect in sequential
  /// and process mode.
  Stage& pinned(bool value = true) & {
    options_.pinned = value;
    return *this;
  }
  /// As `pinned()` above, on a temporary stage: returns the stage by value.
  Stage pinned(bool value = true) && { return std::move(pinned(value)); }

  /// Lets a source stage with several workers run without splitting its work by
  /// `plumb::this_worker()`. Every worker of a source runs the whole body, so a body that does
  /// not ask `this_worker()` which share is its own, before its first `co_yield`, makes each
  /// packet once per worker; plumb stops such a run with a `StageError` at that first packet.
  /// Say `.unpartitioned()` where that is intended: workers that take their jobs from one
  /// shared queue (and so never make the same packet), or that should each make every packet.
  /// No effect on a stage with an input, or with one worker.
  Stage& unpartitioned(bool value = true) & {
    options_.unpartitioned = value;
    return *this;
  }
  /// As `unpartitioned()` above, on a temporary stage: returns the stage by value.
  Stage unpartitioned(bool value = true) && { return std::move(unpartitioned(value)); }

  /// The options set so far with the chainable setters.
  [[nodiscard]] const StageOptions& options() const noexcept { return options_; }
  /// The stored callable; each worker runs a copy of it.
  [[nodiscard]] const F& callable() const noexcept { return callable_; }
  /// The stored constants; each worker passes its own copies of them, as lvalues, to its callable.
  [[nodiscard]] const constants_type& constants() const noexcept { return constants_; }

 private:
  F callable_;
  constants_type constants_;
  StageOptions options_{};
};

/// Makes a stage from a callable and the constants it is called with.
///
/// The callable is a function, function pointer, lambda or function object:
/// - source: `Generator<T>(Constants...)`;
/// - processor: `Generator<U>(Stream<T>, Constants...)`;
/// - sink: `R(Stream<T>, Constants...)`, R void or a value.
///
/// The callable and the constants are stored by value (decayed); every worker gets its own
/// copies and passes the constants as lvalues, so parameters may be values, `const&` or `&`.
///
/// Example:
/// ```cpp
/// plumb::Pipeline pipeline{plumb::stage(numbers, 100), plumb::stage(group, 5).workers(2),
///                          plumb::stage(total)};
/// ```
template <class F, class... Constants>
[[nodiscard]] Stage<std::decay_t<F>, std::decay_t<Constants>...> stage(F&& callable,
                                                                      Constants&&... constants) {
  return Stage<std::decay_t<F>, std::decay_t<Constants>...>(std::forward<F>(callable),
                                                            std::forward<Constants>(constants)...);
}

namespace detail {
template <class>
struct IsStage : std::false_type {};
template <class F, class... Constants>
struct IsStage<Stage<F, Constants...>> : std::true_type {};
}  // namespace detail

}  // namespace plumb
