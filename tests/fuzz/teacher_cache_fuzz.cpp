// libFuzzer target: the teacher-feature cache reader (teacher::TeacherFeatureCache) on an arbitrary
// cache.json, index.tsv and first shard (the input's three NUL-separated parts); every record's
// features are read.
#include <torch/torch.h>

#include "fuzz_util.h"
#include "hear/teacher/feature_cache.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto dir = hear::fuzz::scratch_dir() / "teacher_cache";
  const auto parts = hear::fuzz::split_parts(data, size, 3);
  hear::fuzz::write_bytes(dir / "cache.json", parts[0]);
  hear::fuzz::write_bytes(dir / "index.tsv", parts[1]);
  hear::fuzz::write_bytes(dir / "shard_00000.safetensors", parts[2]);
  return hear::fuzz::run_input([&] {
    hear::teacher::TeacherFeatureCache cache(dir);
    int n = 0;
    for (const auto& r : cache.records()) {
      if (++n > 16) break;
      (void)cache.features(r.path, r.offset).sum().item<float>();
    }
  });
}
