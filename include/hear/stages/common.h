#pragma once
// What the three stage programs share around the Trainer: data sections of the configs, run
// directory set-up, and moving a batch through the frontend.
#include <ATen/core/Tensor.h>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "hear/audio/frontend.h"
#include "hear/data/loader.h"
#include "hear/data/manifest.h"
#include "hear/io/config.h"

namespace hear::stages {

// How a stage is started: fresh, or continuing RUN_DIR/checkpoints/last.
struct RunRequest {
  bool resume = false;
  std::string config_yaml;  // the resolved config, stored in the run dir and every checkpoint
};

// Reads a manifest (paths checked), erroring with the config key that named it.
std::vector<data::ManifestEntry> read_manifest_for(const std::string& path, const std::string& key,
                                                   bool allow_empty = false);

// Creates RUN_DIR, writes RUN_DIR/config.yaml (atomically) and adds RUN_DIR/log.txt to the log.
// Refuses to start a fresh run over an existing run's checkpoints (resume it, or pick another
// run_dir).
void prepare_run_dir(const std::filesystem::path& run_dir, const RunRequest& request);

// Frontend features of a batch: waveforms (B, S) with lengths (B,) samples.
audio::Features batch_features(const audio::Frontend& frontend, const data::Batch& batch);

}  // namespace hear::stages
