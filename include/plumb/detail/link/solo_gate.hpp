#pragma once
// SPDX-License-Identifier: MIT
// plumb/detail/link/solo_gate.hpp: SoloGate, how a lent group with an input and several workers
// is lent: its lead (worker 0) alone, while its other workers wait at their next pull (H7).
//
// Why: a helper inside a lent step that waits for input cannot take the packets the lent
// worker's siblings make meanwhile: it is their consumer. A Service's answer made by a sibling
// would wait for the next request, which waits for that answer. So while the lead is lent its
// siblings make nothing: each waits at its next pull, where it owes no output (all its code
// could still yield needs more input) and holds no input, until the lead is home again.
//
// The word: kSolo (the lead asked its siblings to wait) beside a count of the siblings that
// make nothing until kSolo is cleared: those waiting at a pull, and those retired for good.
//
// Invariants (cited as S1-S3 in lend.hpp, ring_link.hpp and links.hpp):
//   S1 quiet is stable: a sibling leaves its wait only by a CAS from a word without kSolo, and
//      only the lead's home clears kSolo, so once the lead read kSolo | siblings (quiet()), no
//      sibling takes input until its home clears kSolo. It parks the lead only then, and
//      clears kSolo only with the lead at home (taken back or ended, H4: no helper inside its
//      step), so no sibling makes a packet while a helper runs the lead.
//   S2 a sibling waits after letting go of its last input: it holds no slot of its input link;
//      it holds one free slot of its output link (drain_into() takes it before the pull), so
//      LinkSet::lends() lends such a group only if that link has a slot for each sibling and
//      one more for the lead's helper (H2): capacity >= workers.
//   S3 the run's stop wakes every sibling (wake_all()); a sibling's wait ends when kSolo is
//      cleared or the run stops.
// Every access is a read-modify-write or a load of the one word, whose modification order is
// the whole argument; no other data is published through it (the packets go through the
// links), so acq_rel / acquire only keep the word's readers from being reordered before
// their own earlier link operations.

#include <plumb/detail/stats/tally.hpp>
#include <plumb/detail/sync/stop_flag.hpp>
#include <plumb/detail/sync/wait.hpp>

#include <atomic>
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
  // does (or retired): then the lead may be lent until release() (S1).
  [[nodiscard]] bool quiet() noexcept {
    std::uint32_t word = word_.load(std::memory_order_acquire);
    if ((word & kSolo) == 0) word = word_.fetch_or(kSolo, std::memory_order_acq_rel) | kSolo;
    return word == (kSolo | siblings_);
  }

  // The lead is home: the siblings take input again.
  void release() noexcept {
    if ((word_.load(std::memory_order_relaxed) & kSolo) == 0) return;
    word_.fetch_and(~kSolo, std::memory_order_acq_rel);
    event_.notify_all();
  }

  // --- A sibling, at a pull, holding nothing (S2) ---------------------------------------------

  // Returns at once unless the lead asked; else waits until the lead is home or the run stops.
  // The wait is the sibling's wait for input (`timer`, may be null).
  void wait_turn(StopFlag stop, WaitTimer* timer) {
    if ((word_.load(std::memory_order_relaxed) & kSolo) == 0) [[likely]] return;
    word_.fetch_add(1, std::memory_order_acq_rel);
    const WaitScope waiting(timer);
    event_.wait(
        [&] {
          std::uint32_t word = word_.load(std::memory_order_acquire);
          while ((word & kSolo) == 0 || stop.stopping()) {
            // Leaves only from a word without kSolo (S1), or when the run stops.
            if (word_.compare_exchange_weak(word, word - 1, std::memory_order_acq_rel,
                                            std::memory_order_acquire)) {
              return true;
            }
          }
          return false;
        },
        SpinPolicy{.yields = 0, .naps = 0});
  }

  // The sibling makes nothing more (its input ended, or its code returned): it counts as
  // waiting for good.
  void retire() noexcept { word_.fetch_add(1, std::memory_order_acq_rel); }

  // The run stops: every sibling's wait re-reads the stop flag (S3).
  void wake_all() noexcept { event_.wake_all(); }

 private:
  static constexpr std::uint32_t kSolo = 1U << 31;

  std::atomic<std::uint32_t> word_{0};
  std::uint32_t siblings_;
  Event<Sharing::process_private> event_;
};

}  // namespace plumb::detail
