#pragma once
// SPDX-License-Identifier: MIT
// plumb/detail/exec/supervisor.hpp: the one loop that watches a run until every worker ended:
// it drives the monitor, notices each worker's end at once, and ends what still runs once the
// grace period after the first error has passed.

#include <plumb/detail/core/deadline.hpp>
#include <plumb/detail/exec/done_signal.hpp>
#include <plumb/detail/exec/executor.hpp>
#include <plumb/detail/run/monitor.hpp>
#include <plumb/detail/run/run_state.hpp>

#include <poll.h>

#include <algorithm>
#include <chrono>
#include <optional>
#include <span>
#include <vector>

namespace plumb::detail {

// What the supervisor also checks every period() while a run goes on (the Runner's: lent
// workers that stall, links.hpp).
class Watch {
 public:
  [[nodiscard]] virtual std::chrono::milliseconds period() const noexcept = 0;
  virtual void check() noexcept = 0;

 protected:
  Watch() = default;
  ~Watch() = default;
  Watch(const Watch&) = default;
  Watch& operator=(const Watch&) = default;
};

// Returns once no executor has a worker running. Never throws: a failing monitor (the user's
// progress callback) becomes the run's error, and the loop goes on without it.
//
// Wake-ups: a worker thread's end (DoneSignal), a worker process's end (its pidfd), the
// monitor's next tick, the end of the grace period; at most 100 ms apart otherwise.
inline void supervise(std::span<Executor* const> executors, const DoneSignal& done,
                      Monitor& monitor, RunState& state,
                      std::chrono::steady_clock::duration grace_period, Watch* watch = nullptr) noexcept {
  using Clock = std::chrono::steady_clock;
  using std::chrono::milliseconds;
  std::optional<Clock::time_point> kill_at;
  bool killed = false;
  bool monitoring = true;  // until the progress callback throws
  std::vector<pollfd> fds;
  Clock::time_point next_watch = Clock::now();
  for (;;) {
    bool running = false;
    for (Executor* executor : executors) running = executor->collect() || running;
    if (!running) return;
    if (state.stopping() && !kill_at) {
      // A worker process may have set the shared stop word: wake this process's own links
      // too (their futexes are private to it).
      try {
        state.wake_local();
      } catch (...) {
      }
      kill_at = later_by(Clock::now(), grace_period);  // saturated: max() never kills
    }
    if (kill_at && !killed && Clock::now() >= *kill_at) {
      killed = true;
      for (Executor* executor : executors) executor->kill_now();
    }

    auto timeout = milliseconds(100);
    // Rounded up: a tick due in under a millisecond must not become a poll() that returns at once.
    if (monitoring) timeout = std::min(timeout, std::chrono::ceil<milliseconds>(monitor.tick()));
    if (watch != nullptr) {
      const Clock::time_point now = Clock::now();
      if (now >= next_watch) {
        watch->check();
        next_watch = now + watch->period();
      }
      timeout = std::min(timeout, std::chrono::ceil<milliseconds>(next_watch - now));
    }
    if (kill_at && !killed) {
      const auto left = std::chrono::duration_cast<milliseconds>(*kill_at - Clock::now());
      timeout = std::clamp(left + milliseconds(1), milliseconds(0), timeout);
    }
    fds.clear();
    fds.push_back(pollfd{done.fd(), POLLIN, 0});
    for (Executor* executor : executors) timeout = std::min(timeout, executor->wait_on(fds));
    ::poll(fds.data(), fds.size(), static_cast<int>(timeout.count()));
    done.drain();

    if (monitoring) {
      try {
        monitor.poll();
      } catch (...) {
        state.fail(std::current_exception(), std::nullopt);
        monitoring = false;
      }
    }
  }
}

}  // namespace plumb::detail
