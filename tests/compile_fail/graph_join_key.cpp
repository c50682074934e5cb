// expect-error: plumb::Graph: join_by_key's key function must return the same key type for every joined node
// expect-error: Chars<'p', 'a', 'i', 'r', 's'>
// The key of one input is an int, of the other a string.
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
void pairs(plumb::Stream<std::tuple<int, std::string>> in) {
  for (auto& pair : in) (void)pair;
}
struct Key {
  int operator()(int x) const { return x; }
  std::string operator()(const std::string& s) const { return s; }
};

int main() {
  plumb::Graph graph{
      plumb::node<"numbers">(plumb::stage(numbers)),
      plumb::node<"a">(plumb::stage(twice), plumb::from<"numbers">),
      plumb::node<"b">(plumb::stage(text), plumb::from<"numbers">),
      plumb::node<"pairs">(plumb::stage(pairs), plumb::join_by_key<"a", "b">(Key{})),
  };
  (void)graph;
}
