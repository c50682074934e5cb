#pragma once
// SPDX-License-Identifier: MIT
// tests/support/modes.hpp: the modes (or layouts of modes) a test runs in, as a Catch2
// generator: `const Mode mode = GENERATE(modes({Mode::thread, Mode::process}));`.

#include <plumb/run_options.hpp>

#include <catch2/catch.hpp>

#include <initializer_list>
#include <vector>

namespace plumb::test {

// ThreadSanitizer sees one process: the slots a worker process recycles look like races to it.
// A TSan build therefore runs no worker processes (tests/run.sh also skips the tests named
// "process mode: ..." and "mixed: ..." there); the other modes of a test still run.
#if defined(__SANITIZE_THREAD__)
inline constexpr bool kWorkerProcessesChecked = false;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
inline constexpr bool kWorkerProcessesChecked = false;
#else
inline constexpr bool kWorkerProcessesChecked = true;
#endif
#else
inline constexpr bool kWorkerProcessesChecked = true;
#endif

inline const char* mode_name(Mode mode) {
  switch (mode) {
    case Mode::sequential: return "sequential";
    case Mode::thread: return "thread";
    case Mode::process: return "process";
  }
  return "?";
}

inline bool forks(Mode mode) { return mode == Mode::process; }

// The values of `all` that this build can check: every one, or (under TSan) those that start
// no worker process. A row type other than Mode gives `bool forks(const Row&)`, found by ADL.
template <class Row>
Catch::Generators::GeneratorWrapper<Row> modes(std::initializer_list<Row> all) {
  std::vector<Row> kept;
  for (const Row& row : all) {
    if (kWorkerProcessesChecked || !forks(row)) kept.push_back(row);
  }
  return Catch::Generators::from_range(kept.begin(), kept.end());
}

}  // namespace plumb::test
