#pragma once
// Stage 2, masked audio modeling (hear-pretrain): the frozen tokenizer labels every patch, the
// acoustic model sees the clip with a random subset of patch embeddings zeroed and predicts the
// labels of those patches through the MAM head (cross entropy over masked patches only).
//
// Checkpoints hold the reference PretrainFramework's keys (`tokenizer.*`, `encoder.*`,
// `out_linear.*`); at the end RUN_DIR/acoustic_model.safetensors holds the acoustic model alone
// under the reference AcousticModel keys (`feature_extractor.*`, `contextual_encoder.*`), ready
// for hear-finetune, hear-embed or the reference Python AcousticModel.
#include <string>

#include "hear/data/loader.h"
#include "hear/io/config.h"
#include "hear/models/mam.h"
#include "hear/stages/common.h"
#include "hear/train/trainer.h"

namespace hear::stages {

struct PretrainConfig {
  std::string run_dir = "runs/pretrain";
  std::string tokenizer_weights;  // stage 1 output (safetensors; `tokenizer.*` or bare keys)
  models::MamOptions model;
  CorpusDataConfig data{128};  // the paper's batch of 128
  train::TrainerOptions train;

  PretrainConfig();
  void define(io::ConfigSchema& s);
};

struct PretrainResult {
  train::FitResult fit;
  std::string acoustic_weights;  // exported file ("" when interrupted)
};

PretrainResult run_pretrain(const PretrainConfig& config, const RunRequest& request);

}  // namespace hear::stages
