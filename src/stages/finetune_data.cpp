// The data section of stage 3: where the splits come from (manifests or a dataset layout) and
// reading them.
#include <spdlog/spdlog.h>

#include <map>

#include "hear/error.h"
#include "hear/stages/finetune.h"

namespace hear::stages {

FinetuneDataConfig::FinetuneDataConfig() {
  loader.segments.mode = data::SegmentMode::kWhole;
  // Every labelled clip counts (Speech Commands has clips under 1 s; pre-training's 1 s rule does
  // not apply here).
  loader.segments.min_seconds = 0.0;
  loader.sampler.batch_size = 16;
}

void FinetuneDataConfig::define(io::ConfigSchema& s) {
  s.field("format", format,
          "where the splits come from: manifest (the *_manifest keys) or a dataset layout under "
          "data.root: esc50 | speech_commands | voxceleb1");
  s.field("root", root, "dataset folder (formats esc50, speech_commands, voxceleb1)");
  s.field("protocol", protocol,
          "speech_commands: gscv1 (12-class KS1: 10 words + _unknown_ + _silence_) | gscv2 (35 words)");
  s.field("test_root", test_root,
          "speech_commands: separate test set (speech_commands_test_set_v0.0X); empty: "
          "testing_list.txt");
  s.field("test_folds", test_folds,
          "cross-validation: folds (1-based) held out as test folds, one run each; empty: all")
      .min(1);
  s.field("train_manifest", train_manifest, "labelled training clips (TSV manifest)");
  s.field("valid_manifest", valid_manifest, "labelled validation clips (epoch selection)");
  s.field("test_manifest", test_manifest, "labelled test clips (scored with `best`)");
  s.field("fold_manifests", fold_manifests, "cross-validation: one manifest per fold");
  data::define_on_error(s, loader.on_error);
  s.section("loader", loader);
}

void FinetuneDataConfig::validate(const io::ConfigCheck&) const {
  const std::string format = io::to_string(this->format);
  if (this->format == DataFormat::kManifest) {
    for (const auto& [key, value] : {std::pair<const char*, bool>{"root", !root.empty()},
                                     {"protocol", protocol != ScProtocol::kNone},
                                     {"test_root", !test_root.empty()}}) {
      if (value) {
        throw Error(std::string("data.") + key + " is only read with data.format esc50, " +
                    "speech_commands or voxceleb1 (data.format is manifest): set data.format or " +
                    "remove data." + key);
      }
    }
    return;
  }
  static const std::map<std::string, std::string> kRootDoc = {
      {"esc50", "the ESC-50-master folder with audio/ and meta/esc50.csv"},
      {"speech_commands", "the speech_commands_v0.0X folder"},
      {"voxceleb1", "the VoxCeleb1 folder with iden_split.txt and */wav/"}};
  if (root.empty()) {
    throw Error("data.format " + format + " needs data.root (" + kRootDoc.at(format) + ")");
  }
  for (const auto& [key, value] :
       {std::pair<const char*, const std::string*>{"train_manifest", &train_manifest},
        {"valid_manifest", &valid_manifest},
        {"test_manifest", &test_manifest}}) {
    if (!value->empty()) {
      throw Error(std::string("data.") + key + " is not read with data.format " + format +
                  " (the splits come from data.root): remove it, or use data.format manifest");
    }
  }
  if (!fold_manifests.empty()) {
    throw Error("data.fold_manifests is not read with data.format " + format +
                " (the splits come from data.root): remove it, or use data.format manifest");
  }
  if (this->format == DataFormat::kSpeechCommands) {
    if (protocol == ScProtocol::kNone) {
      throw Error(
          "data.format speech_commands needs data.protocol: gscv1 (12-class KS1: 10 words + _unknown_ + _silence_) "
          "or gscv2 (35 words)");
    }
  } else if (protocol != ScProtocol::kNone) {
    throw Error("data.protocol is only read with data.format speech_commands (data.format is " +
                format + ")");
  }
  if (!test_root.empty() && this->format != DataFormat::kSpeechCommands) {
    throw Error("data.test_root is only read with data.format speech_commands (data.format is " +
                format + ")");
  }
  if (!test_folds.empty() && this->format != DataFormat::kEsc50) {
    throw Error(
        "data.test_folds is only read for cross-validation (data.format esc50, or "
        "data.fold_manifests with --folds); data.format is " +
        format);
  }
}

data::DatasetSplits load_finetune_data(const FinetuneDataConfig& data) {
  io::validate_config(data, "data");
  data::DatasetSplits splits;
  if (data.format == DataFormat::kManifest) {
    if (!data.train_manifest.empty()) {
      splits.train = read_manifest_for(data.train_manifest, "data.train_manifest");
    }
    if (!data.valid_manifest.empty()) {
      splits.valid = read_manifest_for(data.valid_manifest, "data.valid_manifest");
    }
    if (!data.test_manifest.empty()) {
      splits.test = read_manifest_for(data.test_manifest, "data.test_manifest");
    }
    for (size_t k = 0; k < data.fold_manifests.size(); ++k) {
      splits.folds.push_back(read_manifest_for(data.fold_manifests[k],
                                               "data.fold_manifests[" + std::to_string(k) + "]"));
    }
    return splits;
  }
  try {
    if (data.format == DataFormat::kEsc50) {
      splits = data::read_esc50(data.root);
    } else if (data.format == DataFormat::kVoxceleb1) {
      splits = data::read_voxceleb1(data.root);
    } else {
      data::SpeechCommandsOptions options;
      options.root = data.root;
      options.protocol = io::to_string(data.protocol);
      options.test_root = data.test_root;
      splits = data::read_speech_commands(options);
    }
  } catch (const Error& e) {
    throw Error(std::string(e.what()) + " (data.format " + io::to_string(data.format) +
                ", data.root '" + data.root + "')");
  }
  for (const auto& note : splits.notes) spdlog::info("data: {}", note);
  if (splits.labels.size() == 0) {
    throw Error("data.format " + io::to_string(data.format) + ": '" + data.root +
                "' yields no class");
  }
  return splits;
}

}  // namespace hear::stages
