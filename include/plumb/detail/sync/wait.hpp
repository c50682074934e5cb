#pragma once
// SPDX-License-Identifier: MIT
// plumb/detail/sync/wait.hpp: spin-then-block waiting on a futex, with a waiter count so that
// notifying costs no system call while nobody sleeps.

#include <plumb/detail/sync/yield_backoff.hpp>

#include <linux/futex.h>
#include <sys/syscall.h>
#include <sched.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <thread>

namespace plumb::detail {

// Whether an Event may be waited on from several processes (it then lives in shared memory).
enum class Sharing { process_private, process_shared };

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

// How long a waiter keeps trying before it sleeps on the futex: `pauses` rounds with a CPU
// pause, then `yields` rounds that give the core away (sched_yield), then sleep.
//
// Why these defaults (the measurements are in docs/design/link.md, "Waiting"): on two cores a
// wake-up costs 15-30 us while the peer usually answers within a few yields, so a bounded yield
// phase beats both sleeping at once and pause-spinning (which burns the very peer's time
// slice). sched_yield() may hand the core to a task that is not ours for a whole slice, so the
// phase is bounded by time as well as by count, and a slow yield ends it (the thread then naps
// instead for a while: yield_backoff.hpp).
struct SpinPolicy {
  int pauses = 0;
  int yields = 128;
  std::chrono::nanoseconds yield_time = std::chrono::microseconds(100);
  // Instead of the yields after a slow yield and in a quiet period (yield_backoff.hpp): `naps`
  // sleeps of `nap` (plus the kernel's timer slack, 50 us by default), then the futex. One nap:
  // with none a deep link wakes its consumer once per packet; with more, a waiter beside a busy
  // foreign task sleeps longer than it waits (docs/design/link.md).
  int naps = 1;
  std::chrono::nanoseconds nap = std::chrono::microseconds(20);
};

// A futex-backed event: waiters sleep until notified and re-check their condition; notifiers
// skip the system call when nobody sleeps.
//
// Invariants:
//   E1: epoch_ only grows (modulo 2^32); it changes in notify_*() and wake_all() only.
//   E2: waiters_ counts the threads between their announce (fetch_add) and retire (fetch_sub).
//   E3: a waiter sleeps only while epoch_ equals the value it read *after* announcing and
//       *before* its last check of the condition, so a notify that follows a condition change
//       either sees the waiter (E2) or changes epoch_ and the futex wait returns at once.
//
// The Dekker-style pairing, with read-modify-writes on waiters_: a notifier does
// [make condition true]; waiters_.fetch_add(0, acq_rel) and a waiter does
// waiters_.fetch_add(1, acq_rel); load epoch_; [check condition]. All RMWs on one variable are
// totally ordered: if the notifier's comes later it reads the waiter's increment (and wakes);
// if it comes earlier, the waiter's RMW reads from the notifier's release sequence, which
// synchronizes, so the waiter's check sees the condition. This relies on every write to
// waiters_ being an RMW (a plain store would end the release sequence). The RMW replaced a
// seq_cst fence + load: GCC emits one `lock xadd`, cheaper than `mfence` on this machine.
template <Sharing Share>
class Event {
  static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t) &&
                    std::atomic<std::uint32_t>::is_always_lock_free,
                "plumb::detail::Event: the futex word must be a plain lock-free 32-bit atomic");

 public:
  // Returns once `ready()` returned true. `ready` is called repeatedly (it may claim what it
  // waits for, e.g. pop from a ring, and must then return true).
  template <class Ready>
  void wait(Ready&& ready, SpinPolicy spin) {
    for (int i = 0; i < spin.pauses; ++i) {
      if (ready()) return;
      cpu_relax();
    }
    // One yielding (or napping) waiter per event is enough to catch a quick answer; more would
    // only take turns on the cores that the producing threads need (31 idle workers on 2
    // cores, say). A hint: relaxed is enough (a wrong count lets one more or one fewer yield).
    PhaseEnd end = PhaseEnd::over;
    if (yielders_.fetch_add(1, std::memory_order_relaxed) == 0) {
      // Yield, unless this thread is in a quiet period (yield_backoff.hpp: a recent yield let
      // foreign work run out its slice); nap instead then, and after a slow yield.
      YieldBackoff& backoff = YieldBackoff::this_thread();
      const std::int64_t start = steady_ns();
      end = PhaseEnd::slow;
      if (backoff.may_yield(start)) {
        end = yield_phase(ready, spin.yields, spin.yield_time.count(), backoff, start, &steady_ns,
                          [] { ::sched_yield(); });
      }
      if (end == PhaseEnd::slow) {
        end = nap_phase(ready, spin.naps, [&] { std::this_thread::sleep_for(spin.nap); });
      }
    }
    yielders_.fetch_sub(1, std::memory_order_relaxed);  // a hint, as above
    if (end == PhaseEnd::ready) return;
    for (;;) {
      if (ready()) return;
      waiters_.fetch_add(1, std::memory_order_acq_rel);  // [sync E-W] pairs with [sync E-N] (E2)
      const std::uint32_t epoch = epoch_.load(std::memory_order_acquire);  // [sync E-R] pairs with [sync E-B]
      if (ready()) {
        waiters_.fetch_sub(1, std::memory_order_relaxed);  // only a hint for notifiers
        return;
      }
      futex_wait(epoch);  // returns at once if epoch_ moved on since the load (E3)
      waiters_.fetch_sub(1, std::memory_order_relaxed);
    }
  }

  // Call after making some waiter's condition true. Wakes one sleeper (if any).
  void notify_one() noexcept { notify(1); }
  // Call after making every waiter's condition true (end of stream).
  void notify_all() noexcept { notify(INT_MAX); }

  // Wakes every sleeper unconditionally (the run is stopping).
  void wake_all() noexcept {
    epoch_.fetch_add(1, std::memory_order_release);  // [sync E-B]
    futex_wake(INT_MAX);
  }

 private:
  void notify(int count) noexcept {
    // A read-modify-write, not a load: [sync E-N] pairs with [sync E-W] (E3).
    if (waiters_.fetch_add(0, std::memory_order_acq_rel) == 0) return;
    epoch_.fetch_add(1, std::memory_order_release);  // [sync E-B] pairs with [sync E-R]
    futex_wake(count);
  }

  static constexpr int kPrivate = Share == Sharing::process_private ? FUTEX_PRIVATE_FLAG : 0;

  void futex_wait(std::uint32_t expected) noexcept {
    // EAGAIN (epoch moved on) and EINTR both mean: re-check the condition.
    ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&epoch_), FUTEX_WAIT | kPrivate,
              expected, nullptr, nullptr, 0);
  }
  void futex_wake(int count) noexcept {
    ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&epoch_), FUTEX_WAKE | kPrivate, count,
              nullptr, nullptr, 0);
  }

  std::atomic<std::uint32_t> epoch_{0};
  std::atomic<std::uint32_t> waiters_{0};
  std::atomic<std::uint32_t> yielders_{0};  // waiters in the yield phase (a hint)
};

}  // namespace plumb::detail
