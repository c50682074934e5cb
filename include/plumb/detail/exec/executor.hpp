#pragma once
// SPDX-License-Identifier: MIT
// plumb/detail/exec/executor.hpp: Executor, what the supervisor asks of each way of running a
// run's workers (threads of this process, forked worker processes).

#include <poll.h>

#include <chrono>
#include <vector>

namespace plumb::detail {

// How a worker's run ended.
enum class Outcome { finished, failed, stopped };

// One way of running workers, as the supervisor sees it. Implementations: ThreadExecutor
// (thread_executor.hpp), ProcessExecutor (process_executor.hpp). Each starts its workers in its
// own way (the Runner calls it), reports their ends on the run's DoneSignal or on descriptors of
// its own, and judges them.
//
// Thread affinity: the supervising thread calls every member (after the workers started).
class Executor {
 public:
  Executor() = default;
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  // Notices the workers that ended since the last call (and records any error their end
  // means); returns whether any still runs.
  [[nodiscard]] virtual bool collect() noexcept = 0;
  // Adds the descriptors that become readable when one of its workers ends. Returns the
  // longest the supervisor may sleep without them (a worker it can only poll for).
  virtual std::chrono::milliseconds wait_on(std::vector<pollfd>& fds) const = 0;
  // The run stopped and its grace period ran out: ends every worker still running, where that
  // is possible (a thread cannot be killed: it is waited for).
  virtual void kill_now() noexcept = 0;

 protected:
  ~Executor() = default;
};

}  // namespace plumb::detail
