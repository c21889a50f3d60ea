#pragma once
// Stage 1, the acoustic tokenizer (hear-tokenizer-train): tokenizer -> Gumbel quantizer ->
// decoder, trained on alpha·reconstruction + beta·distillation + gamma·diversity (paper Eq. 1).
//
// The distillation target is the SSAST Frame teacher's last normalized hidden states, either run
// live (teacher.kind: ssast) or read from a feature cache made by hear-teacher-cache
// (teacher.kind: cache; segments must then be the cache's fixed consecutive segments). Teacher
// patch t is paired with HEAR patch t, cropped to the HEAR patch count, as the reference does;
// the Kaldi framing sits 200 samples later than HEAR's centred framing.
// teacher.kind: none trains without distillation (beta = 0): not the paper's method.
//
// Checkpoints hold the reference TokenizerTrainFramework keys (`tokenizer.*`, `decoder.*`,
// `vector_quantizer.*`) and the Gumbel temperature (state.yaml extra.gumbel_temperature). At the
// end RUN_DIR/tokenizer.safetensors holds the Tokenizer alone under the reference Tokenizer keys
// (`encoder.*`, `linear.*`), which hear-pretrain and the reference Python Tokenizer load.
#include <array>
#include <string>
#include <utility>

#include "hear/data/loader.h"
#include "hear/io/config.h"
#include "hear/models/acoustic_model.h"
#include "hear/models/tokenizer.h"
#include "hear/stages/common.h"
#include "hear/teacher/ssast.h"
#include "hear/train/trainer.h"

namespace hear::stages {

// kUnset: "" (stage 1 refuses it). kHear: self-distillation from a pre-trained HEAR acoustic model
// (BEATs-style iteration: tokenizer 0 without a teacher -> MAM 0 -> tokenizer 1 distilled from
// MAM 0's acoustic model -> MAM 1); its final-layer features (B, P, hidden) are the target.
enum class TeacherKind { kUnset, kSsast, kCache, kNone, kHear };
constexpr std::array<std::pair<TeacherKind, const char*>, 5> enum_names(TeacherKind) {
  return {{{TeacherKind::kUnset, ""},
           {TeacherKind::kSsast, "ssast"},
           {TeacherKind::kCache, "cache"},
           {TeacherKind::kNone, "none"},
           {TeacherKind::kHear, "hear"}}};
}

struct TeacherConfig {
  TeacherKind kind = TeacherKind::kUnset;  // ssast | cache | none (no default: stage 1 needs an
                                           // explicit choice)
  std::string weights;  // ssast: official SSAST-Base-Frame-400 converted to safetensors;
                        // hear: an acoustic model (hear-pretrain's acoustic_model.safetensors)
  std::string cache;    // cache: a hear-teacher-cache directory
  teacher::SsastOptions model;
  models::AcousticModelOptions hear_model;  // hear: the teacher's architecture

  void define(io::ConfigSchema& s) {
    s.field("kind", kind,
            "ssast (live) | cache (hear-teacher-cache) | none (no distillation) | hear "
            "(a pre-trained HEAR acoustic model, self-distillation)");
    s.field("weights", weights,
            "ssast: SSAST-Base-Frame-400 weights (safetensors, checkpoint keys); hear: "
            "acoustic model weights (acoustic_model.* / encoder.* / bare keys)");
    s.field("cache", cache, "teacher feature cache directory");
    s.section("model", model);
    s.section("hear_model", hear_model);
  }
};

struct TokenizerTrainConfig {
  std::string run_dir = "runs/tokenizer";
  models::TokenizerTrainingOptions model;
  TeacherConfig teacher;
  CorpusDataConfig data{64};  // the paper's batch of 64
  train::TrainerOptions train;

  TokenizerTrainConfig();
  void define(io::ConfigSchema& s);
};

struct TokenizerTrainResult {
  train::FitResult fit;
  double temperature = 0.0;
  std::string tokenizer_weights;  // exported file ("" when interrupted)
};

TokenizerTrainResult run_tokenizer_train(const TokenizerTrainConfig& config,
                                         const RunRequest& request);

// Codebook usage of logits (B, P, V) over valid patches: distinct argmax codes and the
// perplexity exp(H(pbar)) of the averaged softmax distribution (V = uniform use, 1 = collapse).
struct CodebookUsage {
  int64_t distinct_codes = 0;
  double perplexity = 0.0;
};
CodebookUsage codebook_usage(const at::Tensor& logits, const at::Tensor& patch_lengths);

}  // namespace hear::stages
