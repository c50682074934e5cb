// expect-error: plumb::Graph: plumb::route's function must be callable with a const reference to what the node yields
// expect-error: Chars<'n', 'u', 'm', 'b', 'e', 'r', 's'>
// The route's function takes a string; the node yields ints.
#include <plumb/graph.hpp>

#include <cstddef>
#include <string>

plumb::Generator<int> numbers() {
  co_yield 1;
}
void drain(plumb::Stream<int> in) {
  for (int x : in) (void)x;
}

int main() {
  plumb::Graph graph{
      plumb::node<"numbers">(plumb::stage(numbers),
                             plumb::route<"a", "b">([](const std::string& text) { return text.size(); })),
      plumb::node<"a">(plumb::stage(drain), plumb::from<"numbers">),
      plumb::node<"b">(plumb::stage(drain), plumb::from<"numbers">),
  };
  (void)graph;
}
