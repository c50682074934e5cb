// expect-error: plumb::Graph: a node that other nodes take input from must return plumb::Generator<T>
// expect-error: Chars<'c', 'o', 'u', 'n', 't'>
// Node "count" is a sink, but "drain" reads it.
#include <plumb/graph.hpp>

plumb::Generator<int> numbers() {
  co_yield 1;
}
void count(plumb::Stream<int> in) {
  for (int x : in) (void)x;
}
void drain(plumb::Stream<int> in) {
  for (int x : in) (void)x;
}

int main() {
  plumb::Graph graph{
      plumb::node<"numbers">(plumb::stage(numbers)),
      plumb::node<"count">(plumb::stage(count), plumb::from<"numbers">),
      plumb::node<"drain">(plumb::stage(drain), plumb::from<"count">),
  };
  (void)graph;
}
