#include "hear/nn/int8_linear.h"

#include <ATen/Context.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/native/quantized/PackedParams.h>
#include <torch/nn/modules/linear.h>
#include <torch/torch.h>

#include <atomic>
#include <mutex>
#include <string>
#include <unordered_map>

#include "hear/error.h"
#include "hear/nn/onednn_matmul.h"

namespace hear::nn {
namespace {

struct Packed {
  c10::intrusive_ptr<LinearPackedParamsBase> params;
  int64_t in = 0, out = 0;
};

std::mutex& registry_mutex() {
  static std::mutex m;
  return m;
}
std::unordered_map<const void*, Packed>& registry() {
  static std::unordered_map<const void*, Packed> r;
  return r;
}
// Registered weights, read without the lock: every float32 product asks, and almost always
// none is registered.
std::atomic<int64_t> registered{0};

bool onednn_engine() {
  for (auto e : at::globalContext().supportedQEngines()) {
    if (e == at::QEngine::ONEDNN) return true;
  }
  return false;
}

Packed pack(const at::Tensor& weight) {
  const at::Tensor w = weight.detach().to(torch::kFloat).contiguous();
  // Symmetric per output channel: the zero point is 0 and the scale maps max |w| to 127.
  const at::Tensor scales =
      (std::get<0>(w.abs().max(1)) / 127.0).clamp_min(1e-12).to(torch::kDouble);
  const at::Tensor zero_points = torch::zeros({w.size(0)}, torch::kLong);
  const at::Tensor q = at::quantize_per_channel(w, scales, zero_points, 0, torch::kQInt8);
  static auto prepack = c10::Dispatcher::singleton()
                            .findSchemaOrThrow("quantized::linear_prepack", "")
                            .typed<c10::intrusive_ptr<LinearPackedParamsBase>(
                                at::Tensor, c10::optional<at::Tensor>)>();
  return {prepack.call(q, c10::nullopt), w.size(1), w.size(0)};
}

}  // namespace

bool Int8Linears::available() {
  return onednn_engine() && onednn_matmul_available();
}

Int8Linears::Int8Linears(torch::nn::Module& module, int64_t min_weights) {
  if (!available()) {
    throw Error(std::string("int8: needs LibTorch's oneDNN quantized engine (") +
                (onednn_engine() ? "present" : "absent") + ") and the oneDNN matrix products (" +
                (onednn_matmul_available() ? "present" : "not compiled in") + ")");
  }
  at::globalContext().setQEngine(at::QEngine::ONEDNN);
  install_onednn_matmul();
  std::vector<at::Tensor> weights;
  for (const auto& item : module.named_modules()) {
    if (auto* linear = dynamic_cast<torch::nn::LinearImpl*>(item.value().get())) {
      weights.push_back(linear->weight);
    }
    // torch.nn.MultiheadAttention's fused projection is a plain parameter used by torch::linear.
    if (auto* p = item.value()->named_parameters(false).find("in_proj_weight")) {
      weights.push_back(*p);
    }
  }
  std::lock_guard<std::mutex> lock(registry_mutex());
  for (const auto& w : weights) {
    if (w.dim() != 2 || w.numel() < min_weights || !w.is_cpu()) continue;
    const void* key = w.data_ptr();
    if (registry().count(key)) continue;
    registry()[key] = pack(w);
    weights_.push_back(key);
  }
  registered += count();
}

Int8Linears::~Int8Linears() {
  std::lock_guard<std::mutex> lock(registry_mutex());
  for (const void* key : weights_) registry().erase(key);
  registered -= count();
}

std::optional<at::Tensor> int8_product(const at::Tensor& a, const at::Tensor& b) {
  if (registered.load(std::memory_order_relaxed) == 0) return std::nullopt;
  if (at::GradMode::is_enabled() || b.dim() != 2 || a.dim() != 2 || b.stride(0) != 1 ||
      b.stride(1) != b.size(0) || a.scalar_type() != torch::kFloat) {
    return std::nullopt;
  }
  Packed packed;
  {
    std::lock_guard<std::mutex> lock(registry_mutex());
    const auto it = registry().find(b.data_ptr());
    if (it == registry().end()) return std::nullopt;
    packed = it->second;
  }
  if (packed.in != b.size(0) || packed.out != b.size(1)) return std::nullopt;
  return packed.params->apply_dynamic(a.contiguous(), /*reduce_range=*/false);
}

}  // namespace hear::nn
