// hear-features: an audio file -> the HEAR frontend's normalized log-mel and log-power spectra
// (and optionally the SSAST teacher's Kaldi fbank), printed as shapes and saved as .npy.
#include <torch/torch.h>

#include <filesystem>

#include "hear/audio/audio_file.h"
#include "hear/audio/frontend.h"
#include "hear/audio/kaldi_fbank.h"
#include "hear/io/npy.h"
#include "tool_common.h"

int main(int argc, char** argv) {
  return hear::tools::run_tool("hear-features", [&]() -> int {
    CLI::App app{"Compute HEAR frontend features of audio files"};
    std::vector<std::string> inputs;
    std::string out_dir;
    double offset = 0.0, duration = -1.0;
    bool kaldi = false;
    app.add_option("inputs", inputs, "audio files (any format libsndfile reads)")->required();
    app.add_option("-o,--out-dir", out_dir, "write <name>.log_mel.npy / .log_power.npy here");
    app.add_option("--offset", offset, "start of the crop in seconds")
        ->check(CLI::NonNegativeNumber);
    app.add_option("--duration", duration, "crop length in seconds (default: to the end)");
    app.add_flag("--kaldi", kaldi, "also compute the SSAST teacher's Kaldi fbank");
    HEAR_PARSE(app, argc, argv);

    torch::NoGradGuard no_grad;
    hear::audio::Frontend frontend;
    for (const auto& input : inputs) {
      hear::audio::LoadOptions opts;
      opts.offset_s = offset;
      opts.duration_s = duration;
      const auto wave = hear::audio::load_audio(input, opts);
      const auto f = frontend(wave);
      std::printf("%s: %lld samples (%.3f s at 16 kHz) -> log_mel %s, log_power %s, %lld frames\n",
                  input.c_str(), static_cast<long long>(wave.size(0)),
                  static_cast<double>(wave.size(0)) / hear::audio::kSampleRate,
                  c10::str(f.log_mel.sizes()).c_str(), c10::str(f.log_power.sizes()).c_str(),
                  static_cast<long long>(f.lengths[0].item<int64_t>()));
      at::Tensor fbank;
      if (kaldi) {
        fbank = hear::audio::kaldi_fbank(wave - wave.mean());
        std::printf("%s: kaldi_fbank %s\n", input.c_str(), c10::str(fbank.sizes()).c_str());
      }
      if (!out_dir.empty()) {
        const auto stem = std::filesystem::path(out_dir) / std::filesystem::path(input).stem();
        hear::io::save_npy(stem.string() + ".log_mel.npy", f.log_mel[0]);
        hear::io::save_npy(stem.string() + ".log_power.npy", f.log_power[0]);
        if (kaldi) hear::io::save_npy(stem.string() + ".kaldi_fbank.npy", fbank);
      }
    }
    return 0;
  });
}
