#pragma once
// Analytic multiply-accumulate (MAC) counts of the HEAR networks for one clip at batch 1, from the
// modules' shapes, with the sliding windows the acoustic model actually runs for that length.
//
// Convention (the reference's, thop/ptflops-style): a Linear/Conv counts in x out MACs per output
// position; attention counts its four products QK^T, Q·E_K^T, P·V and P·E_V as T x T x d each
// per head (what a direct implementation computes); softmax, norms, activations and additions are
// not counted. FLOPs = 2 x MACs. The paper's "9.47 GFLOPs" for 10 s is a MAC count in this
// convention (reference analytic count: 9.574 G MACs).
#include <cstdint>
#include <string>
#include <vector>

#include "hear/audio/frontend.h"
#include "hear/models/hear_classifier.h"
#include "hear/models/tokenizer.h"

namespace hear::bench {

struct CostItem {
  std::string name;  // e.g. "acoustic_model.attention_products"
  int64_t macs = 0;
};

struct ModuleCost {
  std::string name;  // acoustic_model, spectrogram_mixture, task_model, decoder, frontend
  int64_t macs = 0;
  std::vector<CostItem> items;
};

struct ClipGeometry {
  int64_t samples = 0;
  int64_t frames = 0;         // floor(samples / hop) + 1
  int64_t patches = 0;        // frames / 2
  int64_t windows = 0;        // acoustic-model windows run (1 when patches <= max_length)
  int64_t window_tokens = 0;  // tokens per window (max_length, or patches when 1 window)
};

// The windows the acoustic model runs for one clip of `patches` patches (docs/reference-notes.md
// §7a rule).
ClipGeometry clip_geometry(int64_t samples, const audio::FrontendOptions& frontend,
                           const models::AcousticModelOptions& acoustic);

struct HearCost {
  ClipGeometry geometry;
  std::vector<ModuleCost> modules;  // acoustic_model, spectrogram_mixture, task_model, decoder
  ModuleCost frontend;              // estimate (FFT + mel); not in total_macs, as in the paper
  int64_t total_macs = 0;           // the four network modules
};

HearCost count_hear_classifier(const models::HearClassifierOptions& options, int64_t samples,
                               const audio::FrontendOptions& frontend = {});

// The tokenizer (encoder + logits linear) on one clip of `samples` samples (at most max_length
// patches).
int64_t count_tokenizer_macs(const models::TokenizerOptions& options, int64_t samples,
                             const audio::FrontendOptions& frontend = {});

// SSAST-Frame teacher (ViT: embed, heads, blocks, 128x2 patches over 1024 frames): parameters
// and MACs per 1024-frame input. Defaults are SSAST-Base-Frame-400.
struct TeacherShape {
  int64_t embed = 768;
  int64_t blocks = 12;
  int64_t mlp = 3072;
  int64_t frames = 1024;
  int64_t n_mels = 128;
};
int64_t teacher_parameters(const TeacherShape& shape = {});
int64_t teacher_macs(const TeacherShape& shape = {});

}  // namespace hear::bench
