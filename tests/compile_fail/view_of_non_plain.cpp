// expect-error: plumb::View<std::vector<U>>: U must be a plain value
// A View of a vector of strings: the elements cannot be read in place.
#include <plumb/plumb.hpp>

#include <string>
#include <vector>

plumb::Generator<std::vector<std::string>> lists() {
  std::vector<std::string> list{"a"};
  co_yield std::move(list);
}
long count(plumb::Stream<plumb::View<std::vector<std::string>>> in) {
  long n = 0;
  for (const auto& list : in) n += static_cast<long>(list.size());
  return n;
}

int main() {
  plumb::Pipeline pipeline{plumb::stage(lists), plumb::stage(count)};
  (void)pipeline;
}
