// hear-tokenizer-train: stage 1, the Gumbel-softmax acoustic tokenizer (reconstruction + SSAST
// distillation + diversity).
#include "hear/stages/tokenizer_train.h"

#include "tool_common.h"

int main(int argc, char** argv) {
  return hear::tools::run_tool("hear-tokenizer-train", [&]() -> int {
    CLI::App app{"HEAR stage 1: acoustic tokenizer training"};
    hear::tools::ConfigArgs args;
    args.add_to(app);
    HEAR_PARSE(app, argc, argv);
    hear::stages::TokenizerTrainConfig config;
    std::string yaml;
    if (!args.resolve(config, yaml)) return 0;
    const auto result =
        hear::stages::run_tokenizer_train(config, {!args.resume_dir.empty(), yaml, nullptr});
    if (result.fit.interrupted) {
      std::fprintf(stderr,
                   "hear-tokenizer-train: interrupted at step %lld; continue with --resume %s\n",
                   static_cast<long long>(result.fit.step), config.run_dir.c_str());
      return 130;
    }
    return 0;
  });
}
