// expect-error: plumb::Graph: a node with plumb::route or plumb::round_robin sends to a node that its list does not name
// expect-error: Chars<'n', 'u', 'm', 'b', 'e', 'r', 's'>
// expect-error: Chars<'c'>
// The route names "a" and "b", but "c" reads the routing node too.
#include <plumb/graph.hpp>

#include <cstddef>

plumb::Generator<int> numbers() {
  co_yield 1;
}
void drain(plumb::Stream<int> in) {
  for (int x : in) (void)x;
}

int main() {
  plumb::Graph graph{
      plumb::node<"numbers">(plumb::stage(numbers),
                             plumb::route<"a", "b">([](int x) { return static_cast<std::size_t>(x % 2); })),
      plumb::node<"a">(plumb::stage(drain), plumb::from<"numbers">),
      plumb::node<"b">(plumb::stage(drain), plumb::from<"numbers">),
      plumb::node<"c">(plumb::stage(drain), plumb::from<"numbers">),
  };
  (void)graph;
}
