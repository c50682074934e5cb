// expect-error: plumb::Graph: a node that yields \(returns plumb::Generator<T>\) but that no node takes input from would lose its packets
// expect-error: Chars<'t', 'w', 'i', 'c', 'e'>
// Node "twice" yields, and nothing reads it.
#include <plumb/graph.hpp>

plumb::Generator<int> numbers() {
  co_yield 1;
}
plumb::Generator<int> twice(plumb::Stream<int> in) {
  for (int x : in) co_yield 2 * x;
}
void drain(plumb::Stream<int> in) {
  for (int x : in) (void)x;
}

int main() {
  plumb::Graph graph{
      plumb::node<"numbers">(plumb::stage(numbers)),
      plumb::node<"twice">(plumb::stage(twice), plumb::from<"numbers">),
      plumb::node<"drain">(plumb::stage(drain), plumb::from<"numbers">),
  };
  (void)graph;
}
