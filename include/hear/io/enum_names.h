#pragma once
// Enum <-> name tables for config enums. An enum declares its names once, next to itself, as an
// `enum_names` overload found by argument-dependent lookup:
//
//   enum class SegmentMode { kRandomCrop, kConsecutive, kWhole };
//   constexpr std::array<std::pair<SegmentMode, const char*>, 3> enum_names(SegmentMode) {
//     return {{{SegmentMode::kRandomCrop, "random_crop"},
//              {SegmentMode::kConsecutive, "consecutive"},
//              {SegmentMode::kWhole, "whole"}}};
//   }
//
// Then io::to_string(mode), io::parse_enum<SegmentMode>(text, key) and
// ConfigSchema::field("mode", mode, doc) (whose choices are the names) work for it.
#include <array>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "hear/error.h"

namespace hear::io {

template <class E, class = void>
struct has_enum_names : std::false_type {};
template <class E>
struct has_enum_names<E, std::void_t<decltype(enum_names(std::declval<E>()))>> : std::is_enum<E> {};
template <class E>
inline constexpr bool has_enum_names_v = has_enum_names<E>::value;

// Every name of E in table order.
template <class E, std::enable_if_t<has_enum_names_v<E>, int> = 0>
std::vector<std::string> enum_choices() {
  std::vector<std::string> out;
  for (const auto& [value, name] : enum_names(E{})) out.emplace_back(name);
  return out;
}

template <class E, std::enable_if_t<has_enum_names_v<E>, int> = 0>
std::string to_string(E value) {
  for (const auto& [v, name] : enum_names(E{})) {
    if (v == value) return name;
  }
  return "<invalid enum value " + std::to_string(static_cast<long long>(value)) + ">";
}

// The value named `text`; otherwise hear::Error "config key 'KEY': value 'TEXT' is not one of:
// a, b, c" (an empty name is listed as '').
template <class E, std::enable_if_t<has_enum_names_v<E>, int> = 0>
E parse_enum(const std::string& text, const std::string& key) {
  std::string allowed;
  for (const auto& [v, name] : enum_names(E{})) {
    if (text == name) return v;
    allowed += (allowed.empty() ? "" : ", ") + (*name ? std::string(name) : std::string("''"));
  }
  throw Error("config key '" + key + "': value '" + text + "' is not one of: " + allowed);
}

}  // namespace hear::io
