#include "hear/stages/evaluation.h"

#include <torch/torch.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "hear/audio/frontend.h"
#include "hear/error.h"
#include "hear/io/file_util.h"
#include "hear/nn/util.h"
#include "hear/stages/common.h"

namespace hear::stages {

Evaluation evaluate(models::HearClassifier& model, const std::vector<data::ManifestEntry>& entries,
                    const data::LabelMap& labels, const data::LoaderOptions& loader_options,
                    const train::DataParallel* parallel) {
  for (const auto& e : entries) {
    if (!labels.contains(e.label)) {
      throw Error("label '" + e.label + "' of '" + e.path.string() +
                  "' is not one of the model's classes (" + std::to_string(labels.size()) +
                  " in labels.tsv)");
    }
  }
  torch::NoGradGuard no_grad;
  const bool was_training = model->is_training();
  model->eval();
  const int world = parallel ? parallel->world_size() : 1;
  std::vector<data::ManifestEntry> mine;
  for (size_t i = parallel ? static_cast<size_t>(parallel->rank()) : 0; i < entries.size();
       i += static_cast<size_t>(world)) {
    mine.push_back(entries[i]);
  }
  const audio::Frontend frontend;
  const c10::Device device = nn::module_device(*model);  // batches go where the model is
  Evaluation ev;
  ev.classes = labels.names();
  const int64_t C = labels.size();
  ev.confusion.assign(C, std::vector<int64_t>(C, 0));
  double loss_sum = 0;
  std::optional<data::DataLoader> scored;
  if (!mine.empty()) scored.emplace(mine, evaluation_loader_options(loader_options), labels);
  while (scored) {
    auto batch = scored->next();
    if (!batch) break;
    const auto f = batch_features(frontend, *batch, device);
    const at::Tensor logits = model->forward(f);
    loss_sum += torch::nn::functional::cross_entropy(
                    logits, batch->labels.to(device),
                    torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
                    .item<double>();
    const at::Tensor predicted = logits.argmax(-1).cpu();
    for (int64_t b = 0; b < batch->size(); ++b) {
      ev.confusion[batch->labels[b].item<int64_t>()][predicted[b].item<int64_t>()] += 1;
    }
    ev.clips += batch->size();
  }
  if (world > 1) {  // the counts of every rank (exact in float64 up to 2^53 clips)
    std::vector<double> counts;
    for (const auto& row : ev.confusion) counts.insert(counts.end(), row.begin(), row.end());
    counts.push_back(loss_sum);
    counts.push_back(static_cast<double>(ev.clips));
    counts = parallel->sum(counts);
    for (int64_t c = 0; c < C; ++c) {
      for (int64_t p = 0; p < C; ++p) {
        ev.confusion[c][p] = static_cast<int64_t>(counts[static_cast<size_t>(c * C + p)]);
      }
    }
    loss_sum = counts[static_cast<size_t>(C * C)];
    ev.clips = static_cast<int64_t>(counts[static_cast<size_t>(C * C + 1)]);
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

}  // namespace hear::stages
