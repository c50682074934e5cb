// expect-error: plumb::Generator: co_yield of an lvalue hands over a copy, and T is not copyable; write co_yield std::move.value.
// Yielding a named move-only object without std::move.
#include <plumb/plumb.hpp>

#include <memory>

plumb::Generator<std::unique_ptr<int>> boxes() {
  auto box = std::make_unique<int>(1);
  co_yield box;
}

int main() { (void)boxes(); }
