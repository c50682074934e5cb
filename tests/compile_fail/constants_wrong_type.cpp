// expect-error: plumb::stage: the constants do not fit the callable
// expect-error: CheckStage<0, 2,
// A generic lambda source given a constant of the wrong type.
#include <plumb/plumb.hpp>

#include <string>

long total(plumb::Stream<int> in) {
  long sum = 0;
  for (int x : in) sum += x;
  return sum;
}

int main() {
  auto numbers = [](int count) -> plumb::Generator<int> {
    for (int i = 0; i < count; ++i) co_yield i;
  };
  plumb::Pipeline pipeline{plumb::stage(numbers, std::string("three")), plumb::stage(total)};
  (void)pipeline;
}
