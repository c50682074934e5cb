#pragma once
// SPDX-License-Identifier: MIT
// plumb/detail/exec/fork_thread.hpp: the thread a run forks its worker processes from; it lives until
// they are reaped, so that their parent-death signal follows the run, not the caller's thread.

#include <pthread.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstddef>
#include <mutex>

namespace plumb::detail {

// Why a thread of the run's own: a worker process arms PR_SET_PDEATHSIG, which fires when the
// *thread* that forked it exits, not its process (prctl(2)). Forked from the thread that called
// stream(), the workers would die when that thread ends while the Results live on in another
// one. Forked from this thread, which the Runner lets go only after
// every child exited, the signal still comes with the death of the caller's process by any
// means (SIGKILL included: every thread dies with it), and never during the run.
//
// Rejected: dropping PDEATHSIG for a watch of the parent in each child. A pidfd of the parent
// polled by a watchdog thread costs a thread per worker and makes every worker multi-threaded
// when its stages fork in turn (nested pipelines); a pipe whose write end only the caller
// holds is inherited by the children of any other run forking at the same moment, so after
// the caller's death two runs' children can hold each other's pipes open forever.
//
// What a worker process sees: it starts on this thread's stack (given the caller's stack size,
// so a stage that recursed deeply before still can), with the caller's signal mask, CPU
// affinity and name (a thread inherits them), and with fresh thread_local variables, as a
// worker thread has. Locks held by the caller's thread at the fork are copied held, as those of
// any other thread are (guide: "as with any fork").
//
// Cost: one thread started, handed the forks and joined per process-mode run: ~37 us (median,
// 2 loaded cores), against ~1.2 ms for the smallest process-mode run (three worker processes).
class ForkThread {
 public:
  ForkThread() = default;
  ForkThread(const ForkThread&) = delete;
  ForkThread& operator=(const ForkThread&) = delete;
  ~ForkThread() { release(); }

  // Runs `fork_all()` on a new thread and returns once it returned there (in this process; in
  // a child it never returns). Returns 0, or the error number if the thread could not start
  // (then `fork_all` did not run).
  template <class ForkAll>
  int run(ForkAll& fork_all) noexcept {
    task_ = [](void* argument) noexcept { (*static_cast<ForkAll*>(argument))(); };
    argument_ = &fork_all;
    const int started = start();
    if (started != 0) return started;
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [this] { return forked_; });
    return 0;
  }

  // Lets the thread end and joins it. Call once every child forked from it has exited (its
  // end sends them the parent-death signal). Does nothing if run() did not start a thread.
  void release() noexcept {
    if (!running_) return;
    {
      std::lock_guard lock(mutex_);
      released_ = true;
    }
    changed_.notify_all();
    ::pthread_join(thread_, nullptr);
    running_ = false;
  }

 private:
  // The stack the worker processes get: as large as the calling thread's. The main thread's is
  // RLIMIT_STACK (pthread_getattr_np would parse /proc/self/maps for it, on every run); an
  // unlimited one is capped at 1 GiB, as address space for a stack that is touched only where
  // used. 0: the default.
  static std::size_t caller_stack_size() noexcept {
    constexpr std::size_t kCap = std::size_t{1} << 30;
    if (::getpid() == static_cast<pid_t>(::syscall(SYS_gettid))) {
      rlimit limit{};
      if (::getrlimit(RLIMIT_STACK, &limit) != 0) return 0;
      return limit.rlim_cur == RLIM_INFINITY ? kCap
                                             : std::min<std::size_t>(limit.rlim_cur, kCap);
    }
    pthread_attr_t attributes;
    if (::pthread_getattr_np(::pthread_self(), &attributes) != 0) return 0;
    std::size_t size = 0;
    ::pthread_attr_getstacksize(&attributes, &size);
    ::pthread_attr_destroy(&attributes);
    return std::min(size, kCap);
  }

  // Starts the thread with the caller's stack size, or with the default one if that fails
  // (a large stack under `ulimit -v`, say).
  int start() noexcept {
    int started = -1;
    if (const std::size_t size = caller_stack_size(); size != 0) {
      pthread_attr_t attributes;
      if (::pthread_attr_init(&attributes) == 0) {
        if (::pthread_attr_setstacksize(&attributes, size) == 0) {
          started = ::pthread_create(&thread_, &attributes, &ForkThread::body, this);
        }
        ::pthread_attr_destroy(&attributes);
      }
    }
    if (started != 0) started = ::pthread_create(&thread_, nullptr, &ForkThread::body, this);
    running_ = started == 0;
    return started;
  }

  static void* body(void* self) noexcept {
    auto& thread = *static_cast<ForkThread*>(self);
    thread.task_(thread.argument_);  // no lock held across the forks: the children copy none
    std::unique_lock lock(thread.mutex_);
    thread.forked_ = true;
    thread.changed_.notify_all();
    thread.changed_.wait(lock, [&] { return thread.released_; });
    return nullptr;
  }

  void (*task_)(void*) noexcept = nullptr;
  void* argument_ = nullptr;
  pthread_t thread_{};
  bool running_ = false;  // the caller's: a thread was started and is not joined yet
  std::mutex mutex_;
  std::condition_variable changed_;
  bool forked_ = false;    // mutex_
  bool released_ = false;  // mutex_
};

}  // namespace plumb::detail
