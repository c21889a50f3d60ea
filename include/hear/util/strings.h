#pragma once
// Small text helpers the library shares (parsing manifests, lists, configs, state files).
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace hear::util {

// `s` without leading and trailing spaces, tabs, CR and LF.
std::string trim(std::string_view s);

// "a, b, c" (the items joined by `separator`); past `max_items`: "a, b, ... (3 more)".
std::string join(const std::vector<std::string>& items, std::string_view separator = ", ",
                 size_t max_items = static_cast<size_t>(-1));

// Every field between `separator`s: "a\tb\t" -> {"a", "b", ""}; "" -> {""}.
std::vector<std::string> split(std::string_view text, char separator);

bool starts_with(std::string_view s, std::string_view prefix);

// The whole of `text` (no spaces) as a base-10 integer; throws hear::Error
// "<what>: '<text>' is not an integer" otherwise (also on overflow).
int64_t parse_int(const std::string& text, const std::string& what);

// The shortest decimal text that reads back (strtod) as exactly `v` (at most 17 significant
// digits, printf %g style); finite values only.
std::string format_double_exact(double v);

}  // namespace hear::util
