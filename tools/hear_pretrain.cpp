// hear-pretrain: stage 2, masked audio modeling of the acoustic model against a frozen tokenizer.
#include "hear/stages/pretrain.h"

#include "tool_common.h"

int main(int argc, char** argv) {
  return hear::tools::run_tool("hear-pretrain", [&]() -> int {
    CLI::App app{"HEAR stage 2: masked audio modeling (MAM) pre-training of the acoustic model"};
    hear::tools::ConfigArgs args;
    args.add_to(app);
    HEAR_PARSE(app, argc, argv);
    hear::stages::PretrainConfig config;
    std::string yaml;
    if (!args.resolve(config, yaml)) return 0;
    const auto result =
        hear::stages::run_pretrain(config, {!args.resume_dir.empty(), yaml, nullptr});
    if (result.fit.interrupted) {
      std::fprintf(stderr, "hear-pretrain: interrupted at step %lld; continue with --resume %s\n",
                   static_cast<long long>(result.fit.step), config.run_dir.c_str());
      return 130;
    }
    return 0;
  });
}
