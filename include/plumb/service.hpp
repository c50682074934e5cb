#pragma once
// SPDX-License-Identifier: MIT
// plumb/service.hpp: Service, a pipeline started once that answers each submitted item through
// a std::future (request/response use).

#include <plumb/codec.hpp>
#include <plumb/detail/core/assert.hpp>
#include <plumb/detail/core/callable_traits.hpp>
#include <plumb/detail/core/describe.hpp>
#include <plumb/detail/run/plan.hpp>
#include <plumb/detail/run/remote_error.hpp>
#include <plumb/detail/run/run_state.hpp>
#include <plumb/detail/exec/runner.hpp>
#include <plumb/detail/core/type_rules.hpp>
#include <plumb/detail/run/validate.hpp>
#include <plumb/error.hpp>
#include <plumb/generator.hpp>
#include <plumb/run_options.hpp>
#include <plumb/stage.hpp>
#include <plumb/stats.hpp>
#include <plumb/stream.hpp>
#include <plumb/view.hpp>
#include <plumb/worker.hpp>

#include <unistd.h>

#include <fmt/core.h>

#include <array>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

namespace plumb {
namespace detail {

// --- What travels between the stages of a Service ---------------------------------------------

// An item's error on its way from the stage that raised it to the item's future. An
// exception_ptr cannot cross fork(): its kind, type name and message travel instead (the
// fields of SharedFailure, see remote_error.hpp).
struct ItemError {
  std::uint32_t kind = 0;
  std::string type_name;  // mangled, as typeid().name()
  std::string what;
  std::uint64_t stage_index = 0;
  std::string stage_name;
  std::uint64_t worker_index = 0;
  std::int64_t pid = 0;
};

// One packet of a Service: the item's number (its future's key) and either its value or the
// error that ended it.
template <class T>
struct Tagged {
  std::uint64_t id = 0;
  std::optional<T> value{};
  std::optional<ItemError> error{};
};

template <class T>
struct SerialTraits<Tagged<T>> {
  static constexpr bool serializable = is_serializable_v<T>;
};

}  // namespace detail

/// How an item's error crosses a process boundary inside a Service (internal).
template <>
struct Codec<detail::ItemError> {
  /// Writes every field, in order.
  static void encode(const detail::ItemError& error, Writer& out) {
    out.write(error.kind);
    out.write(error.type_name);
    out.write(error.what);
    out.write(error.stage_index);
    out.write(error.stage_name);
    out.write(error.worker_index);
    out.write(error.pid);
  }
  /// Reads what encode() wrote.
  static detail::ItemError decode(Reader& in) {
    detail::ItemError error;
    error.kind = in.read<std::uint32_t>();
    error.type_name = in.read<std::string>();
    error.what = in.read<std::string>();
    error.stage_index = in.read<std::uint64_t>();
    error.stage_name = in.read<std::string>();
    error.worker_index = in.read<std::uint64_t>();
    error.pid = in.read<std::int64_t>();
    return error;
  }
};

/// How a Service's packets cross a process boundary (internal): item number, value or error.
template <class T>
  requires is_serializable_v<T>
struct Codec<detail::Tagged<T>> {
  /// Writes the item number, then the optional value and the optional error.
  static void encode(const detail::Tagged<T>& packet, Writer& out) {
    out.write(packet.id);
    out.write(packet.value);
    out.write(packet.error);
  }
  /// Reads what encode() wrote.
  static detail::Tagged<T> decode(Reader& in) {
    detail::Tagged<T> packet;
    packet.id = in.read<std::uint64_t>();
    packet.value = in.read<std::optional<T>>();
    packet.error = in.read<std::optional<detail::ItemError>>();
    return packet;
  }
};

namespace detail {

inline constexpr const char* kSubmitStageName = "submit";
inline constexpr const char* kAnswerStageName = "answers";

// --- Compile-time rules of a Service's stages --------------------------------------------------

template <class StageSpec>
struct ServiceStage {
  static_assert(IsStage<StageSpec>::value,
                "plumb::Service: every argument must be a stage, written "
                "plumb::stage(callable, constants...)");
  static constexpr bool ok = false;
  using input = Invalid;
  using output = Invalid;
};

template <class F, class... Constants>
struct ServiceStage<Stage<F, Constants...>> {
  using Declared = Signature<F>;
  static_assert(Declared::known,
                "plumb::Service: a stage's callable must have exactly one call signature (not a "
                "generic lambda or an overload set), Generator<Out>(plumb::Stream<In>, "
                "constants...), so that the Service knows the type it takes");
  using FirstParam = typename Front<typename Declared::params>::type;
  static constexpr bool takes_stream = Declared::known && Declared::params::size > 0 &&
                                       IsStream<std::remove_cvref_t<FirstParam>>::value;
  static_assert(!Declared::known || takes_stream,
                "plumb::Service: every stage takes a plumb::Stream<In> as its first parameter; "
                "a Service has no source stage (submit() feeds its first stage)");
  static constexpr bool by_value = !takes_stream || kStreamByValue<FirstParam>;
  static_assert(by_value,
                "plumb::Service: take the plumb::Stream<T> parameter by value "
                "(plumb::Stream<T> in), not by reference");

  template <class Param, bool Takes = takes_stream>
  struct Element {
    using type = Invalid;
  };
  template <class Param>
  struct Element<Param, true> {
    using type = typename IsStream<std::remove_cvref_t<Param>>::element;
  };
  using input = typename Element<FirstParam>::type;
  static_assert(!IsView<input>::value,
                "plumb::Service: a Service's stages take plumb::Stream<T>, not "
                "plumb::Stream<plumb::View<T>>: every item is answered by value");

  static constexpr bool shape_ok = takes_stream && by_value && !IsView<input>::value;
  static constexpr bool invocable = [] {
    if constexpr (shape_ok) {
      return std::is_invocable_v<F&, Stream<input>, Constants&...>;
    } else {
      return false;
    }
  }();
  static_assert(!shape_ok || invocable,
                "plumb::stage: the constants do not fit the callable; pass one constant per "
                "parameter after the plumb::Stream, each convertible to its parameter type");
  using result = typename StageResult<false, shape_ok && invocable, F, input, Constants...>::type;
  static constexpr bool returns_generator = IsGenerator<result>::value;
  static_assert(!(shape_ok && invocable) || returns_generator,
                "plumb::Service: every stage returns plumb::Generator<Out> and yields one output "
                "per input; a Service has no sink stage (each item's future receives what the "
                "last stage yields)");
  static constexpr bool ok = shape_ok && invocable && returns_generator;
  using output = typename GeneratorElement<ok, result>::type;
};

template <class... Stages>
struct ServiceRules {
  using List = std::tuple<ServiceStage<Stages>...>;
  static constexpr std::size_t count = sizeof...(Stages);
  static constexpr bool stages_ok = (ServiceStage<Stages>::ok && ...);

  template <std::size_t... I>
  static constexpr bool links_match(std::index_sequence<I...>) {
    return ((std::is_same_v<typename std::tuple_element_t<I, List>::output,
                            typename std::tuple_element_t<I + 1, List>::input>) &&
            ...);
  }
  static constexpr bool links_ok = [] {
    if constexpr (stages_ok && count > 1) {
      return links_match(std::make_index_sequence<count - 1>{});
    } else {
      return stages_ok;
    }
  }();
  static_assert(!stages_ok || links_ok,
                "plumb::Service: a stage's input must match the previous stage's output; the "
                "previous stage returns Generator<T>, so this stage must take Stream<T> with the "
                "same T");
  static constexpr bool ok = stages_ok && links_ok;
  using input = typename std::tuple_element_t<0, List>::input;
  using output = typename std::tuple_element_t<count - 1, List>::output;
};

// --- The state every part of a Service shares -------------------------------------------------

// Errors of items that failed in this process keep their original exception object; those of a
// worker process arrive as an ItemError only. Fork safety: a worker process has a copy of this
// object, with a copy of its mutex in whatever state it was at the fork; it never takes that
// mutex (pid_ is the pid of the process that started the Service). It also holds how large a
// stage's packet may be where the link after it crosses a process boundary: an output over that
// becomes its item's error (fit_to_link).
class ServiceErrors {
 public:
  ServiceErrors() = default;
  ServiceErrors(const ServiceErrors&) = delete;
  ServiceErrors& operator=(const ServiceErrors&) = delete;

  // Called by Service::start() before the Service's thread and its worker processes exist.
  void set_service_process() noexcept { pid_ = ::getpid(); }

  [[nodiscard]] bool in_service_process() const noexcept { return ::getpid() == pid_; }

  // What travels for item `id`, which failed with `error` in the calling worker's stage body.
  // Takes the worker's reference to the exception: from here on the item's future is its only
  // owner, so the worker never touches the object after another thread got it.
  ItemError item_error(std::uint64_t id, std::exception_ptr error) {
    const WorkerInfo& worker = this_worker();
    auto block = std::make_unique<SharedFailure>();
    write_remote(*block, error, make_failure(worker, error));
    ItemError item{static_cast<std::uint32_t>(block->kind), block->type_name, block->what,
                   block->stage_index, block->stage_name, block->worker_index, block->pid};
    if (in_service_process()) {
      std::lock_guard lock(mutex_);
      local_.insert_or_assign(id, std::move(error));
    }
    return item;
  }

  // The exception for item `id` that failed with `item`: the original object if it failed in
  // this process, else one rebuilt from what travelled (as a worker process's run error is).
  std::exception_ptr take_error(std::uint64_t id, const ItemError& item) {
    {
      std::lock_guard lock(mutex_);
      if (const auto found = local_.find(id); found != local_.end()) {
        std::exception_ptr error = std::move(found->second);
        local_.erase(found);
        return error;
      }
    }
    auto block = std::make_unique<SharedFailure>();
    block->kind = static_cast<RemoteKind>(item.kind);
    copy_text(block->type_name, item.type_name);
    copy_text(block->what, item.what);
    block->stage_index = item.stage_index;
    copy_text(block->stage_name, item.stage_name);
    block->worker_index = item.worker_index;
    block->pid = item.pid;
    return rebuild_remote(*block).first;
  }

  // The run ended: errors of items that never reached the answers stage go.
  void forget_errors() noexcept {
    std::lock_guard lock(mutex_);
    local_.clear();
  }

  // Called by Service::start() before the Service's thread and its worker processes exist (so
  // every worker reads it without a lock): for each stage, the slot size of the link after it
  // where that link crosses a process boundary, else 0 (no limit).
  void set_link_limits(std::vector<std::size_t> limits) { link_limits_ = std::move(limits); }

  // The largest packet the link after stage `stage` takes, or 0 for no limit.
  [[nodiscard]] std::size_t link_limit(std::size_t stage) const noexcept {
    return stage < link_limits_.size() ? link_limits_[stage] : 0;
  }

 private:
  ::pid_t pid_ = ::getpid();
  std::mutex mutex_;
  std::unordered_map<std::uint64_t, std::exception_ptr> local_;
  std::vector<std::size_t> link_limits_;  // written before the run only
};

// The items between submit() and their futures.
//
// Invariants (all under mutex_):
//   S1 every id in promises_ is an item that submit() accepted and whose future has no value or
//      error yet; the answers stage removes it before it sets the future; after the run ended
//      promises_ is empty and stays empty (ended_ refuses new items).
//   S2 queue_ holds at most kQueued items: those accepted but not yet taken by the submit stage.
//   S3 once ended_ is set it stays set, and error_ is the run's outcome.
// Wake-ups: items_ wakes the submit stage (an item, close, stop), room_ wakes submitters (room,
// end), started_cv_ wakes start(). The run's stop reaches the submit stage through on_stop(),
// a RunState waker: RunState's mutex is taken before this one, never the other way round
// (cancel() releases mutex_ before it stops the run).
template <class In, class Out>
class ServiceCore : public ServiceErrors {
  static constexpr std::size_t kQueued = 1;

 public:
  // Accepts one item and returns its future; with `wait`, waits while the queue is full,
  // without, returns nothing then (and leaves `item` alone). Throws once the Service is closed
  // or ended.
  std::optional<std::future<Out>> submit(In& item, bool wait) {
    std::unique_lock lock(mutex_);
    if (wait) room_.wait(lock, [&] { return queue_.size() < kQueued || !accepting(); });
    if (!accepting()) refuse(lock);
    if (queue_.size() >= kQueued) return std::nullopt;
    const std::uint64_t id = next_id_;
    std::promise<Out> promise;
    std::future<Out> future = promise.get_future();
    Tagged<In> packet{id, std::move(item), std::nullopt};
    const auto entry = promises_.emplace(id, std::move(promise)).first;
    try {
      queue_.push_back(std::move(packet));
    } catch (...) {
      promises_.erase(entry);  // S1: no promise without its item
      throw;
    }
    ++next_id_;
    lock.unlock();
    items_.notify_one();
    return future;
  }

  // The next item for the submit stage: waits for one; returns false once the Service is
  // closed and every queued item was passed on, or the run stops. Throws CancelledError when
  // cancel() came before the submit stage started.
  bool next_item(Tagged<In>& packet) {
    bool more = false;
    {
      std::unique_lock lock(mutex_);
      if (!started_) {
        started_ = true;
        started_cv_.notify_all();
        if (cancel_requested_) throw_cancelled();
      }
      items_.wait(lock, [&] { return !queue_.empty() || closing_ || stopping_; });
      more = !stopping_ && !queue_.empty();
      if (more) {
        packet = std::move(queue_.front());
        queue_.pop_front();
      }
    }
    if (more) room_.notify_one();
    return more;
  }

  // The body of the answers stage, per packet: sets the item's future.
  void answer(Tagged<Out>& packet) {
    std::promise<Out> promise;
    {
      std::lock_guard lock(mutex_);
      const auto found = promises_.find(packet.id);
      PLUMB_ASSERT(found != promises_.end(), "plumb::Service: an answer for an unknown item");
      promise = std::move(found->second);
      promises_.erase(found);
    }
    if (packet.error) {
      promise.set_exception(take_error(packet.id, *packet.error));
    } else {
      promise.set_value(std::move(*packet.value));
    }
  }

  // A RunState waker: the run is stopping. Runs in whichever thread stopped the run, with
  // RunState's mutex held; in a worker process (a copy of this object) it does nothing.
  void on_stop() {
    if (!in_service_process()) return;
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    items_.notify_all();
    room_.notify_all();
  }

  // No more items: the submit stage ends once it has passed on the queued ones.
  void close() {
    {
      std::lock_guard lock(mutex_);
      closing_ = true;
    }
    items_.notify_all();
    room_.notify_all();
  }

  // Returns whether the submit stage has started (then the caller stops the run); else the
  // submit stage will throw CancelledError as soon as it starts.
  bool request_cancel() {
    std::lock_guard lock(mutex_);
    closing_ = true;
    cancel_requested_ = true;
    room_.notify_all();
    return started_;
  }

  // The run ended with `error` (or none): every future not answered yet gets that error.
  void end(std::exception_ptr error) noexcept {
    std::unordered_map<std::uint64_t, std::promise<Out>> unanswered;
    {
      std::lock_guard lock(mutex_);
      ended_ = true;
      error_ = error;
      unanswered.swap(promises_);
      queue_.clear();
    }
    room_.notify_all();
    started_cv_.notify_all();
    forget_errors();
    for (auto& [id, promise] : unanswered) promise.set_exception(error ? error : unanswered_);
  }

  // Waits until the submit stage runs or the run ended. Returns the run's error if it ended
  // before the submit stage started.
  std::exception_ptr wait_started() {
    std::unique_lock lock(mutex_);
    started_cv_.wait(lock, [&] { return started_ || ended_; });
    return started_ ? nullptr : error_;
  }

  [[nodiscard]] std::exception_ptr error() const {
    std::lock_guard lock(mutex_);
    return error_;
  }

  [[nodiscard]] bool ended() const {
    std::lock_guard lock(mutex_);
    return ended_;
  }

 private:
  [[nodiscard]] bool accepting() const noexcept { return !closing_ && !stopping_ && !ended_; }

  // Throws why the Service takes no more items. A stopping run has its error once it ended:
  // waits for that (the workers' end, within the run's grace period).
  [[noreturn]] void refuse(std::unique_lock<std::mutex>& lock) {
    if (stopping_ && !closing_) room_.wait(lock, [&] { return ended_; });
    if (error_) std::rethrow_exception(error_);
    throw Error(closing_ ? "plumb.error: submit() after close() or cancel(); the Service takes no "
                           "more items"
                         : "plumb.error: submit() after the Service ended");
  }

  [[noreturn]] static void throw_cancelled() {
    throw CancelledError("plumb.cancelled: Service::cancel() stopped the service");
  }

  // Made up front: end() must not fail for want of memory.
  const std::exception_ptr unanswered_ = std::make_exception_ptr(
      Error("plumb.error: the Service's run ended without answering this item"));
  mutable std::mutex mutex_;
  std::condition_variable items_;
  std::condition_variable room_;
  std::condition_variable started_cv_;
  std::deque<Tagged<In>> queue_;                               // S2
  std::unordered_map<std::uint64_t, std::promise<Out>> promises_;  // S1
  std::uint64_t next_id_ = 0;
  bool started_ = false;
  bool closing_ = false;
  bool cancel_requested_ = false;
  bool stopping_ = false;
  bool ended_ = false;  // S3
  std::exception_ptr error_;
};

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
      fmt::format("plumb.service_error: {} worker {} {}; every stage of a plumb::Service yields "
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
          fmt::format("plumb.stage_error: {} worker {} yielded an output of {} bytes for one item, "
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
  using Rules = ServiceStage<UserStage>;
  using In = typename Rules::input;
  using Out = typename Rules::output;

  UserStage user;
  ServiceErrors* errors = nullptr;

  Generator<Tagged<Out>> operator()(Stream<Tagged<In>> in) const {
    return serve_items<In, Out>(std::move(in), user.callable(), user.constants(), errors);
  }
};

}  // namespace detail

/// The least `max_message_size` of the links after a Service's stages: room for an item's error
/// (its texts are cut to SharedFailure's sizes).
inline constexpr std::size_t kItemErrorRoom = sizeof(detail::SharedFailure) + 1024;

namespace detail {

// For each stage, the slot size of the link after it where that link crosses a process
// boundary (the producing or the consuming group runs in worker processes), else 0: the rule
// by which the Runner makes a link shared, and the size it gives its slots (a Service's
// packets have no fixed size).
template <std::size_t Count>
std::vector<std::size_t> process_link_limits(const Plan& plan,
                                             const std::array<const StageOptions*, Count>& stages) {
  std::vector<std::size_t> limits(Count, 0);
  for (std::size_t g = 0; g + 1 < plan.groups.size(); ++g) {
    const std::size_t producer = plan.groups[g].last;
    if (plan.groups[g].mode == Mode::process || plan.groups[g + 1].mode == Mode::process) {
      limits[producer] = stages[producer]->max_message_size;
    }
  }
  return limits;
}

template <class Spec>
void copy_options(Spec& to, const StageOptions& from) {
  to.workers(from.workers);
  if (from.in_flight) to.in_flight(*from.in_flight);
  to.max_message_size(std::max(from.max_message_size, plumb::kItemErrorRoom));
  if (!from.name.empty()) to.name(from.name);
  if (from.mode) to.mode(*from.mode);
  to.ordered(from.ordered);
}

}  // namespace detail

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
/// (unanswered futures get `CancelledError`). The destructor calls `close()`.
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
    options_ = options;
    // The submit and answers stages run in this process: in their own threads, or, when every
    // stage is sequential, in the Service's thread with the rest.
    const bool all_sequential =
        options_.mode == Mode::sequential &&
        std::apply([](const auto&... serve) {
          return ((serve.options().mode.value_or(Mode::sequential) == Mode::sequential) && ...);
        }, serve_);
    if (options_.mode != Mode::sequential) submit_.mode(Mode::thread);
    if (!all_sequential) answer_.mode(Mode::thread);

    names_.clear();
    names_.emplace_back(detail::kSubmitStageName);
    std::apply([&](const auto&... serve) {
      (names_.push_back(serve.options().name.empty() ? fmt::format("stage {}", names_.size())
                                                     : serve.options().name),
       ...);
    }, serve_);
    names_.emplace_back(detail::kAnswerStageName);
    const std::array<const StageOptions*, kCount> stage_options = std::apply(
        [&](const auto&... serve) {
          return std::array<const StageOptions*, kCount>{&submit_.options(), &serve.options()...,
                                                         &answer_.options()};
        },
        serve_);
    detail::validate_stages(stage_options, names_, false);
    detail::validate_run_options(options_);
    plan_ = detail::make_plan(stage_options, names_, options_.mode, false);
    std::vector<std::size_t> limits = detail::process_link_limits(plan_, stage_options);
    // Where items cross into a worker process right away, too large ones are refused in
    // submit(); a stage's output too large for its link fails its item (fit_to_link).
    size_limit_ = limits[0];
    core_.set_link_limits(std::move(limits));

    core_.set_service_process();
    state_.on_stop([core = &core_] { core->on_stop(); });
    try {
      thread_ = std::thread([this] { run(); });
    } catch (...) {
      state_.clear_wakers();
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
      state_.fail(std::make_exception_ptr(
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
  // refused here instead, to its own caller. Counts the bytes as Codec<Tagged> writes them.
  void check_size(const input_type& item) const {
    if constexpr (is_serializable_v<input_type>) {
      if (size_limit_ == 0) return;
      Writer counter;
      counter.write(std::uint64_t{0});
      counter.write(std::uint8_t{1});
      counter.write(item);
      counter.write(std::uint8_t{0});
      if (counter.size() > size_limit_) {
        throw Error(fmt::format(
            "plumb.error: the item encodes to {} bytes, over the max_message_size({}) of {}, "
            "the Service's first stage, which runs in a worker process; raise its "
            ".max_message_size()",
            counter.size(), size_limit_, detail::describe_stage(1, names_[1])));
      }
    }
  }


  // The Service's thread: one run of the stages, until the submit stage ends or the run fails.
  void run() {
    std::exception_ptr error;
    try {
      std::apply(
          [&](const auto&... serve) {
            Runner(std::tuple<const Submit&, const Serve<Stages>&..., const Answer&>(
                       submit_, serve..., answer_),
                   options_, state_, names_, plan_, arena_, stats_)
                .run();
          },
          serve_);
    } catch (...) {
      error = std::current_exception();
      try {
        failure_ = state_.failure();
      } catch (...) {
        // without the details: the error itself still reaches every future
      }
    }
    core_.end(error);
  }

  Core core_;
  Submit submit_;
  std::tuple<Serve<Stages>...> serve_;
  Answer answer_;
  RunOptions options_;
  std::vector<std::string> names_;
  detail::Plan plan_;
  detail::RunState state_;
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
