// expect-error: plumb::Graph: two nodes have the same name
// expect-error: check_unique_name<(plumb::detail::)?Chars<'a'>|Node = (plumb::detail::)?Chars<'a'>
// Two nodes named "a".
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
      plumb::node<"a">(plumb::stage(twice), plumb::from<"numbers">),
      plumb::node<"a">(plumb::stage(twice), plumb::from<"numbers">),
      plumb::node<"drain">(plumb::stage(drain), plumb::from<"a">),
  };
  (void)graph;
}
