#pragma once
// SPDX-License-Identifier: MIT
// plumb/detail/core/callable_traits.hpp: the declared signature of a callable, where it has one.

#include <cstddef>
#include <type_traits>

namespace plumb::detail {

template <class... Types>
struct TypeList {
  static constexpr std::size_t size = sizeof...(Types);
};

template <class List>
struct Front {
  using type = void;
};
template <class First, class... Rest>
struct Front<TypeList<First, Rest...>> {
  using type = First;
};

// Signature<F>::known is true for functions, function pointers and class types with exactly one
// non-template operator() (lambdas that are not generic, most function objects). Then `params`
// lists the declared parameters. Generic lambdas and overloaded call operators have no single
// signature; the type rules then fall back on std::is_invocable alone.
template <class F, class = void>
struct Signature {
  static constexpr bool known = false;
  using params = TypeList<>;
};

template <class R, class... Params>
struct FunctionSignature {
  static constexpr bool known = true;
  using params = TypeList<Params...>;
};

template <class R, class... Params>
struct Signature<R(Params...)> : FunctionSignature<R, Params...> {};
template <class R, class... Params>
struct Signature<R(Params...) noexcept> : FunctionSignature<R, Params...> {};
template <class R, class... Params>
struct Signature<R (*)(Params...)> : FunctionSignature<R, Params...> {};
template <class R, class... Params>
struct Signature<R (*)(Params...) noexcept> : FunctionSignature<R, Params...> {};

template <class MemberPointer>
struct CallOperatorSignature {
  static constexpr bool known = false;
  using params = TypeList<>;
};
template <class R, class C, class... Params>
struct CallOperatorSignature<R (C::*)(Params...)> : FunctionSignature<R, Params...> {};
template <class R, class C, class... Params>
struct CallOperatorSignature<R (C::*)(Params...) const> : FunctionSignature<R, Params...> {};
template <class R, class C, class... Params>
struct CallOperatorSignature<R (C::*)(Params...) noexcept> : FunctionSignature<R, Params...> {};
template <class R, class C, class... Params>
struct CallOperatorSignature<R (C::*)(Params...) const noexcept>
    : FunctionSignature<R, Params...> {};
template <class R, class C, class... Params>
struct CallOperatorSignature<R (C::*)(Params...)&> : FunctionSignature<R, Params...> {};
template <class R, class C, class... Params>
struct CallOperatorSignature<R (C::*)(Params...) const&> : FunctionSignature<R, Params...> {};
template <class R, class C, class... Params>
struct CallOperatorSignature<R (C::*)(Params...) & noexcept> : FunctionSignature<R, Params...> {};
template <class R, class C, class... Params>
struct CallOperatorSignature<R (C::*)(Params...) const & noexcept>
    : FunctionSignature<R, Params...> {};

template <class F>
struct Signature<F, std::void_t<decltype(&F::operator())>>
    : CallOperatorSignature<decltype(&F::operator())> {};

}  // namespace plumb::detail
