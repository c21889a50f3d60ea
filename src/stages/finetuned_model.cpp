#include "hear/stages/finetuned_model.h"

#include <torch/torch.h>

#include "hear/error.h"
#include "hear/io/file_util.h"
#include "hear/models/weights.h"
#include "hear/train/checkpoint.h"

namespace hear::stages {

FinetunedModel load_finetuned(const std::filesystem::path& run_dir, const std::string& which) {
  namespace fs = std::filesystem;
  FinetunedModel out;
  const fs::path named =
      which == "best" || which == "last" ? run_dir / "checkpoints" / which : fs::path(which);
  out.checkpoint = train::resolve_checkpoint_dir(named);
  const fs::path config_file = out.checkpoint / "config.yaml";
  out.config =
      io::config_from_yaml_text<FinetuneConfig>(io::read_file(config_file), config_file.string());
  out.labels = data::read_labels(run_dir / "labels.tsv");
  out.model = models::HearClassifier(classifier_options(out.config, out.labels.size()));
  models::load_weights(*out.model, out.checkpoint / "model.safetensors");
  out.model->eval();
  return out;
}

}  // namespace hear::stages
