#pragma once
// The SSAST "Frame" teacher of stage 1 (docs/reference-notes.md §5; facts in
// tests/golden/README.md): a DeiT-distilled ViT over frame patches of a Kaldi fbank.
//
//   waveform (S,) -> teacher_input: subtract the clip mean (float32), Kaldi fbank (T', 128),
//     zero rows up to 1024 frames, THEN (x + 4.2677393) / (2 * 4.5689974) (padded rows =
//     0.46703237)
//   (B, 1024, 128) -> patch_embed.proj: 512 patches of 128 mel x 2 frames -> (B, 512, E)
//   [cls, dist, patch_0 .. patch_511] + pos_embed (1, 514, E)
//   depth x pre-norm blocks: x += attn.proj(MHA(norm1(x))); x += fc2(GELU_erf(fc1(norm2(x))))
//   norm (LayerNorm eps 1e-6), drop cls and dist -> (B, 512, E)
// No attention mask: padded patches are ordinary tokens, as in the reference.
//
// Parameters carry the official checkpoint's names without `module.` (`v.cls_token`,
// `v.blocks.0.attn.qkv.weight`, ...), so SSAST-Base-Frame-400 converted with
// scripts/convert_ssast_checkpoint.py loads as it is.
//
// Alignment with HEAR (docs/reference-notes.md §5): teacher patch t (Kaldi frames 2t, 2t+1) is
// paired with HEAR patch t (torchaudio frames 2t, 2t+1), the two sequences cropped to the shorter
// one. The framings are offset by 200 samples: Kaldi frame k covers samples [160k, 160k + 400) and
// is centred at 160k + 200, while HEAR's centred torchaudio frame k is centred at 160k. Kaldi also
// yields 2-3 fewer frames (6 s: 598 vs 601), so the reference's last HEAR patch or two is paired
// with teacher patches made partly or wholly of padding frames; reproducing the reference means
// using teacher rows 0 .. P-1 for HEAR's P patches whatever valid_patches says.
#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <filesystem>
#include <ostream>
#include <string>
#include <vector>

#include "hear/io/config.h"
#include "hear/io/safetensors.h"

namespace hear::teacher {

struct SsastOptions {  // defaults: SSAST-Base-Frame-400
  int64_t embed_dim = 768;
  int64_t num_heads = 12;
  int64_t depth = 12;
  int64_t mlp_ratio = 4;      // MLP hidden = mlp_ratio * embed_dim
  int64_t num_frames = 1024;  // fbank frames the teacher sees (clips are padded to it)
  int64_t n_mels = 128;       // one patch spans every mel bin
  static constexpr int64_t kPatchFrames = 2;

  int64_t num_patches() const { return num_frames / kPatchFrames; }
  int64_t num_tokens() const { return num_patches() + 2; }
  int64_t head_dim() const { return embed_dim / num_heads; }
  void validate(const io::ConfigCheck& check) const;  // heads divide embed_dim, num_frames even
  // "embed_dim=768 num_heads=12 depth=12 mlp_ratio=4 num_frames=1024 n_mels=128"
  std::string summary() const;
  static SsastOptions tiny();  // the golden file's config: 64 wide, 4 heads, 2 blocks

  void define(io::ConfigSchema& s) {
    s.field("embed_dim", embed_dim, "teacher width E").min(1);
    s.field("num_heads", num_heads, "attention heads (must divide embed_dim)").min(1);
    s.field("depth", depth, "Transformer blocks").min(0);
    s.field("mlp_ratio", mlp_ratio, "MLP hidden width / embed_dim").min(1);
    s.field("num_frames", num_frames, "fbank frames per input (even)").min(2);
    s.field("n_mels", n_mels, "Kaldi fbank mel bins (the patch height)").min(4);
  }
};

// Kaldi fbank frames of a clip of `samples` samples (snip_edges): 1 + (S - 400) / 160, 0 if S <
// 400.
int64_t kaldi_num_frames(int64_t samples);
// Teacher patches made only of real (unpadded) frames: kaldi_num_frames / 2.
int64_t teacher_valid_patches(int64_t samples);
// HEAR's patch count for the same clip (the rows of teacher features stage 1 compares with the
// tokenizer) is audio::patch_count(samples).

// The teacher's input for one clip: waveform (S,) float -> (num_frames, n_mels) float32 as above.
// Throws hear::Error when the clip has more than num_frames Kaldi frames (for 1024 frames: more
// than 164,239 samples, about 10.26 s); the reference fails there too.
at::Tensor teacher_input(const at::Tensor& waveform, const SsastOptions& options = {});

// ------------------------------------------------------------------------------ sub-modules

class SsastPatchEmbedImpl : public torch::nn::Module {
 public:
  SsastPatchEmbedImpl(int64_t embed_dim, int64_t n_mels);
  // (B, T, n_mels), T even -> (B, T / 2, E). Uses the conv weight [E, 1, n_mels, 2] as a Linear on
  // the (f-major, dt-minor) flattened patch, which is the same sum as the strided Conv2d.
  at::Tensor forward(const at::Tensor& fbank);
  torch::nn::Conv2d proj{nullptr};  // Conv2d(1, E, (n_mels, 2), stride (n_mels, 2))
};
TORCH_MODULE(SsastPatchEmbed);

class SsastAttentionImpl : public torch::nn::Module {
 public:
  SsastAttentionImpl(int64_t embed_dim, int64_t num_heads);
  at::Tensor forward(const at::Tensor& x);  // (B, N, E) -> (B, N, E), no mask
  torch::nn::Linear qkv{nullptr}, proj{nullptr};

 private:
  int64_t num_heads_;
};
TORCH_MODULE(SsastAttention);

class SsastMlpImpl : public torch::nn::Module {
 public:
  SsastMlpImpl(int64_t embed_dim, int64_t hidden);
  at::Tensor forward(const at::Tensor& x);  // fc2(GELU_erf(fc1(x)))
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
};
TORCH_MODULE(SsastMlp);

class SsastBlockImpl : public torch::nn::Module {
 public:
  SsastBlockImpl(int64_t embed_dim, int64_t num_heads, int64_t mlp_hidden);
  at::Tensor forward(const at::Tensor& x);  // (B, N, E) -> (B, N, E)
  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr};
  SsastAttention attn{nullptr};
  SsastMlp mlp{nullptr};
};
TORCH_MODULE(SsastBlock);

// The timm ViT the checkpoint calls `v`.
class SsastVitImpl : public torch::nn::Module {
 public:
  explicit SsastVitImpl(const SsastOptions& options);
  at::Tensor cls_token, dist_token, pos_embed;  // (1, 1, E), (1, 1, E), (1, num_tokens, E)
  SsastPatchEmbed patch_embed{nullptr};
  torch::nn::ModuleList blocks{nullptr};
  torch::nn::LayerNorm norm{nullptr};
};
TORCH_MODULE(SsastVit);

// ------------------------------------------------------------------------------ the teacher

struct SsastDebug {
  at::Tensor patch_embed_out;             // (B, P, E)
  at::Tensor tokens_in;                   // (B, P + 2, E): tokens + pos_embed (input of block 0)
  std::vector<at::Tensor> block_outputs;  // depth x (B, P + 2, E), before the final norm
  at::Tensor hidden_states;               // (B, P, E): normalized, cls and dist dropped
};

struct TeacherFeatures {
  at::Tensor features;       // (B, num_patches, E) float32 on the teacher's device
  at::Tensor valid_patches;  // (B,) int64 on the CPU: teacher_valid_patches(lengths[b])
};

// Frozen: every parameter has requires_grad = false, the module is in eval mode, and the forward
// passes run under torch::NoGradGuard. Weights are random until loaded.
class SsastTeacherImpl : public torch::nn::Module {
 public:
  explicit SsastTeacherImpl(const SsastOptions& options = {});

  // fbank: (B, num_frames, n_mels) normalized (teacher_input) -> (B, num_patches, E).
  at::Tensor forward(const at::Tensor& fbank);
  SsastDebug forward_debug(const at::Tensor& fbank);

  // waveforms: (B, S) float at 16 kHz, zero-padded; lengths: (B,) valid samples per row (<= S).
  // Each row is cut to its length before teacher_input, so a clip's features do not depend on the
  // rest of its batch (the reference stacks equal-length clips and removes the mean over all S).
  TeacherFeatures features(const at::Tensor& waveforms, const at::Tensor& lengths);

  const SsastOptions& options() const { return options_; }
  int64_t parameter_count() const;
  void pretty_print(std::ostream& stream) const override;

  SsastVit v{nullptr};

 private:
  SsastDebug run(const at::Tensor& fbank, bool keep_intermediates);
  SsastOptions options_;
};
TORCH_MODULE(SsastTeacher);

// ------------------------------------------------------------------------------ weights

struct SsastLoadReport {
  std::vector<std::string> loaded;   // module names (`v.*`)
  std::vector<std::string> ignored;  // file keys of the pre-training / classification heads
};

// Copies a checkpoint's teacher weights into `teacher`. File keys are `module.v.*` (the official
// DataParallel checkpoint) or `v.*`; `prefix` (e.g. "weights/" for the golden file) is stripped
// first, and keys outside it are not looked at. Ignored: `module.mask_embed`, `v.head*`,
// `cpredlayer.*`, `gpredlayer.*`, `mlp_head.*` (HEAR's fine-tuning head), `p_input_fdim` and
// `p_input_tdim` (checked == n_mels / num_frames when present: other values would need SSAST's
// pos_embed re-fit). Throws hear::Error naming `source` and every missing, unexpected or mis-shaped
// key (pos_embed must be [1, num_tokens, E]). Tensors are converted to float32.
SsastLoadReport load_ssast_state(SsastTeacherImpl& teacher, const io::TensorMap& tensors,
                                 const std::string& source, const std::string& prefix = "");
SsastLoadReport load_ssast_weights(SsastTeacherImpl& teacher, const std::filesystem::path& path,
                                   const std::string& prefix = "");

// Is this (prefix-free, `module.`-free) checkpoint key one the teacher ignores?
bool is_ignored_ssast_key(const std::string& key);

// The teacher's identity for caches: SHA-256 over every parameter in name order (name, shape and
// float32 little-endian bytes), so the same weights hash alike whatever file they came from.
std::string teacher_weights_sha256(const SsastTeacherImpl& teacher);

}  // namespace hear::teacher
