// expect-error: plumb::Graph: the graph's output node yields packets that no node reads; iterate them with graph.stream\(\)
// The last node yields: its packets are the graph's output, read with stream(), not run().
#include <plumb/graph.hpp>

plumb::Generator<int> numbers() {
  co_yield 1;
}
plumb::Generator<int> twice(plumb::Stream<int> in) {
  for (int x : in) co_yield 2 * x;
}

int main() {
  plumb::Graph graph{
      plumb::node<"numbers">(plumb::stage(numbers)),
      plumb::node<"twice">(plumb::stage(twice), plumb::from<"numbers">),
  };
  graph.run();
}
