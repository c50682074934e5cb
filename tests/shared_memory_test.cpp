// SPDX-License-Identifier: MIT
// tests/shared_memory_test.cpp: detail::SharedArena, the anonymous shared mapping of a
// process-mode run: zeroed, shared with a forked child both ways, moved without a second
// unmap, and a mapping that cannot be made is an IpcError that says so.

#include <plumb/detail/run/shared_memory.hpp>
#include <plumb/error.hpp>

#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <string>
#include <utility>

namespace {

using plumb::detail::SharedArena;

TEST_CASE("SharedArena maps zeroed memory of the size asked", "[shared_memory]") {
  const SharedArena arena(1 << 20);
  CHECK(arena.size() == std::size_t{1} << 20);
  std::size_t nonzero = 0;
  for (std::size_t i = 0; i < arena.size(); i += 4096) nonzero += arena.at(i)[0] != std::byte{0};
  CHECK(nonzero == 0);
  CHECK(SharedArena(0).size() == 1);  // a zero-length mmap fails: one byte instead
}

TEST_CASE("SharedArena is shared with a forked child, both ways", "[shared_memory][fork]") {
  SharedArena arena(4096);
  std::memcpy(arena.at(0), "caller", 7);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    const bool seen = std::memcmp(arena.at(0), "caller", 7) == 0;
    std::memcpy(arena.at(64), "child", 6);
    ::_exit(seen ? 0 : 1);
  }
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);  // the child read the caller's bytes
  CHECK(std::memcmp(arena.at(64), "child", 6) == 0);
}

TEST_CASE("SharedArena moves its mapping", "[shared_memory]") {
  SharedArena first(4096);
  first.at(0)[0] = std::byte{42};
  SharedArena second(std::move(first));
  CHECK(second.size() == 4096);
  CHECK(second.at(0)[0] == std::byte{42});
  SharedArena third(8192);
  third = std::move(second);
  CHECK(third.size() == 4096);
  CHECK(third.at(0)[0] == std::byte{42});
}

TEST_CASE("SharedArena reports a mapping it cannot make as an IpcError", "[shared_memory]") {
  // 2^62 bytes: far past any user address space, so mmap fails (ENOMEM) whatever the overcommit.
  const std::size_t bytes = std::size_t{1} << 62;
  try {
    const SharedArena arena(bytes);
    FAIL("mapped 2^62 bytes");
  } catch (const plumb::IpcError& error) {
    CHECK_THAT(error.what(),
               Catch::Matchers::StartsWith("plumb.ipc_error: cannot map " + std::to_string(bytes) +
                                           " bytes of shared memory"));
    CHECK_THAT(error.what(), Catch::Matchers::Contains("lower in_flight or max_message_size"));
    CHECK(error.code().value() == ENOMEM);
  }
}

}  // namespace
