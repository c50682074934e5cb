// expect-error: plumb::Generator: co_await is not allowed in a generator stage
// A stage body that awaits.
#include <plumb/plumb.hpp>

#include <coroutine>

plumb::Generator<int> numbers() {
  co_await std::suspend_never{};
  co_yield 1;
}

int main() { (void)numbers(); }
