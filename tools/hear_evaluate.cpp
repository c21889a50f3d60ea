// hear-evaluate: accuracy, per-class accuracy and confusion matrix of a fine-tuned checkpoint on
// a labelled manifest; prints a summary and writes JSON (+ confusion CSV).
#include <ATen/Parallel.h>

#include <optional>

#include "hear/nn/int8_linear.h"
#include "hear/stages/evaluation.h"
#include "hear/stages/finetuned_model.h"
#include "hear/util/device.h"
#include "tool_common.h"

int main(int argc, char** argv) {
  return hear::tools::run_tool("hear-evaluate", [&]() -> int {
    CLI::App app{"Score a hear-finetune checkpoint on a labelled manifest"};
    std::string run_dir, checkpoint = "best", manifest, out_dir, device = "cpu";
    int threads = 1;
    bool int8 = false;
    app.add_option("--run", run_dir, "hear-finetune run directory")->required();
    app.add_option("--checkpoint", checkpoint, "best | last | a checkpoint directory");
    app.add_option("--manifest", manifest, "labelled TSV manifest")->required();
    app.add_option("-o,--out-dir", out_dir, "where to write evaluation.json (default: the run)");
    app.add_option("--threads", threads, "intra-op threads")->check(CLI::PositiveNumber);
    app.add_option("--device", device, "cpu | cuda | cuda:N");
    app.add_flag("--int8", int8, "linear layers in int8 (oneDNN dynamic quantization, CPU)");
    HEAR_PARSE(app, argc, argv);
    at::set_num_threads(threads);
    const c10::Device where = hear::util::parse_device(device, "--device");
    auto run = hear::stages::load_finetuned(run_dir, checkpoint);
    run.model->to(where);
    std::optional<hear::nn::Int8Linears> quantized;
    if (int8) quantized.emplace(*run.model);
    const auto entries = hear::stages::read_manifest_for(manifest, "--manifest");
    const auto ev = hear::stages::evaluate(run.model, entries, run.labels, run.config.data.loader);
    const std::filesystem::path out = out_dir.empty() ? run_dir : out_dir;
    const std::string name = int8 ? "evaluation_int8" : "evaluation";
    hear::stages::write_evaluation(out, name, ev, "checkpoint " + run.checkpoint.string());
    std::printf("accuracy %.4f on %lld clips (checkpoint %s%s); details in %s\n", ev.accuracy,
                static_cast<long long>(ev.clips), run.checkpoint.string().c_str(),
                int8 ? ", int8 linear layers" : "", (out / (name + ".json")).string().c_str());
    return 0;
  });
}
