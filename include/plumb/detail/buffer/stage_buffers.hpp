#pragma once
// SPDX-License-Identifier: MIT
// plumb/detail/buffer/stage_buffers.hpp: StageBuffers<T>, what serves make_buffer() in the
// generator of one stage worker: nothing, unless the stage yields plumb::Buffer.

#include <plumb/detail/buffer/home.hpp>
#include <plumb/detail/buffer/pool.hpp>

#include <cstddef>

namespace plumb::detail {

// How many free blocks a worker's pool keeps where nothing says (a graph node, a stream's
// caller): a packet in its consumer's hands, one in the link, one being written, one spare.
inline constexpr std::size_t kDefaultKeptBuffers = 4;

// For a stage that yields something other than a Buffer: nothing to serve, and nothing of the
// stage around it either: a generator fused before a Buffer stage runs inside that stage's
// resume, and must not take that stage's output slots (its make_buffer gets fresh memory).
template <class T>
class StageBuffers {
 public:
  explicit StageBuffers(std::size_t /*keep*/) noexcept {}
  class Scope {
   public:
    explicit Scope(const StageBuffers& /*buffers*/) noexcept : scope_(nullptr) {}

   private:
    BufferHomeScope scope_;
  };
};

// For a stage that yields Buffer<U>: its worker's pool (kept as long as a Buffer of it lives),
// and the home make_buffer() asks while its generator runs: the pool, or the output slots of a
// link to another process (exec/slot_source.hpp), which fall back to the pool.
//
// Thread affinity: the worker's thread (the pool itself is shared with the consumers).
template <class U>
class StageBuffers<Buffer<U>> {
 public:
  explicit StageBuffers(std::size_t keep) : pool_(BufferPool::make(keep)), home_(pool_.get()) {}

  [[nodiscard]] BufferPool& pool() const noexcept { return *pool_.get(); }
  // make_buffer() asks `home` from now on (nullptr: the pool again). `home` must stay alive
  // while it is set.
  void serve_from(BufferHome* home) noexcept { home_ = home != nullptr ? home : pool_.get(); }

  class Scope {
   public:
    explicit Scope(const StageBuffers& buffers) noexcept : scope_(buffers.home_) {}

   private:
    BufferHomeScope scope_;
  };

 private:
  HomeRef<BufferPool> pool_;
  BufferHome* home_;
};

}  // namespace plumb::detail
