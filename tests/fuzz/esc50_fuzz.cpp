// libFuzzer target: the ESC-50 metadata reader (data::read_esc50) on an arbitrary meta/esc50.csv;
// ROOT/audio/ holds three clips named as in the real layout.
#include "fuzz_util.h"
#include "hear/data/datasets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto root = hear::fuzz::scratch_dir() / "esc50";
  static const bool clips = [&] {
    for (const char* name : {"1-100032-A-0.wav", "2-100038-A-14.wav", "3-100048-B-7.wav"}) {
      hear::fuzz::write_bytes(root / "audio" / name, hear::fuzz::tiny_wav());
    }
    return true;
  }();
  (void)clips;
  hear::fuzz::write_bytes(root / "meta" / "esc50.csv",
                          std::string(reinterpret_cast<const char*>(data), size));
  return hear::fuzz::run_input([&] { (void)hear::data::read_esc50(root); });
}
