#include "hear/stages/finetune.h"

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>

#include "hear/error.h"
#include "hear/io/file_util.h"
#include "hear/models/weights.h"
#include "hear/train/checkpoint.h"

namespace hear::stages {

FinetuneConfig::FinetuneConfig() {
  model.decoder.num_classes = 0;  // from the training labels unless set
  train.optimizer.lr = 2e-4;      // ESC-50 (Table II)
  train.schedule.warmup_steps = 0;
  train.best_metric = "valid_acc";
  train.best_mode = train::BestMode::kMax;
  train.validate_every = 0;  // every epoch
  train.log_every = 10;
}

void FinetuneConfig::define(io::ConfigSchema& s) {
  s.field("run_dir", run_dir, "output folder (config, log, metrics, checkpoints, results)");
  s.field("setting", setting, "base | scratch | no_spectrum | transfer (paper Table IV)");
  s.field("pretrained", pretrained, "pre-trained acoustic model weights (safetensors)");
  s.field("epochs", epochs, "epochs (train.steps = epochs x batches per epoch)").min(1);
  s.section("model", model);
  s.section("data", data);
  s.section("train", train);
}

void FinetuneConfig::validate(const io::ConfigCheck&) const {
  if (setting != FinetuneSetting::kScratch && pretrained.empty()) {
    throw Error("setting '" + io::to_string(setting) +
                "' starts from a pre-trained acoustic model: set 'pretrained' (hear-pretrain's "
                "acoustic_model.safetensors), or use setting=scratch");
  }
}

models::HearClassifierOptions classifier_options(const FinetuneConfig& config,
                                                 int64_t num_classes) {
  auto options = config.model;
  options.decoder.num_classes = num_classes;
  if (config.setting == FinetuneSetting::kNoSpectrum) options.use_spectrogram = false;
  if (config.setting == FinetuneSetting::kTransfer) options.freeze_acoustic_model = true;
  return options;
}

void load_acoustic_weights(models::AcousticModel& acoustic_model, const std::string& path) {
  models::LoadOptions options;
  options.prefix = models::kAutoPrefix;
  // A full HEAR model, a MAM checkpoint's model.safetensors (`encoder.*`), or bare keys.
  options.auto_prefixes = {"acoustic_model.", "encoder."};
  models::load_weights(*acoustic_model, path, options);
  spdlog::info("acoustic model loaded from {}", path);
}

models::HearClassifier make_classifier(const FinetuneConfig& config, int64_t num_classes) {
  models::HearClassifier model(classifier_options(config, num_classes));
  if (config.setting != FinetuneSetting::kScratch)
    load_acoustic_weights(model->acoustic_model, config.pretrained);
  return model;
}

namespace {

// `dataset_labels`: the class order of a dataset format (hear/data/datasets.h); empty: the sorted
// labels of the training clips (format manifest).
FinetuneResult finetune_on(const FinetuneConfig& config, const RunRequest& request,
                           const std::vector<data::ManifestEntry>& train_entries,
                           const std::vector<data::ManifestEntry>& valid_entries,
                           const std::vector<data::ManifestEntry>& test_entries,
                           const data::LabelMap& dataset_labels) {
  namespace fs = std::filesystem;
  StageRun run(config.run_dir, request, config.train);
  const fs::path& run_dir = run.dir();
  const bool from_dataset = dataset_labels.size() > 0;
  const auto labels = from_dataset ? dataset_labels : data::LabelMap::from_entries(train_entries);
  const std::string label_source =
      from_dataset ? "data.format " + io::to_string(config.data.format) : "the training manifest";
  for (const auto* set : {&train_entries, &valid_entries, &test_entries}) {
    for (const auto& e : *set) {
      if (e.label.empty()) throw Error("'" + e.path.string() + "' has no label");
      if (!labels.contains(e.label)) {
        throw Error("label '" + e.label + "' of '" + e.path.string() +
                    "' is not one of the classes of " + label_source);
      }
    }
  }
  if (config.model.decoder.num_classes != 0 && config.model.decoder.num_classes != labels.size()) {
    throw Error("model.decoder.num_classes is " + std::to_string(config.model.decoder.num_classes) +
                " but " + label_source + " has " + std::to_string(labels.size()) + " classes");
  }
  const bool writes = run.parallel().is_main();
  if (writes) {
    data::write_labels(run_dir / "labels.tsv", labels);
    // The exact clips of this run (with slice offsets), to rerun or audit it without the reader.
    data::write_manifest(run_dir / "splits" / "train.tsv", train_entries);
    if (!valid_entries.empty()) {
      data::write_manifest(run_dir / "splits" / "valid.tsv", valid_entries);
    }
    if (!test_entries.empty()) data::write_manifest(run_dir / "splits" / "test.tsv", test_entries);
  }

  auto model = make_classifier(config, labels.size());
  spdlog::info("setting {}: {}", io::to_string(config.setting), c10::str(*model));

  auto loader_options = config.data.loader;
  {
    // The classifier head's BatchNorm cannot train on a batch of one clip: drop an epoch's final
    // batch when it would hold a single clip (PyTorch would stop with an error there).
    const auto clips = static_cast<int64_t>(
        data::make_segments(train_entries, loader_options.segments, 0, 0).segments.size());
    if (!loader_options.sampler.drop_last && clips % loader_options.sampler.batch_size == 1) {
      loader_options.sampler.drop_last = true;
      spdlog::warn(
          "{} training clips with batch size {}: the final 1-clip batch of each epoch is "
          "dropped (BatchNorm needs at least 2 clips)",
          clips, loader_options.sampler.batch_size);
    }
  }
  data::DataLoader loader(train_entries, run.sharded(loader_options), labels);
  auto train_options = config.train;
  train_options.steps = config.epochs * loader.batches_per_epoch();
  if (train_options.steps == 0) throw Error("the training manifest yields no batch");
  const bool has_valid = !valid_entries.empty();
  spdlog::info(
      "data: {} train / {} valid / {} test clips, {} classes, {} batches per epoch, "
      "{} epochs = {} steps",
      train_entries.size(), valid_entries.size(), test_entries.size(), labels.size(),
      loader.batches_per_epoch(), config.epochs, train_options.steps);

  const audio::Frontend frontend;
  train::TrainerCallbacks callbacks;
  callbacks.train_metric_names = {"loss", "acc"};
  callbacks.loss = [&](const data::Batch& batch, int64_t) {
    const auto f = batch_features(frontend, batch);
    const at::Tensor logits = model->forward(f);
    const at::Tensor loss = torch::nn::functional::cross_entropy(logits, batch.labels);
    const double acc = (logits.argmax(-1) == batch.labels).to(torch::kDouble).mean().item<double>();
    return train::StepResult{loss, {{"loss", loss.item<double>()}, {"acc", acc}}};
  };
  if (has_valid) {
    callbacks.valid_metric_names = {"valid_loss", "valid_acc"};
    callbacks.validate = [&](int64_t) {
      const auto ev = evaluate(model, valid_entries, labels, config.data.loader, &run.parallel());
      return train::MetricValues{{"valid_loss", ev.loss}, {"valid_acc", ev.accuracy}};
    };
  }
  std::vector<torch::Tensor> params;
  for (auto& p : model->parameters()) {
    if (p.requires_grad()) params.push_back(p);
  }
  FinetuneResult result;
  result.fit = run.fit(train_options, *model, loader, callbacks, params);
  if (result.fit.interrupted) return result;

  if (has_valid && fs::exists(run.checkpoint_dir("best"))) {
    train::load_checkpoint(run.checkpoint_dir("best"), *model, nullptr);
    result.selection_rule = "best validation accuracy (epoch of checkpoints/best, first maximum)";
  } else {
    result.selection_rule = "final epoch (no validation split)";
  }
  if (has_valid) {
    result.valid = evaluate(model, valid_entries, labels, config.data.loader, &run.parallel());
    if (writes) write_evaluation(run_dir, "valid", result.valid, result.selection_rule);
    spdlog::info("valid accuracy {:.4f} ({} clips; {})", result.valid.accuracy, result.valid.clips,
                 result.selection_rule);
  }
  if (!test_entries.empty()) {
    result.test = evaluate(model, test_entries, labels, config.data.loader, &run.parallel());
    if (writes) write_evaluation(run_dir, "test", result.test, result.selection_rule);
    spdlog::info("test accuracy {:.4f} ({} clips; {})", result.test.accuracy, result.test.clips,
                 result.selection_rule);
  }
  return result;
}

}  // namespace

FinetuneResult run_finetune(const FinetuneConfig& config, const RunRequest& request) {
  io::validate_config(config);
  if (config.data.cross_validated()) {
    throw Error("data.format " + io::to_string(config.data.format) +
                " is a cross-validation set (its folds are the splits): run it with "
                "run_finetune_cv (hear-finetune does so by itself)");
  }
  if (!config.data.test_folds.empty()) {
    throw Error(
        "data.test_folds is only read for cross-validation (hear-finetune --folds, or "
        "data.format esc50)");
  }
  if (config.data.format == DataFormat::kManifest && config.data.train_manifest.empty()) {
    throw Error(
        "config key 'data.train_manifest' is required (a manifest TSV), or set "
        "data.format and data.root to read a dataset layout");
  }
  const auto splits = load_finetune_data(config.data);
  if (splits.train.empty()) {
    throw Error("data.format " + io::to_string(config.data.format) + ": no training clip in '" +
                config.data.root + "'");
  }
  for (const auto& e : splits.train) {
    if (e.label.empty()) {
      throw Error("'" + e.path.string() + "' in data.train_manifest has no label");
    }
  }
  return finetune_on(config, request, splits.train, splits.valid, splits.test, splits.labels);
}

CrossValidationResult run_finetune_cv(const FinetuneConfig& config, const RunRequest& request) {
  io::validate_config(config);
  const bool from_manifests = config.data.format == DataFormat::kManifest;
  if (!from_manifests && !config.data.cross_validated()) {
    throw Error(
        "cross-validation needs data.fold_manifests (data.format manifest) or "
        "data.format esc50; data.format is " +
        io::to_string(config.data.format));
  }
  if (from_manifests && config.data.fold_manifests.size() < 2) {
    throw Error("cross-validation needs at least 2 entries in data.fold_manifests, got " +
                std::to_string(config.data.fold_manifests.size()));
  }
  data::DatasetSplits splits;
  if (from_manifests) {
    auto data = config.data;  // only the folds are read here
    data.train_manifest = data.valid_manifest = data.test_manifest = "";
    splits = load_finetune_data(data);
  } else {
    splits = load_finetune_data(config.data);
  }
  const auto& entries = splits.folds;
  if (entries.size() < 2) {
    throw Error("cross-validation needs at least 2 folds; '" + config.data.root + "' has " +
                std::to_string(entries.size()));
  }
  std::vector<size_t> test_folds;  // 0-based
  for (const int64_t f : config.data.test_folds) {
    if (f < 1 || f > static_cast<int64_t>(entries.size())) {
      throw Error("data.test_folds: fold " + std::to_string(f) + " is outside 1.." +
                  std::to_string(entries.size()));
    }
    if (std::find(test_folds.begin(), test_folds.end(), static_cast<size_t>(f - 1)) !=
        test_folds.end()) {
      throw Error("data.test_folds: fold " + std::to_string(f) + " is listed twice");
    }
    test_folds.push_back(static_cast<size_t>(f - 1));
  }
  if (test_folds.empty()) {
    for (size_t k = 0; k < entries.size(); ++k) test_folds.push_back(k);
  }
  auto fold_name = [&](size_t k) {
    return from_manifests ? config.data.fold_manifests[k]
                          : "fold " + std::to_string(k + 1) + " of " + config.data.root;
  };
  CrossValidationResult cv;
  nlohmann::json summary = {{"folds", nlohmann::json::array()}};
  // One process group for all folds (a group per fold would rendezvous again on one port).
  auto shared_request = request;
  if (!shared_request.parallel) shared_request.parallel = join_process_group(config.train);
  for (const size_t k : test_folds) {
    std::vector<data::ManifestEntry> train_entries;
    for (size_t j = 0; j < entries.size(); ++j) {
      if (j != k) train_entries.insert(train_entries.end(), entries[j].begin(), entries[j].end());
    }
    auto fold_config = config;
    fold_config.run_dir =
        (std::filesystem::path(config.run_dir) / ("fold" + std::to_string(k + 1))).string();
    spdlog::info("=== fold {}/{}: test = {} ===", k + 1, entries.size(), fold_name(k));
    auto fold_request = shared_request;
    if (request.resume &&
        !std::filesystem::exists(std::filesystem::path(fold_config.run_dir) / "checkpoints")) {
      fold_request.resume = false;  // this fold had not started yet
    }
    auto result =
        finetune_on(fold_config, fold_request, train_entries, {}, entries[k], splits.labels);
    if (result.fit.interrupted) {
      cv.folds.push_back(result);
      return cv;
    }
    nlohmann::json fold = {
        {"fold", k + 1}, {"accuracy", result.test.accuracy}, {"clips", result.test.clips}};
    if (from_manifests) fold["test_manifest"] = config.data.fold_manifests[k];
    summary["folds"].push_back(std::move(fold));
    cv.folds.push_back(std::move(result));
  }
  double sum = 0, sq = 0;
  for (const auto& f : cv.folds) sum += f.test.accuracy;
  cv.mean_accuracy = sum / cv.folds.size();
  for (const auto& f : cv.folds)
    sq += (f.test.accuracy - cv.mean_accuracy) * (f.test.accuracy - cv.mean_accuracy);
  cv.std_accuracy = cv.folds.size() > 1 ? std::sqrt(sq / (cv.folds.size() - 1)) : 0.0;
  summary["mean_accuracy"] = cv.mean_accuracy;
  summary["std_accuracy"] = cv.std_accuracy;
  summary["num_folds"] = entries.size();
  summary["selection_rule"] = "final epoch of each fold (the held-out fold is the test set)";
  if (shared_request.parallel->is_main()) {  // data parallel: rank 0 writes
    io::write_file_atomic(std::filesystem::path(config.run_dir) / "cv.json",
                          summary.dump(2) + "\n");
  }
  spdlog::info("cross-validation: accuracy {:.4f} +- {:.4f} over {} folds", cv.mean_accuracy,
               cv.std_accuracy, cv.folds.size());
  return cv;
}

}  // namespace hear::stages
