#pragma once
// SPDX-License-Identifier: MIT
// plumb/detail/core/huge_pages.hpp: transparent huge pages for a run's shared mapping: the advice,
// and whether the kernel's settings honour it.
//
// Why: a run's worker processes are new, and a new process faults in every page of the mapping
// that it touches, every run (fork() does not copy the page tables of a shared mapping). With
// 2 MiB pages that is 512 times fewer faults. Measured on a 2-core VM (a paravirtualized MMU):
// a new process's first write to 320 MiB of shared memory took 0.84-0.94 s on 4 KiB pages and
// 16-21 ms on huge pages (docs/design/buffers.md, "Huge pages").
//
// Linux gives huge pages to shared memory (anonymous shared mappings, memfds, SysV) only where
// /sys/kernel/mm/transparent_hugepage/shmem_enabled allows it; the kernel's default is never.
// Since Linux 6.11 each page size has its own setting too (hugepages-<size>kB/shmem_enabled),
// which applies unless it is inherit.

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdlib>
#include <string>
#include <string_view>

namespace plumb::detail {

// Mappings from this size on are advised onto huge pages; smaller ones (runs of small messages)
// keep 4 KiB pages rather than round their few pages up to a 2 MiB one.
inline constexpr std::size_t kHugeArena = std::size_t{8} << 20;

inline constexpr const char* kShmemThpSetting = "/sys/kernel/mm/transparent_hugepage/shmem_enabled";

// The chosen word of a sysfs setting ("always within_size [advise] never deny force"): the one in
// brackets; empty if there is none.
inline std::string_view chosen_word(std::string_view setting) noexcept {
  const std::size_t first = setting.find('[');
  if (first == std::string_view::npos) return {};
  const std::size_t last = setting.find(']', first);
  if (last == std::string_view::npos) return {};
  return setting.substr(first + 1, last - first - 1);
}

// Whether a shared mapping advised with MADV_HUGEPAGE gets 2 MiB pages under these settings:
// `top` is the text of shmem_enabled, `pmd` that of hugepages-<2 MiB in kB>kB/shmem_enabled
// (empty where the kernel has no such file). deny and force, the top setting's, override
// everything; otherwise the page size's own setting applies unless it is inherit.
inline bool shmem_policy_allows(std::string_view top, std::string_view pmd) noexcept {
  const std::string_view global = chosen_word(top);
  if (global == "deny") return false;
  if (global == "force") return true;
  const std::string_view own = chosen_word(pmd);
  const std::string_view chosen = own.empty() || own == "inherit" ? global : own;
  return chosen == "always" || chosen == "within_size" || chosen == "advise";
}

// The first line of a small sysfs file; empty if it cannot be read.
inline std::string read_setting(const std::string& path) noexcept {
  const int file = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (file < 0) return {};
  char text[256] = {};
  const ssize_t length = ::read(file, text, sizeof text - 1);
  ::close(file);
  if (length <= 0) return {};
  const std::string_view line(text, static_cast<std::size_t>(length));
  try {
    return std::string(line.substr(0, line.find('\n')));
  } catch (...) {
    return {};  // no memory for a few bytes: read as "cannot be read"
  }
}

// Whether this kernel gives huge pages to an advised shared mapping now (read from sysfs; false
// where the files are missing: no transparent huge pages).
inline bool shared_huge_pages_allowed() noexcept {
  const std::string top = read_setting(kShmemThpSetting);
  if (top.empty()) return false;
  const std::string pmd_bytes = read_setting("/sys/kernel/mm/transparent_hugepage/hpage_pmd_size");
  std::string pmd;
  if (const unsigned long long bytes = std::strtoull(pmd_bytes.c_str(), nullptr, 10); bytes >= 1024) {
    try {
      pmd = read_setting("/sys/kernel/mm/transparent_hugepage/hugepages-" + std::to_string(bytes / 1024) +
                         "kB/shmem_enabled");
    } catch (...) {
      pmd.clear();  // as if the kernel had no per-size setting
    }
  }
  return shmem_policy_allows(top, pmd);
}

// Whether the kernel has the setting at all (transparent huge pages built in): only then can an
// administrator allow huge pages for shared memory.
inline bool shared_huge_pages_configurable() noexcept { return ::access(kShmemThpSetting, F_OK) == 0; }

// Advises `bytes` of shared memory at `memory` onto huge pages if it is large (kHugeArena).
// Returns whether the kernel took the advice (whether it honours it is shared_huge_pages_allowed();
// even then it may fall back to 4 KiB pages where it finds no free 2 MiB of memory).
inline bool advise_huge_pages([[maybe_unused]] void* memory, [[maybe_unused]] std::size_t bytes) noexcept {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  return bytes >= kHugeArena && ::madvise(memory, bytes, MADV_HUGEPAGE) == 0;
#else
  return false;
#endif
}

}  // namespace plumb::detail
