// SPDX-License-Identifier: MIT
// tests/service_test.cpp: plumb::Service, submit() with futures, in every mode: answers from
// many threads, item errors, the one-output rule, crashes, backpressure, close and cancel.

#include <plumb/plumb.hpp>

#include "support/eventually.hpp"
#include "support/modes.hpp"
#include "support/shared_counter.hpp"

#include <catch2/catch.hpp>
#include <fmt/format.h>


#include <atomic>
#include <chrono>
#include <cstdlib>
#include <exception>
#include <future>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

// A value whose Codec refuses to encode 13 (a codec's own check of what it can write).
struct Picky {
  int value = 0;
};

template <>
struct plumb::Codec<Picky> {
  static void encode(const Picky& picky, Writer& out) {
    if (picky.value == 13) throw std::domain_error("Picky cannot encode 13");
    out.write(picky.value);
  }
  static Picky decode(Reader& in) { return Picky{in.read<int>()}; }
};

using namespace std::chrono_literals;
using plumb::Generator;
using plumb::Mode;
using plumb::Stream;
using plumb::test::eventually;
using plumb::test::mode_name;
using plumb::test::modes;

namespace {


struct Unusual {
  std::string text;
};

Generator<int> square(Stream<int> in) {
  for (int x : in) co_yield x * x;
}

Generator<std::string> label(Stream<int> in, std::string prefix) {
  for (int x : in) {
    std::string text = prefix + std::to_string(x);
    co_yield std::move(text);
  }
}

// Throws for `bad`; counts its calls (a new call after each error).
Generator<int> fail_on(Stream<int> in, int bad, std::atomic<int>* calls) {
  calls->fetch_add(1);
  for (int x : in) {
    if (x == bad) throw std::invalid_argument("bad item " + std::to_string(x));
    co_yield x;
  }
}

Generator<int> fail_unusually(Stream<int> in, int bad) {
  for (int x : in) {
    if (x == bad) throw Unusual{"unusual " + std::to_string(x)};
    co_yield x;
  }
}

// Counts the items it sees.
Generator<int> count_items(Stream<int> in, std::atomic<int>* seen) {
  for (int x : in) {
    seen->fetch_add(1);
    co_yield x;
  }
}

Generator<int> twice_on(Stream<int> in, int bad) {
  for (int x : in) {
    co_yield x;
    if (x == bad) co_yield x;
  }
}

Generator<int> drop_on(Stream<int> in, int bad) {
  for (int x : in) {
    if (x == bad) continue;
    co_yield x;
  }
}

Generator<int> crash_on(Stream<int> in, int bad) {
  for (int x : in) {
    if (x == bad) std::_Exit(3);
    co_yield x;
  }
}

// Holds every item until the run stops.
Generator<int> hold_until_stop(Stream<int> in, std::atomic<int>* held) {
  for (int x : in) {
    held->fetch_add(1);
    while (!plumb::stop_requested()) std::this_thread::sleep_for(1ms);
    co_yield x;
  }
}

// Holds every item until `release` is set (or the run stops).
Generator<std::string> hold_until_released(Stream<std::string> in, std::atomic<bool>* release) {
  for (std::string& text : in) {
    while (!release->load() && !plumb::stop_requested()) std::this_thread::sleep_for(1ms);
    co_yield std::move(text);
  }
}

// Looks at its item again after yielding its output: the item must still be there.
Generator<std::string> echo_and_recheck(Stream<std::string> in, std::atomic<int>* changed) {
  for (std::string& text : in) {
    std::string copy = text;
    co_yield copy;
    if (text != copy) changed->fetch_add(1);
  }
}

Generator<int> setup_fails(Stream<int> in) {
  throw std::runtime_error("no model to load");
  for (int x : in) co_yield x;
}

Generator<std::string> shout(Stream<std::string> in) {
  for (std::string& text : in) {
    text += "!";
    co_yield std::move(text);
  }
}

Generator<std::string> whoami(Stream<int> in) {
  for (int x : in) {
    const plumb::WorkerInfo& me = plumb::this_worker();
    std::string text = me.stage_name + "#" + std::to_string(me.stage_index) + "/" +
                       std::to_string(x);
    co_yield std::move(text);
  }
}

// Yields a string of `size` bytes for each item, the item being the size.
Generator<std::string> inflate(Stream<int> in) {
  for (int size : in) co_yield std::string(static_cast<std::size_t>(size), 'z');
}

Generator<std::size_t> measure(Stream<std::string> in) {
  for (const std::string& text : in) co_yield text.size();
}

// One item's output is over the max_message_size of the link after its stage (`inflate`, which
// yields as many bytes as the item says), where that link crosses a process boundary: that
// item's future fails with a StageError naming the stage, the size and the limit, and every
// other item, submitted before and after it from three threads, is answered. `expect` maps an
// item to its answer.
template <class... Stages, class Expect>
void check_oversize_output(plumb::Service<Stages...>& service, Mode mode, Expect expect) {
  constexpr std::size_t kLimit = plumb::kItemErrorRoom;
  constexpr int kThreads = 3;
  constexpr int kPerThread = 12;
  constexpr int kBad = 5;  // each thread's sixth item is too large
  const auto item = [](int t, int i) {
    return i == kBad ? static_cast<int>(kLimit) + 100 * (t + 1) : t * 100 + i;
  };
  service.start(mode);
  using Answer = typename plumb::Service<Stages...>::output_type;
  std::vector<std::vector<std::future<Answer>>> futures(kThreads);
  std::vector<std::exception_ptr> refused(kThreads);  // a submit() that threw (Service broken)
  {
    std::vector<std::jthread> submitters;
    for (int t = 0; t < kThreads; ++t) {
      submitters.emplace_back([&, t] {
        try {
          for (int i = 0; i < kPerThread; ++i) futures[t].push_back(service.submit(item(t, i)));
        } catch (...) {
          refused[t] = std::current_exception();
        }
      });
    }
  }
  for (int t = 0; t < kThreads; ++t) {
    if (refused[t]) CHECK_NOTHROW(std::rethrow_exception(refused[t]));
    for (int i = 0; i < static_cast<int>(futures[t].size()); ++i) {
      if (i != kBad) {
        CHECK(futures[t][i].get() == expect(item(t, i)));
        continue;
      }
      try {
        futures[t][i].get();
        FAIL("the oversize output was answered");
      } catch (const plumb::StageError& error) {
        CHECK(error.stage_name() == "inflate");
        CHECK(error.stage_index() == 1);
        CHECK_THAT(error.what(),
                   Catch::Contains("plumb.stage_error: stage 1 ('inflate')") &&
                       Catch::Contains(fmt::format("max_message_size({})", kLimit)) &&
                       Catch::Contains("yielded an output of ") &&
                       Catch::Contains("raise .max_message_size() on stage 1 ('inflate')"));
      }
    }
  }
  CHECK_FALSE(service.broken());
  CHECK(service.submit(7).get() == expect(7));
  CHECK_NOTHROW(service.close());
  CHECK_FALSE(service.broken());
  CHECK_FALSE(service.last_failure().has_value());
}

// Every item's future holds its own answer, with items submitted from three threads at once.
void check_answers(Mode mode, Mode middle) {
  plumb::Service service{plumb::stage(square).workers(2).name("square"),
                         plumb::stage(label, std::string("n=")).mode(middle),
                         plumb::stage([](Stream<std::string> in) -> Generator<std::size_t> {
                           for (const std::string& text : in) co_yield text.size();
                         })};
  static_assert(std::is_same_v<decltype(service)::input_type, int>);
  static_assert(std::is_same_v<decltype(service)::output_type, std::size_t>);
  service.start(mode);
  constexpr int kThreads = 3;
  constexpr int kPerThread = 60;
  std::vector<std::vector<std::future<std::size_t>>> futures(kThreads);
  {
    std::vector<std::jthread> submitters;
    for (int t = 0; t < kThreads; ++t) {
      submitters.emplace_back([&, t] {
        for (int i = 0; i < kPerThread; ++i) futures[t].push_back(service.submit(t * 1000 + i));
      });
    }
  }
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kPerThread; ++i) {
      const int x = t * 1000 + i;
      CHECK(futures[t][i].get() == ("n=" + std::to_string(x * x)).size());
    }
  }
  service.close();
  CHECK_FALSE(service.broken());
  CHECK(service.last_stats().stages.size() == 5);
}

// One item's exception reaches its future only; the stage starts again for the next item, and
// the stages after it never see the failed item.
template <class Exception>
void check_item_error(Mode mode) {
  plumb::test::SharedCounter<int> calls;
  plumb::test::SharedCounter<int> seen;
  plumb::Service service{plumb::stage(fail_on, 5, calls.get()).name("checker"),
                         plumb::stage(count_items, seen.get())};
  service.start(mode);
  std::vector<std::future<int>> futures;
  for (int i = 0; i < 10; ++i) futures.push_back(service.submit(i));
  for (int i = 0; i < 10; ++i) {
    if (i == 5) {
      CHECK_THROWS_MATCHES(futures[i].get(), Exception,
                           Catch::Matchers::Predicate<Exception>([](const Exception& error) {
                             return std::string(error.what()).find("bad item 5") !=
                                    std::string::npos;
                           }));
    } else {
      CHECK(futures[i].get() == i);
    }
  }
  CHECK(service.submit(11).get() == 11);
  CHECK_NOTHROW(service.close());  // an item's error is its future's, not close()'s
  CHECK_FALSE(service.broken());
  CHECK(calls.load() == 2);
  CHECK(seen.load() == 10);
  // The statistics name the failure where it happened; the failed item passed the next stage by.
  const plumb::Stats& stats = service.last_stats();
  REQUIRE(stats.stages.size() == 4);  // submit, checker, count_items, answers
  CHECK(stats.stages[1].failed_items == 1);
  CHECK(stats.stages[1].packets_out == 11);
  CHECK(stats.stages[2].failed_items == 0);
  CHECK(stats.stages[3].failed_items == 0);
  CHECK_THAT(stats.table(), Catch::Contains("failed items (answered with the stage's error): 'checker' 1"));
}

// A stage that breaks the one-output rule ends the Service with a StageError naming it.
template <class F>
void check_rule(Mode mode, F stage_function, const std::string& what) {
  plumb::Service service{plumb::stage(square), plumb::stage(stage_function, 9).name("breaker")};
  service.start(mode);
  std::vector<std::future<int>> futures;
  try {
    for (int i = 0; i < 10; ++i) futures.push_back(service.submit(i));
  } catch (const plumb::StageError&) {
    // the Service broke while items were still being submitted
  }
  REQUIRE(futures.size() > 3);  // the rule breaks at item 3 (drop) or 4 (a second output)
  for (std::size_t i = 0; i < futures.size(); ++i) {
    if (i < 3) {
      CHECK(futures[i].get() == static_cast<int>(i * i));
    } else if (i > 4) {
      CHECK_THROWS_AS(futures[i].get(), plumb::StageError);
    }
  }
  CHECK(service.broken());
  try {
    service.close();
    FAIL("close() did not throw");
  } catch (const plumb::StageError& error) {
    CHECK(error.stage_name() == "breaker");
    CHECK(error.stage_index() == 2);
    CHECK_THAT(error.what(), Catch::Contains("'breaker'") && Catch::Contains(what) &&
                                 Catch::Contains("exactly one output per input"));
  }
  CHECK_THROWS_AS(service.submit(1), plumb::StageError);
  REQUIRE(service.last_failure().has_value());
  CHECK(service.last_failure()->stage_name == "breaker");
}

void check_cancel(Mode mode) {
  plumb::test::SharedCounter<int> held;
  plumb::Service service{plumb::stage(hold_until_stop, held.get()).workers(2)};
  service.start(mode);
  std::vector<std::future<int>> futures;
  for (int i = 0; i < 3; ++i) futures.push_back(service.submit(i));
  REQUIRE(eventually([&] { return held.load() == 2; }));
  service.cancel();
  for (auto& future : futures) CHECK_THROWS_AS(future.get(), plumb::CancelledError);
  CHECK(service.broken());
  CHECK_THROWS_AS(service.submit(4), plumb::CancelledError);
}

}  // namespace

namespace {

// The run's mode and the mode of the middle stage.
struct Layout {
  const char* name;
  Mode mode;
  Mode middle;
  friend bool forks(const Layout& layout) { return layout.mode == Mode::process || layout.middle == Mode::process; }
};

}  // namespace

TEST_CASE("service: every future gets its item's answer, from three threads", "[service][process]") {
  const Layout layout = GENERATE(modes<Layout>({
      {"sequential", Mode::sequential, Mode::sequential},
      {"thread", Mode::thread, Mode::thread},
      {"process", Mode::process, Mode::process},
      {"mixed: a thread stage between stages in worker processes", Mode::process, Mode::thread},
      {"thread, the middle stage fused into the one before it", Mode::thread, Mode::sequential},
  }));
  INFO(layout.name);
  check_answers(layout.mode, layout.middle);
}

// The same exception type in every mode: a std::invalid_argument crosses a process boundary as
// itself.
TEST_CASE("service: an item's exception reaches its future only, and service goes on",
          "[service][process]") {
  const Mode mode = GENERATE(modes({Mode::sequential, Mode::thread, Mode::process}));
  INFO("mode " << mode_name(mode));
  check_item_error<std::invalid_argument>(mode);
}

// An exception of a user type reaches its future as the thrown object in one process; from a
// worker process, as a RemoteError naming its type (no object crosses the boundary).
TEST_CASE("service: an item's exception of another type reaches its future, the original in "
          "threads and a RemoteError naming it from a worker process",
          "[service][process]") {
  const Mode mode = GENERATE(modes({Mode::thread, Mode::process}));
  INFO("mode " << mode_name(mode));
  plumb::Service service{plumb::stage(fail_unusually, 1).name("odd")};
  service.start(mode);
  auto good = service.submit(0);
  auto bad = service.submit(1);
  CHECK(good.get() == 0);
  if (mode == Mode::process) {
    try {
      bad.get();
      FAIL("no error");
    } catch (const plumb::RemoteError& error) {
      CHECK_THAT(std::string(error.type_name()), Catch::Contains("Unusual"));
      CHECK(error.stage_name() == "odd");
      CHECK(error.stage_index() == 1);
    }
  } else {
    CHECK_THROWS_MATCHES(bad.get(), Unusual, Catch::Matchers::Predicate<Unusual>([](const Unusual& e) {
                           return e.text == "unusual 1";
                         }));
  }
  CHECK(service.submit(2).get() == 2);
  service.close();
}

TEST_CASE("service: two outputs for one input end the service, naming the stage",
          "[service][process]") {
  const Mode mode = GENERATE(modes({Mode::thread, Mode::process}));
  INFO("mode " << mode_name(mode));
  check_rule(mode, twice_on, "yielded two outputs for one input");
}

TEST_CASE("service: no output for an input ends the service, naming the stage", "[service]") {
  const Mode mode = GENERATE(modes({Mode::sequential, Mode::thread}));
  INFO("mode " << mode_name(mode));
  check_rule(mode, drop_on, "took a second input before it yielded");
}

TEST_CASE("process mode: service: a crashed worker fails the unanswered futures, nothing restarts",
          "[service][process]") {
  plumb::Service service{plumb::stage(crash_on, 5).name("fragile"), plumb::stage(square)};
  service.start(Mode::process);
  std::vector<std::future<int>> futures;
  try {
    for (int i = 0; i < 10; ++i) futures.push_back(service.submit(i));
  } catch (const plumb::WorkerDiedError&) {
    // it died while items were still being submitted
  }
  REQUIRE(futures.size() > 5);
  for (std::size_t i = 0; i < futures.size(); ++i) {
    if (i < 5) {
      try {
        CHECK(futures[i].get() == static_cast<int>(i * i));
      } catch (const plumb::WorkerDiedError&) {
        // answered or failed: the crash stopped the run while its answer was on the way
      }
    } else {
      CHECK_THROWS_AS(futures[i].get(), plumb::WorkerDiedError);
    }
  }
  CHECK(service.broken());
  CHECK_THROWS_AS(service.submit(1), plumb::WorkerDiedError);
  CHECK_THROWS_AS(service.close(), plumb::WorkerDiedError);
  REQUIRE(service.last_failure().has_value());
  CHECK(service.last_failure()->stage_name == "fragile");
}

TEST_CASE("service, thread: try_submit() refuses while the service is full and keeps the item",
          "[service]") {
  std::atomic<bool> release{false};
  plumb::Service service{plumb::stage(hold_until_released, &release).in_flight(1)};
  service.start();
  std::vector<std::future<std::string>> futures;
  std::string item = "item 0";
  bool refused = false;
  // Held: one item in the stage, one in its link, one with the submit stage, one queued.
  for (int i = 0; i < 50 && !refused; ++i) {
    item = "item " + std::to_string(i);
    REQUIRE(eventually([&] {
      if (auto future = service.try_submit(std::move(item))) {
        futures.push_back(std::move(*future));
        return true;
      }
      refused = futures.size() >= 2;
      return refused;
    }));
  }
  REQUIRE(refused);
  CHECK(futures.size() <= 5);
  CHECK(item == "item " + std::to_string(futures.size()));
  release = true;
  for (std::size_t i = 0; i < futures.size(); ++i) CHECK(futures[i].get() == "item " + std::to_string(i));
  CHECK(service.try_submit(item).has_value());
  service.close();
}

TEST_CASE("service, thread: submit() waits while the service is full", "[service]") {
  std::atomic<bool> release{false};
  plumb::Service service{plumb::stage(hold_until_released, &release).in_flight(1)};
  service.start();
  std::atomic<int> submitted{0};
  std::vector<std::future<std::string>> futures;
  std::jthread submitter([&] {
    for (int i = 0; i < 20; ++i) {
      futures.push_back(service.submit("item " + std::to_string(i)));
      submitted.fetch_add(1);
    }
  });
  // The submitter is stuck below 20 items until the stage lets go.
  REQUIRE(eventually([&] { return submitted.load() >= 2; }));
  std::this_thread::sleep_for(20ms);
  CHECK(submitted.load() < 20);
  release = true;
  submitter.join();
  for (std::size_t i = 0; i < futures.size(); ++i) CHECK(futures[i].get() == "item " + std::to_string(i));
  service.close();
}

TEST_CASE("service: cancel() fails unanswered futures with CancelledError", "[service][process]") {
  const Mode mode = GENERATE(modes({Mode::thread, Mode::process}));
  INFO("mode " << mode_name(mode));
  check_cancel(mode);
}

TEST_CASE("service, thread: the destructor answers every accepted item", "[service]") {
  std::vector<std::future<int>> futures;
  {
    plumb::Service service{plumb::stage(square).workers(3)};
    service.start();
    for (int i = 0; i < 30; ++i) futures.push_back(service.submit(i));
  }
  for (int i = 0; i < 30; ++i) {
    REQUIRE(futures[i].wait_for(0s) == std::future_status::ready);
    CHECK(futures[i].get() == i * i);
  }
}

TEST_CASE("service: this_worker() in a stage names that stage, numbered after submit", "[service]") {
  plumb::Service service{plumb::stage(whoami).name("who")};
  service.start();
  CHECK(service.submit(7).get() == "who#1/7");
  service.close();
}

TEST_CASE("service: misuse is a clear error", "[service]") {
  plumb::Service service{plumb::stage(square)};
  CHECK_THROWS_WITH(service.submit(1), Catch::Contains("before Service::start()"));
  service.close();  // not started: nothing to do

  plumb::RunOptions idle;
  idle.inactivity_timeout = 1s;
  CHECK_THROWS_WITH(service.start(idle), Catch::Contains("inactivity_timeout"));

  service.start();
  CHECK_THROWS_WITH(service.start(), Catch::Contains("starts once"));
  CHECK(service.submit(3).get() == 9);
  service.close();
  CHECK_THROWS_WITH(service.submit(1), Catch::Contains("after close()"));
  CHECK_FALSE(service.broken());

  plumb::Service bad{plumb::stage(square).workers(0).name("nobody")};
  CHECK_THROWS_WITH(bad.start(), Catch::Contains("'nobody'") && Catch::Contains("workers(0)"));
}

TEST_CASE("service, thread: a stage's item stays valid after it yielded, until it takes the next",
          "[service]") {
  std::atomic<int> changed{0};
  plumb::Service service{plumb::stage(echo_and_recheck, &changed).workers(2)};
  service.start();
  std::vector<std::future<std::string>> futures;
  for (int i = 0; i < 200; ++i) {
    futures.push_back(service.submit(std::string(100, static_cast<char>('a' + i % 26))));
  }
  for (int i = 0; i < 200; ++i) CHECK(futures[i].get() == std::string(100, static_cast<char>('a' + i % 26)));
  service.close();
  CHECK(changed.load() == 0);
}

TEST_CASE("service, thread: an exception outside any item (setting up) ends the service",
          "[service]") {
  plumb::Service service{plumb::stage(setup_fails).name("loader")};
  service.start();
  auto answer = service.submit(1);
  CHECK_THROWS_WITH(answer.get(), "no model to load");
  CHECK(eventually([&] { return service.broken(); }));
  CHECK_THROWS_WITH(service.submit(2), "no model to load");
  CHECK_THROWS_WITH(service.close(), "no model to load");
  REQUIRE(service.last_failure().has_value());
  CHECK(service.last_failure()->stage_name == "loader");
}

TEST_CASE("process mode: service: an item over the first stage's max_message_size is refused to "
          "its caller",
          "[service][process]") {
  plumb::Service service{plumb::stage(shout).max_message_size(1024).name("shout")};
  service.start(Mode::process);
  CHECK_THROWS_WITH(service.submit(std::string(2000, 'x')),
                    Catch::Contains("max_message_size(1024)") && Catch::Contains("'shout'"));
  const std::string big(2000, 'y');
  CHECK_THROWS_WITH(service.try_submit(big), Catch::Contains("encodes to"));
  CHECK(service.submit("hello").get() == "hello!");
  service.close();
  CHECK_FALSE(service.broken());
}

namespace {

// Where worker processes are in a Service of `inflate` then `measure`: the run's mode, and the
// mode of each stage (nullopt: the run's).
struct Crossing {
  const char* name;
  Mode mode;
  std::optional<Mode> inflate;
  std::optional<Mode> measure;
};

}  // namespace

TEST_CASE("process mode: service: an output over the limit of a link into or between worker "
          "processes fails only its item",
          "[service][process]") {
  const Crossing crossing = GENERATE(values<Crossing>({
      {"process: both stages in worker processes", Mode::process, std::nullopt, std::nullopt},
      {"mixed: a thread stage's output into a worker process", Mode::thread, std::nullopt, Mode::process},
      {"mixed: a worker process's output into a thread stage", Mode::thread, Mode::process, std::nullopt},
  }));
  INFO(crossing.name);
  auto inflating = plumb::stage(inflate).workers(2).max_message_size(plumb::kItemErrorRoom).name("inflate");
  if (crossing.inflate) inflating.mode(*crossing.inflate).workers(1);
  auto measuring = plumb::stage(measure);
  if (crossing.measure) measuring.mode(*crossing.measure);
  plumb::Service service{inflating, measuring};
  check_oversize_output(service, crossing.mode, [](int size) { return std::size_t(size); });
}

TEST_CASE("process mode: service: an output over the last stage's max_message_size fails only its "
          "item",
          "[service][process]") {
  plumb::Service service{
      plumb::stage(inflate).max_message_size(plumb::kItemErrorRoom).name("inflate")};
  check_oversize_output(service, Mode::process,
                        [](int size) { return std::string(std::size_t(size), 'z'); });
}

TEST_CASE("service, thread: max_message_size does not limit an output that stays in the process",
          "[service]") {
  plumb::Service service{plumb::stage(inflate).max_message_size(1024), plumb::stage(measure)};
  service.start();
  CHECK(service.submit(5000).get() == 5000);
  service.close();
}

TEST_CASE("process mode: service: started on a thread that has ended, its workers still answer",
          "[service][process]") {
  // A worker process dies with the thread that forked it (PR_SET_PDEATHSIG): the Service forks
  // from its own thread, which lives until close().
  plumb::Service service{plumb::stage(square).workers(2)};
  std::thread([&] { service.start(Mode::process); }).join();
  std::vector<std::future<int>> futures;
  for (int i = 0; i < 10; ++i) futures.push_back(service.submit(i));
  for (int i = 0; i < 10; ++i) CHECK(futures[i].get() == i * i);
  service.close();
  CHECK_FALSE(service.broken());
}

TEST_CASE("process mode: service: an output its Codec cannot encode fails only its item",
          "[service][process]") {
  plumb::Service service{
      plumb::stage([](Stream<int> in) -> Generator<Picky> {
        for (int x : in) {
          Picky picky{x};
          co_yield picky;
        }
      }).name("wrap"),
      plumb::stage([](Stream<Picky> in) -> Generator<int> {
        for (const Picky& picky : in) co_yield picky.value;
      })};
  service.start(Mode::process);
  auto before = service.submit(12);
  auto bad = service.submit(13);
  auto after = service.submit(14);
  CHECK(before.get() == 12);
  CHECK_THROWS_WITH(bad.get(), "Picky cannot encode 13");
  CHECK(after.get() == 14);
  CHECK_NOTHROW(service.close());
  CHECK_FALSE(service.broken());
}
