#pragma once
// What the numbers were measured on: CPU, architecture, SIMD, threads, LibTorch and its backends.
#include <string>
#include <vector>

namespace hear::bench {

struct MachineInfo {
  std::string cpu_model;          // /proc/cpuinfo "model name" (x86) or implementer/part (ARM)
  std::string architecture;       // the binary's architecture: x86_64, aarch64, ...
  std::string host_architecture;  // what /proc/cpuinfo describes (differs under emulation)
  std::vector<std::string> simd;  // AVX2, AVX-512F, FMA, NEON, ASIMD, SVE, ...
  int logical_cpus = 0;
  int torch_threads = 0;  // at::get_num_threads()
  std::string torch_version;
  std::string blas;        // BLAS/LAPACK/oneDNN backends LibTorch reports
  std::string build_type;  // of this program
  bool emulated = false;   // the binary runs under a user-mode emulator (qemu)
  std::string emulation_note;
};

MachineInfo machine_info();

}  // namespace hear::bench
