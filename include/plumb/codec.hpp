#pragma once
// SPDX-License-Identifier: MIT
// plumb/codec.hpp: what may cross a process boundary and how: the wire format, Writer and
// Reader, and the Codec<T> customization point.

#include <plumb/error.hpp>

#include <boost/pfr/tuple_size.hpp>

#include <algorithm>
#include <array>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <variant>
#include <vector>

namespace plumb {

class Writer;
class Reader;

/// The customization point: specialize `plumb::Codec<T>` to let a type of yours cross a process
/// boundary. Both members are required:
///
/// ```cpp
/// template <>
/// struct plumb::Codec<Image> {
///   static void encode(const Image& image, plumb::Writer& out) {
///     out.write(image.width);
///     out.write(image.height);
///     out.write(image.pixels);  // any serializable member: std::vector<std::uint8_t>, ...
///   }
///   static Image decode(plumb::Reader& in) {
///     Image image;
///     image.width = in.read<int>();
///     image.height = in.read<int>();
///     image.pixels = in.read<std::vector<std::uint8_t>>();
///     return image;
///   }
/// };
/// ```
///
/// `decode` must read exactly what `encode` wrote, in the same order. A specialization takes
/// precedence over the built-in rules, also where T is an element or a member of another type.
/// Types without one are serializable when they are: arithmetic or enum types; `std::string`;
/// `std::vector`, `std::array`, `std::optional`, `std::pair`, `std::tuple`, `std::variant`,
/// `std::map`, `std::unordered_map`, `std::set`, `std::unordered_set` of serializable types;
/// trivially copyable structs free of pointers, with C arrays, base classes and bit-fields
/// (copied as bytes); other aggregates (plain structs) whose members are serializable (field by
/// field: no C-array member and no base class there); other trivially copyable
/// types (copied as bytes). Pointers, references and views (`std::span`, `std::string_view`)
/// cannot cross, nor can what contains them.
///
/// Decoding checks every length and count against the bytes left in the message before it
/// allocates: bad bytes give a DecodeError, never a huge allocation.
template <class T>
struct Codec;

namespace detail {

template <class T>
concept HasUserCodec = requires(const T& value, Writer& out, Reader& in) {
  Codec<T>::encode(value, out);
  { Codec<T>::decode(in) } -> std::same_as<T>;
};

template <class T>
struct IsStdArray : std::false_type {};
template <class T, std::size_t N>
struct IsStdArray<std::array<T, N>> : std::true_type {};

template <class T>
struct SerialTraits;  // defined below: what the built-in rules say about T

}  // namespace detail

/// True if `T` can cross a process boundary (a Codec<T> specialization or the built-in rules).
template <class T>
inline constexpr bool is_serializable_v =
    detail::HasUserCodec<T> || detail::SerialTraits<std::remove_cv_t<T>>::serializable;

/// Writes a message into a slot, or only counts its size.
///
/// Every message takes two passes, size then bytes, so that an oversized message is rejected
/// before a byte is written.
///
/// Thread or process affinity: one thread.
class Writer {
 public:
  /// A Writer that only counts bytes.
  Writer() noexcept = default;
  /// A Writer into `data` (its size must be at least the counted size).
  explicit Writer(std::span<std::byte> data) noexcept : data_(data.data()), capacity_(data.size()) {}

  /// Appends the encoding of `value`.
  template <class T>
  void write(const T& value);

  /// Appends `size` raw bytes.
  ///
  /// Throws: plumb::Error when writing past the span given at construction (a Codec whose
  /// encode writes more than it did while its size was counted).
  void write_bytes(const void* bytes, std::size_t size) {
    if (data_ != nullptr && size != 0) {
      check_room(size);
      std::memcpy(data_ + offset_, bytes, size);
    }
    offset_ += size;
  }

  /// Pads with zeros up to a multiple of `alignment` from the start of the message (the slot
  /// start is 64-byte aligned), so that a reader can view the bytes that follow in place.
  void align(std::size_t alignment) {
    const std::size_t padded = (offset_ + alignment - 1) / alignment * alignment;
    if (data_ != nullptr && padded != offset_) {
      check_room(padded - offset_);
      std::memset(data_ + offset_, 0, padded - offset_);
    }
    offset_ = padded;
  }

  /// Bytes written (or counted) so far.
  [[nodiscard]] std::size_t size() const noexcept { return offset_; }

 private:
  void check_room(std::size_t size) const {
    if (size > capacity_ - offset_) {
      throw Error("plumb.encode_error: a message grew while it was written (a Codec's encode "
                  "must write the same bytes every time it is called for the same value)");
    }
  }

  std::byte* data_ = nullptr;
  std::size_t capacity_ = 0;
  std::size_t offset_ = 0;
};

/// Thrown by a Reader when a message ends before what is being read (a Codec whose decode does
/// not match its encode).
class DecodeError : public Error {
 public:
  using Error::Error;
};

/// Reads a message written by Writer.
class Reader {
 public:
  /// A Reader of the message `data`, from its first byte.
  explicit Reader(std::span<const std::byte> data) noexcept : data_(data) {}

  /// Reads one value of type T.
  template <class T>
  [[nodiscard]] T read();

  /// Copies the next `size` bytes to `bytes`.
  void read_bytes(void* bytes, std::size_t size) {
    if (size != 0) std::memcpy(bytes, take(size).data(), size);
  }

  /// The next `size` bytes, in place. Valid as long as the message is.
  [[nodiscard]] std::span<const std::byte> take(std::size_t size) {
    if (size > data_.size() - offset_) {
      throw DecodeError("plumb.decode_error: a message ended before its last field; a Codec's "
                        "decode must read exactly what its encode wrote");
    }
    const std::span<const std::byte> bytes = data_.subspan(offset_, size);
    offset_ += size;
    return bytes;
  }

  /// Skips the padding Writer::align wrote.
  void align(std::size_t alignment) {
    const std::size_t padded = (offset_ + alignment - 1) / alignment * alignment;
    (void)take(padded - offset_);
  }

  /// Bytes not read yet.
  [[nodiscard]] std::size_t remaining() const noexcept { return data_.size() - offset_; }

 private:
  std::span<const std::byte> data_;
  std::size_t offset_ = 0;
};

namespace detail {

// --- Which types the built-in rules accept --------------------------------------------------

template <class T>
struct IsBorrowing : std::false_type {};
template <class Char, class Traits>
struct IsBorrowing<std::basic_string_view<Char, Traits>> : std::true_type {};
template <class T, std::size_t Extent>
struct IsBorrowing<std::span<T, Extent>> : std::true_type {};

// Pointers and views are trivially copyable, but what they point to stays behind.
template <class T>
inline constexpr bool kForbidden =
    std::is_pointer_v<T> || std::is_member_pointer_v<T> || std::is_reference_v<T> ||
    std::is_same_v<T, std::nullptr_t> || IsBorrowing<T>::value;

template <class T>
inline constexpr bool kPlainAggregate =
    std::is_class_v<T> && std::is_aggregate_v<T> && !IsStdArray<T>::value && !std::is_empty_v<T>;

// --- Looking inside a struct without a compile error -----------------------------------------
// A struct is taken apart through structured bindings (as Boost.PFR does), which do not compile
// (a hard error, not a substitution failure) for a struct with a C-array member or a base class;
// PFR's own field access also fails on bit-fields. The probes below only ask whether an
// aggregate initialization `T{e, e, ...}` is well-formed, which is a substitution failure when
// it is not: every question has an answer, in every mode, and a struct is taken apart only
// where that compiles.

// Converts to every type that Accept::test accepts, and to nothing else.
template <class Accept>
struct Probe {
  template <class Type>
    requires(Accept::template test<Type>)
  operator Type() const noexcept;
};

// Converts to every type; the conversion is noexcept exactly when Accept::test accepts the
// type, so `noexcept(T{c, c, ...})` says whether every member passed. (A probe that refused a
// member would not do: where a struct member cannot be initialized from it, brace elision
// initializes that struct's first member from it instead, and Clang 14 does so even for a
// deleted or ambiguous conversion.) Only C arrays are entered, since nothing converts to an
// array: each element is one initializer. Declared only: the probes are unevaluated.
template <class Accept>
struct Checker {
  template <class Type>
  operator Type() const noexcept(Accept::template test<Type>);
};

template <std::size_t, class Element>
using Nth = Element;

// The probes initialize nested arrays without their braces, on purpose (as Boost.PFR does).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-braces"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
template <class T, class Element, std::size_t... I>
constexpr bool initializes(std::index_sequence<I...>) {
  return requires { T{Nth<I, Element>{}...}; };
}
template <class T, class Element, std::size_t... I>
constexpr bool initializes_noexcept(std::index_sequence<I...>) {
  return noexcept(T{Nth<I, Element>{}...});
}
template <class T, class Element, std::size_t... I>
constexpr bool initializes_braced(std::index_sequence<I...>) {
  return requires { T{{Nth<I, Element>{}}...}; };
}
#pragma GCC diagnostic pop

// True if `T{e1, ..., eN}` compiles for N Elements (base classes first, then the members, a
// C array's elements one by one).
template <class T, class Element, std::size_t N>
inline constexpr bool kInitializes = initializes<T, Element>(std::make_index_sequence<N>{});
// True if `T{{e1}, ..., {eN}}` compiles: the braces keep a C array to one initializer.
template <class T, class Element, std::size_t N>
inline constexpr bool kInitializesBraced =
    initializes_braced<T, Element>(std::make_index_sequence<N>{});

inline constexpr std::size_t kUnknownCount = static_cast<std::size_t>(-1);

// The largest N for which kInitializes holds, between Low (holds) and High (does not).
template <class T, class Element, std::size_t Low, std::size_t High>
constexpr std::size_t bisect_initializers() {
  if constexpr (High - Low <= 1) {
    return Low;
  } else if constexpr (constexpr std::size_t kMiddle = Low + (High - Low) / 2;
                       kInitializes<T, Element, kMiddle>) {
    return bisect_initializers<T, Element, kMiddle, High>();
  } else {
    return bisect_initializers<T, Element, Low, kMiddle>();
  }
}
template <class T, class Element, std::size_t Known>
constexpr std::size_t widen_initializers() {
  // Every initializer sets at least one bit of T (a bit-field may be one bit wide), so this
  // many never compile: the search ends.
  constexpr std::size_t kImpossible = sizeof(T) * CHAR_BIT + 1;
  constexpr std::size_t kNext = std::min(2 * Known, kImpossible);
  if constexpr (kInitializes<T, Element, kNext>) {
    return widen_initializers<T, Element, kNext>();
  } else {
    return bisect_initializers<T, Element, Known, kNext>();
  }
}

// How many Elements `T{e1, ..., eN}` takes at most, or kUnknownCount. The search doubles, then
// bisects: fewer initializers than members compile whenever the members left out can be
// value-initialized (a member without a default constructor makes the count unknown).
template <class T, class Element>
inline constexpr std::size_t kInitializerCount = [] {
  if constexpr (kInitializes<T, Element, 1>) {
    return widen_initializers<T, Element, 1>();
  } else {
    return kUnknownCount;
  }
}();

struct AnyType {
  template <class U>
  static constexpr bool test = true;
};

// Whether a user Codec inside a struct counts: it does for the wire format; it does not for
// View<std::vector<U>>'s rule that U is a plain value in memory.
enum class Codecs { honoured, ignored };

template <class T, Codecs Rule>
inline constexpr bool kOwnCodec = Rule == Codecs::honoured && HasUserCodec<T>;

// The members of a trivially copyable struct T (its bases, its members, a C array's elements),
// asked through probes. A member that is a reference cannot be told from its value by a probe,
// so only copy-assignable structs are asked (a reference member deletes the copy assignment).
template <class T>
struct Members {
  static constexpr std::size_t count = kInitializerCount<T, Checker<AnyType>>;
  static constexpr bool known = std::is_trivially_copyable_v<T> && std::is_copy_assignable_v<T> &&
                                count != kUnknownCount;
  // True if Accept::test holds for every member (false if the members are unknown).
  template <class Accept>
  static constexpr bool all() {
    if constexpr (known) {
      return initializes_noexcept<T, Checker<Accept>>(std::make_index_sequence<count>{});
    } else {
      return false;
    }
  }
};

template <class T, Codecs Rule>
struct PlainRule;

template <Codecs Rule>
struct IsPlain {
  template <class U>
  static constexpr bool test = PlainRule<U, Rule>::value;
};

// Trivially copyable and free of pointers all the way down: copied as one block of bytes (bases,
// C arrays and bit-fields included). With Codecs::ignored: a plain value in memory, whatever its
// Codecs say about the wire.
template <class T, Codecs Rule>
struct PlainRule {
  static constexpr bool value = [] {
    if constexpr (kOwnCodec<T, Rule>) {
      return false;
    } else if constexpr (std::is_arithmetic_v<T> || std::is_enum_v<T>) {
      return true;
    } else if constexpr (IsStdArray<T>::value) {
      return PlainRule<typename T::value_type, Rule>::value;
    } else if constexpr (kPlainAggregate<T>) {
      return Members<T>::template all<IsPlain<Rule>>();
    } else {
      return false;
    }
  }();
};

template <class T, Codecs Rule = Codecs::honoured>
inline constexpr bool kPlain = PlainRule<T, Rule>::value;

// Copied as bytes (the wire rule): plain, and no Codec inside.
template <class T>
inline constexpr bool kBlock = kPlain<T, Codecs::honoured>;

// Whether a member of T, at any depth, is a pointer or a view (Inside::pointer) or has a Codec
// of its own (Inside::codec). Classes with private members count as one member: they cross as
// bytes.
enum class Inside { pointer, codec };

template <class T, Inside What>
struct NothingInside {
  static constexpr bool value = [] {
    if constexpr (What == Inside::pointer ? kForbidden<T> : HasUserCodec<T>) {
      return false;
    } else if constexpr (IsStdArray<T>::value) {
      return NothingInside<typename T::value_type, What>::value;
    } else if constexpr (kPlainAggregate<T>) {
      return !Members<T>::known || Members<T>::template all<NothingInside>();
    } else {
      return true;
    }
  }();
  template <class U>
  static constexpr bool test = NothingInside<U, What>::value;
};
using NoPointer = NothingInside<void, Inside::pointer>;
using NoCodec = NothingInside<void, Inside::codec>;

// --- Taking a struct apart field by field ---------------------------------------------------
// Boost.PFR counts the fields (tuple_size_v); they are read here through structured bindings,
// like PFR does, but handed on as the bindings themselves: PFR's tuple of references cannot
// refer to a bit-field, a `const auto&` parameter binds to a copy of it.

inline constexpr std::size_t kMaxFields = 100;  // as Boost.PFR 1.81

// Fields<N>::types(value): std::type_identity of a std::tuple of the declared types of the N
// fields; Fields<N>::apply(value, visit): visit(field0, ..., fieldN-1).
template <std::size_t N>
struct Fields {
  static_assert(N <= kMaxFields,
                "plumb::Codec: a struct with more than 100 fields cannot cross field by field; "
                "specialize plumb::Codec<T> for it");
  template <class T>
  static std::type_identity<std::tuple<>> types(T&);
  template <class T, class Visit>
  static void apply(T&, Visit&&) {}
};

// The 100 specializations below come from plain macros: Boost.Preprocessor's repetition made
// the same text cost every translation unit about 0.4 s of preprocessing (GCC 12).
// PLUMB_DETAIL_UNITS_u(M, digit): M(digit0), ..., M(digit(u-1)), for a tens digit (empty for 0-9).
#define PLUMB_DETAIL_UNITS_1(M, digit) M(digit##0)
#define PLUMB_DETAIL_UNITS_2(M, digit) PLUMB_DETAIL_UNITS_1(M, digit), M(digit##1)
#define PLUMB_DETAIL_UNITS_3(M, digit) PLUMB_DETAIL_UNITS_2(M, digit), M(digit##2)
#define PLUMB_DETAIL_UNITS_4(M, digit) PLUMB_DETAIL_UNITS_3(M, digit), M(digit##3)
#define PLUMB_DETAIL_UNITS_5(M, digit) PLUMB_DETAIL_UNITS_4(M, digit), M(digit##4)
#define PLUMB_DETAIL_UNITS_6(M, digit) PLUMB_DETAIL_UNITS_5(M, digit), M(digit##5)
#define PLUMB_DETAIL_UNITS_7(M, digit) PLUMB_DETAIL_UNITS_6(M, digit), M(digit##6)
#define PLUMB_DETAIL_UNITS_8(M, digit) PLUMB_DETAIL_UNITS_7(M, digit), M(digit##7)
#define PLUMB_DETAIL_UNITS_9(M, digit) PLUMB_DETAIL_UNITS_8(M, digit), M(digit##8)
#define PLUMB_DETAIL_UNITS_10(M, digit) PLUMB_DETAIL_UNITS_9(M, digit), M(digit##9)
// PLUMB_DETAIL_TENS_t(M): M(0), ..., M(10t - 1) and a comma (nothing for t = 0).
#define PLUMB_DETAIL_TENS_0(M)
#define PLUMB_DETAIL_TENS_1(M) PLUMB_DETAIL_UNITS_10(M, ),
#define PLUMB_DETAIL_TENS_2(M) PLUMB_DETAIL_TENS_1(M) PLUMB_DETAIL_UNITS_10(M, 1),
#define PLUMB_DETAIL_TENS_3(M) PLUMB_DETAIL_TENS_2(M) PLUMB_DETAIL_UNITS_10(M, 2),
#define PLUMB_DETAIL_TENS_4(M) PLUMB_DETAIL_TENS_3(M) PLUMB_DETAIL_UNITS_10(M, 3),
#define PLUMB_DETAIL_TENS_5(M) PLUMB_DETAIL_TENS_4(M) PLUMB_DETAIL_UNITS_10(M, 4),
#define PLUMB_DETAIL_TENS_6(M) PLUMB_DETAIL_TENS_5(M) PLUMB_DETAIL_UNITS_10(M, 5),
#define PLUMB_DETAIL_TENS_7(M) PLUMB_DETAIL_TENS_6(M) PLUMB_DETAIL_UNITS_10(M, 6),
#define PLUMB_DETAIL_TENS_8(M) PLUMB_DETAIL_TENS_7(M) PLUMB_DETAIL_UNITS_10(M, 7),
#define PLUMB_DETAIL_TENS_9(M) PLUMB_DETAIL_TENS_8(M) PLUMB_DETAIL_UNITS_10(M, 8),
// M(0), ..., M(10t + u - 1); `digit` is t, or empty when t is 0.
#define PLUMB_DETAIL_EACH(M, t, digit, u) PLUMB_DETAIL_TENS_##t(M) PLUMB_DETAIL_UNITS_##u(M, digit)
#define PLUMB_DETAIL_FIELD(index) field##index
#define PLUMB_DETAIL_FIELD_TYPE(index) decltype(field##index)
// Fields<10t + u>.
#define PLUMB_DETAIL_FIELDS(t, digit, u)                                                  \
  template <>                                                                             \
  struct Fields<t * 10 + u> {                                                             \
    template <class T>                                                                    \
    static auto types(T& value) {                                                         \
      [[maybe_unused]] auto& [PLUMB_DETAIL_EACH(PLUMB_DETAIL_FIELD, t, digit, u)] = value; \
      return std::type_identity<                                                          \
          std::tuple<PLUMB_DETAIL_EACH(PLUMB_DETAIL_FIELD_TYPE, t, digit, u)>>{};         \
    }                                                                                     \
    template <class T, class Visit>                                                       \
    static void apply(T& value, Visit&& visit) {                                          \
      auto& [PLUMB_DETAIL_EACH(PLUMB_DETAIL_FIELD, t, digit, u)] = value;                 \
      visit(PLUMB_DETAIL_EACH(PLUMB_DETAIL_FIELD, t, digit, u));                          \
    }                                                                                     \
  };
// Fields<10t + 1> to Fields<10t + 10>.
#define PLUMB_DETAIL_FIELDS_TENS(t, digit)                                                     \
  PLUMB_DETAIL_FIELDS(t, digit, 1) PLUMB_DETAIL_FIELDS(t, digit, 2)                            \
  PLUMB_DETAIL_FIELDS(t, digit, 3) PLUMB_DETAIL_FIELDS(t, digit, 4)                            \
  PLUMB_DETAIL_FIELDS(t, digit, 5) PLUMB_DETAIL_FIELDS(t, digit, 6)                            \
  PLUMB_DETAIL_FIELDS(t, digit, 7) PLUMB_DETAIL_FIELDS(t, digit, 8)                            \
  PLUMB_DETAIL_FIELDS(t, digit, 9) PLUMB_DETAIL_FIELDS(t, digit, 10)
PLUMB_DETAIL_FIELDS_TENS(0, )
PLUMB_DETAIL_FIELDS_TENS(1, 1)
PLUMB_DETAIL_FIELDS_TENS(2, 2)
PLUMB_DETAIL_FIELDS_TENS(3, 3)
PLUMB_DETAIL_FIELDS_TENS(4, 4)
PLUMB_DETAIL_FIELDS_TENS(5, 5)
PLUMB_DETAIL_FIELDS_TENS(6, 6)
PLUMB_DETAIL_FIELDS_TENS(7, 7)
PLUMB_DETAIL_FIELDS_TENS(8, 8)
PLUMB_DETAIL_FIELDS_TENS(9, 9)
static_assert(kMaxFields == 100, "plumb: the specializations above stop at Fields<100>");
#undef PLUMB_DETAIL_FIELDS_TENS
#undef PLUMB_DETAIL_FIELDS
#undef PLUMB_DETAIL_FIELD_TYPE
#undef PLUMB_DETAIL_FIELD
#undef PLUMB_DETAIL_EACH
#undef PLUMB_DETAIL_TENS_9
#undef PLUMB_DETAIL_TENS_8
#undef PLUMB_DETAIL_TENS_7
#undef PLUMB_DETAIL_TENS_6
#undef PLUMB_DETAIL_TENS_5
#undef PLUMB_DETAIL_TENS_4
#undef PLUMB_DETAIL_TENS_3
#undef PLUMB_DETAIL_TENS_2
#undef PLUMB_DETAIL_TENS_1
#undef PLUMB_DETAIL_TENS_0
#undef PLUMB_DETAIL_UNITS_10
#undef PLUMB_DETAIL_UNITS_9
#undef PLUMB_DETAIL_UNITS_8
#undef PLUMB_DETAIL_UNITS_7
#undef PLUMB_DETAIL_UNITS_6
#undef PLUMB_DETAIL_UNITS_5
#undef PLUMB_DETAIL_UNITS_4
#undef PLUMB_DETAIL_UNITS_3
#undef PLUMB_DETAIL_UNITS_2
#undef PLUMB_DETAIL_UNITS_1

template <class Tuple>
struct WithoutCv;
template <class... Ts>
struct WithoutCv<std::tuple<Ts...>> {
  using type = std::tuple<std::remove_cv_t<Ts>...>;
};

// The fields of struct T, as a std::tuple of their types (only for a decomposable T).
template <class T>
struct AggregateFields {
  using FieldsOfT = Fields<boost::pfr::tuple_size_v<T>>;
  using type = typename WithoutCv<
      typename decltype(FieldsOfT::types(std::declval<T&>()))::type>::type;
};

template <class T, class Visit>
void for_each_field(const T& value, Visit&& visit) {
  Fields<boost::pfr::tuple_size_v<T>>::apply(value, visit);
}

// --- Which structs can be taken apart ---------------------------------------------------------

// A struct that structured bindings can take apart: no base class with members (a hard error,
// and PFR's count static_asserts) and no C-array member (PFR counts its elements, more names than
// the struct has members: a hard error), detected before any binding is instantiated.
// Bit-fields are fine: for_each_field above hands them on by value.
template <class T>
struct IsBaseOf {
  template <class U>
  static constexpr bool test = std::is_base_of_v<U, T> && !std::is_same_v<U, T>;
};
template <class Tuple>
struct AnyArray;
template <class... Ts>
struct AnyArray<std::tuple<Ts...>> : std::bool_constant<(std::is_array_v<Ts> || ...)> {};

template <class T>
inline constexpr bool kDecomposable = [] {
  // Bases come first in aggregate initialization: a probe that converts only to T's bases
  // initializes T exactly when it has one (brace elision may enter a first member that is a
  // struct or an array, but nothing in there is a base of T).
  if constexpr (kInitializes<T, Probe<IsBaseOf<T>>, 1>) {
    return false;
  } else {
    // PFR counts initializers with brace elision, so a C array counts once per element; with
    // one initializer per member, that many do not compile.
    constexpr std::size_t kCount = boost::pfr::tuple_size_v<T>;
    if constexpr (!kInitializesBraced<T, Probe<AnyType>, kCount>) {
      return false;
    } else {
      return !AnyArray<typename AggregateFields<T>::type>::value;  // T x[1] counts once
    }
  }
}();

template <class Tuple>
struct AllSerializable;
template <class... Ts>
struct AllSerializable<std::tuple<Ts...>> : std::bool_constant<(is_serializable_v<Ts> && ...)> {};

// How a struct that is not a plain block crosses: field by field, as the bytes of
// a trivially copyable object, or not at all.
enum class AggregateWire { fields, bytes, none };

template <class T>
constexpr AggregateWire fields_if_decomposable() {
  if constexpr (kDecomposable<T>) {
    return AllSerializable<typename AggregateFields<T>::type>::value ? AggregateWire::fields
                                                                      : AggregateWire::none;
  } else {
    return AggregateWire::none;
  }
}

template <class T>
inline constexpr AggregateWire kAggregateWire = [] {
  if constexpr (Members<T>::known) {  // trivially copyable
    if constexpr (!Members<T>::template all<NoPointer>()) {
      return AggregateWire::none;  // a pointer or a view inside
    } else if constexpr (Members<T>::template all<NoCodec>()) {
      // Unions, empty structs or classes with private members inside: the whole as bytes,
      // without taking it apart (which fails on C arrays and base classes).
      return AggregateWire::bytes;
    } else {
      // A member with a Codec of its own: field by field. Inside a C array or a base class,
      // only a Codec<T> can say how (bytes would ignore the member's Codec).
      return fields_if_decomposable<T>();
    }
  } else if constexpr (kDecomposable<T>) {
    return fields_if_decomposable<T>();  // not trivially copyable, or const or reference members
  } else if constexpr (std::is_trivially_copyable_v<T> && std::is_copy_assignable_v<T>) {
    // Trivially copyable, but a member without a default constructor hid the members: as
    // bytes, as the guide promises for trivially copyable types.
    return AggregateWire::bytes;
  } else {
    // A C array or a base class, and not trivially copyable: only a Codec<T> can say how.
    return AggregateWire::none;
  }
}();

// Structs written field by field.
template <class T>
inline constexpr bool kFieldByField = [] {
  if constexpr (kPlainAggregate<T> && !kBlock<T>) {
    return kAggregateWire<T> == AggregateWire::fields;
  } else {
    return false;
  }
}();

// Bytes of every message of type T when all values encode to the same size (plain blocks,
// copied as bytes), else 0. A link of such messages needs slots of exactly this size, however
// large max_message_size is: smaller slots mean fewer pages and cache lines per packet.
template <class T>
inline constexpr std::size_t kFixedEncodedSize = [] {
  if constexpr (kBlock<T>) {
    return sizeof(T);
  } else {
    return std::size_t{0};
  }
}();

template <class T>
struct SerialTraits {
  static constexpr bool serializable = [] {
    if constexpr (kForbidden<T>) {
      return false;
    } else if constexpr (kBlock<T>) {
      return true;
    } else if constexpr (kPlainAggregate<T>) {
      return kAggregateWire<T> != AggregateWire::none;
    } else {
      // Other trivially copyable types (classes with private members, say) cross as bytes.
      return std::is_trivially_copyable_v<T> && !std::is_empty_v<T>;
    }
  }();
};

template <class Char, class Traits, class Allocator>
struct SerialTraits<std::basic_string<Char, Traits, Allocator>> {
  static constexpr bool serializable = std::is_same_v<Char, char> || std::is_same_v<Char, char8_t> ||
                                       std::is_same_v<Char, char16_t> || std::is_same_v<Char, char32_t> ||
                                       std::is_same_v<Char, wchar_t>;
};
template <class T, class Allocator>
struct SerialTraits<std::vector<T, Allocator>> {
  static constexpr bool serializable = is_serializable_v<T>;
};
template <class T, std::size_t N>
struct SerialTraits<std::array<T, N>> {
  static constexpr bool serializable = is_serializable_v<T>;
};
template <class T>
struct SerialTraits<std::optional<T>> {
  static constexpr bool serializable = is_serializable_v<T>;
};
template <class First, class Second>
struct SerialTraits<std::pair<First, Second>> {
  static constexpr bool serializable = is_serializable_v<First> && is_serializable_v<Second>;
};
template <class... Ts>
struct SerialTraits<std::tuple<Ts...>> {
  static constexpr bool serializable = (is_serializable_v<Ts> && ...);
};
template <class... Ts>
struct SerialTraits<std::variant<Ts...>> {
  static constexpr bool serializable = (is_serializable_v<Ts> && ...);
};
template <class Key, class Value, class Compare, class Allocator>
struct SerialTraits<std::map<Key, Value, Compare, Allocator>> {
  static constexpr bool serializable = is_serializable_v<Key> && is_serializable_v<Value>;
};
template <class Key, class Value, class Hash, class Equal, class Allocator>
struct SerialTraits<std::unordered_map<Key, Value, Hash, Equal, Allocator>> {
  static constexpr bool serializable = is_serializable_v<Key> && is_serializable_v<Value>;
};
template <class Key, class Compare, class Allocator>
struct SerialTraits<std::set<Key, Compare, Allocator>> {
  static constexpr bool serializable = is_serializable_v<Key>;
};
template <class Key, class Hash, class Equal, class Allocator>
struct SerialTraits<std::unordered_set<Key, Hash, Equal, Allocator>> {
  static constexpr bool serializable = is_serializable_v<Key>;
};

// --- The wire format -------------------------------------------------------------------------
// Everything is written in host byte order (both ends are forks of one process). Lengths and
// counts are 64-bit. Bulk arrays of blocks start at a multiple of kBulkAlignment (64 bytes)
// so that a reader can view them in place.

inline constexpr std::size_t kBulkAlignment = 64;

template <class T>
struct IsVector : std::false_type {};
template <class T, class Allocator>
struct IsVector<std::vector<T, Allocator>> : std::true_type {};
template <class T>
struct IsString : std::false_type {};
template <class Char, class Traits, class Allocator>
struct IsString<std::basic_string<Char, Traits, Allocator>> : std::true_type {};
template <class T>
struct IsOptional : std::false_type {};
template <class T>
struct IsOptional<std::optional<T>> : std::true_type {};
template <class T>
struct IsTupleLike : std::false_type {};
template <class... Ts>
struct IsTupleLike<std::tuple<Ts...>> : std::true_type {};
template <class First, class Second>
struct IsTupleLike<std::pair<First, Second>> : std::true_type {};
template <class T>
struct IsVariant : std::false_type {};
template <class... Ts>
struct IsVariant<std::variant<Ts...>> : std::true_type {};

template <class T>
struct IsKeyed : std::false_type {};  // maps and sets
template <class T>
  requires requires { typename T::key_type; }
struct IsKeyed<T> : std::true_type {};

// Vectors of plain elements are written as one block, aligned so that it can be read in place.
template <class T>
inline constexpr bool kBulkVector = [] {
  if constexpr (IsVector<T>::value) {
    using Element = typename T::value_type;
    return kBlock<Element> && !std::is_same_v<Element, bool>;  // std::vector<bool> has no data()
  } else {
    return false;
  }
}();

template <class T>
inline constexpr bool kBoolVector = false;  // std::vector<bool>: one byte per element
template <class Allocator>
inline constexpr bool kBoolVector<std::vector<bool, Allocator>> = true;

template <class T>
void encode(const T& value, Writer& out);
template <class T>
T decode(Reader& in);
template <class T>
void decode_into(T& target, Reader& in);

// The fewest bytes a value of T takes on the wire: what bounds a container's claimed element
// count by the bytes left in its message.
template <class T>
constexpr std::size_t min_encoded_size();

template <class Tuple, std::size_t... I>
constexpr std::size_t min_encoded_sum(std::index_sequence<I...>) {
  return (std::size_t{0} + ... + min_encoded_size<std::remove_cv_t<std::tuple_element_t<I, Tuple>>>());
}
template <class Variant, std::size_t... I>
constexpr std::size_t min_encoded_alternative(std::index_sequence<I...>) {
  return std::min({min_encoded_size<std::variant_alternative_t<I, Variant>>()...});
}

template <class T>
constexpr std::size_t min_encoded_size() {
  if constexpr (HasUserCodec<T>) {
    return 0;  // a Codec may write nothing at all
  } else if constexpr (kBlock<T>) {
    return sizeof(T);
  } else if constexpr (IsString<T>::value || IsVector<T>::value || IsKeyed<T>::value) {
    return sizeof(std::uint64_t);  // the count
  } else if constexpr (IsStdArray<T>::value) {
    return std::tuple_size_v<T> * min_encoded_size<typename T::value_type>();
  } else if constexpr (IsOptional<T>::value) {
    return sizeof(std::uint8_t);
  } else if constexpr (IsTupleLike<T>::value) {
    return min_encoded_sum<T>(std::make_index_sequence<std::tuple_size_v<T>>{});
  } else if constexpr (IsVariant<T>::value) {
    return sizeof(std::uint32_t) +
           min_encoded_alternative<T>(std::make_index_sequence<std::variant_size_v<T>>{});
  } else if constexpr (kFieldByField<T>) {
    using Fields = typename AggregateFields<T>::type;
    return min_encoded_sum<Fields>(std::make_index_sequence<std::tuple_size_v<Fields>>{});
  } else {
    return sizeof(T);  // trivially copyable, as bytes
  }
}

// Every element of a container takes at least one byte on the wire, so that a count claimed by
// a message is bounded by its size: a hostile count fails on the bytes, never on an allocation.
// Elements that may encode to nothing (std::tuple<>, a struct of those, a user Codec) are each
// preceded by a one-byte marker; the memory a message of n bytes decodes to is then at most n
// elements (n times sizeof(T) for a vector of empty elements), like every other container.
template <class Element>
inline constexpr bool kNeedsMarker = min_encoded_size<Element>() == 0;
template <class Element>
inline constexpr std::size_t kElementWireSize = kNeedsMarker<Element> ? 1 : min_encoded_size<Element>();

template <class Element>
void encode_element(const Element& element, Writer& out) {
  if constexpr (kNeedsMarker<Element>) out.write_bytes("", 1);
  encode(element, out);
}

template <class Element>
void skip_marker(Reader& in) {
  if constexpr (kNeedsMarker<Element>) (void)in.take(1);
}

inline void check_count(std::uint64_t count, const Reader& in, std::size_t bytes_per_element) {
  if (count > in.remaining() / bytes_per_element) {  // divides: count * bytes cannot wrap
    throw DecodeError("plumb.decode_error: a container size exceeds the message");
  }
}

// Reads a container's element count, checked against the bytes left before anything is
// allocated.
template <class Element>
std::size_t read_count(Reader& in) {
  std::uint64_t count = 0;
  in.read_bytes(&count, sizeof count);
  check_count(count, in, kElementWireSize<Element>);
  return static_cast<std::size_t>(count);
}

// Room for `count` decoded elements, but never more memory than the message has bytes left:
// elements larger in memory than on the wire (std::string: 32 bytes, 8 on the wire) grow the
// container as they are decoded instead.
template <class Container>
void reserve_for(Container& container, std::size_t count, const Reader& in) {
  using Element = typename Container::value_type;
  container.reserve(std::min(count, in.remaining() / sizeof(Element) + 1));
}

// The elements of a string or a bulk vector in place: a u64 count, padding to kBulkAlignment
// for a vector, then count * sizeof(Element) bytes. The count is checked against the message
// (what View<T> relies on to read the bytes where they are).
template <class Element>
std::span<const std::byte> take_elements(Reader& in, bool aligned) {
  std::uint64_t count = 0;
  in.read_bytes(&count, sizeof count);
  if (aligned) in.align(kBulkAlignment);
  check_count(count, in, sizeof(Element));
  return in.take(static_cast<std::size_t>(count) * sizeof(Element));
}

template <class Container>
void encode_elements(const Container& container, Writer& out) {
  out.write(static_cast<std::uint64_t>(container.size()));
  for (const auto& element : container) encode_element(element, out);
}

template <class T>
void encode(const T& value, Writer& out) {
  if constexpr (HasUserCodec<T>) {
    Codec<T>::encode(value, out);
  } else if constexpr (kBlock<T>) {
    out.write_bytes(&value, sizeof(T));
  } else if constexpr (IsString<T>::value) {
    out.write(static_cast<std::uint64_t>(value.size()));
    out.write_bytes(value.data(), value.size() * sizeof(typename T::value_type));
  } else if constexpr (kBulkVector<T>) {
    out.write(static_cast<std::uint64_t>(value.size()));
    out.align(kBulkAlignment);
    out.write_bytes(value.data(), value.size() * sizeof(typename T::value_type));
  } else if constexpr (kBoolVector<T>) {
    out.write(static_cast<std::uint64_t>(value.size()));
    for (const bool bit : value) out.write(static_cast<std::uint8_t>(bit));
  } else if constexpr (IsVector<T>::value || IsKeyed<T>::value) {
    encode_elements(value, out);
  } else if constexpr (IsStdArray<T>::value) {
    for (const auto& element : value) encode(element, out);
  } else if constexpr (IsOptional<T>::value) {
    out.write(static_cast<std::uint8_t>(value.has_value()));
    if (value) encode(*value, out);
  } else if constexpr (IsTupleLike<T>::value) {
    std::apply([&](const auto&... fields) { (encode(fields, out), ...); }, value);
  } else if constexpr (IsVariant<T>::value) {
    out.write(static_cast<std::uint32_t>(value.index()));
    std::visit([&](const auto& alternative) { encode(alternative, out); }, value);
  } else if constexpr (kFieldByField<T>) {
    for_each_field(value, [&](const auto&... fields) { (encode(fields, out), ...); });
  } else {
    static_assert(std::is_trivially_copyable_v<T>, "plumb: internal: unhandled serializable type");
    out.write_bytes(&value, sizeof(T));
  }
}

template <class T>
T decode_block(Reader& in) {
  T value;
  in.read_bytes(&value, sizeof(T));
  return value;
}

template <class Variant, std::size_t... I>
Variant decode_variant(Reader& in, std::uint32_t index, std::index_sequence<I...>) {
  using Decoder = Variant (*)(Reader&);
  constexpr Decoder decoders[] = {[](Reader& reader) -> Variant {
    return Variant(std::in_place_index<I>, decode<std::variant_alternative_t<I, Variant>>(reader));
  }...};
  if (index >= sizeof...(I)) {
    throw DecodeError("plumb.decode_error: a std::variant index is out of range");
  }
  return decoders[index](in);
}

template <class T, std::size_t... I>
T decode_aggregate(Reader& in, std::index_sequence<I...>) {
  // Braced initialization evaluates its elements left to right: the fields in order.
  return T{decode<std::tuple_element_t<I, typename AggregateFields<T>::type>>(in)...};
}

template <class Tuple, std::size_t... I>
Tuple decode_tuple(Reader& in, std::index_sequence<I...>) {
  return Tuple{decode<std::remove_cv_t<std::tuple_element_t<I, Tuple>>>(in)...};
}

template <class T>
T decode(Reader& in) {
  if constexpr (HasUserCodec<T>) {
    return Codec<T>::decode(in);
  } else if constexpr (kBlock<T>) {
    return decode_block<T>(in);
  } else if constexpr (IsString<T>::value) {
    using Char = typename T::value_type;
    const std::span<const std::byte> bytes = take_elements<Char>(in, false);
    T text(bytes.size() / sizeof(Char), Char{});
    if (!bytes.empty()) std::memcpy(text.data(), bytes.data(), bytes.size());
    return text;
  } else if constexpr (kBulkVector<T>) {
    T vector;
    decode_into(vector, in);
    return vector;
  } else if constexpr (IsVector<T>::value) {
    using Element = typename T::value_type;
    const std::size_t count = read_count<Element>(in);
    T vector;
    reserve_for(vector, count, in);
    for (std::size_t i = 0; i < count; ++i) {
      if constexpr (std::is_same_v<Element, bool>) {
        vector.push_back(decode<std::uint8_t>(in) != 0);
      } else {
        skip_marker<Element>(in);
        vector.push_back(decode<Element>(in));
      }
    }
    return vector;
  } else if constexpr (IsKeyed<T>::value) {
    using Element = typename T::value_type;  // std::pair<const Key, Value> for a map
    const std::size_t count = read_count<Element>(in);
    T container;
    for (std::size_t i = 0; i < count; ++i) {
      skip_marker<Element>(in);
      if constexpr (requires { typename T::mapped_type; }) {
        auto key = decode<std::remove_cv_t<typename T::key_type>>(in);
        auto mapped = decode<typename T::mapped_type>(in);
        container.emplace(std::move(key), std::move(mapped));
      } else {
        container.insert(decode<typename T::key_type>(in));
      }
    }
    return container;
  } else if constexpr (IsStdArray<T>::value) {
    return [&]<std::size_t... I>(std::index_sequence<I...>) {
      return T{((void)I, decode<typename T::value_type>(in))...};
    }(std::make_index_sequence<std::tuple_size_v<T>>{});
  } else if constexpr (IsOptional<T>::value) {
    if (decode<std::uint8_t>(in) == 0) return T{};
    return T{decode<typename T::value_type>(in)};
  } else if constexpr (IsTupleLike<T>::value) {
    return decode_tuple<T>(in, std::make_index_sequence<std::tuple_size_v<T>>{});
  } else if constexpr (IsVariant<T>::value) {
    const auto index = decode<std::uint32_t>(in);
    return decode_variant<T>(in, index, std::make_index_sequence<std::variant_size_v<T>>{});
  } else if constexpr (kFieldByField<T>) {
    return decode_aggregate<T>(in, std::make_index_sequence<boost::pfr::tuple_size_v<T>>{});
  } else {
    return decode_block<T>(in);
  }
}

// Vectors of plain elements decode into an existing vector, keeping its memory.
template <class T>
inline constexpr bool kDecodesInPlace = !HasUserCodec<T> && kBulkVector<T>;

// Decodes a message into `target`, reusing its memory where the type allows (a vector of plain
// elements keeps its capacity), so that a consumer decoding message after message into one
// object allocates and first-touches its buffer once, not per message.
template <class T>
void decode_into(T& target, Reader& in) {
  if constexpr (kDecodesInPlace<T>) {
    using Element = typename T::value_type;
    const std::span<const std::byte> bytes = take_elements<Element>(in, true);
    target.resize(bytes.size() / sizeof(Element));  // no allocation while the capacity suffices
    if (!bytes.empty()) std::memcpy(target.data(), bytes.data(), bytes.size());
  } else {
    target = decode<T>(in);
  }
}

}  // namespace detail

template <class T>
void Writer::write(const T& value) {
  static_assert(is_serializable_v<T>,
                "plumb::Writer: this type cannot cross a process boundary; specialize "
                "plumb::Codec<T> for it");
  detail::encode(value, *this);
}

template <class T>
T Reader::read() {
  static_assert(is_serializable_v<T>,
                "plumb::Reader: this type cannot cross a process boundary; specialize "
                "plumb::Codec<T> for it");
  return detail::decode<T>(*this);
}

/// The number of bytes `value` takes on the wire.
template <class T>
[[nodiscard]] std::size_t serialized_size(const T& value) {
  Writer counter;
  counter.write(value);
  return counter.size();
}

}  // namespace plumb
