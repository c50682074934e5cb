// expect-error: plumb::Pipeline: needs a source stage and at least one more stage
// A pipeline of one stage has nothing to consume its output.
#include <plumb/plumb.hpp>

plumb::Generator<int> numbers(int count) {
  for (int i = 0; i < count; ++i) co_yield i;
}

int main() {
  plumb::Pipeline pipeline{plumb::stage(numbers, 3)};
  (void)pipeline;
}
