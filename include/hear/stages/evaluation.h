#pragma once
// Scoring a fine-tuned classifier: accuracy, per-class accuracy and confusion matrix on labelled
// clips, and the files that report them.
#include <filesystem>
#include <string>
#include <vector>

#include "hear/data/loader.h"
#include "hear/data/manifest.h"
#include "hear/models/hear_classifier.h"
#include "hear/train/distributed.h"

namespace hear::stages {

struct Evaluation {
  int64_t clips = 0;
  double accuracy = 0.0;
  double loss = 0.0;  // mean cross entropy
  std::vector<std::string> classes;
  std::vector<double> per_class_accuracy;       // NaN for classes absent from the set
  std::vector<std::vector<int64_t>> confusion;  // [true][predicted]
};

// Accuracy, per-class accuracy and confusion matrix of `model` (eval mode) on labelled entries,
// read with evaluation_loader_options(loader). With a data-parallel group of several ranks (every
// rank must call it), rank r scores entries r, r + world, ... and the counts are summed, so every
// rank returns the whole set's evaluation.
Evaluation evaluate(models::HearClassifier& model, const std::vector<data::ManifestEntry>& entries,
                    const data::LabelMap& labels, const data::LoaderOptions& loader,
                    const train::DataParallel* parallel = nullptr);

// Writes NAME.json (accuracy, per class, confusion, rule) and NAME_confusion.csv in `dir`.
void write_evaluation(const std::filesystem::path& dir, const std::string& name,
                      const Evaluation& evaluation, const std::string& selection_rule);

}  // namespace hear::stages
