// expect-error: plumb::Graph: an edge's types differ
// expect-error: Chars<'w', 'o', 'r', 'd', 's'>
// expect-error: Chars<'t', 'o', 't', 'a', 'l'>
// expect-error: std::(__cxx11::)?basic_string<char>(, |; Consumed = )int
// Node "words" yields strings, node "total" reads ints.
#include <plumb/graph.hpp>

#include <string>

plumb::Generator<std::string> words() {
  co_yield std::string("plumb");
}
long total(plumb::Stream<int> in) {
  long sum = 0;
  for (int x : in) sum += x;
  return sum;
}

int main() {
  plumb::Graph graph{
      plumb::node<"words">(plumb::stage(words)),
      plumb::node<"total">(plumb::stage(total), plumb::from<"words">),
  };
  (void)graph;
}
