#pragma once
// SPDX-License-Identifier: MIT
// plumb/detail/run/shared_memory.hpp: the one anonymous shared mapping of a run that has worker
// processes, and what every process of the run shares through it besides the links.

#include <plumb/detail/core/cache_line.hpp>
#include <plumb/detail/core/format.hpp>
#include <plumb/detail/core/huge_pages.hpp>
#include <plumb/error.hpp>
#include <plumb/stats.hpp>

#include <sys/mman.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <system_error>
#include <utility>

namespace plumb::detail {

// Offsets of the parts of a SharedArena, computed before the mapping exists. The sizes come
// from user options (in_flight up to 2^20 slots of max_message_size up to 2^40 bytes, per link),
// so their sum can exceed what a size_t holds: add() saturates and overflowed() says so, and
// the caller must refuse the layout then (a wrapped size would map too little, and the links
// would be built past its end).
class ArenaLayout {
 public:
  // Reserves `bytes` at a multiple of `alignment`; returns the offset (meaningless once
  // overflowed()).
  std::size_t add(std::size_t bytes, std::size_t alignment = kCacheLine) noexcept {
    std::size_t padded = 0;
    if (__builtin_add_overflow(size_, alignment - 1, &padded)) return saturate();
    const std::size_t offset = padded / alignment * alignment;
    if (__builtin_add_overflow(offset, bytes, &size_)) return saturate();
    return offset;
  }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] bool overflowed() const noexcept { return overflowed_; }

 private:
  std::size_t saturate() noexcept {
    overflowed_ = true;
    size_ = SIZE_MAX;
    return 0;
  }

  std::size_t size_ = 0;
  bool overflowed_ = false;
};

// The most shared memory one run may ask for: 2^47 bytes (128 TiB), the user address space of
// x86-64 and of AArch64 with 4 KiB pages. More can never be mapped, so a layout above it is a
// configuration error, reported with the stages that ask for it rather than as a failed mmap.
inline constexpr std::size_t kMaxArenaBytes = std::size_t{1} << 47;

// An anonymous shared mapping, made before any fork() so that every worker process inherits it
// at the same address. Nothing has a name, so nothing can be left behind in /dev/shm, whatever
// kills the run; the pages go when the last process unmaps them. A plain mmap: Boost.Interprocess's
// anonymous_shared_memory does the same, but every translation unit that includes plumb would
// parse its headers for this one call.
class SharedArena {
 public:
  // Throws IpcError when the mapping cannot be made (its code() is mmap's errno).
  explicit SharedArena(std::size_t bytes)
      : size_(bytes == 0 ? 1 : bytes),
        memory_(map(size_, bytes)),
        advised_(advise_huge_pages(memory_, size_)),
        huge_pages_(advised_ && shared_huge_pages_allowed()) {}

  SharedArena(SharedArena&& other) noexcept
      : size_(std::exchange(other.size_, 0)),
        memory_(std::exchange(other.memory_, nullptr)),
        advised_(std::exchange(other.advised_, false)),
        huge_pages_(std::exchange(other.huge_pages_, false)) {}
  SharedArena& operator=(SharedArena&& other) noexcept {
    std::swap(size_, other.size_);
    std::swap(memory_, other.memory_);
    std::swap(advised_, other.advised_);
    std::swap(huge_pages_, other.huge_pages_);
    return *this;
  }
  SharedArena(const SharedArena&) = delete;
  SharedArena& operator=(const SharedArena&) = delete;
  ~SharedArena() {
    if (memory_ != nullptr) ::munmap(memory_, size_);
  }

  [[nodiscard]] std::size_t size() const noexcept { return size_; }

  [[nodiscard]] std::byte* at(std::size_t offset) const noexcept {
    return static_cast<std::byte*>(memory_) + offset;
  }

  // Whether the mapping was advised onto transparent huge pages (from kHugeArena on) and the
  // kernel's settings honoured that advice when it was made (huge_pages.hpp): its pages are
  // then 2 MiB ones, unless the kernel found no free 2 MiB of memory (Stats::shared_memory).
  [[nodiscard]] bool huge_pages() const noexcept { return huge_pages_; }

  // Whether the kernel would now give huge pages to this mapping, which took the advice but was
  // made without them (the administrator allowed them since): a Pipeline then makes a new
  // mapping for its next run rather than keep 4 KiB pages for its life. A mapping the kernel
  // refused the advice for is never missed: a new one would be refused too.
  [[nodiscard]] bool missed_huge_pages() const noexcept {
    return advised_ && !huge_pages_ && shared_huge_pages_allowed();
  }

 private:
  // `asked` is the size the caller asked for, for the message (`bytes` is at least 1: a
  // zero-length mmap fails).
  static void* map(std::size_t bytes, std::size_t asked) {
    void* const memory =
        ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (memory == MAP_FAILED) {
      const std::error_code code(errno, std::system_category());
      throw IpcError(detail::format("plumb.ipc_error: cannot map {} bytes of shared memory for the "
                                    "links of a process-mode run: {}; lower in_flight or "
                                    "max_message_size",
                                    asked, code.message()),
                     code);
    }
    return memory;
  }

  std::size_t size_;
  void* memory_;
  bool advised_;     // madvise(MADV_HUGEPAGE) took
  bool huge_pages_;  // advised_, and the kernel's settings honoured it when it was made
};

// What Stats::shared_memory says of `arena`.
inline SharedMemoryStats shared_memory_stats(const SharedArena& arena) noexcept {
  return SharedMemoryStats{arena.size(), arena.huge_pages()};
}

// A Pipeline's mapping, kept between its runs: the next process-mode run reuses it when it is
// large enough (and not on 4 KiB pages that the kernel would now make huge), so the caller does
// not fault its pages in again (a fresh 40 MB of shared memory costs ~31 ms to touch, eight
// times a 40 MB memcpy). Every structure in it is constructed afresh
// by each run; only the pages stay. Safe because no worker process outlives its run (every
// child is reaped before run() returns), and a Pipeline runs once at a time (RunGuard).
using ArenaCache = std::optional<SharedArena>;

// The kinds of exception a worker process can report so that the caller rethrows the same type
// (the std::logic_error and std::runtime_error families, std::bad_alloc).
enum class RemoteKind : std::uint32_t {
  other,  // any other type: the caller gets a plumb::RemoteError with its name and message
  logic_error,
  invalid_argument,
  domain_error,
  length_error,
  out_of_range,
  runtime_error,
  range_error,
  overflow_error,
  underflow_error,
  bad_alloc,
  plumb_error,  // raised by plumb itself in the worker: rebuilt as a StageError
};

// The first error of the run, as a worker process reports it (an exception_ptr cannot cross
// fork()). Claimed once: state 0 -> 1 (claimed) -> 2 (written), by a worker or by the caller.
struct SharedFailure {
  std::atomic<std::uint32_t> state{0};
  RemoteKind kind = RemoteKind::other;
  std::uint64_t stage_index = 0;
  std::uint64_t worker_index = 0;
  std::int64_t pid = 0;
  char stage_name[128] = {};
  char type_name[256] = {};
  char what[4096] = {};

  // True for the one caller that gets to report the run's first error.
  bool claim() noexcept {
    std::uint32_t expected = 0;
    // acq_rel: the winner's later writes are published by the release store of state 2.
    return state.compare_exchange_strong(expected, 1, std::memory_order_acq_rel,
                                         std::memory_order_acquire);
  }
  // Publishes what the claimer wrote ([sync F-W] pairs with [sync F-R] in written()).
  void publish() noexcept { state.store(2, std::memory_order_release); }
  [[nodiscard]] bool written() const noexcept {
    return state.load(std::memory_order_acquire) == 2;  // [sync F-R]
  }
};

// What a worker process says of its own end, before _exit (its exit status alone could be
// anybody's exit(70), or an earlier reaper's).
enum class WorkerOutcome : std::uint8_t { running, finished, reported, stopped };

// What every process of a run shares besides the links.
struct SharedControl {
  // Non-zero once the run stops; every worker polls it per packet (RunState::stopping()).
  alignas(kCacheLine) std::atomic<std::uint32_t> stop{0};
  alignas(kCacheLine) SharedFailure failure;
};

static_assert(std::atomic<std::uint32_t>::is_always_lock_free &&
                  std::atomic<std::uint64_t>::is_always_lock_free,
              "plumb: shared memory needs lock-free 32- and 64-bit atomics");

}  // namespace plumb::detail
