#include <gtest/gtest.h>
#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <set>

#include "hear/audio/audio_file.h"
#include "hear/data/manifest.h"
#include "hear/error.h"
#include "hear/io/config.h"
#include "hear/io/file_util.h"
#include "hear/stages/finetune.h"
#include "test_util.h"

namespace hear::stages {
namespace {

namespace fs = std::filesystem;

// An ESC-50 copy with 3 classes whose target order differs from the alphabet (rain, dog,
// crackling_fire) and 2 clips of 0.5 s per class and fold. One fold-1 clip is named "3-..." (the
// CSV's fold column decides). Returns the file names of fold 1.
std::set<std::string> make_finetune_esc50(const fs::path& root) {
  const std::vector<std::pair<std::string, double>> classes = {
      {"rain", 300.0}, {"dog", 900.0}, {"crackling_fire", 2700.0}};
  std::string csv = "filename,fold,target,category,esc10,src_file,take\n";
  std::set<std::string> fold1;
  int src = 1000;
  for (int fold = 1; fold <= 5; ++fold) {
    for (size_t target = 0; target < classes.size(); ++target) {
      for (const char* take : {"A", "B"}) {
        ++src;
        const int prefix = fold == 1 && target == 1 && take[0] == 'B' ? 3 : fold;
        const std::string name = std::to_string(prefix) + "-" + std::to_string(src) + "-" + take +
                                 "-" + std::to_string(target) + ".wav";
        const double hz = classes[target].second;
        audio::write_audio(
            root / "audio" / name,
            (torch::sin(torch::arange(8000, torch::kDouble) * (2 * M_PI * hz / 16000)) * 0.3)
                .to(torch::kFloat),
            16000);
        csv += name + "," + std::to_string(fold) + "," + std::to_string(target) + "," +
               classes[target].first + ",False," + std::to_string(src) + "," + take + "\n";
        if (fold == 1) fold1.insert(name);
      }
    }
  }
  io::write_file_atomic(root / "meta" / "esc50.csv", csv);
  return fold1;
}

FinetuneConfig finetune_tiny_config(const std::vector<std::string>& overrides) {
  FinetuneConfig config;
  io::load_config_into(config, fs::path(HEAR_SOURCE_DIR) / "configs" / "finetune_tiny.yaml",
                       overrides);
  return config;
}

// The run adds RUN_DIR/log.txt to the default logger; drop it again when the test ends.
struct FinetuneLogSinkGuard {
  size_t sinks = spdlog::default_logger()->sinks().size();
  ~FinetuneLogSinkGuard() { spdlog::default_logger()->sinks().resize(sinks); }
};

TEST(FinetuneDatasets, Esc50FormatRunsTheChosenFoldWithDatasetClassOrder) {
  test::TempDir dir;
  const fs::path root = dir / "ESC-50-master";
  const auto fold1 = make_finetune_esc50(root);
  const fs::path run_dir = dir / "run";
  auto config = finetune_tiny_config({"run_dir=" + run_dir.string(), "setting=scratch", "epochs=1",
                                      "data.format=esc50", "data.root=" + root.string(),
                                      "data.test_folds=[1]", "train.threads=2"});
  FinetuneLogSinkGuard guard;
  const auto cv = run_finetune_cv(config, RunRequest{false, io::config_to_yaml(config), nullptr});
  ASSERT_EQ(cv.folds.size(), 1u);  // only fold 1 held out
  EXPECT_EQ(cv.folds[0].test.clips, 6);
  EXPECT_EQ(cv.std_accuracy, 0.0);
  EXPECT_EQ(cv.mean_accuracy, cv.folds[0].test.accuracy);
  EXPECT_FALSE(fs::exists(run_dir / "fold2"));

  const fs::path fold_dir = run_dir / "fold1";
  // Class order by target, not alphabetical.
  EXPECT_EQ(io::read_file(fold_dir / "labels.tsv"), "0\train\n1\tdog\n2\tcrackling_fire\n");
  // The saved splits: fold 1 (by the CSV, whatever the file names say) is the test set, the
  // other folds the training set; no validation split in cross-validation.
  const auto test = data::read_manifest(fold_dir / "splits" / "test.tsv");
  const auto train = data::read_manifest(fold_dir / "splits" / "train.tsv");
  EXPECT_FALSE(fs::exists(fold_dir / "splits" / "valid.tsv"));
  std::set<std::string> test_names, train_names;
  for (const auto& e : test) {
    test_names.insert(e.path.filename().string());
    EXPECT_EQ(e.num_samples, 8000);
  }
  for (const auto& e : train) train_names.insert(e.path.filename().string());
  EXPECT_EQ(test_names, fold1);
  EXPECT_EQ(train.size(), 24u);
  for (const auto& name : train_names) EXPECT_EQ(fold1.count(name), 0u) << name;
  EXPECT_EQ(test_names.count("3-1004-B-1.wav"), 1u);

  const auto summary = nlohmann::json::parse(io::read_file(run_dir / "cv.json"));
  ASSERT_EQ(summary["folds"].size(), 1u);
  EXPECT_EQ(summary["folds"][0]["fold"], 1);
  EXPECT_EQ(summary["num_folds"], 5);
  const auto test_json = nlohmann::json::parse(io::read_file(fold_dir / "test.json"));
  EXPECT_EQ(test_json["classes"], (std::vector<std::string>{"rain", "dog", "crackling_fire"}));
  EXPECT_EQ(test_json["clips"], 6);
}

TEST(FinetuneDatasets, DataKeysAreCheckedAgainstTheFormat) {
  test::TempDir dir;
  FinetuneLogSinkGuard guard;
  const std::string run = "run_dir=" + (dir / "run").string();
  // Data-key errors surface when the config is loaded (FinetuneDataConfig::validate runs inside
  // the schema), the others when the run starts; both are covered by loading inside the lambda.
  auto run_cv = [&](const std::vector<std::string>& o) {
    auto overrides = o;
    overrides.push_back(run);
    overrides.push_back("setting=scratch");
    return [overrides] { run_finetune_cv(finetune_tiny_config(overrides), RunRequest{}); };
  };
  auto run_one = [&](const std::vector<std::string>& o) {
    auto overrides = o;
    overrides.push_back(run);
    overrides.push_back("setting=scratch");
    return [overrides] { run_finetune(finetune_tiny_config(overrides), RunRequest{}); };
  };
  // A config built in C++ gets the same checks from the stage's entry check.
  auto hand = finetune_tiny_config({run, "setting=scratch"});
  hand.data.format = DataFormat::kEsc50;  // without data.root
  test::expect_error_containing(
      [&] {
        run_finetune_cv(hand, RunRequest{});
      },
      {"data.root", "esc50"});
  hand.data.format = DataFormat::kManifest;
  hand.setting = FinetuneSetting::kBase;  // without pretrained
  test::expect_error_containing([&] { run_finetune(hand, RunRequest{}); }, {"pretrained"});
  test::expect_error_containing(run_cv({"data.format=esc50"}), {"data.root", "esc50"});
  test::expect_error_containing(run_one({"data.format=voxceleb1"}), {"data.root", "voxceleb1"});
  test::expect_error_containing(run_one({"data.format=speech_commands", "data.root=x"}),
                                {"data.protocol", "gscv1"});
  test::expect_error_containing(
      run_cv({"data.format=esc50", "data.root=x", "data.train_manifest=t.tsv"}),
      {"data.train_manifest"});
  test::expect_error_containing(run_one({"data.root=x"}), {"data.root", "data.format"});
  test::expect_error_containing(
      run_one({"data.format=voxceleb1", "data.root=x", "data.test_root=y"}), {"data.test_root"});
  test::expect_error_containing(
      run_one({"data.format=voxceleb1", "data.root=x", "data.protocol=gscv1"}), {"data.protocol"});
  test::expect_error_containing(
      run_one({"data.format=voxceleb1", "data.root=x", "data.test_folds=[1]"}),
      {"data.test_folds"});
  test::expect_error_containing(run_cv({"data.format=voxceleb1", "data.root=x"}),
                                {"cross-validation", "voxceleb1"});
  test::expect_error_containing(run_one({}), {"data.train_manifest"});
  EXPECT_THROW(finetune_tiny_config({"data.formt=esc50"}), Error);
  test::expect_error_containing([] { finetune_tiny_config({"data.format=esc"}); }, {"data.format"});

  // The layout is read (and its errors surface) before any training.
  const fs::path root = dir / "esc";
  make_finetune_esc50(root);
  test::expect_error_containing(run_one({"data.format=esc50", "data.root=" + root.string()}),
                                {"run_finetune_cv"});
  test::expect_error_containing(
      run_cv({"data.format=esc50", "data.root=" + root.string(), "data.test_folds=[6]"}),
      {"data.test_folds", "fold 6", "1..5"});
  fs::remove(root / "audio" / "2-1007-A-0.wav");
  test::expect_error_containing(run_cv({"data.format=esc50", "data.root=" + root.string()}),
                                {"esc50.csv:8:", "2-1007-A-0.wav", "data.format esc50"});
  EXPECT_FALSE(fs::exists(dir / "run" / "fold1" / "checkpoints"));
}

}  // namespace
}  // namespace hear::stages
