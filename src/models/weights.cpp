#include "hear/models/weights.h"

#include <torch/torch.h>

#include <set>

#include "hear/error.h"
#include "hear/util/strings.h"

namespace hear::models {
std::string LoadReport::summary() const {
  // Weights of another architecture differ in hundreds of keys: the first few say what is wrong.
  constexpr size_t kShown = 8;
  std::string out;
  auto add = [&](const char* what, const std::vector<std::string>& keys) {
    if (keys.empty()) return;
    out += (out.empty() ? "" : "; ") + std::to_string(keys.size()) + " " + what + ": " +
           util::join(keys, ", ", kShown);
  };
  add("missing", missing);
  add("unexpected", unexpected);
  add("mis-shaped", mismatched);
  if (out.empty()) out = std::to_string(loaded.size()) + " tensors loaded";
  return out;
}

io::TensorMap module_state(const torch::nn::Module& module, const std::string& prefix) {
  io::TensorMap out;
  for (const auto& item : module.named_parameters(/*recurse=*/true)) {
    out[prefix + item.key()] = item.value().detach();
  }
  for (const auto& item : module.named_buffers(/*recurse=*/true)) {
    out[prefix + item.key()] = item.value().detach();
  }
  return out;
}

std::string resolve_prefix(const io::TensorMap& tensors, const LoadOptions& options) {
  if (options.prefix != kAutoPrefix) return options.prefix;
  for (const auto& candidate : options.auto_prefixes) {
    for (const auto& [raw, tensor] : tensors) {
      const std::string key = util::starts_with(raw, "module.") ? raw.substr(7) : raw;
      if (util::starts_with(key, candidate)) return candidate;
    }
  }
  return "";
}

LoadReport load_state(torch::nn::Module& module, const io::TensorMap& tensors,
                      const LoadOptions& options, const std::string& source) {
  // File keys -> module-relative names.
  const std::string prefix = resolve_prefix(tensors, options);
  std::map<std::string, const at::Tensor*> incoming;
  for (const auto& [raw, tensor] : tensors) {
    std::string key = raw;
    if (util::starts_with(key, "module.")) key = key.substr(7);
    if (!prefix.empty()) {
      if (!util::starts_with(key, prefix)) continue;
      key = key.substr(prefix.size());
      if (util::starts_with(key, "module.")) key = key.substr(7);
    }
    bool ignored = false;
    for (const auto& p : options.ignore_prefixes) ignored |= util::starts_with(key, p);
    if (!ignored) incoming[key] = &tensor;
  }

  auto targets = module_state(module);
  LoadReport report;
  for (const auto& [name, target] : targets) {
    auto it = incoming.find(name);
    if (it == incoming.end()) {
      report.missing.push_back(name);
    } else if (it->second->sizes() != target.sizes()) {
      report.mismatched.push_back(name + ": file " + c10::str(it->second->sizes()) + " vs module " +
                                  c10::str(target.sizes()));
    }
  }
  for (const auto& [name, tensor] : incoming) {
    if (!targets.count(name)) report.unexpected.push_back(name);
  }
  if (!report.mismatched.empty() || (!report.missing.empty() && !options.allow_missing) ||
      (!report.unexpected.empty() && !options.allow_unexpected)) {
    throw Error("cannot load weights from " + source +
                (prefix.empty() ? "" : " (prefix '" + prefix + "')") + ": " + report.summary());
  }
  torch::NoGradGuard no_grad;
  for (auto& [name, target] : targets) {
    auto it = incoming.find(name);
    if (it == incoming.end()) continue;
    target.copy_(it->second->to(target.device(), target.scalar_type()));
    report.loaded.push_back(name);
  }
  return report;
}

LoadReport load_weights(torch::nn::Module& module, const std::filesystem::path& path,
                        const LoadOptions& options) {
  auto content = io::load_safetensors(path);
  return load_state(module, content.tensors, options, path.string());
}

void save_weights(const torch::nn::Module& module, const std::filesystem::path& path,
                  const io::Metadata& metadata, const std::string& prefix) {
  io::save_safetensors(path, module_state(module, prefix), metadata);
}

}  // namespace hear::models
