#pragma once
// Helpers for the model parity tests: golden configs from safetensors metadata, scaled errors,
// and a self-contained re-statement of the reference frontend (log-mel from a waveform) so that
// the MAM parity test does not depend on hear::audio.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <cmath>
#include <string>

#include "hear/error.h"
#include "hear/io/safetensors.h"
#include "hear/models/acoustic_model.h"
#include "hear/models/tokenizer.h"
#include "test_util.h"

namespace hear::models::model_testing {

inline const io::SafetensorsContent& golden(const std::string& name) {
  static std::map<std::string, io::SafetensorsContent> cache;
  auto it = cache.find(name);
  if (it == cache.end())
    it = cache.emplace(name, io::load_safetensors(test::data_path(name))).first;
  return it->second;
}

inline const at::Tensor& golden_tensor(const std::string& file, const std::string& key) {
  const auto& g = golden(file);
  auto it = g.tensors.find(key);
  if (it == g.tensors.end()) throw std::runtime_error(file + " has no tensor " + key);
  return it->second;
}

inline nlohmann::json golden_config(const std::string& file, const std::string& key) {
  return nlohmann::json::parse(golden(file).metadata.at(key));
}

// max |a - ref| / max(1, max |ref|): the error relative to the reference tensor's scale.
inline double scaled_error(const at::Tensor& a, const at::Tensor& ref) {
  auto r = ref.to(torch::kDouble);
  const double scale = std::max(1.0, r.numel() ? r.abs().max().item<double>() : 0.0);
  return test::max_abs_diff(a, ref) / scale;
}

inline AcousticModelOptions acoustic_options_from(const nlohmann::json& j) {
  AcousticModelOptions o;
  o.hidden_size = j.at("hidden_size");
  o.intermediate_size = j.at("intermediate_size");
  o.num_attention_heads = j.at("num_attention_heads");
  o.num_transformer_layers = j.at("num_transformer_layers");
  return o;
}

inline TokenizerOptions tokenizer_options_from(const nlohmann::json& j) {
  TokenizerOptions o;
  o.hidden_size = j.at("hidden_size");
  o.intermediate_size = j.at("intermediate_size");
  o.num_attention_heads = j.at("num_attention_heads");
  o.num_transformer_layers = j.at("num_transformer_layers");
  o.num_codebooks = j.at("num_codebooks");
  return o;
}

// The reference frontend's normalized log-mel (docs/reference-notes.md §1) for one unpadded clip:
// (S,) -> (128, S / 160 + 1). Restated here with plain torch ops (rfft of reflect-padded
// frames, periodic Hann(400) centred in 1024, HTK mel without norm, z-norm with biased std).
inline at::Tensor reference_log_mel(const at::Tensor& waveform) {
  namespace F = torch::nn::functional;
  const int64_t n_fft = 1024, hop = 160, win = 400, n_mels = 128, bins = n_fft / 2 + 1;
  auto x = waveform.to(torch::kFloat);
  x = x - x.mean();
  auto padded =
      F::pad(x.view({1, 1, -1}), F::PadFuncOptions({n_fft / 2, n_fft / 2}).mode(torch::kReflect))
          .view({-1});
  auto frames = padded.unfold(0, n_fft, hop);  // (T, 1024)
  auto window = torch::zeros({n_fft});
  window.narrow(0, (n_fft - win) / 2, win).copy_(torch::hann_window(win, /*periodic=*/true));
  auto power = torch::fft::rfft(frames * window, n_fft, -1).abs().pow(2);  // (T, 513)

  auto all_freqs = torch::linspace(0, 8000, bins);
  const double m_max = 2595.0 * std::log10(1.0 + 8000.0 / 700.0);
  auto m_pts = torch::linspace(0.0, m_max, n_mels + 2);
  auto f_pts = 700.0 * (torch::pow(10.0, m_pts / 2595.0) - 1.0);
  auto f_diff = f_pts.slice(0, 1) - f_pts.slice(0, 0, -1);
  auto slopes = f_pts.unsqueeze(0) - all_freqs.unsqueeze(1);  // (513, 130)
  auto down = -slopes.slice(1, 0, -2) / f_diff.slice(0, 0, -1);
  auto up = slopes.slice(1, 2) / f_diff.slice(0, 1);
  auto fb = torch::clamp_min(torch::min(down, up), 0.0);  // (513, 128)

  auto log_mel = torch::log(torch::matmul(power, fb) + 1e-6);
  auto mean = log_mel.mean();
  auto std = log_mel.std(/*unbiased=*/false);
  return ((log_mel - mean) / (std + 1e-6)).t().contiguous();
}

}  // namespace hear::models::model_testing
