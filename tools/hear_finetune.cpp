// hear-finetune: stage 3, downstream classification in the paper's four settings, with
// validation-based epoch selection, test scoring and k-fold cross-validation, from manifests or a
// dataset's own layout (data.format: esc50, speech_commands, voxceleb1).
#include "hear/stages/finetune.h"

#include "tool_common.h"

int main(int argc, char** argv) {
  return hear::tools::run_tool("hear-finetune", [&]() -> int {
    CLI::App app{"HEAR stage 3: fine-tuning on a labelled task"};
    hear::tools::ConfigArgs args;
    args.add_to(app);
    bool folds = false;
    app.add_flag("--folds", folds,
                 "k-fold cross-validation over data.fold_manifests (mean +- std in cv.json); "
                 "implied by data.format esc50");
    HEAR_PARSE(app, argc, argv);
    hear::stages::FinetuneConfig config;
    std::string yaml;
    if (!args.resolve(config, yaml)) return 0;
    const hear::stages::RunRequest request{!args.resume_dir.empty(), yaml, nullptr};
    bool interrupted = false;
    // ESC-50's folds are its protocol: a dataset read as esc50 is always cross-validated.
    if (folds || config.data.cross_validated()) {
      const auto cv = hear::stages::run_finetune_cv(config, request);
      interrupted = !cv.folds.empty() && cv.folds.back().fit.interrupted;
      if (!interrupted) {
        std::printf("cross-validation accuracy: %.4f +- %.4f over %zu folds (%s)\n",
                    cv.mean_accuracy, cv.std_accuracy, cv.folds.size(),
                    cv.folds.back().selection_rule.c_str());
      }
    } else {
      const auto r = hear::stages::run_finetune(config, request);
      interrupted = r.fit.interrupted;
      if (!interrupted && r.test.clips > 0) {
        std::printf("test accuracy: %.4f on %lld clips (%s)\n", r.test.accuracy,
                    static_cast<long long>(r.test.clips), r.selection_rule.c_str());
      }
    }
    if (interrupted) {
      std::fprintf(stderr, "hear-finetune: interrupted; continue with --resume %s\n",
                   config.run_dir.c_str());
      return 130;
    }
    return 0;
  });
}
