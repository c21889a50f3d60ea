#include "hear/util/fault_point.h"

#include <csignal>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <unordered_map>

namespace hear::util {

void fault_point(const char* name) {
  const char* spec = std::getenv("HEAR_FAULT_POINT");
  if (spec == nullptr || *spec == '\0') return;
  const char* colon = std::strchr(spec, ':');
  const std::string wanted = colon ? std::string(spec, colon) : std::string(spec);
  if (wanted != name) return;
  const long nth = colon ? std::strtol(colon + 1, nullptr, 10) : 1;
  static std::mutex mutex;
  static std::unordered_map<std::string, long> passes;
  std::lock_guard<std::mutex> lock(mutex);
  if (++passes[wanted] >= nth) std::raise(SIGKILL);
}

}  // namespace hear::util
