#include "hear/bench/inference_bench.h"

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <sstream>

#include "hear/audio/audio_file.h"
#include "hear/audio/frontend.h"
#include "hear/bench/cost_model.h"
#include "hear/bench/machine.h"
#include "hear/bench/stage_timing.h"
#include "hear/error.h"
#include "hear/models/tokenizer.h"
#include "hear/nn/int8_linear.h"
#include "hear/nn/util.h"
#include "hear/util/process_memory.h"
#include "hear/util/strings.h"

namespace hear::bench {
namespace {

void appendf(std::string& out, const char* format, ...) __attribute__((format(printf, 2, 3)));
void appendf(std::string& out, const char* format, ...) {
  char buf[1024];
  va_list args;
  va_start(args, format);
  const int n = std::vsnprintf(buf, sizeof buf, format, args);
  va_end(args);
  if (n > 0) out.append(buf, static_cast<size_t>(std::min<int>(n, sizeof buf - 1)));
}

}  // namespace

std::vector<double> parse_seconds_list(const std::string& text, const std::string& what) {
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
      throw Error(what + ": '" + item + "' is not a positive number of seconds");
    }
  }
  if (out.empty()) throw Error(what + ": no length given");
  return out;
}

namespace {

// The same stages with the linear layers in int8 (nn/int8_linear.h): time, speed-up per stage,
// and the cosine between the float32 and int8 outputs of one random clip.
nlohmann::json time_int8(models::HearClassifier& model, double seconds, int warmup, int runs,
                         const StageTimes& fp32, std::string& text) {
  nlohmann::json out;
  if (!nn::Int8Linears::available()) {
    out["error"] = "int8 unavailable: needs the oneDNN quantized engine and matrix products";
    appendf(text, "  int8: unavailable in this build\n");
    return out;
  }
  torch::manual_seed(1);
  const int64_t samples = static_cast<int64_t>(std::llround(seconds * audio::kSampleRate));
  audio::Frontend frontend;
  const auto features = frontend(torch::randn({samples}) * 0.1);
  auto forward = [&] {
    torch::InferenceMode guard;
    return model->forward_all(features);
  };
  const auto reference = forward();
  nn::Int8Linears int8(*model);
  const auto t = time_stages(model, seconds, warmup, runs, 0);
  const auto quantized = forward();
  appendf(text, "  int8 (%lld linear layers): %-10s %10s %10s\n",
          static_cast<long long>(int8.count()), "stage", "median ms", "speed-up");
  for (const auto& [stage, s] : t.stages) {
    const double speedup = fp32.stages.at(stage).median / s.median;
    out["stages"][stage] = {
        {"median_s", s.median}, {"rtf", s.median / seconds}, {"speedup", speedup}};
    appendf(text, "  %-36s %10.2f %9.2fx\n", stage.c_str(), s.median * 1e3, speedup);
  }
  auto cosine = [](const at::Tensor& a, const at::Tensor& b) {
    return torch::nn::functional::cosine_similarity(
               a.reshape({-1, a.size(-1)}), b.reshape({-1, b.size(-1)}),
               torch::nn::functional::CosineSimilarityFuncOptions().dim(1))
        .mean()
        .item<double>();
  };
  out["layers"] = int8.count();
  out["cosine"] = {{"acoustic", cosine(reference.acoustic, quantized.acoustic)},
                   {"task", cosine(reference.task, quantized.task)},
                   {"logits", cosine(reference.logits, quantized.logits)}};
  appendf(text,
          "  int8 vs float32 cosine: acoustic %.5f, task %.5f, logits %.5f (random weights)\n",
          out["cosine"]["acoustic"].get<double>(), out["cosine"]["task"].get<double>(),
          out["cosine"]["logits"].get<double>());
  return out;
}

}  // namespace

BenchReport run_inference_bench(const InferenceBenchOptions& bench) {
  nlohmann::json out;
  std::string text;
  const auto& options = bench.model;
  const auto& lengths = bench.seconds;
  const int warmup = bench.warmup, runs = bench.runs;
  const bool no_timing = !bench.timing, no_executed = !bench.executed_check;

  // ---- machine
  const auto m = machine_info();
  const std::string simd = util::join(m.simd, " ");
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
  {
    appendf(text, "machine   %s (%s, %d logical CPUs)\n", m.cpu_model.c_str(),
            m.architecture.c_str(), m.logical_cpus);
    appendf(text, "simd      %s\n", simd.empty() ? "(none detected)" : simd.c_str());
    appendf(text, "threads   %d intra-op\nlibtorch  %s, %s build\nbackends  %s\n",
            at::get_num_threads(), m.torch_version.c_str(), m.build_type.c_str(), m.blas.c_str());
    if (m.emulated) appendf(text, "WARNING   %s\n", m.emulation_note.c_str());
    appendf(text, "\n");
  }

  // ---- parameters (counted on the constructed modules)
  torch::manual_seed(0);
  auto model = models::HearClassifier(options);
  model->eval();
  model->to(bench.device);
  out["device"] = bench.device.str();
  models::Tokenizer tokenizer(models::TokenizerOptions{});
  nlohmann::json params;
  auto count = [](const torch::nn::Module& mod) { return nn::count_parameters(mod); };
  params["acoustic_model"] = count(*model->acoustic_model);
  if (model->spectrogram_mixture)
    params["spectrogram_mixture"] = count(*model->spectrogram_mixture);
  params["task_model"] = count(*model->task_model);
  params["decoder"] = count(*model->decoder);
  params["hear_classifier"] = count(*model);
  params["tokenizer"] = count(*tokenizer);
  params["teacher_ssast_base_frame"] = teacher_parameters();
  out["parameters"] = params;
  {
    appendf(text, "%-28s %14s\n", "parameters", "count");
    for (const char* k : {"acoustic_model", "spectrogram_mixture", "task_model", "decoder",
                          "hear_classifier", "tokenizer", "teacher_ssast_base_frame"}) {
      if (params.contains(k)) {
        appendf(text, "%-28s %14s\n", k, nn::format_count(params[k].get<int64_t>()).c_str());
      }
    }
    appendf(text, "\n");
  }

  // ---- MACs and timing per length
  out["lengths"] = nlohmann::json::array();
  for (double len : lengths) {
    const int64_t samples = static_cast<int64_t>(std::llround(len * audio::kSampleRate));
    std::string note;
    const auto run_options = options_for_clip(options, samples, &note);
    const auto cost = count_hear_classifier(run_options, samples);
    nlohmann::json row = {{"seconds", len},
                          {"samples", samples},
                          {"patches", cost.geometry.patches},
                          {"acoustic_windows", cost.geometry.windows},
                          {"total_macs", cost.total_macs},
                          {"total_gflops", 2.0 * cost.total_macs / 1e9},
                          {"frontend_macs_estimate", cost.frontend.macs}};
    if (!note.empty()) row["note"] = note;
    for (const auto& mod : cost.modules) row["macs"][mod.name] = mod.macs;
    {
      appendf(text, "clip %.6g s: %lld patches, %lld acoustic window(s)%s%s\n", len,
              static_cast<long long>(cost.geometry.patches),
              static_cast<long long>(cost.geometry.windows), note.empty() ? "" : "; ",
              note.c_str());
      appendf(text, "  %-22s %12s %12s\n", "module", "GMACs", "GFLOPs");
      for (const auto& mod : cost.modules) {
        appendf(text, "  %-22s %12.4f %12.4f\n", mod.name.c_str(), mod.macs / 1e9,
                2 * mod.macs / 1e9);
      }
      appendf(text, "  %-22s %12.4f %12.4f   (paper: \"9.47 GFLOPs\" for 10 s = a MAC count)\n",
              "total", cost.total_macs / 1e9, 2 * cost.total_macs / 1e9);
      appendf(text, "  %-22s %12.4f %12.4f   (estimate, not in the total)\n", "frontend",
              cost.frontend.macs / 1e9, 2 * cost.frontend.macs / 1e9);
    }
    auto timed_model = model;
    if (!note.empty() && (!no_timing || !no_executed)) {
      torch::manual_seed(0);
      timed_model = models::HearClassifier(run_options);
      timed_model->eval();
      timed_model->to(bench.device);
    }
    if (!no_executed) {
      // Independent count: the matrix products one forward really executes.
      const auto check = check_executed_macs(timed_model, cost, samples);
      const int64_t executed = check.executed;
      const bool agrees = check.agrees;
      row["executed_macs"] = executed;
      row["executed_minus_analytic"] = executed - cost.total_macs;
      row["executed_check"] = agrees ? "agrees" : "MISMATCH";
      {
        appendf(text,
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
      util::reset_peak_rss();
      const auto t = time_stages(timed_model, len, w, r, 0);
      const double peak_mib = util::peak_rss_mib();
      nlohmann::json timing;
      {
        appendf(text, "  %-22s %10s %10s %10s %10s   (%d runs after %d warm-up)\n", "stage",
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
        {
          appendf(text, "  %-22s %10.2f %10.2f %10.4f %10.4f\n", stage, s.median * 1e3, s.p90 * 1e3,
                  s.median / len, s.p90 / len);
        }
      }
      if (m.emulated) timing["warning"] = m.emulation_note;
      timing["peak_rss_mib"] = peak_mib;
      appendf(text, "  peak resident memory %.0f MiB (this length's timing runs)\n", peak_mib);
      row["timing"] = timing;
      if (bench.int8) row["int8"] = time_int8(timed_model, len, w, r, t, text);
    }
    appendf(text, "\n");
    out["lengths"].push_back(row);
  }

  return {out.dump(2), text};
}

}  // namespace hear::bench
