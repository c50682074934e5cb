// expect-error: plumb::Graph: a node takes input from a node listed after it \(or from itself\)
// expect-error: Chars<'a'>
// expect-error: Chars<'b'>
// "a" reads "b" and "b" reads "a": a cycle, which the rule that every node comes after its
// inputs cannot express.
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
      plumb::node<"a">(plumb::stage(twice), plumb::from<"numbers", "b">),
      plumb::node<"b">(plumb::stage(twice), plumb::from<"a">),
      plumb::node<"drain">(plumb::stage(drain), plumb::from<"b">),
  };
  (void)graph;
}
