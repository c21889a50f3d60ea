#pragma once
// A finished hear-finetune run loaded back for scoring or inference (hear-evaluate, hear-embed).
#include <filesystem>
#include <string>

#include "hear/data/manifest.h"
#include "hear/models/hear_classifier.h"
#include "hear/stages/finetune.h"

namespace hear::stages {

// A hear-finetune run loaded back: its config (from the checkpoint), class order
// (RUN_DIR/labels.tsv) and the classifier with the checkpoint's weights, in eval mode.
struct FinetunedModel {
  FinetuneConfig config;
  data::LabelMap labels;
  models::HearClassifier model{nullptr};
  std::filesystem::path checkpoint;  // the directory read (NAME, or NAME.old after a crash)
};

// `which`: "best" or "last" (RUN_DIR/checkpoints/<which>, with the .old fallback of
// train::resolve_checkpoint_dir) or a checkpoint directory of that run.
FinetunedModel load_finetuned(const std::filesystem::path& run_dir, const std::string& which);

}  // namespace hear::stages
