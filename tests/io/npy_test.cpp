#include "hear/io/npy.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "hear/error.h"
#include "hear/io/file_util.h"
#include "test_util.h"

namespace hear::io {
namespace {

TEST(Npy, RoundTripsDtypesAndShapes) {
  test::TempDir dir;
  std::vector<at::Tensor> cases = {torch::randn({3, 5}),
                                   torch::arange(4, torch::kLong),
                                   torch::tensor({true, false}),
                                   torch::randn({2, 1, 3}).to(torch::kDouble),
                                   torch::zeros({0}),
                                   torch::tensor(2.5f)};
  for (size_t i = 0; i < cases.size(); ++i) {
    const auto path = dir / ("c" + std::to_string(i) + ".npy");
    save_npy(path, cases[i]);
    auto back = load_npy(path);
    EXPECT_EQ(back.sizes(), cases[i].sizes()) << i;
    EXPECT_TRUE(torch::equal(back, cases[i])) << i;
  }
}

TEST(Npy, NumpyLoadsWhatWeWrite) {
  if (test::run_command("/usr/bin/python3 -c 'import numpy'") != 0) GTEST_SKIP();
  test::TempDir dir;
  save_npy(dir / "a.npy", torch::arange(6, torch::kFloat).reshape({2, 3}));
  std::string out;
  ASSERT_EQ(test::run_command("/usr/bin/python3 -c \"import numpy as np; a=np.load('" +
                                  (dir / "a.npy").string() +
                                  "'); assert a.shape==(2,3) and a.dtype==np.float32 and "
                                  "a[1,2]==5; np.save('" +
                                  (dir / "b.npy").string() + "', a.astype(np.int64) * 2)\"",
                              &out),
            0)
      << out;
  auto b = load_npy(dir / "b.npy");
  EXPECT_TRUE(torch::equal(b, torch::arange(6, torch::kLong).reshape({2, 3}) * 2));
}

TEST(Npy, RejectsGarbage) {
  EXPECT_THROW(parse_npy("hello world", "x.npy"), Error);
  std::string good = serialize_npy(torch::ones({4}));
  EXPECT_THROW(parse_npy(good.substr(0, good.size() - 2), "x.npy"), Error);
}

}  // namespace
}  // namespace hear::io
