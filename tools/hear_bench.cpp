// hear-bench: the paper's efficiency columns on this machine — parameters per module, MACs and
// FLOPs per module for a clip length, and the real-time factor (compute time / audio duration)
// of the full model and of each stage, batch 1, one thread by default.
#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "hear/audio/frontend.h"
#include "hear/bench/cost_model.h"
#include "hear/bench/machine.h"
#include "hear/bench/op_counter.h"
#include "hear/bench/timing.h"
#include "hear/io/config.h"
#include "hear/io/file_util.h"
#include "hear/models/hear_classifier.h"
#include "hear/models/tokenizer.h"
#include "hear/nn/util.h"
#include "tool_common.h"

namespace {

using hear::bench::TimingStats;

struct StageTimes {
  double seconds = 0.0;                       // clip duration
  std::map<std::string, TimingStats> stages;  // frontend, acoustic_model, ..., total
};

// One forward pass split into its stages, each timed on its own.
StageTimes time_stages(hear::models::HearClassifier& model, double seconds, int warmup, int runs,
                       uint64_t seed) {
  torch::InferenceMode guard;
  torch::manual_seed(seed);
  const int64_t samples = static_cast<int64_t>(std::llround(seconds * 16000));
  const at::Tensor wave = torch::randn({1, samples}) * 0.1;
  const at::Tensor lengths = torch::tensor({samples}, torch::kLong);
  hear::audio::Frontend frontend;
  const bool gate = model->options().use_spectrogram;
  std::map<std::string, std::vector<double>> acc;
  auto clock = [] { return std::chrono::steady_clock::now(); };
  auto secs = [](auto a, auto b) { return std::chrono::duration<double>(b - a).count(); };
  for (int i = 0; i < warmup + runs; ++i) {
    const auto t0 = clock();
    const auto f = frontend(wave, lengths);
    const auto t1 = clock();
    auto acoustic = model->acoustic_model->forward(f.log_mel, f.lengths);
    const auto t2 = clock();
    at::Tensor mixed =
        gate ? model->spectrogram_mixture->forward(acoustic.values, f.log_power) : acoustic.values;
    const auto t3 = clock();
    const at::Tensor task = model->task_model->forward(mixed, acoustic.lengths);
    const auto t4 = clock();
    const at::Tensor logits = model->decoder->forward(task, acoustic.lengths);
    const auto t5 = clock();
    if (i < warmup) continue;
    acc["frontend"].push_back(secs(t0, t1));
    acc["acoustic_model"].push_back(secs(t1, t2));
    if (gate) acc["spectrogram_mixture"].push_back(secs(t2, t3));
    acc["task_model"].push_back(secs(t3, t4));
    acc["decoder"].push_back(secs(t4, t5));
    acc["total"].push_back(secs(t0, t5));
  }
  StageTimes out;
  out.seconds = seconds;
  for (auto& [name, v] : acc) out.stages[name] = hear::bench::summarize(v);
  return out;
}

std::vector<double> parse_sweep(const std::string& text) {
  std::vector<double> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    try {
      size_t used = 0;
      const double v = std::stod(item, &used);
      if (used != item.size() || !(v > 0)) throw std::invalid_argument(item);
      out.push_back(v);
    } catch (const std::exception&) {
      throw hear::Error("--sweep: '" + item + "' is not a positive number of seconds");
    }
  }
  return out;
}

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

}  // namespace

int main(int argc, char** argv) {
  return hear::tools::run_tool("hear-bench", [&]() -> int {
    CLI::App app{"HEAR efficiency benchmark: parameters, MACs/GFLOPs and real-time factor"};
    std::string config_path, json_path, sweep_text, reference_path;
    std::string reference_script = default_reference_script();
    std::vector<std::string> overrides;
    double seconds = 10.0;
    int threads = 1, warmup = 3, runs = 10;
    int64_t classes = 50;
    bool no_timing = false, no_executed = false;
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
    app.add_flag("--no-executed-count", no_executed,
                 "skip the cross-check of the MACs against the products a forward executes");
    app.add_option("--compare-reference", reference_path,
                   "a checkout of the official HEAR code: time it with scripts/reference_rtf.py");
    app.add_option("--reference-script", reference_script,
                   "reference_rtf.py for --compare-reference (default: $HEAR_SOURCE_DIR/scripts/, "
                   "else ../share/hear/scripts/ beside the program)")
        ->capture_default_str();
    HEAR_PARSE(app, argc, argv);

    at::set_num_threads(threads);
    hear::models::HearClassifierOptions options;
    options.decoder.num_classes = classes;
    hear::io::load_config_into(
        options,
        config_path.empty() ? std::nullopt : std::optional<std::filesystem::path>(config_path),
        overrides);
    std::vector<double> lengths =
        sweep_text.empty() ? std::vector<double>{seconds} : parse_sweep(sweep_text);
    const bool quiet = json_path == "-";
    nlohmann::json out;

    // ---- machine
    const auto m = hear::bench::machine_info();
    std::string simd;
    for (const auto& s : m.simd) simd += (simd.empty() ? "" : " ") + s;
    out["machine"] = {{"cpu", m.cpu_model},
                      {"architecture", m.architecture},
                      {"host_architecture", m.host_architecture},
                      {"simd", m.simd},
                      {"logical_cpus", m.logical_cpus},
                      {"threads", at::get_num_threads()},
                      {"torch", m.torch_version},
                      {"backends", m.blas},
                      {"build", m.build_type},
                      {"emulated", m.emulated}};
    if (!quiet) {
      std::printf("machine   %s (%s, %d logical CPUs)\n", m.cpu_model.c_str(),
                  m.architecture.c_str(), m.logical_cpus);
      std::printf("simd      %s\n", simd.empty() ? "(none detected)" : simd.c_str());
      std::printf("threads   %d intra-op\nlibtorch  %s, %s build\nbackends  %s\n",
                  at::get_num_threads(), m.torch_version.c_str(), m.build_type.c_str(),
                  m.blas.c_str());
      if (m.emulated) std::printf("WARNING   %s\n", m.emulation_note.c_str());
      std::printf("\n");
    }

    // ---- parameters (counted on the constructed modules)
    torch::manual_seed(0);
    auto model = hear::models::HearClassifier(options);
    model->eval();
    hear::models::Tokenizer tokenizer(hear::models::TokenizerOptions{});
    nlohmann::json params;
    auto count = [](const torch::nn::Module& mod) { return hear::nn::count_parameters(mod); };
    params["acoustic_model"] = count(*model->acoustic_model);
    if (model->spectrogram_mixture)
      params["spectrogram_mixture"] = count(*model->spectrogram_mixture);
    params["task_model"] = count(*model->task_model);
    params["decoder"] = count(*model->decoder);
    params["hear_classifier"] = count(*model);
    params["tokenizer"] = count(*tokenizer);
    params["teacher_ssast_base_frame"] = hear::bench::teacher_parameters();
    out["parameters"] = params;
    if (!quiet) {
      std::printf("%-28s %14s\n", "parameters", "count");
      for (const char* k : {"acoustic_model", "spectrogram_mixture", "task_model", "decoder",
                            "hear_classifier", "tokenizer", "teacher_ssast_base_frame"}) {
        if (params.contains(k)) {
          std::printf("%-28s %14s\n", k, hear::nn::format_count(params[k].get<int64_t>()).c_str());
        }
      }
      std::printf("\n");
    }

    // ---- MACs and timing per length
    out["lengths"] = nlohmann::json::array();
    for (double len : lengths) {
      const int64_t samples = static_cast<int64_t>(std::llround(len * 16000));
      auto run_options = options;
      const int64_t patches = (samples / 160 + 1) / 2;
      std::string note;
      if (patches > run_options.task_model.max_length) {
        note = "task_model.max_length raised from " +
               std::to_string(run_options.task_model.max_length) + " to " +
               std::to_string(patches) + " (the reference model stops at 30 s)";
        run_options.task_model.max_length = patches;
      }
      const auto cost = hear::bench::count_hear_classifier(run_options, samples);
      nlohmann::json row = {{"seconds", len},
                            {"samples", samples},
                            {"patches", cost.geometry.patches},
                            {"acoustic_windows", cost.geometry.windows},
                            {"total_macs", cost.total_macs},
                            {"total_gflops", 2.0 * cost.total_macs / 1e9},
                            {"frontend_macs_estimate", cost.frontend.macs}};
      if (!note.empty()) row["note"] = note;
      for (const auto& mod : cost.modules) row["macs"][mod.name] = mod.macs;
      if (!quiet) {
        std::printf("clip %.6g s: %lld patches, %lld acoustic window(s)%s%s\n", len,
                    static_cast<long long>(cost.geometry.patches),
                    static_cast<long long>(cost.geometry.windows), note.empty() ? "" : "; ",
                    note.c_str());
        std::printf("  %-22s %12s %12s\n", "module", "GMACs", "GFLOPs");
        for (const auto& mod : cost.modules) {
          std::printf("  %-22s %12.4f %12.4f\n", mod.name.c_str(), mod.macs / 1e9,
                      2 * mod.macs / 1e9);
        }
        std::printf("  %-22s %12.4f %12.4f   (paper: \"9.47 GFLOPs\" for 10 s = a MAC count)\n",
                    "total", cost.total_macs / 1e9, 2 * cost.total_macs / 1e9);
        std::printf("  %-22s %12.4f %12.4f   (estimate, not in the total)\n", "frontend",
                    cost.frontend.macs / 1e9, 2 * cost.frontend.macs / 1e9);
      }
      auto timed_model = model;
      if (!note.empty() && (!no_timing || !no_executed)) {
        torch::manual_seed(0);
        timed_model = hear::models::HearClassifier(run_options);
        timed_model->eval();
      }
      if (!no_executed) {
        // Independent count: the matrix products one forward really executes (aten op observer).
        // The fast relative-position attention multiplies against the 2T-1 distinct offsets, so
        // its two position products cost T(2T-1)d instead of the T·T·d the convention counts.
        torch::InferenceMode guard;
        const auto f = hear::audio::Frontend()(torch::zeros({1, samples}),
                                               torch::tensor({samples}, torch::kLong));
        int64_t executed = 0;
        {
          hear::bench::ExecutedMacCounter counter;
          timed_model->forward(f);
          executed = counter.result().total;
        }
        const int64_t t = cost.geometry.window_tokens;
        const int64_t expected_extra = 2 * cost.geometry.windows *
                                       run_options.acoustic_model.num_transformer_layers * t *
                                       (t - 1) * run_options.acoustic_model.hidden_size;
        const bool agrees = executed - cost.total_macs == expected_extra;
        row["executed_macs"] = executed;
        row["executed_minus_analytic"] = executed - cost.total_macs;
        row["executed_check"] = agrees ? "agrees" : "MISMATCH";
        if (!quiet) {
          std::printf(
              "  %-22s %12.4f %12.4f   (products executed by one forward; %s: %+.4f G = "
              "2·windows·layers·T(T-1)·hidden, the fast attention's 2T-1 offsets)\n",
              "executed", executed / 1e9, 2 * executed / 1e9, agrees ? "agrees" : "MISMATCH",
              (executed - cost.total_macs) / 1e9);
        }
      }
      if (!no_timing) {
        // Long clips: fewer repetitions so a sweep to 600 s stays affordable.
        const int r = len > 60 ? std::min(runs, 3) : runs;
        const int w = len > 60 ? std::min(warmup, 1) : warmup;
        const auto t = time_stages(timed_model, len, w, r, 0);
        nlohmann::json timing;
        if (!quiet) {
          std::printf("  %-22s %10s %10s %10s %10s   (%d runs after %d warm-up)\n", "stage",
                      "median ms", "p90 ms", "RTF", "RTF p90", r, w);
        }
        for (const char* stage : {"frontend", "acoustic_model", "spectrogram_mixture", "task_model",
                                  "decoder", "total"}) {
          if (!t.stages.count(stage)) continue;
          const auto& s = t.stages.at(stage);
          timing[stage] = {{"median_s", s.median},
                           {"p90_s", s.p90},
                           {"rtf", s.median / len},
                           {"rtf_p90", s.p90 / len},
                           {"runs", s.seconds}};
          if (!quiet) {
            std::printf("  %-22s %10.2f %10.2f %10.4f %10.4f\n", stage, s.median * 1e3, s.p90 * 1e3,
                        s.median / len, s.p90 / len);
          }
        }
        if (m.emulated) timing["warning"] = m.emulation_note;
        row["timing"] = timing;
      }
      if (!quiet) std::printf("\n");
      out["lengths"].push_back(row);
    }

    if (!reference_path.empty()) {
      const std::string& script = reference_script;
      const std::string cmd = "/usr/bin/python3 '" + script + "' --repo '" + reference_path +
                              "' --seconds " + std::to_string(lengths.front()) + " --threads " +
                              std::to_string(threads) + " --runs " + std::to_string(runs);
      if (!quiet) std::printf("reference: %s\n", cmd.c_str());
      FILE* pipe = ::popen(cmd.c_str(), "r");
      std::string text;
      char buf[4096];
      while (pipe && std::fgets(buf, sizeof buf, pipe)) text += buf;
      const int status = pipe ? ::pclose(pipe) : -1;
      if (status != 0) throw hear::Error("reference timing failed (" + cmd + "):\n" + text);
      out["reference"] = nlohmann::json::parse(text.substr(text.find('{')));
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
