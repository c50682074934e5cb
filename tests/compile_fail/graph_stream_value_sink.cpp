// expect-error: plumb::Graph: stream\(\) reads the graph's output, so a sink that returns a value has nobody to return it to
// The graph has an output ("twice", read with stream()) and a sink that returns a count: the
// count would be lost.
#include <plumb/graph.hpp>

plumb::Generator<int> numbers() {
  co_yield 1;
}
plumb::Generator<int> twice(plumb::Stream<int> in) {
  for (int x : in) co_yield 2 * x;
}
long count(plumb::Stream<int> in) {
  long n = 0;
  for (int x : in) n += x > 0 ? 1 : 0;
  return n;
}

int main() {
  plumb::Graph graph{
      plumb::node<"numbers">(plumb::stage(numbers)),
      plumb::node<"twice">(plumb::stage(twice), plumb::from<"numbers">),
      plumb::node<"count">(plumb::stage(count), plumb::from<"numbers">),
  };
  for (int x : graph.stream()) (void)x;
}
