#include "hear/util/process_memory.h"

#include <fstream>
#include <string>

namespace hear::util {
namespace {

double status_field_mib(const std::string& field) {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::stod(line.substr(field.size() + 1)) / 1024.0;
  }
  return 0.0;
}

}  // namespace

double current_rss_mib() {
  return status_field_mib("VmRSS");
}
double peak_rss_mib() {
  return status_field_mib("VmHWM");
}

bool reset_peak_rss() {
  std::ofstream clear("/proc/self/clear_refs");
  if (!clear) return false;
  clear << "5";
  return static_cast<bool>(clear.flush());
}

}  // namespace hear::util
