// expect-success
// Every kind of node a graph has, written as the guide shows them: merge, broadcast, join by
// order and by key, route, round robin, a sink with a value.
#include <plumb/graph.hpp>

#include <cstddef>
#include <string>
#include <tuple>

plumb::Generator<int> numbers(int count) {
  for (int i = 0; i < count; ++i) co_yield i;
}
plumb::Generator<int> twice(plumb::Stream<int> in) {
  for (int x : in) co_yield 2 * x;
}
plumb::Generator<std::string> text(plumb::Stream<int> in) {
  for (int x : in) co_yield std::to_string(x);
}
plumb::Generator<int> sizes(plumb::Stream<std::tuple<int, std::string>> in) {
  for (auto& [x, s] : in) co_yield x + static_cast<int>(s.size());
}
long total(plumb::Stream<int> in) {
  long sum = 0;
  for (int x : in) sum += x;
  return sum;
}
struct Key {
  int operator()(int x) const { return x; }
  int operator()(const std::string& s) const { return std::stoi(s); }
};

int main() {
  plumb::Graph graph{
      plumb::node<"numbers">(plumb::stage(numbers, 10),
                             plumb::route<"even", "odd">([](int x) { return static_cast<std::size_t>(x % 2); })),
      plumb::node<"more">(plumb::stage(numbers, 5), plumb::round_robin<"even", "odd">),
      plumb::node<"even">(plumb::stage(twice), plumb::from<"numbers", "more">),
      plumb::node<"odd">(plumb::stage(twice).workers(2), plumb::from<"numbers", "more">),
      plumb::node<"text">(plumb::stage(text), plumb::from<"even">),
      plumb::node<"by_order">(plumb::stage(sizes), plumb::join<"even", "text">.window(64)),
      plumb::node<"as_text">(plumb::stage(text), plumb::from<"odd">),
      plumb::node<"by_key">(plumb::stage(sizes), plumb::join_by_key<"odd", "as_text">(Key{})),
      plumb::node<"total">(plumb::stage(total), plumb::from<"by_order", "by_key">),
  };
  static_assert(std::is_same_v<decltype(graph)::result_type, long>);
  static_assert(!decltype(graph)::yields);
  if (graph.run() < 0) return 1;

  // A graph with an output: read with stream().
  plumb::Graph streamed{
      plumb::node<"numbers">(plumb::stage(numbers, 10)),
      plumb::node<"even">(plumb::stage(twice), plumb::from<"numbers">),
      plumb::node<"text">(plumb::stage(text), plumb::from<"even">),
  };
  static_assert(std::is_same_v<decltype(streamed)::value_type, std::string>);
  std::size_t length = 0;
  for (const std::string& s : streamed.stream(plumb::Mode::process)) length += s.size();
  return length > 0 ? 0 : 1;
}
