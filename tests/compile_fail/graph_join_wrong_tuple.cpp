// expect-error: plumb::Graph: a join's node must take plumb::Stream<std::tuple<A, B, \.\.\.>> of what the joined nodes yield
// expect-error: Chars<'p', 'a', 'i', 'r', 's'>
// The join's inputs yield int and std::string, in that order; the node takes them swapped.
#include <plumb/graph.hpp>

#include <string>
#include <tuple>

plumb::Generator<int> numbers() {
  co_yield 1;
}
plumb::Generator<std::string> text(plumb::Stream<int> in) {
  for (int x : in) co_yield std::to_string(x);
}
plumb::Generator<int> twice(plumb::Stream<int> in) {
  for (int x : in) co_yield 2 * x;
}
void pairs(plumb::Stream<std::tuple<std::string, int>> in) {
  for (auto& pair : in) (void)pair;
}

int main() {
  plumb::Graph graph{
      plumb::node<"numbers">(plumb::stage(numbers)),
      plumb::node<"a">(plumb::stage(twice), plumb::from<"numbers">),
      plumb::node<"b">(plumb::stage(text), plumb::from<"numbers">),
      plumb::node<"pairs">(plumb::stage(pairs), plumb::join<"a", "b">),
  };
  (void)graph;
}
