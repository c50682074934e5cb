// expect-error: plumb::Graph: a node takes input from a name that is not a node of the graph
// expect-error: Chars<'d', 'r', 'a', 'i', 'n'>
// expect-error: Chars<'n', 'u', 'm', 'b', 'e', 'r'>
// A typo in a name.
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
      plumb::node<"drain">(plumb::stage(drain), plumb::from<"number">),
  };
  (void)graph;
}
