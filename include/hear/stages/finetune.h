#pragma once
// Stage 3, downstream fine-tuning (hear-finetune) in the paper's four settings (Table IV):
//   base         pre-trained acoustic model, everything fine-tuned
//   scratch      random initialization, everything trained
//   no_spectrum  pre-trained, the gated power-spectrum branch removed ("w/o Spectrum")
//   transfer     pre-trained acoustic model frozen (eval mode), the rest trained
// Clips of any length go through the acoustic model's sliding window. Each epoch is validated;
// the `best` checkpoint is the epoch with the highest validation accuracy (the first one on
// ties), and the test split is scored with it. With cross-validation there is no validation
// split (the held-out fold is the test fold), so each fold is scored with its final epoch.
#include <string>
#include <vector>

#include "hear/data/loader.h"
#include "hear/data/manifest.h"
#include "hear/io/config.h"
#include "hear/models/hear_classifier.h"
#include "hear/stages/common.h"
#include "hear/train/trainer.h"

namespace hear::stages {

struct FinetuneDataConfig {
  std::string train_manifest, valid_manifest, test_manifest;  // labelled TSV manifests
  // Cross-validation: one labelled manifest per fold; fold k is the test set of run k and the
  // others its training set (ESC-50: 5 folds). Used by run_finetune_cv.
  std::vector<std::string> fold_manifests;
  data::LoaderOptions loader;

  FinetuneDataConfig();
  void define(io::ConfigSchema& s);
};

struct FinetuneConfig {
  std::string run_dir = "runs/finetune";
  std::string setting = "base";  // base | scratch | no_spectrum | transfer
  std::string pretrained;        // acoustic model weights (stage 2 output), not for scratch
  int64_t epochs = 80;           // train.steps = epochs x batches per epoch
  models::HearClassifierOptions model;
  FinetuneDataConfig data;
  train::TrainerOptions train;

  FinetuneConfig();
  void define(io::ConfigSchema& s);
  void validate() const;
};

struct Evaluation {
  int64_t clips = 0;
  double accuracy = 0.0;
  double loss = 0.0;  // mean cross entropy
  std::vector<std::string> classes;
  std::vector<double> per_class_accuracy;       // NaN for classes absent from the set
  std::vector<std::vector<int64_t>> confusion;  // [true][predicted]
};

// Accuracy, per-class accuracy and confusion matrix of `model` (eval mode) on labelled entries.
Evaluation evaluate(models::HearClassifier& model, const std::vector<data::ManifestEntry>& entries,
                    const data::LabelMap& labels, const data::LoaderOptions& loader);

// Writes NAME.json (accuracy, per class, confusion, rule) and NAME_confusion.csv in `dir`.
void write_evaluation(const std::filesystem::path& dir, const std::string& name,
                      const Evaluation& evaluation, const std::string& selection_rule);

struct FinetuneResult {
  train::FitResult fit;
  Evaluation valid, test;  // test.clips == 0 without a test manifest
  std::string selection_rule;
};

FinetuneResult run_finetune(const FinetuneConfig& config, const RunRequest& request);

struct CrossValidationResult {
  std::vector<FinetuneResult> folds;
  double mean_accuracy = 0.0, std_accuracy = 0.0;  // over folds (std: sample, n - 1)
};

// k-fold cross-validation over data.fold_manifests; fold k runs in RUN_DIR/fold<k>.
CrossValidationResult run_finetune_cv(const FinetuneConfig& config, const RunRequest& request);

// Builds the classifier of a setting and loads the pre-trained acoustic model when it has one.
models::HearClassifier make_classifier(const FinetuneConfig& config, int64_t num_classes);

}  // namespace hear::stages
