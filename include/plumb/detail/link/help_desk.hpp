#pragma once
// SPDX-License-Identifier: MIT
// plumb/detail/link/help_desk.hpp: HelpDesk, where the producer workers of an in-process link
// are lent to its consumers: a worker whose packets are cheap parks between packets, and a
// consumer that finds the link empty runs the parked worker's next step on its own thread
// instead of waiting to be woken (docs/design/lending.md).

#include <plumb/detail/core/cache_line.hpp>
#include <plumb/detail/stats/tally.hpp>
#include <plumb/detail/sync/stop_flag.hpp>
#include <plumb/detail/sync/wait.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

namespace plumb::detail {

// A producer worker as its helpers see it while it is lent (lend.hpp implements it on the
// home thread's stack; it lives until the worker ended or its home took it back, H4).
class LentWorker {
 public:
  enum class Step : std::uint8_t { packet, ended };

  // Runs the worker until it queued one packet in `slot` (a free slot of its output link, taken
  // by the helper) or its output ended (the slot given back). Throws what the worker threw
  // (already attributed to its stage), or Stopped. `ticks` receives the step's duration.
  virtual Step step(std::uint32_t slot, std::int64_t& ticks) = 0;

  // The exception in flight came out of step(): the run's error (if first), charged to the
  // worker's stage.
  virtual void fail() noexcept = 0;

 protected:
  LentWorker() = default;
  ~LentWorker() = default;
  LentWorker(const LentWorker&) = default;
  LentWorker& operator=(const LentWorker&) = default;
};

// The steps a thread runs as a helper inside a timed stretch of a lent worker's own work
// (lend.hpp's OwnWork: the worker's input pulls ran them, ring_link.hpp's help()): their time
// is not that worker's work, whether the step was timed itself or not. Per thread, as the
// steps nest on one thread's stack; `open` is 0 outside a timed stretch, and then help()
// measures nothing.
struct NestedSteps {
  int open = 0;               // OwnWork stretches open on this thread
  std::int64_t ticks = 0;     // helped steps' time inside them, outermost only (ring_link.hpp)
  std::int64_t charged = 0;   // what those steps charged to the input timer of the worker
                              // whose input ran them (LinkInput::charge())

  static NestedSteps& here() noexcept {
    thread_local NestedSteps steps;
    return steps;
  }
};

// The seats of one link's producer workers, one per worker. A seat says who may run its
// worker: its home thread, one helper, or nobody (parked).
//
// Seat states (low bits of `state`; kRecall is a flag beside them):
//   kHome    the home thread runs the worker (it may be blocked on a link, as without lending)
//   kParked  the worker is between two packets, lent: a helper may claim it (CAS -> kHelped)
//   kHelped  one helper holds it: runs a step of it, then puts it back (-> kParked), keeps it for
//            its next packet (the link's one consumer: no other helper waits for it), or ends it
//   kEnded   its output ended, or a step threw: only the home touches it again
//   kRecall  its home wants it back (stop, a stall, a step that turned expensive): helpers no
//            longer claim it, and the helper that holds it wakes the home when it lets go
//
// Invariants (cited as H1-H7 in lend.hpp, ring_link.hpp and links.hpp):
//   H1 one owner: only the thread that moved a seat into kHome (its home) or kHelped (a helper,
//      by CAS from exactly kParked) touches the worker: its frames, its input, its tally, and
//      the producer side of the link. [sync H-P] the release store or CAS that lets a seat go
//      pairs with [sync H-C], the acquire CAS that claims it, so each owner sees the last
//      owner's writes.
//   H2 slot before step: a helper runs a step only while it holds a free slot of the link,
//      taken without waiting; a step never waits for room in the link it fills, so a helper
//      blocks only where its own thread would have: on an input further upstream.
//   H3 upstream only: a consumer helps only the producers of the link it reads. Helping nests
//      at most once per link of the pipeline, and every wait inside a step is on a link
//      further upstream: no cycle of waits through helpers.
//   H4 the home outlives its lent worker: a home leaves its wait (and unwinds what lives on its
//      stack, the LentWorker included) only once the seat is kEnded or taken back (kHome).
//   H5 no deadlock through held slots: LinkSet::lends() lends a group only if the link before it
//      has room for every slot its parked workers and the workers upstream can hold at once
//      (capacity >= W + U - 1; lent solo, H7, W is 1: capacity >= U). Proof in
//      docs/design/lending.md.
//   H7 a lent group with an input and several workers is lent solo (solo_gate.hpp): a helper
//      inside a lent step that waits for input cannot take the packets the worker's siblings
//      make at home meanwhile (it is their consumer), so only its lead is lent, and only while
//      every sibling waits at a pull (S1).
//   H6 attribution: an exception out of a step is recorded by LentWorker::fail() (charged to the
//      lent worker) before the helper unwinds with Stopped; the helper's stage is not blamed.
//
// Written by: homes (park, take back, end after a step at home), helpers (claim, let go, end),
// anyone (kRecall via recall()); `steps` by the seat's owner; `watched_*` by the watch only.
class HelpDesk {
 public:
  static constexpr std::uint32_t kHome = 0;
  static constexpr std::uint32_t kParked = 1;
  static constexpr std::uint32_t kHelped = 2;
  static constexpr std::uint32_t kEnded = 3;
  static constexpr std::uint32_t kStateMask = 3;
  static constexpr std::uint32_t kRecall = 4;

  // What a home's wait for its lent worker ended with.
  enum class Return : std::uint8_t { ended, taken_back };

  // What a helper's attempt came to.
  enum class Help : std::uint8_t { packet, ended };

  // One seat per producer worker of the link, by worker index.
  explicit HelpDesk(std::size_t seats) : seats_(std::make_unique<Seat[]>(seats)), count_(seats) {}
  HelpDesk(const HelpDesk&) = delete;
  HelpDesk& operator=(const HelpDesk&) = delete;

  [[nodiscard]] std::size_t seats() const noexcept { return count_; }

  // --- Home API: seat `seat`'s home thread only --------------------------------------------

  // Lends the worker: from now on helpers may run it. The caller then wakes the link's waiting
  // consumers (so that one of them claims it) and waits in wait_home().
  void park(std::size_t seat, LentWorker& worker, WorkerClock& clock) noexcept {
    Seat& s = seats_[seat];
    s.worker = &worker;
    // Relaxed: the watch only marks a stall on it (the clock outlives the run's workers).
    s.clock.store(&clock, std::memory_order_relaxed);
    s.state.store(kParked, std::memory_order_release);  // [sync H-P] pairs with [sync H-C]
  }

  // Waits until the lent worker ended, or takes it back once recalled (a stall, an expensive
  // step, the run stopping: H4). After `taken_back` the home runs the worker again.
  Return wait_home(std::size_t seat, StopFlag stop) {
    Seat& s = seats_[seat];
    Return result = Return::ended;
    s.home_event.wait(
        [&] {
          std::uint32_t state = s.state.load(std::memory_order_acquire);  // [sync H-C]: the helper's writes
          if ((state & kStateMask) == kEnded) {
            result = Return::ended;
            return true;
          }
          if ((state & kRecall) == 0) {
            if (!stop.stopping()) return false;
            // acq_rel: the RMW is also a claim attempt's read ([sync H-C]).
            state = s.state.fetch_or(kRecall, std::memory_order_acq_rel) | kRecall;
            if ((state & kStateMask) == kEnded) {
              result = Return::ended;
              return true;
            }
          }
          // Recalled: take it back unless a helper holds it (that helper wakes this thread
          // when it lets go, having seen kRecall).
          if ((state & kStateMask) != kParked) return false;
          if (!s.state.compare_exchange_strong(state, kHome, std::memory_order_acquire,  // [sync H-C]
                                               std::memory_order_relaxed)) {
            return false;  // changed under us: look again
          }
          result = Return::taken_back;
          return true;
        },
        SpinPolicy{.yields = 0, .naps = 0});
    return result;
  }

  // The stop wakes every home (their wait re-reads the stop flag).
  void wake_homes() noexcept {
    for (std::size_t i = 0; i < count_; ++i) seats_[i].home_event.wake_all();
  }

  // --- Helper API: consumers of the link ------------------------------------------------------

  // Whether some seat looks parked. Relaxed: a hint, re-checked by the claim's CAS.
  [[nodiscard]] bool parked_approx() const noexcept {
    for (std::size_t i = 0; i < count_; ++i) {
      if (seats_[i].state.load(std::memory_order_relaxed) == kParked) return true;
    }
    return false;
  }

  // Claims a parked seat, starting at `cursor` (the helper's own: it goes on with the seat it
  // helped last, whose worker's frames are warm in its cache). Returns the seat, or count_.
  std::size_t claim(std::size_t& cursor) noexcept {
    for (std::size_t n = 0; n < count_; ++n) {
      const std::size_t i = cursor + n < count_ ? cursor + n : cursor + n - count_;
      std::uint32_t expected = kParked;
      if (seats_[i].state.load(std::memory_order_relaxed) == kParked &&
          seats_[i].state.compare_exchange_strong(expected, kHelped, std::memory_order_acquire,  // [sync H-C]
                                                  std::memory_order_relaxed)) {
        cursor = i;
        return i;
      }
    }
    return count_;
  }

  // Runs one step of the claimed seat `seat` with the free slot `slot` (H2). After a packet the
  // helper still holds the seat: it lets go (let_go()) or, as the link's one consumer, keeps it
  // for its next packet (ring_link.hpp). After the end or an exception the seat is ended.
  // `ticks`: the step's duration. Throws Stopped (the run's error recorded, H6).
  Help step(std::size_t seat, std::uint32_t slot, std::int64_t& ticks) {
    Seat& s = seats_[seat];
    // One writer (the owner, H1): odd while a step runs. [sync H-S] every store releases (free
    // on x86), pairing with the watch's acquire: a watch that sees the step ended (or a later
    // step begun) sees its stall mark taken (Lent::step) and does not clear a mark still to be
    // charged (clear_stale_mark()). Both stores: a release sequence no longer runs through a
    // thread's later plain stores (C++20).
    const std::uint64_t steps = s.steps.load(std::memory_order_relaxed);
    s.steps.store(steps + 1, std::memory_order_release);  // [sync H-S]
    LentWorker::Step done = LentWorker::Step::ended;
    try {
      done = s.worker->step(slot, ticks);
    } catch (const Stopped&) {
      s.steps.store(steps + 2, std::memory_order_release);  // [sync H-S]
      end(s);
      throw;
    } catch (...) {
      s.steps.store(steps + 2, std::memory_order_release);  // [sync H-S]
      s.worker->fail();
      end(s);
      throw Stopped{};
    }
    s.steps.store(steps + 2, std::memory_order_release);  // [sync H-S]
    if (done == LentWorker::Step::ended) {
      end(s);
      return Help::ended;
    }
    return Help::packet;
  }

  // Lets go of a claimed seat (after its step, or without one: no free slot, H2).
  void let_go(std::size_t seat) noexcept { let_go(seats_[seat]); }

  // Whether the home of a claimed seat wants it back. Relaxed: the holder lets go at its next
  // look; the home waits for that (wait_home()).
  [[nodiscard]] bool recalled(std::size_t seat) const noexcept {
    return (seats_[seat].state.load(std::memory_order_relaxed) & kRecall) != 0;
  }

  // --- Any thread ----------------------------------------------------------------------------

  // Asks every home to take its worker back (a stall, an expensive step).
  void recall() noexcept {
    for (std::size_t i = 0; i < count_; ++i) {
      Seat& s = seats_[i];
      // Relaxed: the flag publishes nothing; the home's own acquire CAS claims the seat.
      if ((s.state.fetch_or(kRecall, std::memory_order_relaxed) & kRecall) == 0) s.home_event.notify_one();
    }
  }

  // The supervisor's watch (every few ms): a seat helped through a whole period without a step
  // done is stalled inside a step (a stage that turned slow or blocks in its own code, not one
  // that waits for its input: waits_for_input()): recall the link's
  // workers, so that the stalled worker's siblings run on their homes again, concurrently, and
  // mark the stall on the worker's clock, so that the statistics show the step in progress as
  // its busy time (WorkerClock::stalled_since). Returns whether any seat is lent (parked or
  // helped): the supervisor looks less often while none is. The supervising thread only.
  bool watch() noexcept {
    const std::int64_t now = TickClock::now();
    bool stalled = false;
    bool lent = false;
    for (std::size_t i = 0; i < count_; ++i) {
      Seat& s = seats_[i];
      // The state relaxed: a heuristic; a wrong reading costs one needless recall at most. A
      // seat held between steps (its one consumer keeps it, odd `steps` only inside one) is
      // not stalled.
      const std::uint64_t steps = s.steps.load(std::memory_order_acquire);  // [sync H-S]
      const std::uint32_t state = s.state.load(std::memory_order_relaxed) & kStateMask;
      lent = lent || state == kParked || state == kHelped;
      const bool helped = state == kHelped && steps % 2 == 1 && !waits_for_input(s);
      if (helped && s.watched_helped && steps == s.watched_steps) {
        stalled = true;
        mark_stall(s, steps);
      } else if (steps != s.watched_steps) {
        clear_stale_mark(s);
      }
      s.watched_helped = helped;
      s.watched_steps = steps;
    }
    last_watch_ = now;
    if (stalled) recall();
    return lent;
  }

 private:
  struct alignas(kCacheLine) Seat {
    std::atomic<std::uint32_t> state{kHome};
    LentWorker* worker = nullptr;           // set by the home before it parks (H1)
    std::atomic<WorkerClock*> clock{nullptr};  // the lent worker's (for the watch)
    std::atomic<std::uint64_t> steps{0};    // 2 per step run by helpers; odd during one
    Event<Sharing::process_private> home_event;
    std::uint64_t watched_steps = 0;        // the watch's last reading
    bool watched_helped = false;
  };

  // [sync H-P]: the helper's writes (the worker's frames, tally, link cursors) before the next
  // owner's claim. A recalled seat's home is woken (it waits for exactly this).
  static void let_go(Seat& s) noexcept {
    std::uint32_t state = s.state.load(std::memory_order_relaxed);
    while (!s.state.compare_exchange_weak(state, kParked | (state & kRecall), std::memory_order_release,
                                          std::memory_order_relaxed)) {
    }
    if ((state & kRecall) != 0) s.home_event.notify_one();
  }

  static void end(Seat& s) noexcept {
    std::uint32_t state = s.state.load(std::memory_order_relaxed);
    while (!s.state.compare_exchange_weak(state, kEnded | (state & kRecall), std::memory_order_release,
                                          std::memory_order_relaxed)) {
    }
    s.home_event.notify_one();
  }

  // Whether the seat's worker, inside a step, waits for its input or runs a step of the stage
  // before it (how a helper waits for input): not stalled in its own code. The stage before it
  // is, if anything, and its own desk's watch sees that. Relaxed: a hint, as in watch().
  static bool waits_for_input(const Seat& s) noexcept {
    const WorkerClock* clock = s.clock.load(std::memory_order_relaxed);
    return clock != nullptr &&
           (clock->waiting_since[static_cast<int>(Side::input)].load(std::memory_order_relaxed) != 0 ||
            clock->helping.load(std::memory_order_relaxed) != 0);
  }

  // The stall began a period ago at least: from the last watch. If the step ended meanwhile
  // (its helper may not have seen the mark), the mark is taken back unless a helper took it.
  // The mark and the step's end are stores to two variables, each read by the other side
  // with no sequentially consistent order between them, so the watch may still read the old
  // `steps` after the helper looked for a mark and found none: the mark then stays, until the
  // worker's next helped step takes it (charging the time from this watch to that step's end
  // as busy) or the next pass clears it (clear_stale_mark()). A statistic's error of two periods at most; excluding it would
  // take a sequentially consistent store on every step.
  void mark_stall(Seat& s, std::uint64_t steps) noexcept {
    WorkerClock* clock = s.clock.load(std::memory_order_relaxed);
    if (clock == nullptr || last_watch_ == 0) return;
    // Only the watch sets a mark (helpers only take it): one that stands is this stall's, from
    // an earlier pass, with its waits.
    if (clock->stalled_since.load(std::memory_order_relaxed) != 0) return;
    // The worker's input waits so far: the helper takes those after the mark out of the stall.
    clock->stalled_waits.store(clock->input_wait_ticks(), std::memory_order_relaxed);
    // [sync H-M] release: stalled_waits before the mark, for the helper's acquire exchange.
    clock->stalled_since.store(last_watch_, std::memory_order_release);
    if (s.steps.load(std::memory_order_relaxed) == steps) return;
    std::int64_t marked = last_watch_;
    clock->stalled_since.compare_exchange_strong(marked, 0, std::memory_order_relaxed);
  }

  // A mark left on a seat whose steps moved on since the last pass (mark_stall()'s race).
  // Relaxed, as the mark; a helper taking it at the same time wins or loses the CAS.
  static void clear_stale_mark(Seat& s) noexcept {
    WorkerClock* clock = s.clock.load(std::memory_order_relaxed);
    if (clock == nullptr) return;
    std::int64_t since = clock->stalled_since.load(std::memory_order_relaxed);
    if (since != 0) clock->stalled_since.compare_exchange_strong(since, 0, std::memory_order_relaxed);
  }

  std::unique_ptr<Seat[]> seats_;
  std::size_t count_;
  std::int64_t last_watch_ = 0;  // TickClock, the watch's last pass
};

}  // namespace plumb::detail
