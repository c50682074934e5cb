#pragma once
// SPDX-License-Identifier: MIT
// plumb/detail/graph/setup.hpp: GraphSetup, everything a graph run needs before it starts, made
// the same way for Graph::run() and Graph::stream(): the nodes' names, options and shapes, the
// run options checked, and the plan. Throws ConfigError from the constructor.

#include <plumb/detail/graph/plan.hpp>
#include <plumb/detail/graph/rules.hpp>
#include <plumb/detail/graph/topology.hpp>
#include <plumb/detail/run/validate.hpp>
#include <plumb/run_options.hpp>
#include <plumb/stage.hpp>

#include <array>
#include <cstddef>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

namespace plumb::detail {

template <class... Nodes>
struct GraphSetup {
  using Topo = Topology<Nodes...>;
  static constexpr std::size_t kCount = sizeof...(Nodes);

  GraphSetup(const std::tuple<Nodes...>& nodes, const RunOptions& options, std::size_t value_sink)
      : shapes(kCount) {
    [&]<std::size_t... K>(std::index_sequence<K...>) { (describe<K>(nodes, options, value_sink), ...); }(
        std::index_sequence_for<Nodes...>{});
    validate_run_options(options);
    plan = make_graph_plan(stage_options, names, shapes, options.mode);
  }

  std::vector<std::string> names;
  std::array<const StageOptions*, kCount> stage_options{};
  std::array<std::size_t, kCount> max_message_sizes{};
  std::vector<GraphNodeShape> shapes;
  GraphPlan plan;

 private:
  template <std::size_t K>
  void describe(const std::tuple<Nodes...>& nodes, const RunOptions& options, std::size_t value_sink) {
    const auto& node = std::get<K>(nodes);
    stage_options[K] = &node.stage.options();
    max_message_sizes[K] = message_size_of(node.stage.options(), options);
    names.push_back(node.stage.options().name);
    GraphNodeShape& shape = shapes[K];
    for (std::string_view input : Topo::template input_names<K>()) {
      shape.producers.push_back(Topo::Tables::index_of(input));
    }
    shape.kind = Topo::template kind<K>;
    if constexpr (Topo::template is_join<K>) shape.window = node.fan_in.window_;
    shape.returns_value = K == value_sink;
    shape.sink = Topo::template is_sink<K>;
  }
};

}  // namespace plumb::detail
