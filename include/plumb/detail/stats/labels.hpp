#pragma once
// SPDX-License-Identifier: MIT
// plumb/detail/stats/labels.hpp: the pieces of text that Stats::table(), dot() and mermaid() (and
// a graph's, graph_view.hpp) are made of: mode and worker labels, percentages, colours, escapes.

#include <plumb/detail/core/format.hpp>
#include <plumb/stage_stats.hpp>

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace plumb::detail {

inline std::string_view mode_label(const StageStats& stage, std::size_t index) {
  if (stage.fused) return "fused";
  switch (stage.mode) {
    case Mode::thread: return "thread";
    case Mode::process: return "process";
    case Mode::sequential: return index == 0 ? "caller" : "fused";
  }
  return "?";
}

inline std::string percent(double fraction) { return detail::format("{:.0f}%", 100 * fraction); }

// 1234567 -> "1.23M": rates and counts in a few characters.
inline std::string compact(double value) {
  if (value >= 1e9) return detail::format("{:.3g}G", value / 1e9);
  if (value >= 1e6) return detail::format("{:.3g}M", value / 1e6);
  if (value >= 1e4) return detail::format("{:.3g}k", value / 1e3);
  if (value >= 100) return detail::format("{:.0f}", value);
  return detail::format("{:.3g}", value);
}

// The stage's workers and mode in words: "4 processes", "1 thread", "fused", "caller".
inline std::string workers_label(const StageStats& stage, std::size_t index) {
  const std::string_view place = mode_label(stage, index);
  if (place == "fused") return "fused";
  if (place == "caller") return "calling thread";
  const bool one = stage.workers == 1;
  return detail::format(
      "{} {}", stage.workers,
      stage.mode == Mode::process ? (one ? "process" : "processes") : (one ? "thread" : "threads"));
}

// A stage's box colour: white when idle, through yellow, to red when busy all the time.
inline std::string heat_colour(double busy) {
  const double x = std::clamp(busy, 0.0, 1.0);
  // value is in [0, 1]: rounds half up, as std::lround does for it (<cmath> is a big include).
  const auto channel = [](double value) { return static_cast<int>(255 * value + 0.5); };
  // white (1,1,1) -> yellow (1,0.85,0.4) -> red (0.95,0.45,0.4)
  const double g = x < 0.5 ? 1.0 - 0.3 * x : 0.85 - 0.8 * (x - 0.5);
  const double b = x < 0.5 ? 1.0 - 1.2 * x : 0.4;
  const double r = x < 0.5 ? 1.0 : 1.0 - 0.1 * (x - 0.5);
  return detail::format("#{:02x}{:02x}{:02x}", channel(r), channel(g), channel(b));
}

// Text inside a dot "..." string.
inline std::string dot_escape(std::string_view text) {
  std::string out;
  for (const char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

// Text inside a Mermaid "..." label: quotes and markup characters as entity codes.
inline std::string mermaid_escape(std::string_view text) {
  std::string out;
  for (const char c : text) {
    switch (c) {
      case '"': out += "#quot;"; break;
      case '<': out += "#lt;"; break;
      case '>': out += "#gt;"; break;
      case '#': out += "#35;"; break;
      default: out += c;
    }
  }
  return out;
}

// Calls on_run(first, last) for each run of stages that share workers: a stage and the stages
// fused after it (first == last for a stage with nothing fused after it).
template <class OnRun>
void for_each_run(const std::vector<StageStats>& stages, OnRun&& on_run) {
  for (std::size_t first = 0; first < stages.size();) {
    std::size_t last = first;
    while (last + 1 < stages.size() && stages[last + 1].fused) ++last;
    on_run(first, last);
    first = last + 1;
  }
}

inline std::string link_label(const LinkStats& link) {
  const double fill = link.capacity == 0 ? 0 : link.mean_queued / static_cast<double>(link.capacity);
  return detail::format("{} slots{}, {} full", link.capacity, link.shared ? " (shm)" : "",
                        percent(std::clamp(fill, 0.0, 1.0)));
}

}  // namespace plumb::detail
