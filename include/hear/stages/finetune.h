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
#include <array>
#include <string>
#include <utility>
#include <vector>

#include "hear/data/datasets.h"
#include "hear/data/loader.h"
#include "hear/data/manifest.h"
#include "hear/io/config.h"
#include "hear/models/hear_classifier.h"
#include "hear/stages/common.h"
#include "hear/stages/evaluation.h"
#include "hear/train/trainer.h"

namespace hear::stages {

enum class DataFormat { kManifest, kEsc50, kSpeechCommands, kVoxceleb1 };
constexpr std::array<std::pair<DataFormat, const char*>, 4> enum_names(DataFormat) {
  return {{{DataFormat::kManifest, "manifest"},
           {DataFormat::kEsc50, "esc50"},
           {DataFormat::kSpeechCommands, "speech_commands"},
           {DataFormat::kVoxceleb1, "voxceleb1"}}};
}

enum class ScProtocol { kNone, kGscv1, kGscv2 };  // kNone: not set ("")
constexpr std::array<std::pair<ScProtocol, const char*>, 3> enum_names(ScProtocol) {
  return {{{ScProtocol::kNone, ""}, {ScProtocol::kGscv1, "gscv1"}, {ScProtocol::kGscv2, "gscv2"}}};
}

enum class FinetuneSetting { kBase, kScratch, kNoSpectrum, kTransfer };
constexpr std::array<std::pair<FinetuneSetting, const char*>, 4> enum_names(FinetuneSetting) {
  return {{{FinetuneSetting::kBase, "base"},
           {FinetuneSetting::kScratch, "scratch"},
           {FinetuneSetting::kNoSpectrum, "no_spectrum"},
           {FinetuneSetting::kTransfer, "transfer"}}};
}

struct FinetuneDataConfig {
  // Where the splits come from:
  //   manifest         the *_manifest keys below (classes: the training labels, sorted)
  //   esc50            data.root = ESC-50-master (cross-validation over its folds, see test_folds)
  //   speech_commands  data.root = speech_commands_v0.0X, data.protocol, optional data.test_root
  //   voxceleb1        data.root = the folder with iden_split.txt and */wav/
  // With a dataset format the class order is the dataset's (hear/data/datasets.h), and the
  // manifest keys must stay empty.
  DataFormat format = DataFormat::kManifest;
  std::string root;
  ScProtocol protocol = ScProtocol::kNone;  // speech_commands: gscv1 | gscv2
  std::string test_root;  // speech_commands: speech_commands_test_set_v0.0X (empty: testing_list)
  // Cross-validation (esc50, or fold_manifests): the folds (1-based) to hold out as test folds,
  // one run each; empty: every fold.
  std::vector<int64_t> test_folds;
  std::string train_manifest, valid_manifest, test_manifest;  // labelled TSV manifests
  // Cross-validation: one labelled manifest per fold; fold k is the test set of run k and the
  // others its training set (ESC-50: 5 folds). Used by run_finetune_cv.
  std::vector<std::string> fold_manifests;
  data::LoaderOptions loader;

  FinetuneDataConfig();
  void define(io::ConfigSchema& s);
  // Throws hear::Error naming the data.* key that is missing or does not fit the format.
  void validate(const io::ConfigCheck& check) const;
  // Whether hear-finetune runs cross-validation without --folds (format esc50).
  bool cross_validated() const { return format == DataFormat::kEsc50; }
};

// The splits a config names, read from manifests or a dataset layout. `labels` is the dataset's
// class order for a dataset format; for format manifest it is empty (each run takes the sorted
// labels of its training clips). Cross-validation sets fill `folds`.
data::DatasetSplits load_finetune_data(const FinetuneDataConfig& data);

struct FinetuneConfig {
  std::string run_dir = "runs/finetune";
  FinetuneSetting setting = FinetuneSetting::kBase;  // base | scratch | no_spectrum | transfer
  std::string pretrained;  // acoustic model weights (stage 2 output), not for scratch
  int64_t epochs = 80;     // train.steps = epochs x batches per epoch
  models::HearClassifierOptions model;
  FinetuneDataConfig data;
  train::TrainerOptions train;

  FinetuneConfig();
  void define(io::ConfigSchema& s);
  void validate(const io::ConfigCheck& check) const;
};

struct FinetuneResult {
  train::FitResult fit;
  Evaluation valid, test;  // test.clips == 0 without a test manifest
  std::string selection_rule;
};

// One train/valid/test run (not for format esc50: see run_finetune_cv).
FinetuneResult run_finetune(const FinetuneConfig& config, const RunRequest& request);

struct CrossValidationResult {
  std::vector<FinetuneResult> folds;
  double mean_accuracy = 0.0, std_accuracy = 0.0;  // over folds (std: sample, n - 1)
};

// k-fold cross-validation over data.fold_manifests or the folds of data.format esc50 (only those in
// data.test_folds when set); fold k runs in RUN_DIR/fold<k>. Each run directory keeps the class
// order (labels.tsv) and the splits it used (splits/train.tsv, valid.tsv, test.tsv).
CrossValidationResult run_finetune_cv(const FinetuneConfig& config, const RunRequest& request);

// The classifier options of a setting (no_spectrum drops the spectrum branch, transfer freezes
// the acoustic model).
models::HearClassifierOptions classifier_options(const FinetuneConfig& config, int64_t num_classes);
// Loads acoustic-model weights from a full HEAR model (`acoustic_model.*`), a MAM checkpoint
// (`encoder.*`) or a bare AcousticModel file.
void load_acoustic_weights(models::AcousticModel& acoustic_model, const std::string& path);
// Builds the classifier of a setting and loads the pre-trained acoustic model when it has one.
models::HearClassifier make_classifier(const FinetuneConfig& config, int64_t num_classes);

}  // namespace hear::stages
