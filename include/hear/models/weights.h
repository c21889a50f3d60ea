#pragma once
// Loading and saving any module's parameters and buffers as safetensors under the reference
// state_dict key names (e.g.
// `acoustic_model.contextual_encoder.layers.0.self_attn.linear_q.weight`).
//
// Loading is strict by default: every missing, unexpected or mis-shaped key is reported by name
// and the load fails unless allow_missing / allow_unexpected (shape mismatches always fail).
// Checkpoint keys may carry a leading `module.` (DataParallel); `prefix` selects a sub-tree of
// the file (e.g. "encoder." to load a PretrainFramework's acoustic model into an AcousticModel,
// "weights/" for the golden files) and keys outside it are ignored. `prefix = kAutoPrefix` picks
// the first of `auto_prefixes` that some file key starts with, and no prefix when none does (a
// bare state_dict). Keys under `ignore_prefixes` (the reference frontend's `preprocessor.*`
// buffers) are skipped.
#include <ATen/core/Tensor.h>

#include <filesystem>
#include <string>
#include <vector>

#include "hear/io/safetensors.h"

namespace torch::nn {
class Module;
}

namespace hear::models {

// LoadOptions::prefix value: choose the prefix from LoadOptions::auto_prefixes.
inline constexpr const char* kAutoPrefix = "auto";

struct LoadOptions {
  std::string prefix;  // only file keys starting with it (after an optional "module."), stripped
  std::vector<std::string> auto_prefixes;  // candidates, in order of preference, for kAutoPrefix
  bool allow_missing = false;
  bool allow_unexpected = false;
  std::vector<std::string> ignore_prefixes = {"preprocessor."};
};

struct LoadReport {
  std::vector<std::string> loaded;
  std::vector<std::string> missing;     // in the module, not in the file
  std::vector<std::string> unexpected;  // in the file (under prefix), not in the module
  std::vector<std::string> mismatched;  // "key: file [a, b] vs module [c, d]"
  std::string summary() const;          // one line per category that is not empty
};

// Every parameter and buffer (detached aliases), named as state_dict() would (`prefix` prepended).
io::TensorMap module_state(const torch::nn::Module& module, const std::string& prefix = "");

// The prefix `options` selects in `tensors` (resolves kAutoPrefix; "" = bare keys).
std::string resolve_prefix(const io::TensorMap& tensors, const LoadOptions& options);

// Copies matching tensors into the module (converted to each parameter's dtype/device).
// Throws hear::Error naming `source` and every offending key when the load is not allowed.
LoadReport load_state(torch::nn::Module& module, const io::TensorMap& tensors,
                      const LoadOptions& options = {}, const std::string& source = "tensors");

LoadReport load_weights(torch::nn::Module& module, const std::filesystem::path& path,
                        const LoadOptions& options = {});

// Writes module_state(module, prefix) atomically.
void save_weights(const torch::nn::Module& module, const std::filesystem::path& path,
                  const io::Metadata& metadata = {}, const std::string& prefix = "");

}  // namespace hear::models
