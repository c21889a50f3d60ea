// hear-embed: run audio files through a HEAR model (eval mode) and write, per file, frame
// embeddings with timestamps, pooled clip vectors or logits as .npy, plus a JSON index.
#include <ATen/Parallel.h>

#include <optional>

#include "hear/inference/embedder.h"
#include "hear/nn/int8_linear.h"
#include "hear/util/device.h"
#include "hear/util/strings.h"
#include "tool_common.h"

int main(int argc, char** argv) {
  return hear::tools::run_tool("hear-embed", [&]() -> int {
    CLI::App app{"Embed audio files with a HEAR model"};
    std::string config_path, weights_path, out_dir, output = "acoustic", device = "cpu";
    std::vector<std::string> inputs, overrides;
    int batch_size = 8, threads = 1, decode_threads = 1;
    bool stream = false, int8 = false;
    double stream_block_s = 1.0;
    std::string task_span = "last";
    app.add_option("inputs", inputs, "audio files (any format libsndfile reads, any length)")
        ->required();
    app.add_option("--config", config_path, "model config YAML (HearClassifier keys)");
    app.add_option("--set", overrides, "dotted config overrides, e.g. decoder.num_classes=50");
    app.add_option("-w,--weights", weights_path,
                   "safetensors with reference key names: a full HEAR model "
                   "(acoustic_model.*, task_model.*, ...) or an acoustic model alone")
        ->required();
    app.add_option("-o,--out-dir", out_dir, "output folder")->required();
    app.add_option("--output", output,
                   "acoustic: acoustic-model frames; task: task-model frames; logits: classifier "
                   "outputs; scene: [mean, max, std] of the task-model frames (of the acoustic "
                   "frames when the weights hold only an acoustic model)")
        ->check(CLI::IsMember(hear::io::enum_choices<hear::inference::EmbeddingKind>()));
    app.add_option("--batch-size", batch_size, "files per forward pass")
        ->check(CLI::PositiveNumber);
    app.add_option("--threads", threads, "intra-op threads")->check(CLI::PositiveNumber);
    app.add_option("--decode-threads", decode_threads,
                   "files decoded ahead in background threads (0: none)")
        ->check(CLI::NonNegativeNumber);
    app.add_flag("--stream", stream,
                 "block-wise, one file at a time, memory bounded by a few 6 s windows "
                 "(two cheap pre-passes read the frontend statistics)");
    app.add_option("--stream-block", stream_block_s, "--stream: seconds per block")
        ->check(CLI::PositiveNumber);
    app.add_option("--task-span", task_span,
                   "--stream: the task model sees the whole file (at most task_model.max_length "
                   "patches, as offline) or the last max_length patches")
        ->check(CLI::IsMember(hear::io::enum_choices<hear::inference::TaskSpan>()));
    app.add_option("--device", device, "cpu | cuda | cuda:N");
    app.add_flag("--int8", int8, "linear layers in int8 (oneDNN dynamic quantization, CPU)");
    HEAR_PARSE(app, argc, argv);
    at::set_num_threads(threads);

    hear::models::HearClassifierOptions options;
    options.decoder.num_classes = 1;  // an acoustic model alone needs no head size
    hear::io::load_config_into(
        options,
        config_path.empty() ? std::nullopt : std::optional<std::filesystem::path>(config_path),
        overrides);
    const auto kind = hear::io::parse_enum<hear::inference::EmbeddingKind>(output, "--output");
    hear::inference::Embedder embedder(options, weights_path,
                                       hear::util::parse_device(device, "--device"));
    std::optional<hear::nn::Int8Linears> quantized;
    if (int8) quantized.emplace(*embedder.model());
    hear::inference::EmbedFilesOptions run;
    run.kind = kind;
    run.batch_size = batch_size;
    run.decode_threads = decode_threads;
    run.stream = stream;
    run.stream_block_s = stream_block_s;
    run.task_span = hear::io::parse_enum<hear::inference::TaskSpan>(task_span, "--task-span");
    const auto result = hear::inference::embed_files(embedder, inputs, out_dir, run);
    std::printf(
        "hear-embed: %lld files, %.1f s of audio in %.2f s: %.2f files/s, RTF %.4f, "
        "peak RSS %.0f MiB\n",
        static_cast<long long>(result.files), result.audio_s, result.wall_s, result.files_per_s(),
        result.rtf(), result.peak_rss_mib);
    if (!result.failed.empty()) {
      const std::string names = hear::util::join(result.failed);
      std::fprintf(stderr,
                   "hear-embed: error: %zu of %zu files failed: %s (listed in index.json)\n",
                   result.failed.size(), inputs.size(), names.c_str());
      return 1;
    }
    return 0;
  });
}
