#pragma once
// SPDX-License-Identifier: MIT
// plumb/detail/buffer/home.hpp: where a plumb::Buffer's memory comes from and goes back to: blocks
// (large ones on transparent huge pages), the BufferHome interface, and the stage whose
// make_buffer() is being served (a thread-local scope set around each resume of its generator).

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <new>
#include <type_traits>

#if defined(__linux__)
#include <sys/mman.h>
#include <unistd.h>
#endif

namespace plumb {

template <class U>
class Buffer;

namespace detail {

template <class T>
struct IsBuffer : std::false_type {};
template <class U>
struct IsBuffer<Buffer<U>> : std::true_type {
  using element = U;
};

// Buffer memory is 64-byte aligned (a cache line, and the codec's bulk alignment), so that any
// plain element type fits and a slot's elements start where a View reads them.
inline constexpr std::size_t kBlockAlignment = 64;
// Blocks from 1 MiB on are mapped on their own (returned to the kernel at once when freed, not
// kept by malloc); from 2 MiB on they are 2 MiB aligned and advised onto transparent huge pages
// (MADV_HUGEPAGE): one fault per 2 MiB instead of 512, and fewer TLB misses. Where the kernel's
// THP setting is `never` the advice is ignored and the block uses 4 KiB pages.
inline constexpr std::size_t kMappedBlock = std::size_t{1} << 20;
inline constexpr std::size_t kHugePage = std::size_t{2} << 20;

// A piece of memory a Buffer holds: `bytes` usable bytes at `data`; `token` is its home's (a
// shared-memory slot's index).
struct Block {
  std::byte* data = nullptr;
  std::size_t bytes = 0;
  std::uint32_t token = 0;
};

[[nodiscard]] inline std::size_t round_up(std::size_t bytes, std::size_t unit) noexcept {
  return (bytes + unit - 1) / unit * unit;
}

// Fresh memory for at least `bytes` bytes. Throws std::bad_alloc.
[[nodiscard]] inline Block allocate_block(std::size_t bytes) {
  bytes = round_up(std::max(bytes, kBlockAlignment), kBlockAlignment);
#if defined(__linux__)
  if (bytes >= kMappedBlock) {
    const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    const bool huge = bytes >= kHugePage;
    const std::size_t size = round_up(bytes, huge ? kHugePage : page);
    // A huge block is mapped with 2 MiB to spare, then trimmed to a 2 MiB boundary.
    const std::size_t mapped = huge ? size + kHugePage : size;
    void* memory = ::mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (memory == MAP_FAILED) throw std::bad_alloc();
    auto* start = static_cast<std::byte*>(memory);
    if (huge) {
      const auto address = reinterpret_cast<std::uintptr_t>(start);
      auto* aligned = reinterpret_cast<std::byte*>(round_up(address, kHugePage));
      const auto head = static_cast<std::size_t>(aligned - start);
      if (head != 0) ::munmap(start, head);
      if (mapped - head - size != 0) ::munmap(aligned + size, mapped - head - size);
      start = aligned;
      (void)::madvise(start, size, MADV_HUGEPAGE);  // advice: ignored where THP is off
    }
    return {start, size, 0};
  }
#endif
  return {static_cast<std::byte*>(::operator new(bytes, std::align_val_t{kBlockAlignment})), bytes, 0};
}

inline void free_block(const Block& block) noexcept {
  if (block.data == nullptr) return;
#if defined(__linux__)
  if (block.bytes >= kMappedBlock) {
    ::munmap(block.data, block.bytes);
    return;
  }
#endif
  ::operator delete(block.data, std::align_val_t{kBlockAlignment});
}

class BufferHome;

// Memory for one Buffer and the home it goes back to (retained for the Buffer; nullptr: fresh
// memory, freed with free_block()).
struct Lease {
  Block block;
  BufferHome* home = nullptr;
};

// Where Buffers get memory (take) and give it back (give_back): a BufferPool, or a worker
// process's output slot (exec/slot_source.hpp). Reference counted: whoever creates one holds a
// reference, every Buffer of its memory holds one, and the last release() deletes it, so a
// Buffer may outlive the run, the worker or the stage that made it.
//
// Thread affinity: take() on the thread of the stage it serves; give_back(), retain() and
// release() on any thread (a consumer destroys the Buffer).
class BufferHome {
 public:
  BufferHome(const BufferHome&) = delete;
  BufferHome& operator=(const BufferHome&) = delete;

  // Memory for a Buffer of `bytes` bytes, for make_buffer<U>() when `element` is U's
  // element_tag<U>() (nullptr for a copy of a Buffer). May block (a slot) or throw.
  virtual Lease take(std::size_t bytes, const void* element) = 0;
  // A Buffer leased from this home is done with `block`.
  virtual void give_back(const Block& block) noexcept = 0;

  void retain() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
  // acq_rel: every use of the home happens before its deletion by the last releaser.
  void release() noexcept {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

 protected:
  BufferHome() = default;
  virtual ~BufferHome() = default;

 private:
  std::atomic<std::size_t> refs_{1};
};

// An owning reference to a BufferHome (the creator's).
template <class Home>
class HomeRef {
 public:
  HomeRef() noexcept = default;
  explicit HomeRef(Home* home) noexcept : home_(home) {}
  HomeRef(HomeRef&& other) noexcept : home_(other.home_) { other.home_ = nullptr; }
  HomeRef& operator=(HomeRef&& other) noexcept {
    if (this != &other) {
      reset();
      home_ = other.home_;
      other.home_ = nullptr;
    }
    return *this;
  }
  HomeRef(const HomeRef&) = delete;
  HomeRef& operator=(const HomeRef&) = delete;
  ~HomeRef() { reset(); }

  [[nodiscard]] Home* get() const noexcept { return home_; }
  Home* operator->() const noexcept { return home_; }
  Home& operator*() const noexcept { return *home_; }
  void reset() noexcept {
    if (home_ != nullptr) home_->release();
    home_ = nullptr;
  }

 private:
  Home* home_ = nullptr;
};

// A distinct address per element type, so that a home serving Buffer<U> can tell a request for
// its own packets from one for a Buffer of another type.
template <class U>
inline constexpr char kElementTag = 0;
template <class U>
[[nodiscard]] constexpr const void* element_tag() noexcept {
  return &kElementTag<U>;
}

// The home that serves make_buffer() on this thread: the stage whose generator is running (set
// around each resume by GeneratorInput, restored after, so that a generator resumed inside
// another's resume serves its own stage). nullptr outside a stage: fresh memory.
inline thread_local BufferHome* tl_buffer_home = nullptr;

class BufferHomeScope {
 public:
  explicit BufferHomeScope(BufferHome* home) noexcept : previous_(tl_buffer_home) { tl_buffer_home = home; }
  BufferHomeScope(const BufferHomeScope&) = delete;
  BufferHomeScope& operator=(const BufferHomeScope&) = delete;
  ~BufferHomeScope() { tl_buffer_home = previous_; }

 private:
  BufferHome* previous_;
};

}  // namespace detail
}  // namespace plumb
