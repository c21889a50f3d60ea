// libFuzzer target: the Speech Commands readers (data::read_speech_commands, both protocols) on
// arbitrary validation_list.txt and testing_list.txt (the input's two NUL-separated parts) over a
// small tree of word folders and a background-noise file.
#include "fuzz_util.h"
#include "hear/data/datasets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto root = hear::fuzz::scratch_dir() / "speech_commands";
  static const bool tree = [&] {
    for (const char* clip :
         {"yes/0a7c2a8d_nohash_0.wav", "yes/0a7c2a8d_nohash_1.wav", "no/0b40aa8e_nohash_0.wav",
          "marvin/0c2ca723_nohash_0.wav", "stop/0c5027de_nohash_2.wav"}) {
      hear::fuzz::write_bytes(root / clip, hear::fuzz::tiny_wav(16000));
    }
    hear::fuzz::write_bytes(root / "_background_noise_" / "white_noise.wav",
                            hear::fuzz::tiny_wav(40000));
    hear::fuzz::write_bytes(root / "README.md", "not a word\n");
    return true;
  }();
  (void)tree;
  const auto parts = hear::fuzz::split_parts(data, size, 2);
  hear::fuzz::write_bytes(root / "validation_list.txt", parts[0]);
  hear::fuzz::write_bytes(root / "testing_list.txt", parts[1]);
  for (const char* protocol : {"gscv1", "gscv2"}) {
    hear::fuzz::run_input([&] {
      hear::data::SpeechCommandsOptions options;
      options.root = root;
      options.protocol = protocol;
      (void)hear::data::read_speech_commands(options);
    });
  }
  return 0;
}
