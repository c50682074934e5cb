#pragma once
// SPDX-License-Identifier: MIT
// plumb/detail/sync/yield_backoff.hpp: when a waiting thread may give its core away with
// sched_yield(), learnt from what its recent yields cost.

#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>

namespace plumb::detail {

// sched_yield() hands the core to *any* runnable task on it. While only the pipeline's own
// threads compete, that is the peer a waiter waits for, and a yield returns within microseconds
// (0.6 us alone on a core). Beside a foreign CPU-bound task (a compiler, another service) the
// yield lets that task run out its slice: measured on the 2-vCPU target with a busy loop on
// the same core, the median yield took 1 us but one in ten took 4-8 ms (a 250 Hz tick), and
// the waiting thread, still runnable, was not woken when its packet came (a futex sleeper is,
// and preempts the hog), so each hand-off of a packet cost milliseconds: a 1 s pipeline took
// 59 s.
//
// So a wait measures each yield. One that took longer than `kSlowYield` ends the yield phase
// of that wait (the waiter naps, SpinPolicy::naps, then sleeps on its futex) and starts a
// *quiet period* in which this thread does not yield at all (it naps instead): 1 ms, doubling
// while slow yields keep coming back soon after each period (up to ~1 s), so that under
// persistent foreign load a thread pays about one slice per quiet period (0.4% once the period
// has grown). A slow yield is "soon" when it comes within the first `kProbesToForgive` waits
// that yielded after the period ended; that many yielding waits without a slow yield forgive
// the history (the next slow yield starts again at 1 ms). Beside a busy loop most single
// yields are fast (the scheduler lets the yielder run again while the hog's lag is used up),
// so one fast yield proves nothing; a yielding wait makes up to 128 yields, though, and 16
// such waits in a row rarely pass without a slow one under such load, while on a quiet machine
// they pass within a millisecond. On a quiet machine no yield was slow in the benchmarks
// (pipeline_bench small/deep, contention_bench quiet), so the policy changes nothing there.
//
// Why `kSlowYield` is 250 us: above the yield phase's whole time budget (SpinPolicy::yield_time,
// 100 us) and ten wake-ups (15-30 us each), below the shortest slice a foreign task is given
// (0.75 ms, EEVDF's base slice; 4 ms measured here). A yield to a peer of the pipeline that
// keeps the core longer (a producer filling a deep link) also counts as slow; the waiter then
// naps, and its wake-up costs a few percent of what the peer did meanwhile.
//
// Invariants (the fields are plain: each thread has its own YieldBackoff, thread_local):
//   Y1: level_ == 0 <=> no slow yield since the history was last forgiven; then quiet_until_
//       is in the past (or 0) and the thread yields freely.
//   Y2: level_ > 0 => quiet_until_ - (time of the last slow yield) == kFirstQuiet << (level_ - 1)
//       <= kFirstQuiet << (kMaxLevel - 1); a stale state therefore delays yielding by at most
//       that long, and is dropped at once when it was inherited through fork() (owner_, below).
//   Y3: fast_probes_ counts the waits that yielded, none slowly, since the last slow yield.
//
// fork(): a child process starts on a copy of the forking thread, thread_locals included (plumb
// forks its workers from a fresh thread, but a user's stage may fork from one that waited).
// The copy would keep the child from yielding for up to a second on the parent's evidence, so
// the state records its process and a thread of another process starts afresh: a stale state
// costs the child at most one probe (one slow yield).
class YieldBackoff {
 public:
  static constexpr std::int64_t kSlowYield = 250'000;      // ns; see above
  static constexpr std::int64_t kFirstQuiet = 1'000'000;   // ns: the first quiet period
  static constexpr int kMaxLevel = 11;                     // quiet periods up to 1 ms << 10
  static constexpr int kProbesToForgive = 16;              // fast yielding waits (Y3)

  // The calling thread's state.
  static YieldBackoff& this_thread() noexcept {
    static thread_local YieldBackoff backoff;
    return backoff;
  }

  // Whether a wait that starts at `now` (steady clock, ns) may yield. `pid`: the calling
  // process's id, asked for only while a quiet period runs (it costs a system call, which the
  // futex sleep that follows dwarfs).
  template <class Pid>
  [[nodiscard]] bool may_yield(std::int64_t now, Pid&& pid) noexcept {
    if (now >= quiet_until_) return true;
    if (owner_ == pid()) return false;
    *this = YieldBackoff{};  // inherited through fork(): probe afresh (Y2)
    return true;
  }
  [[nodiscard]] bool may_yield(std::int64_t now) noexcept {
    return may_yield(now, [] { return ::getpid(); });
  }

  // A yield that ended at `now` took longer than kSlowYield: the wait stops yielding, and so
  // does this thread for a quiet period (Y2).
  template <class Pid>
  void slow_yield(std::int64_t now, Pid&& pid) noexcept {
    const bool soon = level_ > 0 && fast_probes_ < kProbesToForgive;
    level_ = soon ? std::min(level_ + 1, kMaxLevel) : 1;
    quiet_until_ = now + (kFirstQuiet << (level_ - 1));
    fast_probes_ = 0;
    owner_ = pid();
  }
  void slow_yield(std::int64_t now) noexcept {
    slow_yield(now, [] { return ::getpid(); });
  }

  // A wait yielded at least once, and no yield was slow (Y3).
  void fast_probe() noexcept {
    if (level_ == 0) return;
    if (++fast_probes_ == kProbesToForgive) level_ = 0;  // forgiven (Y1)
  }

  // --- Observers, for tests ---
  [[nodiscard]] int level() const noexcept { return level_; }
  [[nodiscard]] std::int64_t quiet_until() const noexcept { return quiet_until_; }

 private:
  std::int64_t quiet_until_ = 0;
  int level_ = 0;
  int fast_probes_ = 0;
  pid_t owner_ = 0;
};

// The steady clock in nanoseconds (CLOCK_MONOTONIC: one clock for every process).
inline std::int64_t steady_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// How a wait's yield or nap phase ended.
enum class PhaseEnd { ready, over, slow };

// The yield phase of a wait, which started at `start`: calls `ready()` (true once the wait is
// over; it may claim what it waited for) with a `yield()` between calls, until `ready()` returns
// true (PhaseEnd::ready), or after `yields` yields or once `budget` ns have passed
// (PhaseEnd::over), or after a slow yield, which also tells `backoff` (PhaseEnd::slow). `now`
// reads the clock (ns) once per yield, right after it, so that each yield's cost is the gap
// between two reads (the `ready()` call in between costs a cache miss or two). The clock, the
// yield and the pid are parameters so that tests can script what each yield costs.
template <class Ready, class Clock, class Yield, class Pid>
PhaseEnd yield_phase(Ready& ready, int yields, std::int64_t budget, YieldBackoff& backoff,
                     std::int64_t start, Clock&& now, Yield&& yield, Pid&& pid) {
  std::int64_t before = start;
  for (int i = 0;; ++i) {
    if (ready()) {
      if (i > 0) backoff.fast_probe();
      return PhaseEnd::ready;
    }
    if (i == yields || (i > 0 && before - start >= budget)) {
      if (i > 0) backoff.fast_probe();
      return PhaseEnd::over;
    }
    yield();
    const std::int64_t after = now();
    if (after - before > YieldBackoff::kSlowYield) {
      backoff.slow_yield(after, pid);
      return PhaseEnd::slow;
    }
    before = after;
  }
}

template <class Ready, class Clock, class Yield>
PhaseEnd yield_phase(Ready& ready, int yields, std::int64_t budget, YieldBackoff& backoff,
                     std::int64_t start, Clock&& now, Yield&& yield) {
  return yield_phase(ready, yields, budget, backoff, start, now, yield, [] { return ::getpid(); });
}

// What a wait does instead of yielding, in a quiet period or after a slow yield: calls
// `ready()` with a `nap()` (a short sleep) between calls, `naps` times at most. A napping
// thread is not runnable, so foreign work takes the core without holding this thread behind
// it for a slice: its timer's wake-up preempts a CPU-bound task as a futex wake-up does. Unlike
// a futex sleeper, it costs the notifier no system call, and it finds what queued up meanwhile
// in one look (a deep link is drained in batches instead of one wake-up per packet).
template <class Ready, class Nap>
PhaseEnd nap_phase(Ready& ready, int naps, Nap&& nap) {
  for (int i = 0; i < naps; ++i) {
    if (ready()) return PhaseEnd::ready;
    nap();
  }
  return ready() ? PhaseEnd::ready : PhaseEnd::over;
}

}  // namespace plumb::detail
