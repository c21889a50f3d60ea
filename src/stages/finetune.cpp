#include "hear/stages/finetune.h"

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <sstream>

#include "hear/error.h"
#include "hear/io/file_util.h"
#include "hear/io/safetensors.h"
#include "hear/models/weights.h"
#include "hear/train/checkpoint.h"

namespace hear::stages {

FinetuneDataConfig::FinetuneDataConfig() {
  loader.segments.mode = "whole";
  loader.sampler.batch_size = 16;
}

void FinetuneDataConfig::define(io::ConfigSchema& s) {
  s.field("train_manifest", train_manifest, "labelled training clips (TSV manifest)");
  s.field("valid_manifest", valid_manifest, "labelled validation clips (epoch selection)");
  s.field("test_manifest", test_manifest, "labelled test clips (scored with `best`)");
  s.field("fold_manifests", fold_manifests, "cross-validation: one manifest per fold");
  s.section("loader", loader);
}

FinetuneConfig::FinetuneConfig() {
  model.decoder.num_classes = 0;  // from the training labels unless set
  train.optimizer.lr = 2e-4;      // ESC-50 (Table II)
  train.schedule.warmup_steps = 0;
  train.best_metric = "valid_acc";
  train.best_mode = "max";
  train.validate_every = 0;  // every epoch
  train.log_every = 10;
}

void FinetuneConfig::define(io::ConfigSchema& s) {
  s.field("run_dir", run_dir, "output folder (config, log, metrics, checkpoints, results)");
  s.field("setting", setting, "base | scratch | no_spectrum | transfer (paper Table IV)")
      .choices({"base", "scratch", "no_spectrum", "transfer"});
  s.field("pretrained", pretrained, "pre-trained acoustic model weights (safetensors)");
  s.field("epochs", epochs, "epochs (train.steps = epochs x batches per epoch)").min(1);
  s.section("model", model);
  s.section("data", data);
  s.section("train", train);
}

void FinetuneConfig::validate() const {
  if (setting != "scratch" && pretrained.empty()) {
    throw Error("setting '" + setting +
                "' starts from a pre-trained acoustic model: set 'pretrained' (hear-pretrain's "
                "acoustic_model.safetensors), or use setting=scratch");
  }
  train.validate();
  data.loader.segments.validate();
}

models::HearClassifier make_classifier(const FinetuneConfig& config, int64_t num_classes) {
  auto options = config.model;
  options.decoder.num_classes = num_classes;
  if (config.setting == "no_spectrum") options.use_spectrogram = false;
  if (config.setting == "transfer") options.freeze_acoustic_model = true;
  models::HearClassifier model(options);
  if (config.setting != "scratch") {
    const auto file = io::load_safetensors(config.pretrained);
    models::LoadOptions lo;
    for (const auto& [key, value] : file.tensors) {
      if (key.rfind("acoustic_model.", 0) == 0 || key.rfind("module.acoustic_model.", 0) == 0) {
        lo.prefix = "acoustic_model.";
      } else if (key.rfind("encoder.", 0) == 0 || key.rfind("module.encoder.", 0) == 0) {
        lo.prefix = "encoder.";  // a MAM checkpoint's model.safetensors
      }
    }
    models::load_state(*model->acoustic_model, file.tensors, lo, config.pretrained);
    spdlog::info("acoustic model loaded from {}", config.pretrained);
  }
  return model;
}

Evaluation evaluate(models::HearClassifier& model, const std::vector<data::ManifestEntry>& entries,
                    const data::LabelMap& labels, const data::LoaderOptions& loader_options) {
  torch::NoGradGuard no_grad;
  const bool was_training = model->is_training();
  model->eval();
  auto options = loader_options;
  options.sampler.shuffle = false;
  options.sampler.drop_last = false;
  options.sampler.bucket_pool = 0;
  options.max_epochs = 1;
  if (options.segments.crop_position == "random") options.segments.crop_position = "center";
  data::DataLoader loader(entries, options, labels);
  const audio::Frontend frontend;
  Evaluation ev;
  ev.classes = labels.names();
  const int64_t C = labels.size();
  ev.confusion.assign(C, std::vector<int64_t>(C, 0));
  double loss_sum = 0;
  while (auto batch = loader.next()) {
    const auto f = batch_features(frontend, *batch);
    const at::Tensor logits = model->forward(f);
    loss_sum += torch::nn::functional::cross_entropy(
                    logits, batch->labels,
                    torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
                    .item<double>();
    const at::Tensor predicted = logits.argmax(-1);
    for (int64_t b = 0; b < batch->size(); ++b) {
      ev.confusion[batch->labels[b].item<int64_t>()][predicted[b].item<int64_t>()] += 1;
    }
    ev.clips += batch->size();
  }
  if (ev.clips == 0) throw Error("evaluation: no clip to score");
  int64_t correct = 0;
  for (int64_t c = 0; c < C; ++c) {
    int64_t row = 0;
    for (int64_t p = 0; p < C; ++p) row += ev.confusion[c][p];
    correct += ev.confusion[c][c];
    ev.per_class_accuracy.push_back(row ? static_cast<double>(ev.confusion[c][c]) / row : NAN);
  }
  ev.accuracy = static_cast<double>(correct) / ev.clips;
  ev.loss = loss_sum / ev.clips;
  model->train(was_training);
  return ev;
}

void write_evaluation(const std::filesystem::path& dir, const std::string& name,
                      const Evaluation& ev, const std::string& selection_rule) {
  nlohmann::json j = {{"clips", ev.clips},     {"accuracy", ev.accuracy},
                      {"loss", ev.loss},       {"selection_rule", selection_rule},
                      {"classes", ev.classes}, {"confusion", ev.confusion}};
  nlohmann::json per_class = nlohmann::json::object();
  for (size_t c = 0; c < ev.classes.size(); ++c) {
    per_class[ev.classes[c]] = std::isnan(ev.per_class_accuracy[c])
                                   ? nlohmann::json(nullptr)
                                   : nlohmann::json(ev.per_class_accuracy[c]);
  }
  j["per_class_accuracy"] = per_class;
  io::write_file_atomic(dir / (name + ".json"), j.dump(2) + "\n");
  std::ostringstream csv;
  csv << "true\\predicted";
  for (const auto& c : ev.classes) csv << "," << c;
  csv << "\n";
  for (size_t r = 0; r < ev.classes.size(); ++r) {
    csv << ev.classes[r];
    for (auto v : ev.confusion[r]) csv << "," << v;
    csv << "\n";
  }
  io::write_file_atomic(dir / (name + "_confusion.csv"), csv.str());
}

namespace {

std::string labels_text(const data::LabelMap& labels) {
  std::string out;
  for (int64_t i = 0; i < labels.size(); ++i)
    out += std::to_string(i) + "\t" + labels.name(i) + "\n";
  return out;
}

FinetuneResult finetune_on(const FinetuneConfig& config, const RunRequest& request,
                           const std::vector<data::ManifestEntry>& train_entries,
                           const std::vector<data::ManifestEntry>& valid_entries,
                           const std::vector<data::ManifestEntry>& test_entries) {
  namespace fs = std::filesystem;
  const fs::path run_dir = config.run_dir;
  prepare_run_dir(run_dir, request);
  const auto labels = data::LabelMap::from_entries(train_entries);
  for (const auto* set : {&valid_entries, &test_entries}) {
    for (const auto& e : *set) {
      if (!labels.contains(e.label)) {
        throw Error("label '" + e.label + "' of '" + e.path.string() +
                    "' does not occur in the training manifest");
      }
    }
  }
  if (config.model.decoder.num_classes != 0 && config.model.decoder.num_classes != labels.size()) {
    throw Error("model.decoder.num_classes is " + std::to_string(config.model.decoder.num_classes) +
                " but the training manifest has " + std::to_string(labels.size()) + " classes");
  }
  io::write_file_atomic(run_dir / "labels.tsv", labels_text(labels));

  torch::manual_seed(config.train.seed);
  auto model = make_classifier(config, labels.size());
  spdlog::info("setting {}: {}", config.setting, c10::str(*model));

  data::DataLoader loader(train_entries, config.data.loader, labels);
  auto train_options = config.train;
  train_options.steps = config.epochs * loader.batches_per_epoch();
  if (train_options.steps == 0) throw Error("the training manifest yields no batch");
  const bool has_valid = !valid_entries.empty();
  if (!has_valid) train_options.best_metric = "";
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
      const auto ev = evaluate(model, valid_entries, labels, config.data.loader);
      return train::MetricValues{{"valid_loss", ev.loss}, {"valid_acc", ev.accuracy}};
    };
  }
  std::vector<torch::Tensor> params;
  for (auto& p : model->parameters()) {
    if (p.requires_grad()) params.push_back(p);
  }
  train::Trainer trainer(train_options, run_dir, *model, loader, callbacks, request.config_yaml,
                         params);
  if (request.resume) trainer.resume();
  FinetuneResult result;
  result.fit = trainer.fit();
  if (result.fit.interrupted) return result;

  if (has_valid && fs::exists(trainer.checkpoint_dir("best"))) {
    train::load_checkpoint(trainer.checkpoint_dir("best"), *model, nullptr);
    result.selection_rule = "best validation accuracy (epoch of checkpoints/best, first maximum)";
  } else {
    result.selection_rule = "final epoch (no validation split)";
  }
  if (has_valid) {
    result.valid = evaluate(model, valid_entries, labels, config.data.loader);
    write_evaluation(run_dir, "valid", result.valid, result.selection_rule);
    spdlog::info("valid accuracy {:.4f} ({} clips; {})", result.valid.accuracy, result.valid.clips,
                 result.selection_rule);
  }
  if (!test_entries.empty()) {
    result.test = evaluate(model, test_entries, labels, config.data.loader);
    write_evaluation(run_dir, "test", result.test, result.selection_rule);
    spdlog::info("test accuracy {:.4f} ({} clips; {})", result.test.accuracy, result.test.clips,
                 result.selection_rule);
  }
  return result;
}

}  // namespace

FinetuneResult run_finetune(const FinetuneConfig& config, const RunRequest& request) {
  config.validate();
  const auto train_entries = read_manifest_for(config.data.train_manifest, "data.train_manifest");
  std::vector<data::ManifestEntry> valid, test;
  if (!config.data.valid_manifest.empty()) {
    valid = read_manifest_for(config.data.valid_manifest, "data.valid_manifest");
  }
  if (!config.data.test_manifest.empty()) {
    test = read_manifest_for(config.data.test_manifest, "data.test_manifest");
  }
  for (const auto& e : train_entries) {
    if (e.label.empty()) {
      throw Error("'" + e.path.string() + "' in data.train_manifest has no label");
    }
  }
  return finetune_on(config, request, train_entries, valid, test);
}

CrossValidationResult run_finetune_cv(const FinetuneConfig& config, const RunRequest& request) {
  config.validate();
  const auto& folds = config.data.fold_manifests;
  if (folds.size() < 2) {
    throw Error("cross-validation needs at least 2 entries in data.fold_manifests, got " +
                std::to_string(folds.size()));
  }
  std::vector<std::vector<data::ManifestEntry>> entries;
  for (size_t k = 0; k < folds.size(); ++k) {
    entries.push_back(
        read_manifest_for(folds[k], "data.fold_manifests[" + std::to_string(k) + "]"));
  }
  CrossValidationResult cv;
  nlohmann::json summary = {{"folds", nlohmann::json::array()}};
  for (size_t k = 0; k < folds.size(); ++k) {
    std::vector<data::ManifestEntry> train_entries;
    for (size_t j = 0; j < folds.size(); ++j) {
      if (j != k) train_entries.insert(train_entries.end(), entries[j].begin(), entries[j].end());
    }
    auto fold_config = config;
    fold_config.run_dir =
        (std::filesystem::path(config.run_dir) / ("fold" + std::to_string(k + 1))).string();
    spdlog::info("=== fold {}/{}: test = {} ===", k + 1, folds.size(), folds[k]);
    auto fold_request = request;
    if (request.resume &&
        !std::filesystem::exists(std::filesystem::path(fold_config.run_dir) / "checkpoints")) {
      fold_request.resume = false;  // this fold had not started yet
    }
    auto result = finetune_on(fold_config, fold_request, train_entries, {}, entries[k]);
    if (result.fit.interrupted) {
      cv.folds.push_back(result);
      return cv;
    }
    summary["folds"].push_back({{"fold", k + 1},
                                {"test_manifest", folds[k]},
                                {"accuracy", result.test.accuracy},
                                {"clips", result.test.clips}});
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
  summary["selection_rule"] = "final epoch of each fold (the held-out fold is the test set)";
  io::write_file_atomic(std::filesystem::path(config.run_dir) / "cv.json", summary.dump(2) + "\n");
  spdlog::info("cross-validation: accuracy {:.4f} +- {:.4f} over {} folds", cv.mean_accuracy,
               cv.std_accuracy, cv.folds.size());
  return cv;
}

}  // namespace hear::stages
