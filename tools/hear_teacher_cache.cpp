// hear-teacher-cache: runs the frozen SSAST teacher once over a manifest's fixed segments and
// stores its features (float16, sharded safetensors + index) for stage 1 to read instead of running
// it. Examples:
//   hear-teacher-cache data/train.tsv --teacher ssast_base_frame_400.safetensors -o cache/ssast
//   hear-teacher-cache m.tsv --teacher tests/golden/ssast_tiny.safetensors
//       --weights-prefix weights/ --tiny-config -o /tmp/cache
#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "hear/audio/audio_file.h"
#include "hear/data/manifest.h"
#include "hear/data/segmenter.h"
#include "hear/io/config.h"
#include "hear/teacher/feature_cache.h"
#include "hear/teacher/ssast.h"
#include "tool_common.h"

int main(int argc, char** argv) {
  return hear::tools::run_tool("hear-teacher-cache", [&]() -> int {
    CLI::App app{"Cache the SSAST teacher's features over a manifest's fixed segments"};
    std::string manifest, teacher_path, out_dir, weights_prefix;
    std::vector<std::string> teacher_overrides;
    bool tiny = false, overwrite = false;
    int64_t random_seed = -1, shard_size = 256, batch_size = 4, limit = 0;
    int threads = 0;
    hear::data::SegmentOptions seg;
    std::string mode = "consecutive", crop_position = hear::io::to_string(seg.crop_position);
    app.add_option("manifest", manifest, "manifest (path<TAB>length[<TAB>label])")->required();
    app.add_option("--teacher", teacher_path,
                   "teacher weights: safetensors with the official SSAST keys "
                   "(scripts/convert_ssast_checkpoint.py)");
    app.add_option("--weights-prefix", weights_prefix,
                   "only keys under this prefix, stripped (e.g. 'weights/' for the golden file)");
    app.add_option("--random-teacher", random_seed,
                   "random weights from this seed instead of --teacher (timing and tests only)");
    app.add_flag("--tiny-config", tiny, "the tiny teacher (64 wide, 4 heads, 2 blocks)");
    app.add_option("--teacher-option", teacher_overrides,
                   "teacher option override key=value (embed_dim, num_heads, depth, mlp_ratio, "
                   "num_frames, n_mels)");
    app.add_option("-o,--output", out_dir, "cache directory")->required();
    app.add_option("--mode", mode, "segment rule: consecutive | whole")
        ->check(CLI::IsMember({"consecutive", "whole"}));
    app.add_option("--max-seconds", seg.max_seconds, "consecutive: segment length");
    app.add_option("--min-seconds", seg.min_seconds, "skip clips (and tails) shorter than this");
    app.add_option("--crop-to-seconds", seg.crop_to_seconds, "whole: crop longer clips");
    app.add_option("--crop-position", crop_position, "whole: start | center");
    app.add_option("--pad-to-seconds", seg.pad_to_seconds, "whole: zero-pad shorter clips");
    app.add_option("--shard-size", shard_size, "segments per shard file")
        ->check(CLI::PositiveNumber);
    app.add_option("--batch-size", batch_size, "segments per teacher forward")
        ->check(CLI::PositiveNumber);
    app.add_option("--threads", threads, "torch intra-op threads (0: default)");
    app.add_option("--limit", limit, "cache only the first N segments (0: all)");
    app.add_flag("--overwrite", overwrite, "replace an existing cache in the output directory");
    HEAR_PARSE(app, argc, argv);

    if (teacher_path.empty() == (random_seed < 0)) {
      throw hear::Error("give exactly one of --teacher FILE and --random-teacher SEED");
    }
    if (threads > 0) torch::set_num_threads(threads);
    hear::teacher::SsastOptions options =
        tiny ? hear::teacher::SsastOptions::tiny() : hear::teacher::SsastOptions{};
    {
      hear::io::ConfigSchema schema;
      schema.bind(options);
      for (const auto& o : teacher_overrides) hear::io::apply_override(schema, o);
      hear::io::validate(schema);
    }
    seg.mode = hear::io::parse_enum<hear::data::SegmentMode>(mode, "--mode");
    seg.crop_position =
        hear::io::parse_enum<hear::data::CropPosition>(crop_position, "--crop-position");
    hear::io::validate_config(seg);
    const std::string rule = hear::teacher::describe_segment_rule(seg);

    const auto entries = hear::data::read_manifest(manifest);
    int64_t skipped = 0;
    const auto segments = hear::teacher::cache_segments(entries, seg, limit, &skipped);
    spdlog::info("{}: {} clips -> {} segments ({}; {} clips too short)", manifest, entries.size(),
                 segments.size(), rule, skipped);

    if (random_seed >= 0) torch::manual_seed(static_cast<uint64_t>(random_seed));
    hear::teacher::SsastTeacher teacher(options);
    if (random_seed >= 0) {
      spdlog::warn("random teacher weights (seed {}): the features are meaningless for training",
                   random_seed);
    } else {
      auto report = hear::teacher::load_ssast_weights(*teacher, teacher_path, weights_prefix);
      spdlog::info("teacher {} ({}): {} tensors loaded, {} ignored", teacher_path,
                   options.summary(), report.loaded.size(), report.ignored.size());
    }
    const auto identity = hear::teacher::make_cache_identity(*teacher, rule);
    spdlog::info("teacher weights sha256 {}", identity.teacher_sha256);

    hear::teacher::CacheWriteOptions wo;
    wo.shard_size = shard_size;
    wo.batch_size = batch_size;
    const auto start = std::chrono::steady_clock::now();
    auto last = start;
    wo.progress = [&](int64_t done, int64_t total) {
      const auto now = std::chrono::steady_clock::now();
      if (done < total && now - last < std::chrono::seconds(10)) return;
      last = now;
      const double elapsed = std::chrono::duration<double>(now - start).count();
      const double eta = done > 0 ? elapsed / done * (total - done) : 0.0;
      spdlog::info("{}/{} segments, {:.2f} segments/s, ETA {:.0f} s", done, total,
                   done / std::max(elapsed, 1e-9), eta);
    };
    const auto summary =
        hear::teacher::write_teacher_cache(*teacher, identity, segments, out_dir, wo, overwrite);
    const double hours =
        static_cast<double>(summary.total_samples) / hear::audio::kSampleRate / 3600.0;
    std::printf(
        "teacher cache %s: %lld segments, %.4f hours of audio, %lld shards, %.2f s "
        "(%.3f s per segment, real-time factor %.4f, %d threads)\n",
        out_dir.c_str(), static_cast<long long>(summary.segments), hours,
        static_cast<long long>(summary.shards), summary.seconds,
        summary.seconds / std::max<int64_t>(summary.segments, 1),
        summary.seconds / std::max(hours * 3600.0, 1e-9), torch::get_num_threads());
    return 0;
  });
}
