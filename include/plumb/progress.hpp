#pragma once
// SPDX-License-Identifier: MIT
// plumb/progress.hpp: ProgressLine, a ready-made RunOptions::progress callback that shows a
// run's packets per second per stage on a terminal.

#include <plumb/detail/core/format.hpp>
#include <plumb/stats.hpp>

#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

namespace plumb {

/// A `RunOptions::progress` callback that writes one status line per report. A line reads
///
///     plumb 12.0 s | read 1.2k/s (14.4k) | infer* 98/s (1.18k) | write 98/s (1.18k)
///
/// with, per stage, the packets per second since the previous report (in the final report: over
/// the whole run) and the total so far (the sink counts packets in, the others packets out);
/// `*` marks the current bottleneck. On a terminal the line is rewritten in place and the final
/// report ends it; elsewhere (a file, a pipe, CI logs) each report is a line of its own.
///
/// Copies share their state (the previous report), so it can be passed by value; use it for one
/// run at a time.
///
/// Example:
/// ```cpp
/// pipeline.run({.progress = plumb::ProgressLine{}, .progress_interval = std::chrono::milliseconds(500)});
/// ```
class ProgressLine {
 public:
  /// Writes to `out` (default: standard error), rewriting the line in place if `out` is a
  /// terminal.
  explicit ProgressLine(std::FILE* out = stderr) : ProgressLine(out, ::isatty(::fileno(out)) == 1) {}
  /// Writes to `out`; `in_place`: rewrite the line in place rather than write a line per report.
  ProgressLine(std::FILE* out, bool in_place) : state_(std::make_shared<State>(out, in_place)) {}

  /// Writes the report on `stats` (see `format()`); `RunOptions::progress` calls it.
  void operator()(const Stats& stats) const {
    const std::string line = format(stats);
    State& state = *state_;
    if (state.in_place) {
      // Back to the line's start, clear it, the new line; a line end once finished.
      std::fprintf(state.out, "\r\x1b[K%s%s", line.c_str(), stats.finished ? "\n" : "");
    } else {
      std::fprintf(state.out, "%s\n", line.c_str());
    }
    std::fflush(state.out);
  }

  /// The text of one report (no line end); advances the rates' reference point.
  [[nodiscard]] std::string format(const Stats& stats) const {
    State& state = *state_;
    if (stats.elapsed < state.elapsed) state = State(state.out, state.in_place);  // a new run
    const std::optional<std::size_t> bottleneck = stats.bottleneck();
    std::string line =
        detail::format("plumb {:.1f} s", std::chrono::duration<double>(stats.elapsed).count());
    const double interval = std::chrono::duration<double>(stats.elapsed - state.elapsed).count();
    state.counts.resize(stats.stages.size(), 0);
    for (std::size_t i = 0; i < stats.stages.size(); ++i) {
      const StageStats& stage = stats.stages[i];
      const std::uint64_t count = i + 1 == stats.stages.size() ? stage.packets_in : stage.packets_out;
      // The final report shows the whole run's rate; the others, the rate since the last one.
      const double rate = !stats.finished && interval > 0
                              ? static_cast<double>(count - std::min(count, state.counts[i])) / interval
                              : stage.rate;
      detail::format_to(line, " | {}{} {}/s ({})", stage.name, bottleneck == i ? "*" : "",
                        detail::compact(rate), detail::compact(static_cast<double>(count)));
      state.counts[i] = count;
    }
    if (stats.finished) line += " | done";
    state.elapsed = stats.elapsed;
    return line;
  }

 private:
  struct State {
    State(std::FILE* out_, bool in_place_) : out(out_), in_place(in_place_) {}
    std::FILE* out;
    bool in_place;
    std::chrono::nanoseconds elapsed{};
    std::vector<std::uint64_t> counts;
  };
  std::shared_ptr<State> state_;
};

}  // namespace plumb
