// libFuzzer target: the safetensors reader (io::parse_safetensors) on arbitrary bytes: header
// length, JSON header, dtypes, shapes and data offsets; every tensor it returns is read in full.
#include <torch/torch.h>

#include "fuzz_util.h"
#include "hear/io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return hear::fuzz::run_input([&] {
    const std::string bytes(reinterpret_cast<const char*>(data), size);
    const auto content = hear::io::parse_safetensors(bytes, "fuzz.safetensors");
    for (const auto& [name, tensor] : content.tensors) {
      if (tensor.numel() > 0) (void)tensor.to(torch::kDouble).sum().item<double>();
    }
  });
}
