#pragma once
// SPDX-License-Identifier: MIT
// plumb/detail/stats/graph_view.hpp: a plumb::Graph's statistics as a table, a Graphviz graph
// and a Mermaid flowchart: one row or box per node with the nodes it reads and its one input
// link. Stats::table(), dot() and mermaid() call these for a graph's statistics (Stats::graph()).

#include <plumb/detail/core/format.hpp>
#include <plumb/stats.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <string>

namespace plumb::detail {

inline std::string_view graph_mode_label(const StageStats& node) {
  switch (node.mode) {
    case Mode::thread: return "thread";
    case Mode::process: return "process";
    case Mode::sequential: return "caller";
  }
  return "?";
}

inline std::string graph_reads(const Stats& stats, const StageStats& node) {
  std::string text;
  for (std::size_t input : node.inputs) {
    detail::format_to(text, "{}{}", text.empty() ? "" : ",", stats.stages[input].name);
  }
  return text.empty() ? std::string("-") : text;
}

inline std::string graph_table(const Stats& stats) {
  std::string text = detail::format("plumb: graph of {} nodes, {:.3f} s, {}\n", stats.stages.size(),
                                    std::chrono::duration<double>(stats.elapsed).count(),
                                    stats.finished ? "finished" : "not finished");
  std::size_t width = 4;
  std::size_t reads_width = 5;
  for (const StageStats& node : stats.stages) {
    width = std::max(width, node.name.size());
    reads_width = std::max(reads_width, graph_reads(stats, node).size());
  }
  const auto row = [&](auto&&... cells) {
    detail::format_to(text, "{:>2}  {:<{}}  {:<7} {:>7}  {:<{}} {:>10} {:>10} {:>9} {:>6} {:>8} {:>8} {:>11}\n",
                      cells...);
  };
  row("#", "node", width, "mode", "workers", "reads", reads_width, "in", "out", "per s", "busy", "starved",
      "blocked", "queue");
  const auto fraction = [&](double value) {
    return stats.timed ? detail::format("{:.1f}%", 100 * value) : std::string("-");
  };
  for (std::size_t i = 0; i < stats.stages.size(); ++i) {
    const StageStats& node = stats.stages[i];
    const bool source = node.inputs.empty();
    const bool sink = node.packets_out == 0 && node.packets_in > 0;
    const std::string queue =
        node.input ? detail::format("{:.1f}/{}", node.input->mean_queued, node.input->capacity) : std::string("-");
    row(i, node.name, width, graph_mode_label(node), node.workers, graph_reads(stats, node), reads_width,
        source ? std::string("-") : detail::format("{}", node.packets_in),
        sink ? std::string("-") : detail::format("{}", node.packets_out), detail::compact(node.rate),
        fraction(node.busy_fraction), fraction(node.starved_fraction), fraction(node.blocked_fraction), queue);
  }
  text += stats.bottleneck_summary();
  text += '\n';
  if (const std::string advice = stats.hint(); !advice.empty()) text += advice + '\n';
  return text;
}

inline std::string graph_node_label(const StageStats& node, bool timed, std::string_view newline) {
  std::string label = detail::format("{}{}{} {} x{}", node.name, newline, graph_mode_label(node),
                                     node.workers == 1 ? "worker" : "workers", node.workers);
  if (node.input) detail::format_to(label, "{}input: {}", newline, link_label(*node.input));
  if (timed) {
    detail::format_to(label, "{}busy {}, {}/s", newline, percent(node.busy_fraction), compact(node.rate));
  }
  return label;
}

inline double graph_fill(const StageStats& node) {
  if (!node.input || node.input->capacity == 0) return 0;
  return std::clamp(node.input->mean_queued / static_cast<double>(node.input->capacity), 0.0, 1.0);
}

inline std::string graph_dot(const Stats& stats) {
  const std::optional<std::size_t> slowest = stats.bottleneck();
  std::string text =
      "digraph plumb {\n"
      "  rankdir=LR;\n  fontname=\"Helvetica\";\n  fontsize=11;\n"
      "  node [shape=box, style=\"rounded,filled\", fontname=\"Helvetica\", fontsize=11];\n"
      "  edge [fontname=\"Helvetica\", fontsize=10];\n";
  detail::format_to(text, "  label=\"{}\";\n  labelloc=b;\n", dot_escape(stats.bottleneck_summary()));
  for (std::size_t i = 0; i < stats.stages.size(); ++i) {
    const StageStats& node = stats.stages[i];
    // The name escaped first, then the label's line breaks added as dot's own "\n".
    StageStats escaped = node;
    escaped.name = dot_escape(node.name);
    detail::format_to(text, "  s{} [label=\"{}\", fillcolor=\"{}\"{}];\n", i,
                      graph_node_label(escaped, stats.timed, "\\n"), heat_colour(node.busy_fraction),
                      slowest == i ? ", penwidth=3, color=\"#b00000\"" : "");
  }
  for (std::size_t i = 0; i < stats.stages.size(); ++i) {
    const StageStats& node = stats.stages[i];
    for (std::size_t input : node.inputs) {
      detail::format_to(text, "  s{} -> s{} [penwidth={:.1f}];\n", input, i, 1 + 3 * graph_fill(node));
    }
  }
  text += "}\n";
  return text;
}

inline std::string graph_mermaid(const Stats& stats) {
  const std::optional<std::size_t> slowest = stats.bottleneck();
  std::string text = "flowchart LR\n";
  for (std::size_t i = 0; i < stats.stages.size(); ++i) {
    StageStats escaped = stats.stages[i];
    escaped.name = detail::format("<b>{}</b>", mermaid_escape(stats.stages[i].name));
    detail::format_to(text, "  s{}[\"{}\"]\n", i, graph_node_label(escaped, stats.timed, "<br/>"));
  }
  for (std::size_t i = 0; i < stats.stages.size(); ++i) {
    for (std::size_t input : stats.stages[i].inputs) detail::format_to(text, "  s{} --> s{}\n", input, i);
  }
  for (std::size_t i = 0; i < stats.stages.size(); ++i) {
    detail::format_to(text, "  style s{} fill:{}{}\n", i, heat_colour(stats.stages[i].busy_fraction),
                      slowest == i ? ",stroke:#b00000,stroke-width:3px" : "");
  }
  return text;
}

}  // namespace plumb::detail
