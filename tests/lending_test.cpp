// SPDX-License-Identifier: MIT
// tests/lending_test.cpp: workers lent to the stage they feed (Scheduling::adaptive,
// help_desk.hpp, lend.hpp): who runs what, and every promise of thread mode kept while a
// cheap worker runs on its consumer's thread. Most cases force lending on (Lending::always), so
// that they test the lent path whatever the machine's speed; some check the adaptive policy.

#include "support/counted.hpp"
#include "support/eventually.hpp"
#include "support/lending.hpp"
#include "support/stages.hpp"

#include <plumb/plumb.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <set>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using plumb::Generator;
using plumb::Stream;
using plumb::detail::Lending;
using namespace plumb::test;
using Clock = std::chrono::steady_clock;

namespace {

// A sanitizer build: plumb's own steps cost microseconds there, so a test of the adaptive
// policy's thresholds (microseconds too) says nothing about it; those tests run in the GCC and
// Clang builds.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kSanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif
#else
constexpr bool kSanitized = false;
#endif

// Forces lending on (or off) for the runs of one test, whatever PLUMB_TEST_LENDING says.
class ForceLending {
 public:
  explicit ForceLending(Lending lending) : previous_(plumb::test::forced_lending()) {
    plumb::detail::lending_override_for_tests().store(lending, std::memory_order_relaxed);
  }
  ~ForceLending() { plumb::detail::lending_override_for_tests().store(previous_, std::memory_order_relaxed); }
  ForceLending(const ForceLending&) = delete;
  ForceLending& operator=(const ForceLending&) = delete;

 private:
  Lending previous_;
};

// Who is inside a stage's code right now: per worker and per stage, with the maxima seen.
struct Occupancy {
  std::atomic<int> stage{0};
  std::atomic<int> worker[8] = {};
  std::atomic<int> max_stage{0};
  std::atomic<int> max_worker{0};

  void enter(std::size_t index) {
    const int in_stage = ++stage;
    const int in_worker = ++worker[index];
    raise(max_stage, in_stage);
    raise(max_worker, in_worker);
  }
  void leave(std::size_t index) {
    --worker[index];
    --stage;
  }
  static void raise(std::atomic<int>& maximum, int value) {
    int seen = maximum.load();
    while (value > seen && !maximum.compare_exchange_weak(seen, value)) {
    }
  }
};

// Passes each packet on after spinning for `each` (CPU work, not a sleep: never a stall).
Generator<int> spinning(Stream<int> in, std::chrono::microseconds each) {
  for (int x : in) {
    const auto until = Clock::now() + each;
    while (Clock::now() < until) {
    }
    co_yield x;
  }
}

long sum_of(Stream<int> in) {
  long sum = 0;
  for (int x : in) sum += x;
  return sum;
}

}  // namespace

TEST_CASE("a lent worker runs on one thread at a time, and a stage never runs more bodies than "
          "its workers", "[lending][thread]") {
  const ForceLending force(Lending::always);
  // Several workers are lent only in a group without input (H7): a source. Each source worker
  // makes every count-th number; a single-worker middle stage is lent too, to the sinks.
  const std::size_t workers = GENERATE(1u, 2u, 4u);
  const std::size_t sinks = GENERATE(1u, 3u);
  INFO(workers << " source workers, " << sinks << " sinks");
  Occupancy occupancy;
  std::mutex mutex;
  std::set<std::thread::id> threads;
  std::atomic<long> total{0};
  auto source = [&](int count) -> Generator<int> {
    const plumb::WorkerInfo me = plumb::this_worker();
    for (int x = static_cast<int>(me.index) + 1; x <= count; x += static_cast<int>(me.count)) {
      occupancy.enter(me.index);
      {
        const std::lock_guard lock(mutex);
        threads.insert(std::this_thread::get_id());
      }
      std::this_thread::yield();  // widen the window in which a second runner would show
      occupancy.leave(me.index);
      co_yield x;
    }
  };
  auto sink = [&total](Stream<int> in) {
    for (int x : in) total += x;
  };
  plumb::Pipeline pipeline{
      plumb::stage(source, 3000).workers(static_cast<int>(workers)).in_flight(static_cast<std::int64_t>(workers + 2)),
      plumb::stage(plus, 0).in_flight(static_cast<std::int64_t>(sinks + 1)),
      plumb::stage(sink).workers(static_cast<int>(sinks))};
  pipeline.run();
  CHECK(total == 3000L * 3001 / 2);
  CHECK(occupancy.max_worker == 1);
  CHECK(occupancy.max_stage <= static_cast<int>(workers));
  // Both were lent: some of their packets were made on the next stage's threads.
  CHECK(pipeline.last_stats().stages[0].helped_out > 0);
  CHECK(pipeline.last_stats().stages[1].helped_out > 0);
}

TEST_CASE("a stage with an input and several workers is lent solo: a Service answers each request "
          "before the next", "[lending][thread]") {
  const ForceLending force(Lending::always);
  // H7: were both workers of `two` lent, a helper inside one worker's step could wait for input
  // while the other, at home, made the answer to the last request: nobody would take it until
  // the next request came. Lent solo, its lead alone is lent while the other waits at a pull
  // (solo_gate.hpp). One request at a time, each must be answered. Whether the lead is lent
  // depends on its sibling coming to a pull while it asks (with one request at a time the
  // sibling may wait inside the link instead, and the lead stops asking after 64 packets and
  // 10 ms): up to five services, until one had its lead lent.
  bool lead_lent = false;
  for (int round = 0; round < 5 && !lead_lent; ++round) {
    plumb::Service service{plumb::stage(plus, 1).name("two").workers(2), plumb::stage(plus, 2).name("one")};
    service.start(plumb::Mode::thread);
    for (int i = 0; i < 200; ++i) {
      auto answer = service.submit(i);
      REQUIRE(answer.wait_for(10s) == std::future_status::ready);
      CHECK(answer.get() == i + 3);
    }
    service.close();
    const plumb::Stats& stats = service.last_stats();
    INFO(stats.table());
    CHECK(stats.stages[2].helped_out > 0);
    lead_lent = stats.stages[1].helped_out > 0;
  }
  CHECK(lead_lent);
}

TEST_CASE("a stage lent solo that turns slow gets its workers' concurrency back", "[lending][thread]") {
  const Lending lending = GENERATE(Lending::always, Lending::adaptive);
  const ForceLending force(lending);
  INFO((lending == Lending::always ? "always" : "adaptive"));
  // Four workers, cheap for 20000 packets (lent solo: the lead alone, on the sink's thread),
  // then 60 packets of 5 ms sleep each. Once a slow step is seen (the watch's stall, or the
  // policy's median), the lead goes home and its siblings take packets again: several sleep at
  // once. Lent solo for good, one would sleep at a time.
  std::atomic<int> sleeping{0};
  std::atomic<int> most_sleeping{0};
  auto turns_slow = [&](Stream<int> in) -> Generator<int> {
    for (int x : in) {
      if (x >= 20000) {
        const int now = ++sleeping;
        int seen = most_sleeping.load();
        while (now > seen && !most_sleeping.compare_exchange_weak(seen, now)) {
        }
        std::this_thread::sleep_for(5ms);
        --sleeping;
      }
      co_yield x;
    }
  };
  plumb::Pipeline pipeline{plumb::stage(numbers, 20060).in_flight(8), plumb::stage(turns_slow).workers(4).in_flight(8),
                           plumb::stage(sum_of)};
  CHECK(pipeline.run() == 20059L * 20060 / 2);
  INFO(pipeline.last_stats().table());
  CHECK(most_sleeping >= 2);
  if (lending == Lending::always) CHECK(pipeline.last_stats().stages[1].helped_out > 0);
}

TEST_CASE("a stage lent solo: what a waiting worker holds comes out within a few turns",
          "[lending][thread]") {
  const Lending lending = GENERATE(Lending::always, Lending::adaptive);
  const ForceLending force(lending);
  INFO((lending == Lending::always ? "always" : "adaptive"));
  // Two workers that pass their input on in batches of 4. A worker waiting at a pull while its
  // lead is lent holds up to 3 packets, which come out only once it gets more input: each turn
  // (S4, 10 ms) gives it a packet. Without turns they came out at the end of the input, about
  // 8000 outputs late; a few turns at this source's pace cost a few hundred.
  constexpr int kPackets = 8000;
  auto paced = [](int count) -> Generator<int> {
    for (int i = 0; i < count; ++i) {
      if (i % 4 == 0) std::this_thread::sleep_for(50us);
      co_yield i;
    }
  };
  auto batches = [](Stream<int> in) -> Generator<int> {
    std::vector<int> batch;
    for (int x : in) {
      batch.push_back(x);
      if (batch.size() == 4) {
        for (int y : batch) co_yield y;
        batch.clear();
      }
    }
    for (int y : batch) co_yield y;
  };
  auto worst_lag = [](Stream<int> in) {
    long worst = 0;
    long position = 0;
    for (int x : in) worst = std::max(worst, position++ - x);
    return worst;
  };
  plumb::Pipeline pipeline{plumb::stage(paced, kPackets).in_flight(8), plumb::stage(batches).workers(2).in_flight(4),
                           plumb::stage(worst_lag)};
  const long lag = pipeline.run();
  INFO(pipeline.last_stats().table());
  CHECK(lag < kPackets / 2);
}

TEST_CASE("a lead that asks its siblings to wait does not keep them waiting while it works at home",
          "[lending][thread]") {
  const ForceLending force(Lending::adaptive);
  // One sibling is slow to come to its first pull (300 ms), so the lead, asking the others to
  // wait, stays home; then its steps turn dear (300 us). Asking must end: the siblings take
  // their share of the dear packets. Kept waiting, they made none.
  std::atomic<long> late_by_siblings{0};
  auto turns_dear = [&](Stream<int> in) -> Generator<int> {
    const std::size_t me = plumb::this_worker().index;
    bool first = true;
    for (int x : in) {
      if (me == 3 && first) std::this_thread::sleep_for(300ms);
      first = false;
      if (x > 1000) {
        std::this_thread::sleep_for(300us);
        if (me != 0) ++late_by_siblings;
      }
      co_yield x;
    }
  };
  plumb::Pipeline pipeline{plumb::stage(numbers, 3000).in_flight(8), plumb::stage(turns_dear).workers(4).in_flight(8),
                           plumb::stage(sum_of)};
  CHECK(pipeline.run() == 2999L * 3000 / 2);
  INFO(pipeline.last_stats().table());
  CHECK(late_by_siblings >= 500);  // of 1999: an even share is 1500
}

TEST_CASE("a stage lent solo leaves the stage after it its concurrency", "[lending][thread]") {
  const ForceLending force(Lending::always);
  // Three waiting siblings hold a slot of the 8-slot link each (S2: 3 + 4 sinks <= 8, so the
  // stage is lent solo); the lead's helper and the four sinks share the rest, so the sinks
  // still overlap. Counted per packet: a sink step that began while another sink slept. Taking
  // turns on one slot (the review's reproduction of a link one slot short per sink) made 400
  // packets in 400 steps one after the other: next to no overlap.
  // (At in_flight(4) this stage is not lent, and its sinks take turns even so: its four
  // workers each hold a slot of the link while they wait for input, a producer takes its slot
  // before it pulls: the guide's "Packets in flight" says so.)
  std::atomic<int> busy{0};
  std::atomic<int> overlapped{0};
  std::atomic<long> total{0};
  auto heavy = [&](Stream<int> in) {
    for (int x : in) {
      if (++busy >= 2) ++overlapped;
      std::this_thread::sleep_for(1ms);
      --busy;
      total += x;
    }
  };
  plumb::Pipeline pipeline{plumb::stage(numbers, 400), plumb::stage(plus, 0).workers(4).in_flight(8),
                           plumb::stage(heavy).workers(4)};
  pipeline.run();
  INFO(pipeline.last_stats().table());
  CHECK(total == 399L * 400 / 2);
  CHECK(pipeline.last_stats().stages[1].helped_out > 0);  // lent solo
  CHECK(overlapped >= 100);
}

TEST_CASE("in_flight still bounds the packets alive while workers are lent",
          "[lending][thread]") {
  const ForceLending force(Lending::always);
  Counted::reset();
  std::atomic<long> most_alive{0};
  auto make = [](int count) -> Generator<Counted> {
    for (int i = 0; i < count; ++i) {
      Counted packet(i);
      co_yield std::move(packet);
    }
  };
  auto pass = [](Stream<Counted> in) -> Generator<Counted> {
    for (Counted& packet : in) {
      Counted next(packet.value + 1);
      co_yield std::move(next);
    }
  };
  auto sink = [&most_alive](Stream<Counted> in) {
    long sum = 0;
    for (const Counted& packet : in) {
      const long alive = Counted::alive.load();
      long seen = most_alive.load();
      while (alive > seen && !most_alive.compare_exchange_weak(seen, alive)) {
      }
      sum += packet.value;
    }
    return sum;
  };
  plumb::Pipeline pipeline{plumb::stage(make, 2000).in_flight(2), plumb::stage(pass).workers(2).in_flight(3),
                           plumb::stage(sink)};
  CHECK(pipeline.run() == 2000L * 2001 / 2);
  // Slots: 2 + 3; each generator frame holds at most one packet it is yielding (3 workers), and
  // the moved-from locals (3 more): far below what a producer running ahead unbounded makes.
  CHECK(most_alive.load() <= 2 + 3 + 3 + 3);
  CHECK(Counted::alive == 0);
}

TEST_CASE("workers that sleep are not lent: they overlap on their own threads", "[lending][thread]") {
  const ForceLending force(Lending::adaptive);
  auto nap = [](Stream<int> in) -> Generator<int> {
    for (int x : in) {
      std::this_thread::sleep_for(20ms);
      co_yield x;
    }
  };
  plumb::Pipeline pipeline{plumb::stage(numbers, 40).in_flight(4), plumb::stage(nap).workers(4).in_flight(4),
                           plumb::stage(sum_of)};
  const auto start = Clock::now();
  CHECK(pipeline.run() == 39L * 40 / 2);
  const auto took = Clock::now() - start;
  // 40 naps of 20 ms over 4 workers: 200 ms when they overlap, 800 ms when they do not.
  CHECK(took < 600ms);  // a bound, not a measurement
  CHECK(pipeline.last_stats().stages[1].helped_out == 0);
}

TEST_CASE("a lent stage that turns slow gets its workers' concurrency back", "[lending][thread]") {
  const ForceLending force(Lending::always);
  // Forced: lent from its first packet whatever the build's speed (a sanitizer build makes the
  // stage too expensive to be lent by cost). A source of 4 workers (each makes every fourth
  // number); the first worker to make its 1000th packet stalls for 300 ms there, most likely
  // inside a step the sink's thread runs. The watch takes the stage's workers back home within
  // milliseconds, where the other three go on while it sleeps: they fill the link to the sink
  // (8 slots; the sink itself waits inside the stalled step). Without the watch they would stay
  // parked, with nobody to run them. (The first to reach 1000, not a fixed packet: the sink
  // keeps the seat it helps, so it may run one worker to its end before the next; the
  // stalling worker's siblings must still have packets to make.)
  std::atomic<bool> stall_taken{false};
  std::atomic<bool> stalled{false};
  std::atomic<long> while_stalled{0};
  auto turns_slow = [&](int count) -> Generator<int> {
    const plumb::WorkerInfo me = plumb::this_worker();
    int made = 0;
    for (int x = static_cast<int>(me.index); x < count; x += static_cast<int>(me.count)) {
      if (++made == 1000 && !stall_taken.exchange(true)) {
        stalled = true;
        std::this_thread::sleep_for(300ms);
        stalled = false;
      } else if (stalled) {
        ++while_stalled;
      }
      co_yield x;
    }
  };
  plumb::Pipeline pipeline{plumb::stage(turns_slow, 40000).workers(4).in_flight(8), plumb::stage(sum_of)};
  CHECK(pipeline.run() == 39999L * 40000 / 2);
  INFO(pipeline.last_stats().table());
  CHECK(stall_taken);
  CHECK(pipeline.last_stats().stages[0].helped_out > 0);
  CHECK(while_stalled >= 4);
}

TEST_CASE("a pinned stage runs every packet on the thread that ran its set-up", "[lending][thread]") {
  const ForceLending force(Lending::always);
  const bool run_wide = GENERATE(false, true);
  INFO((run_wide ? "Scheduling::pinned" : ".pinned()"));
  std::atomic<int> moved{0};
  thread_local int packets_here = 0;
  auto affine = [&moved](Stream<int> in) -> Generator<int> {
    const std::thread::id home = std::this_thread::get_id();
    packets_here = 0;
    for ([[maybe_unused]] int x : in) {
      if (std::this_thread::get_id() != home) ++moved;
      ++packets_here;
      const int here = packets_here;
      co_yield here;
    }
  };
  plumb::RunOptions options;
  if (run_wide) options.scheduling = plumb::Scheduling::pinned;
  plumb::Pipeline pipeline{plumb::stage(numbers, 2000), plumb::stage(affine).pinned(!run_wide),
                           plumb::stage(sum_of)};
  // The thread_local count is exact: 1, 2, ..., 2000.
  CHECK(pipeline.run(options) == 2000L * 2001 / 2);
  CHECK(moved == 0);
  CHECK(pipeline.last_stats().stages[1].helped_out == 0);
}

TEST_CASE("a lent stage's error is its own: the original object, its stage and worker named",
          "[lending][thread][errors]") {
  const ForceLending force(Lending::always);
  struct Broken : std::runtime_error {
    using std::runtime_error::runtime_error;
  };
  auto fails_at = [](Stream<int> in, int at) -> Generator<int> {
    for (int x : in) {
      if (x == at) throw Broken("broken at " + std::to_string(at));
      co_yield x;
    }
  };
  plumb::Pipeline pipeline{plumb::stage(numbers, 1000).name("source"),
                           plumb::stage(fails_at, 500).name("fragile").in_flight(3),
                           plumb::stage(plus, 1).name("after").in_flight(2), plumb::stage(sum_of).name("sink")};
  CHECK_THROWS_AS(pipeline.run(), Broken);
  REQUIRE(pipeline.last_failure().has_value());
  CHECK(pipeline.last_failure()->stage_name == "fragile");
  CHECK(pipeline.last_failure()->what == "broken at 500");
  CHECK(pipeline.last_failure()->worker_index == 0);
}

TEST_CASE("a lent stage that returns early is named", "[lending][thread][errors]") {
  const ForceLending force(Lending::always);
  auto first_three = [](Stream<int> in) -> Generator<int> {
    int n = 0;
    for (int x : in) {
      co_yield x;
      if (++n == 3) co_return;
    }
  };
  plumb::Pipeline pipeline{plumb::stage(numbers, 100).name("source"), plumb::stage(first_three).name("lazy"),
                           plumb::stage(sum_of).name("sink")};
  CHECK_THROWS_WITH(pipeline.run(), Catch::Matchers::Contains("stage 1 ('lazy') worker 0 returned while "
                                                               "its input still had packets"));
  REQUIRE(pipeline.last_failure().has_value());
  CHECK(pipeline.last_failure()->stage_name == "lazy");
}

TEST_CASE("this_worker() and stop_requested() answer for the lent worker on its helper's thread",
          "[lending][thread]") {
  const ForceLending force(Lending::always);
  std::atomic<int> wrong{0};
  std::atomic<int> stop_seen{0};
  auto checks = [&](Stream<int> in) -> Generator<int> {
    for (int x : in) {
      const plumb::WorkerInfo before = plumb::this_worker();
      if (before.stage_index != 1 || before.stage_name != "middle") ++wrong;
      if (plumb::stop_requested()) ++stop_seen;
      co_yield x;
      const plumb::WorkerInfo after = plumb::this_worker();
      if (after.stage_index != 1 || after.index != before.index) ++wrong;
    }
  };
  plumb::Pipeline pipeline{plumb::stage(numbers, 2000).in_flight(2), plumb::stage(checks).name("middle").in_flight(3),
                           plumb::stage(sum_of)};
  CHECK(pipeline.run() == 1999L * 2000 / 2);
  CHECK(wrong == 0);
  CHECK(stop_seen == 0);
  CHECK(pipeline.last_stats().stages[1].helped_out > 0);

  // And stop_requested() turns true in a lent body once the run is cancelled.
  std::stop_source cancel;
  std::atomic<bool> saw_stop{false};
  auto until_stopped = [&](Stream<int> in) -> Generator<int> {
    for (int x : in) {
      if (x == 100) cancel.request_stop();
      if (plumb::stop_requested()) saw_stop = true;
      co_yield x;
    }
  };
  plumb::Pipeline cancelled{plumb::stage(forever), plumb::stage(until_stopped), plumb::stage(sum_of)};
  CHECK_THROWS_AS(cancelled.run({.stop_token = cancel.get_token()}), plumb::CancelledError);
  CHECK(saw_stop);
}

TEST_CASE("every lent worker runs its end-of-input code, even one that never got a packet",
          "[lending][thread]") {
  const ForceLending force(Lending::always);
  std::atomic<int> flushed{0};
  auto with_flush = [&flushed](Stream<int> in) -> Generator<int> {
    int count = 0;
    for (int x : in) count += x >= 0 ? 1 : 0;
    ++flushed;
    co_yield count;  // the flush: after the end of its input
  };
  const int packets = GENERATE(0, 2, 1000);
  const int counters = GENERATE(1, 3);
  INFO(packets << " packets, " << counters << " counting workers");
  // The source's 4 workers are lent (a group without input may be, H7); the counting stage
  // too: its one worker, or its lead while the other two wait at a pull (solo_gate.hpp).
  auto split = [](int count) -> Generator<int> {
    const plumb::WorkerInfo me = plumb::this_worker();
    for (int x = static_cast<int>(me.index); x < count; x += static_cast<int>(me.count)) co_yield x;
  };
  plumb::Pipeline pipeline{plumb::stage(split, packets).workers(4).in_flight(5),
                           plumb::stage(with_flush).workers(counters).in_flight(3), plumb::stage(sum_of)};
  CHECK(pipeline.run() == packets);
  CHECK(flushed == counters);
}

TEST_CASE("stream() and a Service with lent workers", "[lending][thread][stream]") {
  const ForceLending force(Lending::always);
  plumb::Pipeline pipeline{plumb::stage(numbers, 5000), plumb::stage(plus, 1).workers(2).in_flight(3),
                           plumb::stage(plus, 10)};
  long sum = 0;
  long count = 0;
  for (int x : pipeline.stream()) {
    sum += x;
    ++count;
  }
  CHECK(count == 5000);
  CHECK(sum == 4999L * 5000 / 2 + 11L * 5000);
  CHECK(pipeline.last_stats().stages[2].helped_out > 0);  // made on the caller's thread

  // Leaving the loop early stops the lent workers cleanly.
  long taken = 0;
  for (int x : pipeline.stream()) {
    if (x >= 0 && ++taken == 10) break;
  }
  CHECK(taken == 10);

  plumb::Service service{plumb::stage(plus, 1).workers(2), plumb::stage(plus, 2)};
  service.start();
  std::vector<std::future<int>> answers;
  for (int i = 0; i < 200; ++i) answers.push_back(service.submit(i));
  long total = 0;
  for (auto& answer : answers) total += answer.get();
  service.close();
  CHECK(total == 199L * 200 / 2 + 3L * 200);
}

TEST_CASE("a stop while workers are lent ends the run promptly, every packet destroyed once",
          "[lending][thread][errors]") {
  const ForceLending force(Lending::always);
  Counted::reset();
  std::stop_source cancel;
  auto endless = []() -> Generator<Counted> {
    for (int i = 0;; ++i) {
      Counted packet(i);
      co_yield std::move(packet);
    }
  };
  auto pass = [](Stream<Counted> in) -> Generator<Counted> {
    for (Counted& packet : in) co_yield std::move(packet);
  };
  auto sink = [&cancel](Stream<Counted> in) {
    for (const Counted& packet : in) {
      if (packet.value == 5000) cancel.request_stop();
    }
  };
  plumb::Pipeline pipeline{plumb::stage(endless).in_flight(3), plumb::stage(pass).workers(3).in_flight(4),
                           plumb::stage(sink).workers(2)};
  const auto start = Clock::now();
  CHECK_THROWS_AS(pipeline.run({.stop_token = cancel.get_token()}), plumb::CancelledError);
  CHECK(Clock::now() - start < 10s);  // a bound, not a measurement
  CHECK(Counted::alive == 0);
}

TEST_CASE("lent steps count as the lent stage's busy time, and its helper's wait", "[lending][thread][stats]") {
  const ForceLending force(Lending::always);
  // The middle stage spins 20 us per packet: lent to the sink (forced), its busy time is the
  // spinning, though its home thread slept throughout.
  plumb::Pipeline pipeline{plumb::stage(numbers, 2000), plumb::stage(spinning, 20us).name("spin"),
                           plumb::stage(sum_of).name("sink")};
  CHECK(pipeline.run() == 1999L * 2000 / 2);
  const plumb::Stats& stats = pipeline.last_stats();
  INFO(stats.table());
  CHECK(stats.stages[1].helped_out > 1900);
  CHECK(stats.stages[1].busy >= 2000 * 20us * 7 / 10);  // sampled: an estimate
  CHECK(stats.stages[2].starved >= 2000 * 20us * 7 / 10);
  CHECK(stats.bottleneck() == 1u);
}

TEST_CASE("the capacity rule: a narrow link before a lent stage does not deadlock", "[lending][thread]") {
  const ForceLending force(Lending::always);
  // The layout of a hang that H5 prevented when groups with an input and several workers were
  // lent: a one-slot source, 8 workers, 8 slots, 7 workers, 48 slots, 3 sinks. Now the two
  // middle stages are lent solo (their leads alone, H7), the source into a link of one slot:
  // capacity 1 >= U = 1 (H5 with W = 1); a middle stage is lent solo only where its link has a
  // slot for each waiting sibling and each consumer (S2): the first at in_flight 14 (>= 7 + 7),
  // not 8; the second always (48 >= 6 + 3).
  const int middle_in_flight = GENERATE(8, 14);
  INFO("in_flight " << middle_in_flight);
  std::atomic<long> total{0};
  auto sink = [&total](Stream<int> in) {
    for (int x : in) total += x;
  };
  plumb::Pipeline pipeline{plumb::stage(numbers, 20000).in_flight(1), plumb::stage(plus, 0).workers(8).in_flight(middle_in_flight),
                           plumb::stage(plus, 0).workers(7).in_flight(48), plumb::stage(sink).workers(3)};
  pipeline.run();
  CHECK(total == 19999L * 20000 / 2);
}

TEST_CASE("a lent step that waits for its input is not a stall: its stage's busy time stays its own work",
          "[lending][thread][stats]") {
  const ForceLending force(Lending::always);
  // The source sleeps 20 ms before each packet, on its home thread (pinned) or lent to the
  // middle stage (then its step is the stall, on the middle stage's input). The middle stage
  // is lent to the sink: its step, on the sink's thread, waits for input most of the run. The
  // watch (every 2 ms) must not take that wait for a stall of the middle stage: it would send
  // the stage home after each such step (it is lent again after one packet at home, forced:
  // 4 of its 10 packets made lent, measured) and charge the waits as its busy time. Its 10
  // packets: the first at home (its set-up), one measured, then 8 lent. And the sink waited
  // throughout: its helped steps' waits are its own wait (starved), timed or not.
  const bool pinned_source = GENERATE(true, false);
  INFO((pinned_source ? "pinned source" : "lent source"));
  auto slow_source = []() -> Generator<int> {
    for (int i = 0; i < 10; ++i) {
      std::this_thread::sleep_for(20ms);
      co_yield i;
    }
  };
  auto source = plumb::stage(slow_source).name("slow source");
  if (pinned_source) source.pinned();
  plumb::Pipeline pipeline{std::move(source), plumb::stage(plus, 1).name("cheap"), plumb::stage(sum_of).name("sink")};
  CHECK(pipeline.run() == 55);
  const plumb::Stats& stats = pipeline.last_stats();
  INFO(stats.table());
  CHECK(stats.stages[1].helped_out >= 7);
  CHECK(stats.stages[1].busy < 50ms);
  CHECK(stats.stages[2].starved > 150ms);
  if (!pinned_source) CHECK(stats.stages[0].busy > 150ms);  // its sleeps: its own step's time
}

TEST_CASE("the policy times a stage's own work: the cheap steps it runs upstream are not its cost",
          "[lending][thread]") {
  if (kSanitized) {
    WARN("a sanitizer build: the policy's thresholds are not tested here");
    return;
  }
  const ForceLending force(Lending::adaptive);
  // Ten stages of 5 us each at in_flight(1): each is cheap (theta / 2 is 10 us there), so each
  // is lent to the next. The last one's step runs the nine before it, nested, on the sink's
  // thread: 50 us, over 2 theta (40 us). Counted as its own work, that stage would be sent
  // home, and so would the ones before it whose nested steps cost over 2 theta.
  const auto step = [&](int n) { return plumb::stage(spinning, 5us).name("s" + std::to_string(n)).in_flight(1); };
  // 6000 packets: under load the first measurements at home (eleven threads on the cores) can
  // keep a stage home for a few gaps; the check asks for a quarter of them lent.
  plumb::Pipeline pipeline{plumb::stage(numbers, 6000).in_flight(1), step(1), step(2), step(3), step(4), step(5),
                           step(6), step(7), step(8), step(9), step(10), plumb::stage(sum_of).name("sink")};
  CHECK(pipeline.run() == 5999L * 6000 / 2);
  const plumb::Stats& stats = pipeline.last_stats();
  INFO(stats.table());
  for (std::size_t stage = 1; stage <= 10; ++stage) {
    INFO("stage " << stage);
    CHECK(stats.stages[stage].helped_out > 1500);
  }
}
