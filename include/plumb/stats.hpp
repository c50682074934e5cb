#pragma once
// SPDX-License-Identifier: MIT
// plumb/stats.hpp: Stats, what a run measured per stage and per worker (its parts are in
// stage_stats.hpp), its bottleneck and advice, and its renderings: a text table, a Graphviz dot
// graph and a Mermaid flowchart.

#include <plumb/detail/core/format.hpp>
#include <plumb/detail/core/huge_pages.hpp>
#include <plumb/detail/stats/labels.hpp>
#include <plumb/run_options.hpp>
#include <plumb/stage_stats.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace plumb {

/// What a run measured: `Pipeline::last_stats()` after a run (successful or not), and the
/// snapshot passed to `RunOptions::progress` while it runs.
///
/// Every count and time is gathered in every mode, with counters in shared memory for worker
/// processes. Counts are exact; times are exact for waits (clock reads only where a worker
/// waits on a link) and derived for busy time (time alive less waits), except within a run of
/// fused stages, whose split is sampled. With `RunOptions::timing` off, times are zero.
///
/// Example:
/// ```cpp
/// pipeline.run();
/// const plumb::Stats& stats = pipeline.last_stats();
/// for (const plumb::StageStats& stage : stats.stages)
///   std::cout << stage.name << ' ' << stage.rate << "/s busy " << stage.busy_fraction << '\n';
/// if (auto slowest = stats.bottleneck()) std::cout << stats.stages[*slowest].name << '\n';
/// std::cout << stats.table();  // all of it as a table, with the bottleneck sentence
/// ```
class Stats {
 public:
  /// Stages whose busy share is within this of the bottleneck's are named beside it.
  static constexpr double kCloseToBottleneck = 0.05;

  /// Time since the run started (the whole run, once it has ended).
  std::chrono::nanoseconds elapsed{};
  /// True once the run has completed without error (the final progress report and
  /// `last_stats()` after a successful run).
  bool finished = false;
  /// False if `RunOptions::timing` was off: only counts were gathered.
  bool timed = true;
  /// Per stage, source first.
  std::vector<StageStats> stages;
  /// The run's shared memory (empty without worker processes).
  SharedMemoryStats shared_memory;

  /// From this size on, shared memory on 4 KiB pages gets a hint().
  static constexpr std::size_t kLargeSharedMemory = std::size_t{64} << 20;

  /// True before the first run (no stages).
  [[nodiscard]] bool empty() const noexcept { return stages.empty(); }

  /// True for the statistics of a plumb::Graph (its nodes read `StageStats::inputs`).
  [[nodiscard]] bool graph() const noexcept {
    for (const StageStats& stage : stages) {
      if (!stage.inputs.empty()) return true;
    }
    return false;
  }

  /// The stage that limits throughput: the one whose workers spent the largest share of the
  /// run busy (ties: the earliest). Empty when nothing was timed (no run, timing off, or no
  /// time measured).
  [[nodiscard]] std::optional<std::size_t> bottleneck() const noexcept {
    std::optional<std::size_t> best;
    for (std::size_t i = 0; i < stages.size(); ++i) {
      if (stages[i].busy_fraction <= 0) continue;
      if (!best || stages[i].busy_fraction > stages[*best].busy_fraction) best = i;
    }
    return best;
  }

  /// One sentence on the bottleneck, with its neighbours' waits and the stages nearly as busy
  /// (within kCloseToBottleneck), if any. For example: "bottleneck: stage 'infer' busy 97%,
  /// upstream blocked 80%, downstream starved 75%".
  [[nodiscard]] std::string bottleneck_summary() const;

  /// Advice, a line each:
  /// - when the work per packet is tiny everywhere and the workers spent most of the run
  ///   waiting on links (moving a packet then costs more than making it): batch, raise
  ///   in_flight, or fuse (not with too few packets, under 1000, to tell; not for a Graph);
  /// - when the run's shared memory is large (kLargeSharedMemory) and on 4 KiB pages, on a
  ///   kernel with transparent huge pages: how to allow huge pages for it.
  /// Empty otherwise.
  [[nodiscard]] std::string hint() const;

  /// A text table: one row per stage (mode, workers, in_flight, packets, rate, busy, starved,
  /// blocked, mean queue), then the bottleneck sentence, and where workers were lent (thread
  /// mode, `Scheduling::adaptive`) the share of each stage's packets made on the next stage's
  /// threads.
  [[nodiscard]] std::string table() const;

  /// The pipeline as a Graphviz `dot` graph: one box per stage (mode, workers, in_flight, busy
  /// share and rate, shaded by busy share; the bottleneck outlined), one edge per link (its fill
  /// level), fused stages boxed together. Render with `dot -Tsvg`.
  [[nodiscard]] std::string dot() const;

  /// The same picture as a Mermaid flowchart (renders on GitHub and GitLab in a code block
  /// marked `mermaid`).
  [[nodiscard]] std::string mermaid() const;
};

namespace detail {

// A plumb::Graph's views (detail/stats/graph_view.hpp, included at the end).
inline std::string graph_table(const Stats& stats);
inline std::string graph_dot(const Stats& stats);
inline std::string graph_mermaid(const Stats& stats);

}  // namespace detail

inline std::string Stats::bottleneck_summary() const {
  const std::optional<std::size_t> index = bottleneck();
  if (!index) return timed ? "bottleneck: none measured" : "bottleneck: not timed (RunOptions::timing is off)";
  const StageStats& stage = stages[*index];
  std::string text = detail::format("bottleneck: stage '{}' busy {}", stage.name,
                                    detail::percent(stage.busy_fraction));
  // The neighbours across links (a fused neighbour shares the stage's workers: it does not wait).
  if (*index > 0 && stages[*index - 1].output) {
    detail::format_to(text, ", upstream blocked {}",
                      detail::percent(stages[*index - 1].blocked_fraction));
  }
  if (stage.output) {
    detail::format_to(text, ", downstream starved {}",
                      detail::percent(stages[*index + 1].starved_fraction));
  }
  // Stages nearly as busy: speeding up the bottleneck alone will not help much.
  std::string close;
  for (std::size_t i = 0; i < stages.size(); ++i) {
    if (i == *index || stage.busy_fraction - stages[i].busy_fraction > kCloseToBottleneck) continue;
    detail::format_to(close, "{}'{}' {}", close.empty() ? "" : ", ", stages[i].name,
                      detail::percent(stages[i].busy_fraction));
  }
  if (!close.empty()) detail::format_to(text, "; nearly as busy: {}", close);
  return text;
}

namespace detail {
// Stats::hint()'s first line: tiny work per packet.
inline std::string tiny_work_hint(const Stats& stats) {
  const std::vector<StageStats>& stages = stats.stages;
  if (!stats.timed || stages.empty() || stats.graph() || stages.front().packets_out < 1000) return {};
  constexpr double kTinyNs = 2000;  // work per packet this small is cheaper than a hand-off
  double costliest_ns = 0;          // the largest work per packet of any stage
  double busy_ns = 0;               // all stages' busy time
  double worker_ns = 0;             // the run's time times the workers that own a thread
  std::size_t shortest = 0;         // the smallest in_flight of a link
  for (const StageStats& stage : stages) {
    const auto packets = static_cast<double>(std::max(stage.packets_in, stage.packets_out));
    const auto busy = static_cast<double>(stage.busy.count());
    if (packets > 0) costliest_ns = std::max(costliest_ns, busy / packets);
    busy_ns += busy;
    if (!stage.fused) worker_ns += static_cast<double>(stats.elapsed.count()) * static_cast<double>(stage.workers);
    if (stage.output && (shortest == 0 || stage.output->capacity < shortest)) shortest = stage.output->capacity;
  }
  if (costliest_ns >= kTinyNs || worker_ns <= 0 || busy_ns / worker_ns >= 0.5) return {};
  return detail::format(
      "hint: no stage works more than {:.2f} us per packet, and the workers spent {} of the run "
      "waiting on links: passing a packet on costs more than making it. Batch (a std::vector of "
      "many items per packet), raise .in_flight() (the shortest link holds {}), or fuse cheap "
      "stages into the stage before them (.mode(plumb::Mode::sequential))",
      costliest_ns / 1000.0, detail::percent(1.0 - busy_ns / worker_ns), shortest);
}
}  // namespace detail

inline std::string Stats::hint() const {
  std::string text = detail::tiny_work_hint(*this);
  if (shared_memory.bytes >= kLargeSharedMemory && !shared_memory.huge_pages &&
      detail::shared_huge_pages_configurable()) {
    detail::format_to(
        text,
        "{}hint: the run's {} MiB of shared memory are on 4 KiB pages, and every worker process "
        "faults in each page it touches, every run; allow huge pages for shared memory: echo "
        "advise | sudo tee /sys/kernel/mm/transparent_hugepage/shmem_enabled (see the guide, "
        "section 4)",
        text.empty() ? "" : "\n", shared_memory.bytes >> 20);
  }
  return text;
}

inline std::string Stats::table() const {
  if (graph()) return detail::graph_table(*this);
  std::string text = detail::format("plumb: {} stages, {:.3f} s, {}\n", stages.size(),
                                    std::chrono::duration<double>(elapsed).count(),
                                    finished ? "finished" : "not finished");
  std::size_t width = 5;
  for (const StageStats& stage : stages) width = std::max(width, stage.name.size());
  detail::format_to(
      text, "{:>2}  {:<{}}  {:<7} {:>7} {:>9} {:>10} {:>10} {:>9} {:>6} {:>8} {:>8} {:>11}\n", "#",
      "stage", width, "mode", "workers", "in_flight", "in", "out", "per s", "busy", "starved",
      "blocked", "queue");
  const auto fraction = [&](double value) {
    return timed ? detail::format("{:.1f}%", 100 * value) : std::string("-");
  };
  for (std::size_t i = 0; i < stages.size(); ++i) {
    const StageStats& stage = stages[i];
    const std::string in_flight =
        stage.output ? detail::format("{}", stage.output->capacity) : std::string("-");
    const std::string in = i == 0 ? std::string("-") : detail::format("{}", stage.packets_in);
    const std::string out =
        i + 1 == stages.size() ? std::string("-") : detail::format("{}", stage.packets_out);
    const std::string queue = stage.output ? detail::format("{:.1f}/{}", stage.output->mean_queued,
                                                            stage.output->capacity)
                                           : std::string("-");
    detail::format_to(
        text, "{:>2}  {:<{}}  {:<7} {:>7} {:>9} {:>10} {:>10} {:>9} {:>6} {:>8} {:>8} {:>11}\n", i,
        stage.name, width, detail::mode_label(stage, i), stage.workers, in_flight, in, out,
        detail::compact(stage.rate), fraction(stage.busy_fraction),
        fraction(stage.starved_fraction), fraction(stage.blocked_fraction), queue);
  }
  text += bottleneck_summary();
  text += '\n';
  if (const std::string advice = hint(); !advice.empty()) text += advice + '\n';
  // A line naming the stages that `value` (empty: none) describes, after `title`.
  const auto stage_line = [&](std::string_view title, auto value) {
    std::string line;
    for (const StageStats& stage : stages) {
      const std::string shown = value(stage);
      if (!shown.empty()) detail::format_to(line, "{}'{}' {}", line.empty() ? "" : ", ", stage.name, shown);
    }
    if (!line.empty()) detail::format_to(text, "{}: {}\n", title, line);
  };
  // Lent workers (Scheduling::adaptive): which stages ran on the next stage's threads.
  stage_line("lent (packets made on the next stage's threads)", [](const StageStats& stage) {
    if (stage.helped_out == 0 || stage.packets_out == 0) return std::string();
    return detail::format("{:.0f}%", 100.0 * static_cast<double>(stage.helped_out) / static_cast<double>(stage.packets_out));
  });
  // A Service's failed items: counted as packets where they passed, named here.
  stage_line("failed items (answered with the stage's error)", [](const StageStats& stage) {
    return stage.failed_items == 0 ? std::string() : detail::format("{}", stage.failed_items);
  });
  return text;
}

inline std::string Stats::dot() const {
  if (graph()) return detail::graph_dot(*this);
  const std::optional<std::size_t> slowest = bottleneck();
  std::string text =
      "digraph plumb {\n"
      "  rankdir=LR;\n  fontname=\"Helvetica\";\n  fontsize=11;\n"
      "  node [shape=box, style=\"rounded,filled\", fontname=\"Helvetica\", fontsize=11];\n"
      "  edge [fontname=\"Helvetica\", fontsize=10];\n";
  detail::format_to(text, "  label=\"{}\";\n  labelloc=b;\n",
                    detail::dot_escape(bottleneck_summary()));
  const auto node = [&](std::size_t i, std::string_view indent) {
    const StageStats& stage = stages[i];
    std::string label =
        detail::format("{}\\n{}", detail::dot_escape(stage.name), detail::workers_label(stage, i));
    if (stage.output) detail::format_to(label, ", in_flight {}", stage.output->capacity);
    if (timed) {
      detail::format_to(label, "\\nbusy {}, {}/s", detail::percent(stage.busy_fraction),
                        detail::compact(stage.rate));
    }
    const bool bottleneck = slowest == i;
    return detail::format("{}s{} [label=\"{}\", fillcolor=\"{}\"{}];\n", indent, i, label,
                          detail::heat_colour(stage.busy_fraction),
                          bottleneck ? ", penwidth=3, color=\"#b00000\"" : "");
  };
  // A run of fused stages shares its workers: one cluster per run of length > 1.
  detail::for_each_run(stages, [&](std::size_t first, std::size_t last) {
    if (last == first) {
      text += node(first, "  ");
      return;
    }
    detail::format_to(
        text,
        "  subgraph cluster_{} {{\n    label=\"fused: one worker runs stages {}-{}\";\n"
        "    style=dashed; fontname=\"Helvetica\"; fontsize=10;\n",
        first, first, last);
    for (std::size_t i = first; i <= last; ++i) text += node(i, "    ");
    text += "  }\n";
  });
  for (std::size_t i = 0; i + 1 < stages.size(); ++i) {
    const StageStats& stage = stages[i];
    if (!stage.output) {
      detail::format_to(text, "  s{} -> s{} [style=dashed, label=\"no link\"];\n", i, i + 1);
      continue;
    }
    const double fill = stage.output->capacity == 0
                            ? 0
                            : stage.output->mean_queued / static_cast<double>(stage.output->capacity);
    detail::format_to(text, "  s{} -> s{} [label=\"{}\", penwidth={:.1f}];\n", i, i + 1,
                      detail::link_label(*stage.output), 1 + 3 * std::clamp(fill, 0.0, 1.0));
  }
  text += "}\n";
  return text;
}

inline std::string Stats::mermaid() const {
  if (graph()) return detail::graph_mermaid(*this);
  const std::optional<std::size_t> slowest = bottleneck();
  std::string text = "flowchart LR\n";
  const auto node = [&](std::size_t i, std::string_view indent) {
    const StageStats& stage = stages[i];
    std::string label = detail::format("<b>{}</b><br/>{}", detail::mermaid_escape(stage.name),
                                       detail::workers_label(stage, i));
    if (stage.output) detail::format_to(label, ", in_flight {}", stage.output->capacity);
    if (timed) {
      detail::format_to(label, "<br/>busy {}, {}/s", detail::percent(stage.busy_fraction),
                        detail::compact(stage.rate));
    }
    return detail::format("{}s{}[\"{}\"]\n", indent, i, label);
  };
  detail::for_each_run(stages, [&](std::size_t first, std::size_t last) {
    if (last == first) {
      text += node(first, "  ");
      return;
    }
    detail::format_to(text, "  subgraph fused{}[\"fused: one worker runs stages {}-{}\"]\n", first,
                      first, last);
    for (std::size_t i = first; i <= last; ++i) text += node(i, "    ");
    text += "  end\n";
  });
  for (std::size_t i = 0; i + 1 < stages.size(); ++i) {
    if (stages[i].output) {
      detail::format_to(text, "  s{} -->|\"{}\"| s{}\n", i, detail::link_label(*stages[i].output),
                        i + 1);
    } else {
      detail::format_to(text, "  s{} -.->|no link| s{}\n", i, i + 1);
    }
  }
  for (std::size_t i = 0; i < stages.size(); ++i) {
    detail::format_to(text, "  style s{} fill:{}{}\n", i,
                      detail::heat_colour(stages[i].busy_fraction),
                      slowest == i ? ",stroke:#b00000,stroke-width:3px" : "");
  }
  return text;
}

}  // namespace plumb

// The graph views, after Stats (they read it).
#include <plumb/detail/stats/graph_view.hpp>  // IWYU pragma: keep
