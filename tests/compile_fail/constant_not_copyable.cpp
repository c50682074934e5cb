// expect-error: plumb::stage: every constant must be copy-constructible, because every worker gets its own copy
// expect-error: constant_is_copyable<plumb::detail::at_stage<0>, plumb::detail::constant<0>,
// A move-only constant.
#include <plumb/plumb.hpp>

#include <memory>

plumb::Generator<int> numbers(const std::unique_ptr<int>& count) {
  for (int i = 0; i < *count; ++i) co_yield i;
}
long total(plumb::Stream<int> in) {
  long sum = 0;
  for (int x : in) sum += x;
  return sum;
}

int main() {
  plumb::Pipeline pipeline{plumb::stage(numbers, std::make_unique<int>(3)), plumb::stage(total)};
  (void)pipeline;
}
