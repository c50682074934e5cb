// expect-error: plumb::Graph: stream\(\) iterates the packets of the graph's output
// The graph ends in a sink: there is nothing for stream() to iterate.
#include <plumb/graph.hpp>

plumb::Generator<int> numbers() {
  co_yield 1;
}
void drain(plumb::Stream<int> in) {
  for (int x : in) (void)x;
}

int main() {
  plumb::Graph graph{
      plumb::node<"numbers">(plumb::stage(numbers)),
      plumb::node<"drain">(plumb::stage(drain), plumb::from<"numbers">),
  };
  for (int x : graph.stream()) (void)x;
}
