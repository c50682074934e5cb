// SPDX-License-Identifier: MIT
// tests/shared_memory_test.cpp: detail::SharedArena, the anonymous shared mapping of a
// process-mode run: zeroed, shared with a forked child both ways, moved without a second
// unmap, a large one advised onto transparent huge pages, and a mapping that cannot be made is
// an IpcError that says so.

#include <plumb/detail/run/shared_memory.hpp>
#include <plumb/error.hpp>

#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string_view>
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

// The line starting with `field` ("VmFlags:", "THPeligible:") of the mapping of this process
// that starts at `start`, from /proc/self/smaps; empty if there is none.
std::optional<std::string> smaps_field(const void* start, std::string_view field) {
  std::ifstream smaps("/proc/self/smaps");
  std::ostringstream wanted;
  wanted << std::hex << reinterpret_cast<std::uintptr_t>(start) << '-';
  bool inside = false;
  for (std::string line; std::getline(smaps, line);) {
    if (line.find('-') != std::string::npos && line.find(' ') > line.find('-') &&
        line.find(':') > line.find(' ')) {
      inside = line.rfind(wanted.str(), 0) == 0;  // a mapping's first line: "start-end perms ..."
    } else if (inside && line.rfind(field, 0) == 0) {
      return line;
    }
  }
  return std::nullopt;
}

TEST_CASE("SharedArena advises transparent huge pages for a large arena only", "[shared_memory]") {
  if (!std::filesystem::exists("/sys/kernel/mm/transparent_hugepage")) {
    WARN("this kernel has no transparent huge pages: nothing to check");
    return;
  }
  // 'hg' in VmFlags: madvise(MADV_HUGEPAGE) was given, whatever shmem_enabled then makes of it.
  const SharedArena large(std::size_t{16} << 20);
  const auto large_flags = smaps_field(large.at(0), "VmFlags:");
  REQUIRE(large_flags.has_value());
  CHECK_THAT(*large_flags, Catch::Matchers::Contains(" hg"));
  const SharedArena small(std::size_t{1} << 20);  // a run of small messages keeps 4 KiB pages
  const auto small_flags = smaps_field(small.at(0), "VmFlags:");
  REQUIRE(small_flags.has_value());
  CHECK_THAT(*small_flags, !Catch::Matchers::Contains(" hg"));
  CHECK_FALSE(small.huge_pages());
  // huge_pages() against the kernel's own answer for the mapping (THPeligible, Linux 5.0 on).
  const auto eligible = smaps_field(large.at(0), "THPeligible:");
  if (!eligible) {
    WARN("this kernel's smaps has no THPeligible line: huge_pages() not compared");
    return;
  }
  INFO(*eligible);
  CHECK(large.huge_pages() == (eligible->find('1') != std::string::npos));
  CHECK_FALSE(large.missed_huge_pages());  // the settings have not changed since it was made
}

TEST_CASE("shmem_policy_allows reads the kernel's shared-memory huge page settings", "[shared_memory]") {
  using plumb::detail::shmem_policy_allows;
  const std::string_view top = "always within_size advise [never] deny force";
  // No per-size file (before Linux 6.11), or the per-size setting inherits: the top one decides.
  CHECK_FALSE(shmem_policy_allows(top, ""));
  CHECK(shmem_policy_allows("always within_size [advise] never deny force", ""));
  CHECK(shmem_policy_allows("always [within_size] advise never deny force", ""));
  CHECK(shmem_policy_allows("[always] within_size advise never deny force", ""));
  CHECK_FALSE(shmem_policy_allows(top, "always [inherit] within_size advise never"));
  CHECK(shmem_policy_allows("always within_size [advise] never deny force",
                            "always [inherit] within_size advise never"));
  // The 2 MiB size's own setting overrides the top one...
  CHECK(shmem_policy_allows(top, "always inherit within_size [advise] never"));
  CHECK_FALSE(shmem_policy_allows("always within_size [advise] never deny force",
                                  "always inherit within_size advise [never]"));
  // ...except deny and force, which override everything.
  CHECK_FALSE(shmem_policy_allows("always within_size advise never [deny] force",
                                  "[always] inherit within_size advise never"));
  CHECK(shmem_policy_allows("always within_size advise never deny [force]",
                            "always inherit within_size advise [never]"));
  // Unreadable or malformed: no huge pages.
  CHECK_FALSE(shmem_policy_allows("", ""));
  CHECK_FALSE(shmem_policy_allows("always advise", ""));
  CHECK_FALSE(shmem_policy_allows("always [advise", ""));
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
