#pragma once
// SPDX-License-Identifier: MIT
// plumb/detail/exec/done_signal.hpp: DoneSignal, the eventfd a worker thread signals when it
// ends, so that the supervisor's one poll() waits for threads and processes alike.

#include <plumb/error.hpp>

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <system_error>

namespace plumb::detail {

class DoneSignal {
 public:
  DoneSignal() : fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
    if (fd_ < 0) {
      throw IpcError("plumb.ipc_error: eventfd failed", std::error_code(errno, std::system_category()));
    }
  }
  ~DoneSignal() { ::close(fd_); }
  DoneSignal(const DoneSignal&) = delete;
  DoneSignal& operator=(const DoneSignal&) = delete;

  // From any thread. The eventfd's counter only grows, so a notify is never lost between the
  // supervisor's check and its poll.
  void notify() const noexcept {
    const std::uint64_t one = 1;
    [[maybe_unused]] const auto written = ::write(fd_, &one, sizeof one);
  }
  // The supervisor, after poll(): resets the counter.
  void drain() const noexcept {
    std::uint64_t value = 0;
    [[maybe_unused]] const auto read = ::read(fd_, &value, sizeof value);
  }
  [[nodiscard]] int fd() const noexcept { return fd_; }

 private:
  int fd_;
};

}  // namespace plumb::detail
