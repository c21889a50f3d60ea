#include "hear/bench/cost_model.h"

#include <gtest/gtest.h>

#include "hear/error.h"

namespace hear::bench {
namespace {

models::HearClassifierOptions paper_options(int64_t classes = 50) {
  models::HearClassifierOptions o;
  o.decoder.num_classes = classes;
  return o;
}

int64_t module_macs(const HearCost& c, const std::string& name) {
  for (const auto& m : c.modules) {
    if (m.name == name) return m.macs;
  }
  return -1;
}

TEST(CostModel, WindowsFollowTheReferenceRule) {
  const audio::FrontendOptions fe;
  const models::AcousticModelOptions am;
  struct Case {
    int64_t samples, patches, windows;
  } cases[] = {{16000, 50, 1},   {96000, 300, 1},  {96160, 301, 2},  {160000, 500, 2},
               {176000, 550, 2}, {184000, 575, 3}, {480000, 1500, 6}};
  for (const auto& c : cases) {
    const auto g = clip_geometry(c.samples, fe, am);
    EXPECT_EQ(g.patches, c.patches) << c.samples;
    EXPECT_EQ(g.windows, c.windows) << c.samples;
  }
  // 576 patches: window 2 starts at 500 and the clip reaches past 550, so 3 windows; at 550
  // the third window would add nothing (length == start + overlap).
  EXPECT_EQ(clip_geometry(176000, fe, am).windows, 2);
}

// The reference's analytic count for 10 s (docs/reference-notes.md §10), term by term.
TEST(CostModel, TenSecondsMatchesTheReferenceCount) {
  const auto c = count_hear_classifier(paper_options(), 160000);
  // Acoustic: conv 500·384·256 + 2 windows·300 tokens·6 layers·(4·384² + 2·384·1536)
  //           + 4 products · 300² · 384 · 2 windows · 6 layers.
  const int64_t conv = 500LL * 384 * 256;
  const int64_t linears = 2LL * 300 * 6 * (4 * 384 * 384 + 2 * 384 * 1536);
  const int64_t products = 4LL * 300 * 300 * 384 * 2 * 6;
  EXPECT_EQ(products, 1'658'880'000);  // "1.659 G for the four attention products"
  EXPECT_EQ(module_macs(c, "acoustic_model"), conv + linears + products);
  EXPECT_EQ(module_macs(c, "acoustic_model"), 8'078'131'200);     // 8.078 G
  EXPECT_EQ(module_macs(c, "spectrogram_mixture"), 418'176'000);  // 0.418 G
  EXPECT_EQ(module_macs(c, "task_model"), 1'076'736'000);         // 1.077 G
  EXPECT_EQ(module_macs(c, "decoder"), 461'568);                  // 0.0005 G
  EXPECT_EQ(c.total_macs, 9'573'504'768);                         // 9.574 G MACs
  // The paper's 9.47 "GFLOPs" is within 1.1 % of this MAC count, and half of 2·MACs.
  EXPECT_NEAR(c.total_macs / 1e9, 9.47, 0.11);
}

TEST(CostModel, NoSpectrumDropsTheGate) {
  auto o = paper_options();
  o.use_spectrogram = false;
  const auto c = count_hear_classifier(o, 160000);
  EXPECT_EQ(module_macs(c, "spectrogram_mixture"), -1);
  EXPECT_EQ(c.total_macs, 9'573'504'768 - 418'176'000);
}

TEST(CostModel, ShortClipRunsOneShortWindow) {
  // 1 s: 50 patches, one window of 50 tokens.
  const auto c = count_hear_classifier(paper_options(12), 16000);
  const int64_t acoustic =
      50LL * 384 * 256 + 50LL * 6 * (4 * 384 * 384 + 2 * 384 * 1536) + 4LL * 50 * 50 * 384 * 6;
  EXPECT_EQ(module_macs(c, "acoustic_model"), acoustic);
  EXPECT_EQ(c.geometry.windows, 1);
}

TEST(CostModel, TokenizerAndTeacher) {
  // 6 s: 300 patches through H128/I512/6 layers + the 128 -> 1024 logits.
  const int64_t expected = 300LL * 128 * 256 + 300LL * 6 * (4 * 128 * 128 + 2 * 128 * 512) +
                           4LL * 300 * 300 * 128 * 6 + 300LL * 128 * 1024;
  EXPECT_EQ(count_tokenizer_macs(models::TokenizerOptions{}, 96000), expected);
  EXPECT_THROW(count_tokenizer_macs(models::TokenizerOptions{}, 96160), hear::Error);
  // SSAST-Base-Frame: 166 checkpoint tensors, 88.76 M numbers including 15 pre-training extras
  // (mask_embed 768, heads 2·(1000·768+1000), cpredlayer/gpredlayer 2·(768·768+768+256·768+256),
  // 2 int64 scalars).
  const int64_t extras =
      768 + 2 * (1000 * 768 + 1000) + 2 * (768 * 768 + 768 + 256 * 768 + 256) + 2;
  EXPECT_NEAR((teacher_parameters() + extras) / 1e6, 88.76, 0.005);
}

}  // namespace
}  // namespace hear::bench
