#pragma once
// SPDX-License-Identifier: MIT
// plumb/detail/exec/remote_result.hpp: the sink's value when the sink runs in a worker process:
// serialized there into the run's shared mapping, read by the caller after the process exited.

#include <plumb/codec.hpp>
#include <plumb/detail/core/assert.hpp>
#include <plumb/detail/core/describe.hpp>
#include <plumb/detail/core/format.hpp>
#include <plumb/detail/run/run_state.hpp>
#include <plumb/error.hpp>
#include <plumb/worker.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <span>

namespace plumb::detail {

// In the shared mapping: a header followed by `capacity` bytes.
// Sync [W-R]: `written` is stored with release after the bytes and `size`; the caller reads it
// with acquire (and only after reaping the process, which orders it anyway).
struct ResultBlock {
  std::atomic<std::uint32_t> written{0};
  std::uint64_t size = 0;

  std::byte* bytes() noexcept { return reinterpret_cast<std::byte*>(this + 1); }
};

// In the sink's worker process: writes `value`. Returns false (after recording the run's error
// in `state`) if it does not fit in `capacity` bytes or cannot be encoded.
template <class Result>
bool write_remote_result(ResultBlock& block, std::size_t capacity, const Result& value,
                         const WorkerInfo& info, RunState& state) noexcept {
  try {
    const std::size_t size = serialized_size(value);
    if (size > capacity) {
      throw StageError(
          detail::format("plumb.stage_error: {} worker {} returned a value of {} bytes, over its "
                      "max_message_size({}); raise .max_message_size() on {}",
                      describe_stage(info.stage_index, info.stage_name), info.index, size,
                      capacity, describe_stage(info.stage_index, info.stage_name)),
          info.stage_index, info.stage_name, info.index);
    }
    Writer writer(std::span<std::byte>(block.bytes(), size));
    writer.write(value);
    block.size = size;
    block.written.store(1, std::memory_order_release);  // [sync W-R]
    return true;
  } catch (...) {
    const std::exception_ptr error = std::current_exception();
    state.fail(error, make_failure(info, error));
    return false;
  }
}

// In the caller, after the sink's process finished: the value it wrote.
template <class Result>
Result read_remote_result(const ResultBlock& block) {
  PLUMB_ASSERT(block.written.load(std::memory_order_acquire) == 1,  // [sync W-R]
               "plumb: the sink's process finished without a result");
  Reader reader(std::span<const std::byte>(reinterpret_cast<const std::byte*>(&block + 1), block.size));
  return reader.read<Result>();
}

}  // namespace plumb::detail
