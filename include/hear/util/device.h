#pragma once
// Where a program computes: "cpu", "cuda" or "cuda:N" (train.device, --device). Models, batches,
// the frontend, losses and optimizer state live there; checkpoints and exports are written from
// CPU copies and load onto either.
#include <c10/core/Device.h>

#include <string>

namespace hear::util {

// Parses `spec`; throws hear::Error naming `key` for an unknown spec, a LibTorch build without
// CUDA (torch::cuda::is_available() false) or a device index beyond the devices present.
// "cuda" without an index is cuda:`default_index` (a data-parallel rank's LOCAL_RANK).
c10::Device parse_device(const std::string& spec, const std::string& key, int default_index = 0);

// Waits for the device's queued work (timing); a no-op on the CPU.
void synchronize(const c10::Device& device);

}  // namespace hear::util
