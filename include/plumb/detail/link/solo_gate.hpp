#pragma once
// SPDX-License-Identifier: MIT
// plumb/detail/link/solo_gate.hpp: SoloGate, how a lent group with an input and several workers
// is lent: its lead (worker 0) alone, while its other workers wait at their next pull (H7).
//
// Why: a helper inside a lent step that waits for input cannot take the packets the lent
// worker's siblings make meanwhile: it is their consumer. A Service's answer made by a sibling
// would wait for the next request, which waits for that answer. So while the lead is lent its
// siblings make nothing: each waits at its next pull, holding no input, until the lead is home
// again. What a waiting sibling still owes (a batch it fills across pulls) needs more input,
// which the lead takes while it is lent: so the lead is lent for a turn of kTurn at most, then
// called home (the supervisor's watch, LinkSet::watch()), and each sibling takes a packet
// before it waits again (S4).
//
// The word: kSolo (the lead asked its siblings to wait), the epoch (one per release()), and the
// count of the siblings waiting at a pull in this epoch. Beside it, `retired_`: the siblings
// that make nothing more (their input ended, or their code returned).
//
// Invariants (cited as S1-S4 in lend.hpp, ring_link.hpp and links.hpp):
//   S1 quiet is stable: a sibling counted in an epoch leaves its wait only by a CAS from a word
//      of that epoch without kSolo, or once the epoch changed; only the lead's home clears
//      kSolo or moves the epoch on (release()), so once the lead read kSolo and every sibling
//      waiting or retired (quiet()), no sibling takes input until its home releases them. It
//      parks the lead only then, and releases only with the lead at home (taken back or
//      ended, H4: no helper inside its step), so no sibling makes a packet while a helper
//      runs the lead. The new epoch starts with a count of 0: a sibling still asleep from the
//      last one is not counted, so the lead, asking again at once, waits until each sibling
//      woke, took its packet (S4) and waits again.
//   S2 a sibling waits after letting go of its last input: it holds no slot of its input link;
//      it holds one free slot of its output link (drain_into() takes it before the pull), so
//      LinkSet::lends() lends such a group only if that link has a slot for each sibling and
//      one for each worker of the consumer stage (the lead's helper needs one, H2, and the
//      others would otherwise take turns on one slot).
//   S3 the run's stop wakes every sibling (wake_all()); a sibling's wait ends when the lead
//      releases it (a new epoch) or the run stops.
//   S4 turns: a lead lent for kTurn is called home (due()); it asks again at once, without its
//      policy's verdict (rotated(): a turn says nothing of its cost), and a sibling released
//      from a wait takes the packet its pull was for before it can wait again (the new epoch
//      counts it only then), so that what a sibling owes comes out within a few turns. The
//      lead also stops asking when its siblings are slow to come to a pull (lend.hpp).
// Memory orders: S1 rests on the modification order of the one word (every write to it is a
// read-modify-write). The acq_rel / acquire orders carry one more thing: a sibling's last
// enqueue comes before its count (or retire) in its program order, quiet() reads that with
// acquire before the lead's park (release), and a helper's claim (acquire) then sees the
// packet: LinkInput::help() takes it before it runs the lead's step (ring_link.hpp).
// `lent_since_` is the watch's hint (relaxed, its CAS against release()'s exchange): a wrong
// reading costs a turn early or late.

#include <plumb/detail/stats/tally.hpp>
#include <plumb/detail/sync/stop_flag.hpp>
#include <plumb/detail/sync/wait.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>

namespace plumb::detail {

class SoloGate {
 public:
  // `siblings`: the group's workers but its lead.
  explicit SoloGate(std::size_t siblings) noexcept : siblings_(static_cast<std::uint32_t>(siblings)) {}
  SoloGate(const SoloGate&) = delete;
  SoloGate& operator=(const SoloGate&) = delete;

  // --- The lead's home ---------------------------------------------------------------------

  // Asks the siblings to wait at their next pull (if not asked yet); returns whether every one
  // does (or retired): then the lead may be lent until release() (S1), and its turn begins
  // now (the watch's clock).
  [[nodiscard]] bool quiet() noexcept {
    // Retired first: a sibling leaving on stop and retiring between the two reads is then
    // missed (false), not counted twice.
    const std::uint32_t retired = retired_.load(std::memory_order_acquire);
    std::uint32_t word = word_.load(std::memory_order_acquire);
    if ((word & kSolo) == 0) word = word_.fetch_or(kSolo, std::memory_order_acq_rel) | kSolo;
    if ((word & kCount) + retired != siblings_) return false;
    lent_since_.store(now_ns(), std::memory_order_relaxed);
    return true;
  }

  // The lead is home: the siblings take input again (a new epoch, S1).
  void release() noexcept {
    std::uint32_t word = word_.load(std::memory_order_relaxed);
    if ((word & kSolo) == 0) return;
    rotated_ = lent_since_.exchange(0, std::memory_order_relaxed) == kCalledHome;
    while (!word_.compare_exchange_weak(word, (word + kEpochOne) & kEpochs, std::memory_order_acq_rel,
                                        std::memory_order_relaxed)) {
    }
    event_.notify_all();
  }

  // Whether the last release() ended a turn the watch called over (S4).
  [[nodiscard]] bool rotated() const noexcept { return rotated_; }

  // --- The supervisor's watch ------------------------------------------------------------------

  // Whether the lead's turn is over (`now`: now_ns()): then the caller recalls it (S4). Once
  // per turn: the CAS marks this lent period called home, and loses to a release() that ended
  // it first (then the note dies with the period).
  [[nodiscard]] bool due(std::int64_t now) noexcept {
    std::int64_t since = lent_since_.load(std::memory_order_relaxed);
    if (since <= 0 || now - since < kTurn.count()) return false;
    return lent_since_.compare_exchange_strong(since, kCalledHome, std::memory_order_relaxed);
  }

  // --- A sibling, at a pull, holding nothing (S2) ---------------------------------------------

  // Returns at once unless the lead asked; else waits until the lead is home or the run stops,
  // and the caller takes its packet (S4) before it can wait again. The wait is the sibling's
  // wait for input (`timer`, may be null).
  void wait_turn(StopFlag stop, WaitTimer* timer) {
    if ((word_.load(std::memory_order_relaxed) & kSolo) == 0) [[likely]] return;
    const std::uint32_t epoch = word_.fetch_add(1, std::memory_order_acq_rel) & kEpochs;
    const WaitScope waiting(timer);
    event_.wait(
        [&] {
          std::uint32_t word = word_.load(std::memory_order_acquire);
          for (;;) {
            // Released: counted no more (S1). A count of 0 in its epoch cannot count it either
            // (the epoch wrapped while it slept): released too, not decremented.
            if ((word & kEpochs) != epoch || (word & kCount) == 0) return true;
            if ((word & kSolo) != 0 && !stop.stopping()) return false;
            // Leaves only from a word of its epoch without kSolo (S1), or when the run stops.
            if (word_.compare_exchange_weak(word, word - 1, std::memory_order_acq_rel,
                                            std::memory_order_acquire)) {
              return true;
            }
          }
        },
        SpinPolicy{.yields = 0, .naps = 0});
  }

  // The sibling makes nothing more (its input ended, or its code returned): it counts as
  // waiting for good.
  void retire() noexcept { retired_.fetch_add(1, std::memory_order_acq_rel); }

  // The run stops: every sibling's wait re-reads the stop flag (S3).
  void wake_all() noexcept { event_.wake_all(); }

 private:
  // The word's fields. kMaxWorkers (128) bounds the count; the epoch wraps after 2^15
  // releases, which a sibling would have to sleep through, woken at each (notify_all()).
  static constexpr std::uint32_t kSolo = 1U << 31;
  static constexpr std::uint32_t kEpochOne = 1U << 16;
  static constexpr std::uint32_t kEpochs = kSolo - kEpochOne;  // bits 16-30
  static constexpr std::uint32_t kCount = kEpochOne - 1;
  static constexpr std::chrono::nanoseconds kTurn = std::chrono::milliseconds(10);

  static constexpr std::int64_t kCalledHome = -1;  // lent_since_ of a turn called over

  std::atomic<std::uint32_t> word_{0};
  std::atomic<std::uint32_t> retired_{0};
  // now_ns() when the lead was lent; 0 at home; kCalledHome once the watch ended its turn.
  std::atomic<std::int64_t> lent_since_{0};
  bool rotated_ = false;  // the lead's home only
  std::uint32_t siblings_;
  Event<Sharing::process_private> event_;
};

}  // namespace plumb::detail
