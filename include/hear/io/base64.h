#pragma once
// Base64 (RFC 4648, with '=' padding) of binary strings, e.g. RNG states inside state.yaml.
#include <string>

namespace hear::io {

std::string base64_encode(const std::string& bytes);
std::string base64_decode(const std::string& text);  // throws hear::Error on bad input

}  // namespace hear::io
