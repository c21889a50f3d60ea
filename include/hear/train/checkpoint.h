#pragma once
// Checkpoints: a directory
//
//   NAME/model.safetensors      parameters and buffers, keyed by the module's state_dict names
//                               (models::module_state / models::load_weights, strict)
//   NAME/optimizer.safetensors  AdamW state per parameter name: "<name>.step" (int64 scalar),
//                               "<name>.exp_avg", "<name>.exp_avg_sq" (+ ".max_exp_avg_sq" with
//                               amsgrad); parameters that never had a gradient have no entry
//   NAME/config.yaml            the resolved config, as given
//   NAME/state.yaml             TrainState below (RNG state as base64), written last, with
//                               `files:` the size and SHA-256 of each file above
//
// Saving writes NAME.tmp/ completely, then renames NAME -> NAME.old and NAME.tmp -> NAME; NAME.old
// (the previous checkpoint) stays. Loading checks NAME against its state.yaml and falls back to
// NAME.old with a warning when NAME is missing, incomplete, truncated or corrupted, so a crash or
// a damaged file costs at most one checkpoint interval.
#include <torch/types.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>

#include "hear/data/loader.h"
#include "hear/io/safetensors.h"

namespace torch::nn {
class Module;
}
namespace torch::optim {
class AdamW;
}

namespace hear::train {

struct TrainState {
  int64_t step = 0;             // optimizer steps completed (= the schedule position)
  int64_t epoch = 0;            // epoch of the next batch
  data::LoaderPosition loader;  // the next batch to train on
  double lr = 0.0;              // learning rate of the last step (for reading only)
  int64_t skipped_batches = 0;  // non-finite losses skipped so far
  std::string best_metric;      // name of the metric `best` is chosen on ("" = none)
  std::optional<double> best_value;
  int64_t best_step = -1;
  std::string torch_rng;                     // torch's default CPU generator state, base64
  std::map<std::string, std::string> extra;  // stage-specific values (e.g. Gumbel temperature)
};

// Doubles in `extra` and state.yaml are written exactly (util::format_double_exact), so they
// round-trip.
std::string format_double(double v);
double parse_double(const std::string& text, const std::string& what);  // throws naming `what`

std::string get_torch_rng_state();  // base64 of the default CPU generator state
void set_torch_rng_state(const std::string& base64);

io::TensorMap optimizer_state(const torch::optim::AdamW& optimizer, const torch::nn::Module& model);
void load_optimizer_state(torch::optim::AdamW& optimizer, const torch::nn::Module& model,
                          const io::TensorMap& tensors, const std::string& source);

std::string train_state_to_yaml(const TrainState& state);
TrainState train_state_from_yaml(const std::string& text, const std::string& source);

// `optimizer` may be null (weights-only checkpoint, e.g. an export).
void save_checkpoint(const std::filesystem::path& dir, const torch::nn::Module& model,
                     const torch::optim::AdamW* optimizer, const TrainState& state,
                     const std::string& config_yaml);

struct LoadedCheckpoint {
  std::filesystem::path dir;  // the directory actually read (NAME or NAME.old)
  TrainState state;
  std::string config_yaml;
};

// Restores the model (strict) and, when given, the optimizer. Does not touch the RNG: call
// set_torch_rng_state(state.torch_rng) when resuming. Throws hear::Error naming the file at fault.
LoadedCheckpoint load_checkpoint(const std::filesystem::path& dir, torch::nn::Module& model,
                                 torch::optim::AdamW* optimizer);

// What is wrong with checkpoint directory `dir` ("" when it is complete and every file matches
// the size and SHA-256 its state.yaml records), e.g. "model.safetensors has 12 bytes, state.yaml
// says 4096 (truncated?)".
std::string checkpoint_problem(const std::filesystem::path& dir);

// NAME if it is intact, else NAME.old (with a warning saying what is wrong with NAME); throws
// naming both problems when neither is usable.
std::filesystem::path resolve_checkpoint_dir(const std::filesystem::path& dir);

}  // namespace hear::train
