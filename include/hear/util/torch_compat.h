#pragma once
// The LibTorch API differences between Debian's LibTorch 1.13 (CPU) and a current LibTorch (2.4+,
// e.g. the one inside a CUDA pip PyTorch: torch.utils.cmake_prefix_path), in one place. Every
// use of an API that changed goes through here; nothing else tests TORCH_VERSION_*.
//
//   autocast     1.13: is_cpu_enabled / set_cpu_enabled / get_autocast_cpu_dtype (CPU) and
//                is_enabled / set_enabled / get_autocast_gpu_dtype (CUDA); 2.4 added the
//                device-generic is_autocast_enabled(DeviceType) etc. and deprecated the old ones.
//   c10d         ProcessGroupGloo derives from c10d::ProcessGroup in 1.x and from c10d::Backend
//                in 2.x; the calls used here (constructor, Options::create, allreduce, broadcast,
//                barrier, Work::wait) are the same. The header needs USE_C10D_GLOO defined.
//   torch::cuda  device_count() returns size_t in 1.13 and c10::DeviceIndex later: use
//                cuda_device_count().
#include <ATen/autocast_mode.h>
#include <torch/cuda.h>
#include <torch/version.h>

#include <cstdint>

namespace c10d {
class Backend;
class ProcessGroup;
}  // namespace c10d

#define HEAR_TORCH_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR > (major) ||       \
   (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO  // ProcessGroupGloo.hpp compiles only with it (LibTorch builds set it)
#endif

namespace hear::compat {

// Autocast state of one device type (kCPU or kCUDA).
inline bool autocast_enabled(c10::DeviceType device) {
#if HEAR_TORCH_AT_LEAST(2, 4)
  return at::autocast::is_autocast_enabled(device);
#else
  return device == c10::DeviceType::CPU ? at::autocast::is_cpu_enabled()
                                        : at::autocast::is_enabled();
#endif
}

inline void set_autocast_enabled(c10::DeviceType device, bool enabled) {
#if HEAR_TORCH_AT_LEAST(2, 4)
  at::autocast::set_autocast_enabled(device, enabled);
#else
  if (device == c10::DeviceType::CPU) {
    at::autocast::set_cpu_enabled(enabled);
  } else {
    at::autocast::set_enabled(enabled);
  }
#endif
}

inline at::ScalarType autocast_dtype(c10::DeviceType device) {
#if HEAR_TORCH_AT_LEAST(2, 4)
  return at::autocast::get_autocast_dtype(device);
#else
  return device == c10::DeviceType::CPU ? at::autocast::get_autocast_cpu_dtype()
                                        : at::autocast::get_autocast_gpu_dtype();
#endif
}

inline void set_autocast_dtype(c10::DeviceType device, at::ScalarType dtype) {
#if HEAR_TORCH_AT_LEAST(2, 4)
  at::autocast::set_autocast_dtype(device, dtype);
#else
  if (device == c10::DeviceType::CPU) {
    at::autocast::set_autocast_cpu_dtype(dtype);
  } else {
    at::autocast::set_autocast_gpu_dtype(dtype);
  }
#endif
}

// The base class of ProcessGroupGloo / ProcessGroupNCCL (the collectives used are on both).
#if TORCH_VERSION_MAJOR >= 2
using ProcessGroupBase = c10d::Backend;
#else
using ProcessGroupBase = c10d::ProcessGroup;
#endif

inline int64_t cuda_device_count() {
  return static_cast<int64_t>(torch::cuda::device_count());
}

}  // namespace hear::compat
