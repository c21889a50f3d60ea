// libFuzzer target: the VoxCeleb1 identification reader (data::read_voxceleb1) on an arbitrary
// iden_split.txt; clips exist in both accepted layouts (ROOT/vox1_dev_wav/wav/... and
// ROOT/wav/...).
#include "fuzz_util.h"
#include "hear/data/datasets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto root = hear::fuzz::scratch_dir() / "voxceleb1";
  static const bool clips = [&] {
    for (const char* clip : {"id10001/1zcIwhmdeo4/00001.wav", "id10001/1zcIwhmdeo4/00002.wav",
                             "id10002/6WO410QOeuo/00001.wav"}) {
      hear::fuzz::write_bytes(root / "vox1_dev_wav" / "wav" / clip, hear::fuzz::tiny_wav());
    }
    hear::fuzz::write_bytes(root / "wav" / "id10003" / "K5zRxtXc27s" / "00001.wav",
                            hear::fuzz::tiny_wav());
    return true;
  }();
  (void)clips;
  hear::fuzz::write_bytes(root / "iden_split.txt",
                          std::string(reinterpret_cast<const char*>(data), size));
  return hear::fuzz::run_input([&] { (void)hear::data::read_voxceleb1(root); });
}
