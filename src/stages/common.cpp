#include "hear/stages/common.h"

#include <spdlog/spdlog.h>

#include "hear/error.h"
#include "hear/io/file_util.h"
#include "hear/train/metrics.h"

namespace hear::stages {

std::vector<data::ManifestEntry> read_manifest_for(const std::string& path, const std::string& key,
                                                   bool allow_empty) {
  if (path.empty()) throw Error("config key '" + key + "' is required (a manifest TSV)");
  try {
    data::ReadManifestOptions options;
    options.allow_empty = allow_empty;
    return data::read_manifest(path, options);
  } catch (const Error& e) {
    throw Error(std::string(e.what()) + " (from config key '" + key + "')");
  }
}

void prepare_run_dir(const std::filesystem::path& run_dir, const RunRequest& request) {
  namespace fs = std::filesystem;
  if (!request.resume && fs::exists(run_dir / "checkpoints" / "last")) {
    throw Error("run directory '" + run_dir.string() +
                "' already holds a run (checkpoints/last); resume it with --resume or choose "
                "another run_dir");
  }
  if (request.resume && !fs::exists(run_dir / "checkpoints" / "last") &&
      !fs::exists(run_dir / "checkpoints" / "last.old")) {
    throw Error("cannot resume: '" + (run_dir / "checkpoints" / "last").string() + "' not found");
  }
  fs::create_directories(run_dir);
  io::write_file_atomic(run_dir / "config.yaml", request.config_yaml);
  train::add_log_file(run_dir);
}

audio::Features batch_features(const audio::Frontend& frontend, const data::Batch& batch) {
  return frontend(batch.waveforms, batch.lengths);
}

}  // namespace hear::stages
