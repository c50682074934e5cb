#pragma once
// SPDX-License-Identifier: MIT
// plumb/detail/buffer/pool.hpp: BufferPool, the home of a stage's Buffers within one process: memory
// given back is kept for the next make_buffer() instead of going back to the kernel.

#include <plumb/detail/buffer/home.hpp>

#include <cstddef>
#include <mutex>
#include <vector>

namespace plumb::detail {

// Keeps at most `keep` free blocks. take() hands out the smallest kept block that is large
// enough (a stage that asks for the same size every time gets the same blocks back, already
// faulted in), else fresh memory; give_back() keeps the block if there is room, else the larger
// of it and the smallest kept one (so that a stage whose packets grew does not keep only blocks
// too small for them), and frees the other.
//
// Invariant P1: free_.size() <= keep_ (free_ is reserved to keep_, so give_back never allocates).
// Memory: the blocks in use (bounded by the packets in flight the pool's stage can have out) plus
// at most `keep` free blocks; everything is freed when the last reference goes (a Buffer may
// outlive the run).
//
// Thread safety: every member locks mutex_ (a producer takes while consumers give back); the
// lock is held for a scan of at most `keep` entries, never while memory is allocated or freed.
// A pool is only ever used in the process that made it (a worker process makes its own).
class BufferPool final : public BufferHome {
 public:
  // A pool with one reference, the caller's.
  [[nodiscard]] static HomeRef<BufferPool> make(std::size_t keep) {
    return HomeRef<BufferPool>(new BufferPool(keep));
  }

  Lease take(std::size_t bytes, const void* /*element*/) override {
    const std::size_t wanted = round_up(std::max(bytes, kBlockAlignment), kBlockAlignment);
    Block block;
    {
      const std::lock_guard lock(mutex_);
      std::size_t best = free_.size();
      for (std::size_t i = 0; i < free_.size(); ++i) {
        if (free_[i].bytes >= wanted && (best == free_.size() || free_[i].bytes < free_[best].bytes)) best = i;
      }
      if (best != free_.size()) {
        block = free_[best];
        free_[best] = free_.back();
        free_.pop_back();
      }
    }
    if (block.data == nullptr) block = allocate_block(bytes);  // may throw: nothing retained yet
    retain();
    return {block, this};
  }

  void give_back(const Block& block) noexcept override {
    Block spare = block;
    {
      const std::lock_guard lock(mutex_);
      if (free_.size() < keep_) {
        free_.push_back(block);  // no allocation: reserved (P1)
        return;
      }
      if (keep_ == 0) {
        // nothing kept: spare is the block itself
      } else {
        std::size_t smallest = 0;
        for (std::size_t i = 1; i < free_.size(); ++i) {
          if (free_[i].bytes < free_[smallest].bytes) smallest = i;
        }
        if (free_[smallest].bytes < block.bytes) std::swap(spare, free_[smallest]);
      }
    }
    free_block(spare);
  }

 private:
  explicit BufferPool(std::size_t keep) : keep_(keep) { free_.reserve(keep); }
  ~BufferPool() override {
    for (const Block& block : free_) free_block(block);
  }

  std::mutex mutex_;
  const std::size_t keep_;
  std::vector<Block> free_;  // guarded by mutex_
};

}  // namespace plumb::detail
