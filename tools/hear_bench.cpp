// hear-bench: the paper's efficiency columns on this machine — parameters per module, MACs and
// FLOPs per module for a clip length, and the real-time factor (compute time / audio duration)
// of the full model and of each stage, batch 1, one thread by default.
#include <ATen/Parallel.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "hear/bench/inference_bench.h"
#include "hear/bench/train_bench.h"
#include "hear/io/config.h"
#include "hear/io/file_util.h"
#include "hear/util/device.h"
#include "tool_common.h"

namespace {

// scripts/reference_rtf.py: $HEAR_SOURCE_DIR/scripts/ when that is set (a source checkout), else
// ../share/hear/scripts/ next to this program (installed, and mirrored in the build tree).
std::string default_reference_script() {
  if (const char* src = std::getenv("HEAR_SOURCE_DIR"); src && *src) {
    return (std::filesystem::path(src) / "scripts" / "reference_rtf.py").string();
  }
  std::error_code ec;
  const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  return (exe.parent_path().parent_path() / "share/hear/scripts/reference_rtf.py").string();
}

// Runs a reference timing script and returns the JSON object it prints.
nlohmann::json run_reference(const std::string& cmd, bool quiet) {
  if (!quiet) std::printf("reference: %s\n", cmd.c_str());
  FILE* pipe = ::popen(cmd.c_str(), "r");
  std::string text;
  char buf[4096];
  while (pipe && std::fgets(buf, sizeof buf, pipe)) text += buf;
  const int status = pipe ? ::pclose(pipe) : -1;
  if (status != 0 || text.find('{') == std::string::npos) {
    throw hear::Error("reference timing failed (" + cmd + "):\n" + text);
  }
  return nlohmann::json::parse(text.substr(text.find('{')));
}

}  // namespace

int main(int argc, char** argv) {
  return hear::tools::run_tool("hear-bench", [&]() -> int {
    CLI::App app{"HEAR efficiency benchmark: parameters, MACs/GFLOPs and real-time factor"};
    std::string config_path, json_path, sweep_text, reference_path, train_stage;
    int64_t batch = 8;
    int train_steps = 5, profile_top = 0;
    std::string precision = "fp32", device = "cpu";
    bool profile_shapes = false;
    std::string reference_script = default_reference_script();
    std::vector<std::string> overrides;
    double seconds = 10.0;
    int threads = 1, warmup = 3, runs = 10;
    int64_t classes = 50;
    bool no_timing = false, no_executed = false, int8 = false;
    app.add_option("--config", config_path,
                   "model config YAML (HearClassifier keys: acoustic_model.*, task_model.*, ...)");
    app.add_option("overrides", overrides, "dotted overrides, e.g. acoustic_model.hidden_size=256");
    app.add_option("--classes", classes, "classifier outputs (paper: ESC-50's 50)")
        ->check(CLI::PositiveNumber);
    app.add_option("--seconds", seconds, "clip length in seconds")->check(CLI::PositiveNumber);
    app.add_option("--sweep", sweep_text, "comma-separated clip lengths, e.g. 1,6,10,30,60,600");
    app.add_option("--threads", threads, "intra-op threads")->check(CLI::PositiveNumber);
    app.add_option("--warmup", warmup, "untimed runs first")->check(CLI::NonNegativeNumber);
    app.add_option("--runs", runs, "timed runs (median and p90 reported)")
        ->check(CLI::PositiveNumber);
    app.add_option("--json", json_path, "also write the results as JSON ('-' = stdout only)");
    app.add_flag("--no-timing", no_timing, "parameters and MACs only");
    app.add_flag("--int8", int8,
                 "also time every stage with int8 linear layers (oneDNN dynamic quantization) "
                 "and report the speed-up and the float32 / int8 output cosine");
    app.add_flag("--no-executed-count", no_executed,
                 "skip the cross-check of the MACs against the products a forward executes");
    app.add_option("--compare-reference", reference_path,
                   "a checkout of the official HEAR code: time it on the same work "
                   "(scripts/reference_rtf.py; with --train scripts/reference_train_step.py)");
    app.add_option("--reference-script", reference_script,
                   "reference_rtf.py for --compare-reference (default: $HEAR_SOURCE_DIR/scripts/, "
                   "else ../share/hear/scripts/ beside the program)")
        ->capture_default_str();
    app.add_option("--train", train_stage,
                   "time optimizer steps of a training stage instead: tokenizer | pretrain | "
                   "finetune (paper sizes; --config/overrides set that stage's model keys)")
        ->check(CLI::IsMember(hear::io::enum_choices<hear::bench::TrainStage>()));
    app.add_option("--batch", batch, "--train: clips per step")->check(CLI::PositiveNumber);
    app.add_option("--steps", train_steps, "--train: timed steps")->check(CLI::PositiveNumber);
    app.add_option("--profile", profile_top,
                   "--train: profile one more step by LibTorch operator, print this many rows")
        ->check(CLI::PositiveNumber);
    app.add_option("--precision", precision,
                   "--train: forward pass fp32 | bf16 (autocast) | fp16 (CUDA autocast)")
        ->check(CLI::IsMember(hear::io::enum_choices<hear::train::Precision>()));
    app.add_option("--device", device, "cpu | cuda | cuda:N (needs a CUDA LibTorch build)");
    app.add_flag("--profile-shapes", profile_shapes,
                 "--train --profile: group by operator and input shapes");
    HEAR_PARSE(app, argc, argv);

    at::set_num_threads(threads);
    const c10::Device where = hear::util::parse_device(device, "--device");
    const std::optional<std::filesystem::path> config_file =
        config_path.empty() ? std::nullopt : std::optional<std::filesystem::path>(config_path);
    if (!train_stage.empty()) {
      hear::bench::TrainBenchOptions train;
      train.stage = hear::io::parse_enum<hear::bench::TrainStage>(train_stage, "--train");
      train.batch = batch;
      train.seconds = seconds;
      train.steps = train_steps;
      train.warmup = std::min(warmup, 1);
      train.classes = classes;
      train.profile_top = profile_top;
      train.profile_shapes = profile_shapes;
      train.precision = hear::io::parse_enum<hear::train::Precision>(precision, "--precision");
      train.device = where;
      switch (train.stage) {
        case hear::bench::TrainStage::kTokenizer:
          hear::io::load_config_into(train.tokenizer, config_file, overrides);
          break;
        case hear::bench::TrainStage::kPretrain:
          hear::io::load_config_into(train.mam, config_file, overrides);
          break;
        case hear::bench::TrainStage::kFinetune:
          hear::io::load_config_into(train.classifier, config_file, overrides);
          break;
      }
      const bool quiet = json_path == "-";
      const auto report = hear::bench::run_train_bench(train);
      if (!quiet) std::printf("%s", report.text.c_str());
      auto out = nlohmann::json::parse(report.json);
      if (!reference_path.empty()) {
        // The official code's same step, on this machine, in the same run.
        const auto script =
            std::filesystem::path(reference_script).parent_path() / "reference_train_step.py";
        const auto ref = run_reference(
            "/usr/bin/python3 '" + script.string() + "' --repo '" + reference_path + "' --stage " +
                train_stage + " --batch " + std::to_string(batch) + " --seconds " +
                std::to_string(seconds) + " --threads " + std::to_string(threads) + " --steps " +
                std::to_string(train_steps) + " --warmup " + std::to_string(train.warmup) +
                " --classes " + std::to_string(classes),
            quiet);
        const double ours = out["train"]["median_step_s"].get<double>();
        const double theirs = ref["median_step_s"].get<double>();
        out["train"]["reference"] = ref;
        out["train"]["ratio_to_reference"] = ours / theirs;
        if (!quiet) {
          std::printf(
              "  reference %.4f s per step (official code, torch %s): ours / reference = %.2f\n",
              theirs, ref.value("torch", "?").c_str(), ours / theirs);
        }
      }
      if (quiet) std::printf("%s\n", out.dump(2).c_str());
      if (!json_path.empty() && !quiet) hear::io::write_file_atomic(json_path, out.dump(2) + "\n");
      return 0;
    }
    hear::bench::InferenceBenchOptions bench;
    bench.device = where;
    bench.model.decoder.num_classes = classes;
    hear::io::load_config_into(
        bench.model,
        config_path.empty() ? std::nullopt : std::optional<std::filesystem::path>(config_path),
        overrides);
    if (!sweep_text.empty()) {
      bench.seconds = hear::bench::parse_seconds_list(sweep_text, "--sweep");
    } else {
      bench.seconds = {seconds};
    }
    bench.warmup = warmup;
    bench.runs = runs;
    bench.timing = !no_timing;
    bench.int8 = int8;
    bench.executed_check = !no_executed;
    const auto& lengths = bench.seconds;
    const bool quiet = json_path == "-";
    const auto report = hear::bench::run_inference_bench(bench);
    if (!quiet) std::printf("%s", report.text.c_str());
    auto out = nlohmann::json::parse(report.json);

    if (!reference_path.empty()) {
      const std::string& script = reference_script;
      const std::string cmd = "/usr/bin/python3 '" + script + "' --repo '" + reference_path +
                              "' --seconds " + std::to_string(lengths.front()) + " --threads " +
                              std::to_string(threads) + " --runs " + std::to_string(runs);
      out["reference"] = run_reference(cmd, quiet);
      if (!quiet) std::printf("%s\n", out["reference"].dump(2).c_str());
    }

    if (!json_path.empty()) {
      if (json_path == "-") {
        std::printf("%s\n", out.dump(2).c_str());
      } else {
        hear::io::write_file_atomic(json_path, out.dump(2) + "\n");
      }
    }
    return 0;
  });
}
