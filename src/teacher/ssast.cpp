#include "hear/teacher/ssast.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "hear/audio/kaldi_fbank.h"
#include "hear/error.h"
#include "hear/io/sha256.h"
#include "hear/util/strings.h"

namespace hear::teacher {
namespace {

constexpr int64_t kKaldiWindow = 400;  // 25 ms at 16 kHz
constexpr int64_t kKaldiShift = 160;   // 10 ms

torch::nn::LayerNorm layer_norm_1e6(int64_t dim) {
  return torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim}).eps(1e-6));
}

}  // namespace

// ------------------------------------------------------------------------------ options, input

void SsastOptions::validate(const io::ConfigCheck& check) const {
  check.require(embed_dim % num_heads == 0, "embed_dim",
                "ssast: " + std::to_string(embed_dim) + " must be a multiple of num_heads (" +
                    std::to_string(num_heads) + ")");
  check.require(num_frames % kPatchFrames == 0, "num_frames",
                "ssast: must be even, got " + std::to_string(num_frames));
}

std::string SsastOptions::summary() const {
  return "embed_dim=" + std::to_string(embed_dim) + " num_heads=" + std::to_string(num_heads) +
         " depth=" + std::to_string(depth) + " mlp_ratio=" + std::to_string(mlp_ratio) +
         " num_frames=" + std::to_string(num_frames) + " n_mels=" + std::to_string(n_mels);
}

SsastOptions SsastOptions::tiny() {
  SsastOptions o;
  o.embed_dim = 64;
  o.num_heads = 4;
  o.depth = 2;
  return o;
}

int64_t kaldi_num_frames(int64_t samples) {
  return samples < kKaldiWindow ? 0 : 1 + (samples - kKaldiWindow) / kKaldiShift;
}

int64_t teacher_valid_patches(int64_t samples) {
  return kaldi_num_frames(samples) / SsastOptions::kPatchFrames;
}

at::Tensor teacher_input(const at::Tensor& waveform, const SsastOptions& options) {
  if (!waveform.defined() || waveform.dim() != 1) {
    throw Error("ssast teacher_input: expected a waveform (S,), got " +
                (waveform.defined() ? "shape " + c10::str(waveform.sizes()) : std::string("none")));
  }
  const int64_t frames = kaldi_num_frames(waveform.size(0));
  if (frames > options.num_frames) {
    throw Error("ssast teacher_input: a clip of " + std::to_string(waveform.size(0)) +
                " samples gives " + std::to_string(frames) + " Kaldi frames, more than the " +
                std::to_string(options.num_frames) + " the teacher takes (at most " +
                std::to_string(kKaldiWindow + options.num_frames * kKaldiShift - 1) +
                " samples); cut it into shorter segments");
  }
  audio::KaldiFbankOptions fo;
  fo.num_mel_bins = static_cast<int>(options.n_mels);
  const at::Tensor x = waveform.to(torch::kCPU);
  at::Tensor fbank = audio::kaldi_fbank(audio::subtract_mean(x), fo);  // (frames, n_mels)
  // Padding first, then normalization: the padded rows become 0.46703237, not 0 (reference).
  fbank = torch::constant_pad_nd(fbank, {0, 0, 0, options.num_frames - frames}, 0.0);
  return audio::ssast_normalize(fbank);
}

// ------------------------------------------------------------------------------ sub-modules

SsastPatchEmbedImpl::SsastPatchEmbedImpl(int64_t embed_dim, int64_t n_mels) {
  proj = register_module(
      "proj",
      torch::nn::Conv2d(torch::nn::Conv2dOptions(1, embed_dim, {n_mels, 2}).stride({n_mels, 2})));
}

at::Tensor SsastPatchEmbedImpl::forward(const at::Tensor& fbank) {
  const int64_t b = fbank.size(0), t = fbank.size(1), f = fbank.size(2);
  const int64_t e = proj->weight.size(0);
  // (B, T, F) -> (B, T/2, 2, F) -> (B, T/2, F, 2) -> (B, T/2, 2F): x[2p+dt, f] at index 2f + dt,
  // the order of the conv weight [E, 1, F, 2] flattened.
  at::Tensor patches = fbank.reshape({b, t / 2, 2, f}).transpose(2, 3).reshape({b, t / 2, 2 * f});
  return torch::nn::functional::linear(patches, proj->weight.reshape({e, 2 * f}), proj->bias);
}

SsastAttentionImpl::SsastAttentionImpl(int64_t embed_dim, int64_t num_heads)
    : num_heads_(num_heads) {
  qkv = register_module("qkv", torch::nn::Linear(embed_dim, 3 * embed_dim));
  proj = register_module("proj", torch::nn::Linear(embed_dim, embed_dim));
}

at::Tensor SsastAttentionImpl::forward(const at::Tensor& x) {
  const int64_t b = x.size(0), n = x.size(1), e = x.size(2);
  const int64_t hd = e / num_heads_;
  // Output channel j of qkv: part j / E (q, k, v), head (j mod E) / hd, lane j mod hd.
  at::Tensor qkv_out = qkv(x).reshape({b, n, 3, num_heads_, hd}).permute({2, 0, 3, 1, 4});
  at::Tensor q = qkv_out[0], k = qkv_out[1], v = qkv_out[2];  // (B, H, N, hd)
  const double scale = 1.0 / std::sqrt(static_cast<double>(hd));
  at::Tensor attn = torch::softmax(torch::matmul(q, k.transpose(-2, -1)) * scale, -1);
  at::Tensor out = torch::matmul(attn, v).transpose(1, 2).reshape({b, n, e});
  return proj(out);
}

SsastMlpImpl::SsastMlpImpl(int64_t embed_dim, int64_t hidden) {
  fc1 = register_module("fc1", torch::nn::Linear(embed_dim, hidden));
  fc2 = register_module("fc2", torch::nn::Linear(hidden, embed_dim));
}

at::Tensor SsastMlpImpl::forward(const at::Tensor& x) {
  return fc2(torch::gelu(fc1(x)));  // exact erf GELU (torch's default), not the tanh form
}

SsastBlockImpl::SsastBlockImpl(int64_t embed_dim, int64_t num_heads, int64_t mlp_hidden) {
  norm1 = register_module("norm1", layer_norm_1e6(embed_dim));
  attn = register_module("attn", SsastAttention(embed_dim, num_heads));
  norm2 = register_module("norm2", layer_norm_1e6(embed_dim));
  mlp = register_module("mlp", SsastMlp(embed_dim, mlp_hidden));
}

at::Tensor SsastBlockImpl::forward(const at::Tensor& x) {
  at::Tensor y = x + attn(norm1(x));
  return y + mlp(norm2(y));
}

SsastVitImpl::SsastVitImpl(const SsastOptions& o) {
  // timm initialises these with trunc_normal(std 0.02); random weights only serve tests/timing.
  cls_token = register_parameter("cls_token", torch::randn({1, 1, o.embed_dim}) * 0.02);
  pos_embed =
      register_parameter("pos_embed", torch::randn({1, o.num_tokens(), o.embed_dim}) * 0.02);
  dist_token = register_parameter("dist_token", torch::randn({1, 1, o.embed_dim}) * 0.02);
  patch_embed = register_module("patch_embed", SsastPatchEmbed(o.embed_dim, o.n_mels));
  blocks = register_module("blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < o.depth; ++i) {
    blocks->push_back(SsastBlock(o.embed_dim, o.num_heads, o.mlp_ratio * o.embed_dim));
  }
  norm = register_module("norm", layer_norm_1e6(o.embed_dim));
}

// ------------------------------------------------------------------------------ the teacher

SsastTeacherImpl::SsastTeacherImpl(const SsastOptions& options) : options_(options) {
  io::validate_config(options_);
  v = register_module("v", SsastVit(options_));
  for (auto& p : parameters(/*recurse=*/true)) p.set_requires_grad(false);
  eval();
}

SsastDebug SsastTeacherImpl::run(const at::Tensor& fbank, bool keep_intermediates) {
  torch::NoGradGuard no_grad;
  if (!fbank.defined() || fbank.dim() != 3 || fbank.size(1) != options_.num_frames ||
      fbank.size(2) != options_.n_mels) {
    throw Error("ssast: expected normalized fbank (B, " + std::to_string(options_.num_frames) +
                ", " + std::to_string(options_.n_mels) + "), got " +
                (fbank.defined() ? c10::str(fbank.sizes()) : std::string("none")));
  }
  SsastDebug d;
  const at::Tensor x = fbank.to(v->pos_embed.device(), torch::kFloat);
  const int64_t b = x.size(0);
  at::Tensor patches = v->patch_embed(x);
  at::Tensor h =
      torch::cat({v->cls_token.expand({b, -1, -1}), v->dist_token.expand({b, -1, -1}), patches},
                 1) +
      v->pos_embed;
  if (keep_intermediates) {
    d.patch_embed_out = patches;
    d.tokens_in = h;
  }
  for (const auto& block : *v->blocks) {
    h = block->as<SsastBlock>()->forward(h);
    if (keep_intermediates) d.block_outputs.push_back(h);
  }
  d.hidden_states = v->norm(h).slice(1, 2);
  return d;
}

SsastDebug SsastTeacherImpl::forward_debug(const at::Tensor& fbank) {
  return run(fbank, /*keep_intermediates=*/true);
}

at::Tensor SsastTeacherImpl::forward(const at::Tensor& fbank) {
  return run(fbank, /*keep_intermediates=*/false).hidden_states;
}

TeacherFeatures SsastTeacherImpl::features(const at::Tensor& waveforms, const at::Tensor& lengths) {
  torch::NoGradGuard no_grad;
  if (!waveforms.defined() || waveforms.dim() != 2) {
    throw Error("ssast features: expected waveforms (B, S), got " +
                (waveforms.defined() ? c10::str(waveforms.sizes()) : std::string("none")));
  }
  const int64_t b = waveforms.size(0), s = waveforms.size(1);
  if (!lengths.defined() || lengths.dim() != 1 || lengths.size(0) != b) {
    throw Error("ssast features: expected lengths (" + std::to_string(b) + ",), got " +
                (lengths.defined() ? c10::str(lengths.sizes()) : std::string("none")));
  }
  const at::Tensor lens = lengths.to(torch::kCPU, torch::kLong).contiguous();
  const at::Tensor wav = waveforms.to(torch::kCPU, torch::kFloat);
  TeacherFeatures out;
  out.valid_patches = torch::empty({b}, torch::kLong);
  std::vector<at::Tensor> inputs;
  for (int64_t i = 0; i < b; ++i) {
    const int64_t len = lens[i].item<int64_t>();
    if (len < 0 || len > s) {
      throw Error("ssast features: length " + std::to_string(len) + " of row " + std::to_string(i) +
                  " is outside [0, " + std::to_string(s) + "]");
    }
    inputs.push_back(teacher_input(wav[i].narrow(0, 0, len), options_));
    out.valid_patches[i] = teacher_valid_patches(len);
  }
  out.features =
      b == 0 ? torch::zeros({0, options_.num_patches(), options_.embed_dim}, v->pos_embed.options())
             : forward(torch::stack(inputs));
  return out;
}

int64_t SsastTeacherImpl::parameter_count() const {
  int64_t n = 0;
  for (const auto& p : parameters(/*recurse=*/true)) n += p.numel();
  return n;
}

void SsastTeacherImpl::pretty_print(std::ostream& stream) const {
  stream << "hear::teacher::SsastTeacher(" << options_.summary() << ", params=" << parameter_count()
         << ")";
}

// ------------------------------------------------------------------------------ weights

bool is_ignored_ssast_key(const std::string& key) {
  return key == "mask_embed" || key == "p_input_fdim" || key == "p_input_tdim" ||
         util::starts_with(key, "v.head.") || util::starts_with(key, "v.head_dist.") ||
         util::starts_with(key, "cpredlayer.") || util::starts_with(key, "gpredlayer.") ||
         util::starts_with(key, "mlp_head.");
}

SsastLoadReport load_ssast_state(SsastTeacherImpl& teacher, const io::TensorMap& tensors,
                                 const std::string& source, const std::string& prefix) {
  const SsastOptions& o = teacher.options();
  std::map<std::string, const at::Tensor*> incoming;
  SsastLoadReport report;
  std::vector<std::string> problems;
  for (const auto& [raw, tensor] : tensors) {
    if (!util::starts_with(raw, prefix)) continue;
    std::string key = raw.substr(prefix.size());
    if (util::starts_with(key, "module.")) key = key.substr(7);
    if (is_ignored_ssast_key(key)) {
      report.ignored.push_back(raw);
      if (key == "p_input_fdim" || key == "p_input_tdim") {
        const int64_t want = key == "p_input_fdim" ? o.n_mels : o.num_frames;
        if (tensor.numel() != 1 || tensor.to(torch::kDouble).item<double>() != double(want)) {
          problems.push_back(
              raw + " is " +
              (tensor.numel() == 1 ? c10::str(tensor.item()) : c10::str(tensor.sizes())) +
              ", expected " + std::to_string(want) +
              " (a checkpoint pre-trained on another input size needs SSAST's "
              "pos_embed re-fit, which is not implemented)");
        }
      }
      continue;
    }
    if (incoming.count(key)) {
      problems.push_back("key " + key + " appears twice (with and without 'module.')");
      continue;
    }
    incoming[key] = &tensor;
  }

  std::vector<std::string> missing, mismatched, unexpected;
  std::map<std::string, at::Tensor> targets;
  for (const auto& item : teacher.named_parameters(/*recurse=*/true)) {
    targets[item.key()] = item.value();
  }
  for (const auto& [name, target] : targets) {
    auto it = incoming.find(name);
    if (it == incoming.end()) {
      missing.push_back(name);
    } else if (it->second->sizes() != target.sizes()) {
      std::string why = name + ": file " + c10::str(it->second->sizes()) + " vs model " +
                        c10::str(target.sizes());
      if (name == "v.pos_embed") {
        why += " (the teacher needs [1, " + std::to_string(o.num_tokens()) + ", " +
               std::to_string(o.embed_dim) + "]: cls + dist + " + std::to_string(o.num_patches()) +
               " frame patches)";
      } else if (name == "v.patch_embed.proj.weight") {
        why += " (only an SSAST Frame model, patches of " + std::to_string(o.n_mels) +
               " mel x 2 frames, fits; Patch models use 16 x 16)";
      }
      mismatched.push_back(why);
    } else if (!it->second->is_floating_point()) {
      mismatched.push_back(name + ": file dtype " +
                           std::string(c10::toString(it->second->scalar_type())) +
                           " is not floating point");
    }
  }
  for (const auto& [name, tensor] : incoming) {
    if (!targets.count(name)) unexpected.push_back(name);
  }
  if (!missing.empty()) {
    problems.push_back(std::to_string(missing.size()) +
                       " missing: " + util::join(missing, ", ", 40));
  }
  if (!mismatched.empty()) {
    problems.push_back(std::to_string(mismatched.size()) +
                       " mis-shaped: " + util::join(mismatched, ", ", 40));
  }
  if (!unexpected.empty()) {
    problems.push_back(std::to_string(unexpected.size()) +
                       " unexpected: " + util::join(unexpected, ", ", 40));
  }
  if (!problems.empty()) {
    std::string msg = "cannot load the SSAST teacher (" + o.summary() + ") from " + source;
    for (const auto& p : problems) msg += "; " + p;
    throw Error(msg);
  }
  torch::NoGradGuard no_grad;
  for (auto& [name, target] : targets) {
    target.copy_(incoming.at(name)->to(target.device(), target.scalar_type()));
    report.loaded.push_back(name);
  }
  return report;
}

SsastLoadReport load_ssast_weights(SsastTeacherImpl& teacher, const std::filesystem::path& path,
                                   const std::string& prefix) {
  return load_ssast_state(teacher, io::load_safetensors(path).tensors, "'" + path.string() + "'",
                          prefix);
}

std::string teacher_weights_sha256(const SsastTeacherImpl& teacher) {
  std::map<std::string, at::Tensor> sorted;
  for (const auto& item : teacher.named_parameters(/*recurse=*/true)) {
    sorted[item.key()] = item.value();
  }
  io::Sha256 h;
  for (const auto& [name, value] : sorted) {
    const at::Tensor t = value.detach().to(torch::kCPU, torch::kFloat).contiguous();
    const std::string head = name + c10::str(t.sizes());
    h.update(head.data(), head.size() + 1);  // with the terminating NUL as a separator
    h.update(t.data_ptr<float>(), static_cast<size_t>(t.numel()) * sizeof(float));
  }
  return h.hex_digest();
}

}  // namespace hear::teacher
