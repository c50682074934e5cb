// expect-error: plumb::Graph: several nodes yield \(return plumb::Generator<T>\) but no node takes input from them
// expect-error: Chars<'t', 'h', 'r', 'i', 'c', 'e'>
// Nodes "twice" and "thrice" yield, and nothing reads them: one could be the graph's output
// (read with stream()), not two.
#include <plumb/graph.hpp>

plumb::Generator<int> numbers() {
  co_yield 1;
}
plumb::Generator<int> twice(plumb::Stream<int> in) {
  for (int x : in) co_yield 2 * x;
}
plumb::Generator<int> thrice(plumb::Stream<int> in) {
  for (int x : in) co_yield 3 * x;
}
void drain(plumb::Stream<int> in) {
  for (int x : in) (void)x;
}

int main() {
  plumb::Graph graph{
      plumb::node<"numbers">(plumb::stage(numbers)),
      plumb::node<"twice">(plumb::stage(twice), plumb::from<"numbers">),
      plumb::node<"thrice">(plumb::stage(thrice), plumb::from<"numbers">),
      plumb::node<"drain">(plumb::stage(drain), plumb::from<"numbers">),
  };
  (void)graph;
}
