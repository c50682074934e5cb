// expect-error: plumb::Graph: a join of Inputs nodes must feed a node that takes
// expect-error: Chars<'p', 'a', 'i', 'r', 's'>
// A join of two nodes feeds a node that takes tuples of three.
#include <plumb/graph.hpp>

#include <tuple>

plumb::Generator<int> numbers() {
  co_yield 1;
}
plumb::Generator<int> twice(plumb::Stream<int> in) {
  for (int x : in) co_yield 2 * x;
}
void pairs(plumb::Stream<std::tuple<int, int, int>> in) {
  for (auto& triple : in) (void)triple;
}

int main() {
  plumb::Graph graph{
      plumb::node<"numbers">(plumb::stage(numbers)),
      plumb::node<"a">(plumb::stage(twice), plumb::from<"numbers">),
      plumb::node<"b">(plumb::stage(twice), plumb::from<"numbers">),
      plumb::node<"pairs">(plumb::stage(pairs), plumb::join<"a", "b">),
  };
  (void)graph;
}
