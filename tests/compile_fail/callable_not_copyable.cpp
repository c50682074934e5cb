// expect-error: plumb::stage: the callable must be copy-constructible, because every worker gets its own copy
// expect-error: callable_is_copyable<plumb::detail::at_stage<1>,
// A sink lambda that owns a move-only resource.
#include <plumb/plumb.hpp>

#include <memory>

plumb::Generator<int> numbers(int count) {
  for (int i = 0; i < count; ++i) co_yield i;
}

int main() {
  auto total = [offset = std::make_unique<long>(1)](plumb::Stream<int> in) {
    long sum = *offset;
    for (int x : in) sum += x;
    return sum;
  };
  plumb::Pipeline pipeline{plumb::stage(numbers, 3), plumb::stage(std::move(total))};
  (void)pipeline;
}
