#include "hear/bench/machine.h"

#include "hear/util/strings.h"

#include <ATen/Parallel.h>
#include <ATen/Version.h>
#include <sys/utsname.h>
#include <torch/version.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

namespace hear::bench {
namespace {

std::string compiled_architecture() {
#if defined(__x86_64__)
  return "x86_64";
#elif defined(__aarch64__)
  return "aarch64";
#elif defined(__arm__)
  return "arm";
#else
  return "unknown";
#endif
}

}  // namespace

MachineInfo machine_info() {
  MachineInfo info;
  info.architecture = compiled_architecture();
  info.logical_cpus = static_cast<int>(::sysconf(_SC_NPROCESSORS_ONLN));
  info.torch_threads = at::get_num_threads();
  info.torch_version = TORCH_VERSION;
#ifdef NDEBUG
  info.build_type = "Release";
#else
  info.build_type = "Debug";
#endif

  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line, implementer, part;
  std::set<std::string> flags;
  bool x86_layout = false, arm_layout = false;
  while (std::getline(cpuinfo, line)) {
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    const std::string key = util::trim(line.substr(0, colon));
    const std::string value = util::trim(line.substr(colon + 1));
    if (key == "model name" && info.cpu_model.empty()) info.cpu_model = value;
    if (key == "flags") x86_layout = true;
    if (key == "Features") arm_layout = true;
    if (key == "CPU implementer" && implementer.empty()) implementer = value;
    if (key == "CPU part" && part.empty()) part = value;
    if ((key == "flags" || key == "Features") && flags.empty()) {
      std::istringstream ss(value);
      std::string f;
      while (ss >> f) flags.insert(f);
    }
  }
  if (info.cpu_model.empty() && !implementer.empty()) {
    info.cpu_model = "ARM implementer " + implementer + " part " + part;
  }
  const std::pair<const char*, const char*> known[] = {
      {"sse4_2", "SSE4.2"},     {"avx", "AVX"},
      {"avx2", "AVX2"},         {"fma", "FMA"},
      {"avx512f", "AVX-512F"},  {"avx512_bf16", "AVX-512-BF16"},
      {"amx_tile", "AMX"},      {"neon", "NEON"},
      {"asimd", "ASIMD(NEON)"}, {"asimddp", "ASIMD-dotprod"},
      {"sve", "SVE"},           {"bf16", "BF16"},
      {"i8mm", "I8MM"}};
  for (const auto& [flag, name] : known) {
    if (flags.count(flag)) info.simd.push_back(name);
  }
  info.host_architecture = x86_layout ? "x86_64" : arm_layout ? "aarch64" : info.architecture;
  struct utsname u {};
  if (::uname(&u) == 0 && info.host_architecture == info.architecture) {
    info.host_architecture = u.machine;
  }
  // qemu-user passes the host's /proc/cpuinfo through: an aarch64 binary that sees x86 flags (or
  // the reverse) is emulated, and its timings say nothing about the target CPU.
  if ((info.architecture == "aarch64" && x86_layout) ||
      (info.architecture == "x86_64" && arm_layout && !x86_layout)) {
    info.emulated = true;
    info.emulation_note = "this " + info.architecture + " binary runs under emulation on an " +
                          info.host_architecture +
                          " host: timings are meaningless, MACs and parameters are exact";
    // The flags are the host's, not features this binary's instruction set can use.
    for (auto& name : info.simd) name = "host:" + name;
  }

  // at::show_config() lists the BLAS, LAPACK and oneDNN (MKL-DNN) backends LibTorch was built with.
  std::istringstream config(at::show_config());
  std::vector<std::string> backends;
  while (std::getline(config, line)) {
    const std::string t = util::trim(line);
    for (const char* k : {"BLAS_INFO=", "LAPACK_INFO=", "USE_MKLDNN=", "USE_OPENMP="}) {
      auto p = t.find(k);
      if (p != std::string::npos) {
        auto end = t.find(',', p);
        backends.push_back(t.substr(p, end == std::string::npos ? std::string::npos : end - p));
      }
    }
    if (t.rfind("- LAPACK is enabled", 0) == 0 || t.rfind("- MKL", 0) == 0 ||
        t.rfind("- Intel(R) MKL-DNN", 0) == 0 || t.rfind("- OpenMP", 0) == 0) {
      backends.push_back(t.substr(2));
    }
  }
  std::sort(backends.begin(), backends.end());
  backends.erase(std::unique(backends.begin(), backends.end()), backends.end());
  for (const auto& b : backends) info.blas += (info.blas.empty() ? "" : "; ") + b;
  return info;
}

}  // namespace hear::bench
