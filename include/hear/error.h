#pragma once
// The one exception type of the library. Messages name the file, key or value at fault so that
// programs can print them as they are and exit non-zero.
#include <stdexcept>
#include <string>

namespace hear {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

}  // namespace hear
