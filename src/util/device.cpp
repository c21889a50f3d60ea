#include "hear/util/device.h"

#include <torch/cuda.h>

#include "hear/error.h"
#include "hear/util/strings.h"
#include "hear/util/torch_compat.h"

namespace hear::util {

c10::Device parse_device(const std::string& spec, const std::string& key, int default_index) {
  if (spec == "cpu") return c10::Device(c10::kCPU);
  int64_t index = default_index;
  if (spec.rfind("cuda:", 0) == 0) {
    index = parse_int(spec.substr(5), key + "='" + spec + "'");
  } else if (spec != "cuda") {
    throw Error(key + "='" + spec + "': expected cpu, cuda or cuda:N");
  }
  if (!torch::cuda::is_available()) {
    throw Error(key + "='" + spec +
                "': this LibTorch build has no CUDA device (torch::cuda::is_available() is "
                "false); use cpu, or build against a CUDA LibTorch (scripts/gpu_check.sh)");
  }
  const int64_t count = compat::cuda_device_count();
  if (index < 0 || index >= count) {
    throw Error(key + "='" + spec + "': CUDA device " + std::to_string(index) +
                " does not exist (" + std::to_string(count) + " present)");
  }
  return c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(index));
}

void synchronize(const c10::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize(device.index());
}

}  // namespace hear::util
