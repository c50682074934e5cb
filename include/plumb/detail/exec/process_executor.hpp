#pragma once
// SPDX-License-Identifier: MIT
// plumb/detail/exec/process_executor.hpp: ProcessExecutor, which runs workers as forked processes:
// the run's shared mapping, the forks, each process's life from fork to _exit, and the judging of
// every exit.

#include <plumb/detail/core/describe.hpp>
#include <plumb/detail/core/format.hpp>
#include <plumb/detail/exec/child_process.hpp>
#include <plumb/detail/exec/done_signal.hpp>
#include <plumb/detail/exec/executor.hpp>
#include <plumb/detail/exec/fork_output.hpp>
#include <plumb/detail/exec/fork_thread.hpp>
#include <plumb/detail/exec/remote_result.hpp>
#include <plumb/detail/run/plan.hpp>
#include <plumb/detail/run/remote_error.hpp>
#include <plumb/detail/run/run_state.hpp>
#include <plumb/detail/run/shared_memory.hpp>
#include <plumb/error.hpp>
#include <plumb/worker.hpp>

#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <exception>
#include <new>
#include <optional>
#include <span>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace plumb::detail {

// A worker to fork: its id (index into the run's worker tables) and the first stage of its
// group (whose name and worker index its death is reported under).
struct ForkedWorker {
  std::size_t id = 0;
  std::size_t first_stage = 0;
};

// Runs workers as processes forked from a thread of the run's own (fork_thread.hpp), after the
// run's shared mapping exists and before any thread of the run starts (fork copies only the
// forking thread).
//
// A worker process says how it ended twice: in its outcome word in the mapping, stored before
// _exit, and in its exit status. Only where both agree is the status believed (exit(70) from
// user code is a death, not a report).
// Sync [W-O]/[R-O]: the child stores its outcome word with release; the caller loads it with
// acquire after reaping the child.
class ProcessExecutor final : public Executor {
 public:
  // `infos[id][stage]`: the WorkerInfo of worker `id` for each stage of its group.
  ProcessExecutor(RunState& state, ArenaCache& arena, const std::vector<std::vector<WorkerInfo>>& infos,
                  const DoneSignal& done) noexcept
      : state_(state), arena_(arena), infos_(infos), done_(done) {}

  // --- The shared mapping, before any worker starts --------------------------------------------

  // Lays out and maps the run's shared mapping: this executor's parts (reserve(), map()),
  // `stats_bytes` for the workers' statistics blocks (whose address it returns), and the links
  // that cross a process boundary (`links.reserve()`). Throws ConfigError if the whole is more
  // than a process can map, with `links.too_large(total, limit)` as its message (naming the
  // largest link).
  template <class Links>
  std::byte* map_run(Links& links, std::size_t stats_bytes, std::size_t result_bytes) {
    ArenaLayout layout;
    reserve(layout, result_bytes);
    const std::size_t stats_at = layout.add(stats_bytes);
    links.reserve(layout);
    if (layout.overflowed() || layout.size() > kMaxArenaBytes) {
      const std::string total = layout.overflowed() ? std::string("more than 2^64 bytes")
                                                    : detail::format("{} bytes", layout.size());
      throw ConfigError(links.too_large(total, kMaxArenaBytes));
    }
    map(layout);
    return arena_->at(stats_at);
  }

  [[nodiscard]] SharedArena& arena() noexcept { return *arena_; }
  [[nodiscard]] ResultBlock& result() noexcept { return *result_; }
  [[nodiscard]] std::size_t result_capacity() const noexcept { return result_capacity_; }

  // --- Forking ---------------------------------------------------------------------------------

  // Forks one process per worker; each runs `child_main(id)` (noexcept, returns its Outcome)
  // and exits. Throws only before the first fork (std::bad_alloc); from then on a failure
  // becomes the run's error, and the workers forked so far run on (the supervisor reaps them).
  template <class ChildMain>
  void fork(std::span<const ForkedWorker> workers, ChildMain& child_main) {
    children_.reserve(workers.size());  // nothing may throw between two forks
    flush_before_fork();  // or what the caller buffered would be written once per process
    auto fork_all = [&]() noexcept { fork_each(workers, child_main); };
    if (const int error = fork_thread_.run(fork_all); error != 0) {
      fail_with(IpcError("plumb.ipc_error: could not start the thread that forks the worker processes",
                         std::error_code(error, std::system_category())));
    }
  }

  // After every child was reaped: their parent-death signal is moot, and their pidfds go.
  void release() noexcept {
    fork_thread_.release();
    close_pidfds(children_);
  }

  // --- Supervision -----------------------------------------------------------------------------

  bool collect() noexcept override {
    bool running = false;
    for (Child& child : children_) {
      if (!child.reaped) reap(child);
      running = running || !child.reaped;
    }
    return running;
  }

  std::chrono::milliseconds wait_on(std::vector<pollfd>& fds) const override {
    auto longest = std::chrono::milliseconds::max();
    for (const Child& child : children_) {
      if (child.reaped) continue;
      if (child.pidfd >= 0) {
        fds.push_back(pollfd{child.pidfd, POLLIN, 0});
      } else {
        longest = std::chrono::milliseconds(5);  // no pidfd: polled
      }
    }
    return longest;
  }

  void kill_now() noexcept override {
    killed_ = true;
    for (const Child& child : children_) {
      if (!child.reaped) kill_child(child);
    }
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

 private:
  // Places the run's control block, the workers' outcome words and room for a sink's value of
  // `result_bytes` in `layout`.
  void reserve(ArenaLayout& layout, std::size_t result_bytes) {
    control_at_ = layout.add(sizeof(SharedControl));
    outcomes_at_ = layout.add(infos_.size() * sizeof(std::atomic<WorkerOutcome>));
    result_at_ = layout.add(sizeof(ResultBlock) + result_bytes);
    result_capacity_ = result_bytes;
  }

  // Maps `layout` (reusing the Pipeline's mapping when it is large enough) and builds the parts
  // reserve() placed; from here on the run's stop word and first-error claim live in it.
  // Preconditions: the layout did not overflow and is at most kMaxArenaBytes.
  void map(const ArenaLayout& layout) {
    if (!arena_ || arena_->size() < layout.size() || arena_->missed_huge_pages()) {
      arena_.reset();  // unmap the old one first: both at once could exceed memory
      arena_.emplace(layout.size());
    }
    control_ = new (arena_->at(control_at_)) SharedControl{};
    state_.share(*control_);
    for (std::size_t id = 0; id < infos_.size(); ++id) {
      new (arena_->at(outcomes_at_) + id * sizeof(std::atomic<WorkerOutcome>))
          std::atomic<WorkerOutcome>(WorkerOutcome::running);
    }
    outcomes_ = std::launder(reinterpret_cast<std::atomic<WorkerOutcome>*>(arena_->at(outcomes_at_)));
    result_ = new (arena_->at(result_at_)) ResultBlock{};
  }

  template <class E>
  void fail_with(E&& error) noexcept {
    try {
      state_.fail(std::make_exception_ptr(std::forward<E>(error)), std::nullopt);
    } catch (...) {
      state_.fail(std::current_exception(), std::nullopt);  // the message could not be built
    }
  }

  // On the fork thread.
  template <class ChildMain>
  void fork_each(std::span<const ForkedWorker> workers, ChildMain& child_main) noexcept {
    const pid_t parent = ::getpid();
    for (const ForkedWorker& worker : workers) {
      const WorkerInfo& info = infos_[worker.id][worker.first_stage];
      const pid_t pid = ::fork();
      const int fork_errno = errno;
      if (pid < 0) {
        try {
          fail_with(IpcError(detail::format("plumb.ipc_error: fork() failed for {} worker {}",
                                         describe_stage(info.stage_index, info.stage_name), info.index),
                             std::error_code(fork_errno, std::system_category())));
        } catch (...) {
          state_.fail(std::current_exception(), std::nullopt);
        }
        return;
      }
      if (pid == 0) child(worker.id, parent, child_main);  // never returns
      // Reserved before the first fork: cannot throw.
      children_.push_back(Child{pid, open_pidfd(pid), worker.id, worker.first_stage, info.index});
    }
  }

  // The whole life of a worker process.
  template <class ChildMain>
  [[noreturn]] void child(std::size_t id, pid_t parent, ChildMain& child_main) noexcept {
    arm_parent_death_signal(parent);
    drop_inherited_output();
    close_pidfds(children_);  // the earlier siblings' pidfds are the caller's business
    ::close(done_.fd());
    state_.become_worker_process();
    const Outcome outcome = child_main(id);
    const WorkerOutcome said = outcome == Outcome::finished ? WorkerOutcome::finished
                               : outcome == Outcome::failed ? WorkerOutcome::reported
                                                            : WorkerOutcome::stopped;
    outcomes_[id].store(said, std::memory_order_release);  // [sync W-O] pairs with [sync R-O]
    flush_own_output();
    ::_exit(static_cast<int>(outcome == Outcome::finished ? WorkerExit::finished
                             : outcome == Outcome::failed ? WorkerExit::reported
                                                          : WorkerExit::stopped));
  }

  void reap(Child& child) noexcept {
    siginfo_t info{};
    const int reaped = ::waitid(P_PID, static_cast<id_t>(child.pid), &info, WEXITED | WNOHANG);
    const bool vanished = reaped != 0 && errno == ECHILD;
    if (reaped != 0 && !vanished) return;  // EINTR: next round
    if (!vanished && info.si_pid == 0) return;  // still running
    if (vanished && child.pidfd >= 0 && !pidfd_exited(child.pidfd)) return;
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

  // A worker process that exited (reaped with waitid).
  void judge_exit(const Child& child, const siginfo_t& info) {
    const WorkerOutcome said = outcomes_[child.worker_id].load(std::memory_order_acquire);  // [sync R-O]
    if (info.si_code == CLD_EXITED) {
      const auto status = static_cast<WorkerExit>(info.si_status);
      if (status == WorkerExit::finished && said == WorkerOutcome::finished) return;
      if (status == WorkerExit::stopped && said == WorkerOutcome::stopped) return;
      if (status == WorkerExit::reported && said == WorkerOutcome::reported) return adopt_report();
      if (status == WorkerExit::finished) {
        return report_death(child, "exited with status 0 before finishing its stream");
      }
      return report_death(child, detail::format("exited with status {}", info.si_status));
    }
    if (killed_) return;  // we killed it: the run's error is already recorded
    report_death(child, detail::format("was killed by signal {}", signal_name(info.si_status)));
  }

  // A child whose exit status somebody else took (SIGCHLD ignored, or a waitpid(-1) elsewhere
  // in the application): judged by its outcome word alone.
  void judge_vanished(const Child& child) {
    switch (outcomes_[child.worker_id].load(std::memory_order_acquire)) {  // [sync R-O]
      case WorkerOutcome::finished:
      case WorkerOutcome::stopped:
        return;
      case WorkerOutcome::reported:
        return adopt_report();
      case WorkerOutcome::running:
        break;
    }
    if (killed_) return;
    report_death(child,
                 "ended without finishing its stream, and its exit status was collected by "
                 "someone else (is SIGCHLD ignored, or does the application call waitpid(-1)?)");
  }

  void adopt_report() {
    if (!control_->failure.written()) return;
    auto [error, failure] = rebuild_remote(control_->failure);
    state_.adopt(std::move(error), std::move(failure));
  }

  void report_death(const Child& child, const std::string& how) {
    const WorkerInfo& worker = infos_[child.worker_id][child.stage_index];
    state_.fail(std::make_exception_ptr(WorkerDiedError(
                    detail::format("plumb.worker_died: {} worker {} (pid {}) {}",
                                describe_stage(worker.stage_index, worker.stage_name), worker.index,
                                child.pid, how),
                    worker.stage_index, worker.stage_name, worker.index, child.pid)),
                Failure{worker.stage_index, worker.stage_name, worker.index, how, child.pid});
  }

  RunState& state_;
  ArenaCache& arena_;
  const std::vector<std::vector<WorkerInfo>>& infos_;
  const DoneSignal& done_;
  std::size_t control_at_ = 0;
  std::size_t outcomes_at_ = 0;
  std::size_t result_at_ = 0;
  std::size_t result_capacity_ = 0;
  SharedControl* control_ = nullptr;
  std::atomic<WorkerOutcome>* outcomes_ = nullptr;  // per worker id, set by its process
  ResultBlock* result_ = nullptr;
  std::vector<Child> children_;
  bool killed_ = false;
  ForkThread fork_thread_;  // the worker processes' parent thread, until release()
};

}  // namespace plumb::detail
