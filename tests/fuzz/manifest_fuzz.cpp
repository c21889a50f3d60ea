// libFuzzer target: manifest TSV files (data::read_manifest): header, columns, lengths, offsets,
// labels, relative paths; clips a.wav and b/c.flac exist beside it.
#include "fuzz_util.h"
#include "hear/data/manifest.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto dir = hear::fuzz::scratch_dir() / "manifest";
  static const bool clips = [&] {
    hear::fuzz::write_bytes(dir / "a.wav", hear::fuzz::tiny_wav());
    hear::fuzz::write_bytes(dir / "b" / "c.wav", hear::fuzz::tiny_wav(800));
    return true;
  }();
  (void)clips;
  hear::fuzz::write_bytes(dir / "m.tsv", std::string(reinterpret_cast<const char*>(data), size));
  return hear::fuzz::run_input([&] {
    hear::data::ReadManifestOptions options;
    options.allow_empty = size % 2 == 0;
    (void)hear::data::read_manifest(dir / "m.tsv", options);
  });
}
