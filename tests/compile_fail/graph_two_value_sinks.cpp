// expect-error: plumb::Graph: run\(\) returns one value, but several sinks return one
// Two sinks return a value; run() could return only one.
#include <plumb/graph.hpp>

plumb::Generator<int> numbers() {
  co_yield 1;
}
long total(plumb::Stream<int> in) {
  long sum = 0;
  for (int x : in) sum += x;
  return sum;
}

int main() {
  plumb::Graph graph{
      plumb::node<"numbers">(plumb::stage(numbers)),
      plumb::node<"a">(plumb::stage(total), plumb::from<"numbers">),
      plumb::node<"b">(plumb::stage(total), plumb::from<"numbers">),
  };
  (void)graph;
}
