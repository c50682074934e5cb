#pragma once
// SPDX-License-Identifier: MIT
// plumb/detail/exec/child_process.hpp: a worker process as its parent sees it: its pidfd, how its
// exit status reads, how it is killed.

#include <plumb/detail/core/describe.hpp>
#include <plumb/detail/core/format.hpp>
#include <plumb/error.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <system_error>
#include <vector>

namespace plumb::detail {

// How a worker process ended, as its exit status says.
enum class WorkerExit : int {
  finished = 0,   // its stream ended and it returned
  reported = 70,  // it wrote the run's first error into shared memory
  stopped = 71,   // it unwound because the run was stopping
  orphaned = 72,  // its parent was gone before it could start
};

inline std::string signal_name(int signal) {
  const char* abbreviation = ::sigabbrev_np(signal);
  return abbreviation != nullptr ? detail::format("SIG{} ({})", abbreviation, signal)
                                 : detail::format("signal {}", signal);
}

// One worker process.
struct Child {
  pid_t pid = -1;
  int pidfd = -1;  // -1 where pidfd_open is unavailable: the supervisor then polls
  std::size_t worker_id = 0;
  std::size_t stage_index = 0;  // the first stage of its group
  std::size_t worker_index = 0;
  bool reaped = false;
};

// In a new worker process: die with the thread that forked us (the run's ForkThread, which
// lives until every worker exited, and dies with the caller's process however it dies), and
// check for a parent that died before the death signal was armed.
inline void arm_parent_death_signal(pid_t parent) noexcept {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(static_cast<int>(WorkerExit::orphaned));
}

inline int open_pidfd(pid_t pid) noexcept {
  const long fd = ::syscall(SYS_pidfd_open, pid, 0);
  if (fd >= 0) ::fcntl(static_cast<int>(fd), F_SETFD, FD_CLOEXEC);
  return fd >= 0 ? static_cast<int>(fd) : -1;
}

// Whether the process behind `pidfd` has exited (its pidfd is readable).
inline bool pidfd_exited(int pidfd) noexcept {
  pollfd descriptor{pidfd, POLLIN, 0};
  return ::poll(&descriptor, 1, 0) == 1;
}

// SIGKILL through the pidfd where there is one: a pid alone may already name another process
// if somebody else reaped ours.
inline void kill_child(const Child& child) noexcept {
  if (child.pidfd >= 0 && ::syscall(SYS_pidfd_send_signal, child.pidfd, SIGKILL, nullptr, 0) == 0) return;
  if (child.pidfd < 0) ::kill(child.pid, SIGKILL);
}

// Closes the pidfd of every child (after all are reaped).
inline void close_pidfds(std::vector<Child>& children) noexcept {
  for (Child& child : children) {
    if (child.pidfd >= 0) ::close(std::exchange(child.pidfd, -1));
  }
}

}  // namespace plumb::detail
