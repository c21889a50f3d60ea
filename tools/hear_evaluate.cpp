// hear-evaluate: accuracy, per-class accuracy and confusion matrix of a fine-tuned checkpoint on
// a labelled manifest; prints a summary and writes JSON (+ confusion CSV).
#include <torch/torch.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "hear/io/file_util.h"
#include "hear/models/weights.h"
#include "hear/stages/finetune.h"
#include "tool_common.h"

int main(int argc, char** argv) {
  return hear::tools::run_tool("hear-evaluate", [&]() -> int {
    CLI::App app{"Score a hear-finetune checkpoint on a labelled manifest"};
    std::string run_dir, checkpoint = "best", manifest, out_dir;
    int threads = 1;
    app.add_option("--run", run_dir, "hear-finetune run directory")->required();
    app.add_option("--checkpoint", checkpoint, "best | last | a checkpoint directory");
    app.add_option("--manifest", manifest, "labelled TSV manifest")->required();
    app.add_option("-o,--out-dir", out_dir, "where to write evaluation.json (default: the run)");
    app.add_option("--threads", threads, "intra-op threads")->check(CLI::PositiveNumber);
    HEAR_PARSE(app, argc, argv);
    at::set_num_threads(threads);
    namespace fs = std::filesystem;
    fs::path ckpt = checkpoint == "best" || checkpoint == "last"
                        ? fs::path(run_dir) / "checkpoints" / checkpoint
                        : fs::path(checkpoint);
    if (!fs::exists(ckpt / "model.safetensors")) {
      throw hear::Error("checkpoint '" + ckpt.string() + "' has no model.safetensors");
    }
    auto config = hear::io::config_from_yaml_text<hear::stages::FinetuneConfig>(
        hear::io::read_file(ckpt / "config.yaml"), (ckpt / "config.yaml").string());
    // labels.tsv: "<index>\t<name>" in index order.
    std::vector<std::string> names;
    {
      std::ifstream in(fs::path(run_dir) / "labels.tsv");
      if (!in) throw hear::Error("'" + (fs::path(run_dir) / "labels.tsv").string() + "' not found");
      std::string line;
      while (std::getline(in, line)) {
        const auto tab = line.find('\t');
        if (tab == std::string::npos) continue;
        names.push_back(line.substr(tab + 1));
      }
    }
    const hear::data::LabelMap labels(names);
    using hear::stages::FinetuneSetting;
    if (config.setting != FinetuneSetting::kNoSpectrum) config.setting = FinetuneSetting::kScratch;
    auto model = hear::stages::make_classifier(config, labels.size());
    hear::models::load_weights(*model, ckpt / "model.safetensors");
    const auto entries = hear::stages::read_manifest_for(manifest, "--manifest");
    for (const auto& e : entries) {
      if (!labels.contains(e.label)) {
        throw hear::Error("label '" + e.label + "' of '" + e.path.string() +
                          "' is not one of the model's classes (labels.tsv)");
      }
    }
    const auto ev = hear::stages::evaluate(model, entries, labels, config.data.loader);
    const fs::path out = out_dir.empty() ? fs::path(run_dir) : fs::path(out_dir);
    hear::stages::write_evaluation(out, "evaluation", ev, "checkpoint " + ckpt.string());
    std::printf("accuracy %.4f on %lld clips (checkpoint %s); details in %s\n", ev.accuracy,
                static_cast<long long>(ev.clips), ckpt.string().c_str(),
                (out / "evaluation.json").string().c_str());
    return 0;
  });
}
