// libFuzzer target: audio decoding through libsndfile and the soxr resampler, as the loaders use
// it: probe_audio, load_audio at 16 kHz (whole, and an offset window), AudioStream in small blocks.
#include <torch/torch.h>

#include "fuzz_util.h"
#include "hear/audio/audio_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto file = hear::fuzz::scratch_dir() / "clip.wav";
  hear::fuzz::write_bytes(file, std::string(reinterpret_cast<const char*>(data), size));
  hear::fuzz::run_input([&] {
    const auto info = hear::audio::probe_audio(file);
    // Headers may announce far more than a test input holds: the decoder must notice.
    if (info.frames > (int64_t{1} << 24)) return;
    (void)hear::audio::load_audio(file).sum().item<float>();
    hear::audio::LoadOptions window;
    window.offset_s = 0.01;
    window.duration_s = 0.05;
    (void)hear::audio::load_audio(file, window).numel();
  });
  hear::fuzz::run_input([&] {
    hear::audio::AudioStream stream(file, 16000);
    if (stream.info().frames > (int64_t{1} << 24)) return;
    for (int i = 0; i < 1000; ++i) {
      if (stream.read(257).numel() == 0) break;
    }
  });
  return 0;
}
