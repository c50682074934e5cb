#pragma once
// SPDX-License-Identifier: MIT
// plumb/detail/service/core.hpp: the state every part of a Service shares: the items between
// submit() and their futures, and the errors of items on their way.

#include <plumb/detail/run/remote_error.hpp>
#include <plumb/detail/run/run_state.hpp>
#include <plumb/detail/service/items.hpp>
#include <plumb/error.hpp>
#include <plumb/worker.hpp>

#include <unistd.h>

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <utility>
#include <vector>

namespace plumb::detail {


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
    ItemError item;
    write_remote(item, error, make_failure(this_worker(), error));
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
    return rebuild_remote(item).first;
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
      if (packet.error) {
        const auto stage = static_cast<std::size_t>(packet.error->stage_index);
        if (failed_.size() <= stage) failed_.resize(stage + 1, 0);
        ++failed_[stage];
      }
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

  // The items that failed, by the index of the stage that failed them (answer()).
  [[nodiscard]] std::vector<std::uint64_t> failed_items() const {
    std::lock_guard lock(mutex_);
    return failed_;
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
  std::vector<std::uint64_t> failed_;  // items failed, by stage index (answer())
};

}  // namespace plumb::detail
