#include "hear/train/checkpoint.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>

#include "hear/error.h"
#include "hear/io/file_util.h"
#include "hear/io/safetensors.h"
#include "hear/models/weights.h"
#include "hear/train/metrics.h"
#include "hear/train/optimizer.h"
#include "test_util.h"

namespace hear::train {
namespace {

torch::nn::Sequential checkpoint_model() {
  return torch::nn::Sequential(torch::nn::Linear(4, 8), torch::nn::BatchNorm1d(8),
                               torch::nn::ReLU(), torch::nn::Linear(8, 2));
}

void checkpoint_train_steps(torch::nn::Sequential& m, torch::optim::AdamW& opt, int steps) {
  for (int i = 0; i < steps; ++i) {
    opt.zero_grad();
    m->forward(torch::randn({6, 4})).pow(2).mean().backward();
    opt.step();
  }
}

template <class Fn>
std::string checkpoint_error(Fn fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(Checkpoint, RoundTripIsBitwiseAndTrainingContinuesIdentically) {
  torch::manual_seed(1);
  auto a = checkpoint_model();
  OptimizerOptions oo;
  oo.lr = 1e-2;
  auto opt_a = make_adamw(a->parameters(), oo);
  checkpoint_train_steps(a, *opt_a, 3);

  TrainState st;
  st.step = 3;
  st.epoch = 1;
  st.loader = {1, 7};
  st.lr = 1.0 / 3.0;
  st.best_metric = "valid_acc";
  st.best_value = 0.875;
  st.best_step = 2;
  st.skipped_batches = 4;
  st.torch_rng = get_torch_rng_state();
  st.extra["gumbel_tau"] = format_double(1.9999900000499998);
  test::TempDir dir;
  const auto ck = dir / "checkpoints" / "last";
  save_checkpoint(ck, *a, opt_a.get(), st, "train:\n  lr: 0.01\n");
  EXPECT_TRUE(std::filesystem::exists(ck / "model.safetensors"));
  EXPECT_TRUE(std::filesystem::exists(ck / "optimizer.safetensors"));
  EXPECT_FALSE(std::filesystem::exists(dir / "checkpoints" / "last.tmp"));
  EXPECT_FALSE(std::filesystem::exists(dir / "checkpoints" / "last.old"));
  // Optimizer keys are the parameter names.
  auto opt_file = io::load_safetensors(ck / "optimizer.safetensors").tensors;
  EXPECT_TRUE(opt_file.count("0.weight.exp_avg"));
  EXPECT_TRUE(opt_file.count("1.bias.exp_avg_sq"));
  EXPECT_EQ(opt_file.at("3.bias.step").item<int64_t>(), 3);
  EXPECT_TRUE(io::load_safetensors(ck / "model.safetensors").tensors.count("1.running_mean"));

  const auto reference_draw = torch::rand({5});  // what the RNG gives after the saved state

  torch::manual_seed(99);
  auto b = checkpoint_model();
  auto opt_b = make_adamw(b->parameters(), oo);
  LoadedCheckpoint loaded = load_checkpoint(ck, *b, opt_b.get());
  const auto sa = models::module_state(*a), sb = models::module_state(*b);
  ASSERT_EQ(sa.size(), sb.size());
  for (const auto& [k, v] : sa) EXPECT_TRUE(torch::equal(v, sb.at(k))) << k;
  const auto oa = optimizer_state(*opt_a, *a), ob = optimizer_state(*opt_b, *b);
  ASSERT_EQ(oa.size(), ob.size());
  for (const auto& [k, v] : oa) EXPECT_TRUE(torch::equal(v, ob.at(k))) << k;
  EXPECT_EQ(loaded.config_yaml, "train:\n  lr: 0.01\n");
  EXPECT_EQ(loaded.state.step, 3);
  EXPECT_EQ(loaded.state.epoch, 1);
  EXPECT_EQ(loaded.state.loader, (data::LoaderPosition{1, 7}));
  EXPECT_EQ(loaded.state.lr, 1.0 / 3.0);  // bitwise through the text
  EXPECT_EQ(loaded.state.best_metric, "valid_acc");
  EXPECT_EQ(loaded.state.best_value, 0.875);
  EXPECT_EQ(loaded.state.best_step, 2);
  EXPECT_EQ(loaded.state.skipped_batches, 4);
  EXPECT_EQ(parse_double(loaded.state.extra.at("gumbel_tau"), "tau"), 1.9999900000499998);
  set_torch_rng_state(loaded.state.torch_rng);
  EXPECT_TRUE(torch::equal(torch::rand({5}), reference_draw));

  // Both continue identically: the restored AdamW state is the one torch's step() uses.
  torch::manual_seed(5);
  checkpoint_train_steps(a, *opt_a, 2);
  torch::manual_seed(5);
  checkpoint_train_steps(b, *opt_b, 2);
  const auto sa2 = models::module_state(*a), sb2 = models::module_state(*b);
  for (const auto& [k, v] : sa2) EXPECT_TRUE(torch::equal(v, sb2.at(k))) << k;
}

TEST(Checkpoint, ReplacesAtomicallyAndFallsBackToOld) {
  torch::manual_seed(2);
  auto m = checkpoint_model();
  TrainState st;
  st.torch_rng = get_torch_rng_state();
  test::TempDir dir;
  const auto ck = dir / "best";
  st.step = 1;
  save_checkpoint(ck, *m, nullptr, st, "a: 1\n");
  st.step = 2;
  save_checkpoint(ck, *m, nullptr, st, "a: 2\n");
  std::vector<std::string> names;
  for (const auto& d : std::filesystem::directory_iterator(dir.path())) {
    names.push_back(d.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  // best.old is the previous checkpoint, kept for a best found damaged later.
  EXPECT_EQ(names, (std::vector<std::string>{"best", "best.old"}));
  std::filesystem::remove_all(dir / "best.old");
  auto m2 = checkpoint_model();
  EXPECT_EQ(load_checkpoint(ck, *m2, nullptr).state.step, 2);
  EXPECT_FALSE(std::filesystem::exists(ck / "optimizer.safetensors"));

  // A weights-only checkpoint cannot resume an optimizer.
  auto opt = make_adamw(m2->parameters(), OptimizerOptions{});
  EXPECT_NE(checkpoint_error([&] {
              load_checkpoint(ck, *m2, opt.get());
            }).find("no optimizer.safetensors"),
            std::string::npos);

  // A crash between the two renames leaves only NAME.old: loading uses it.
  std::filesystem::rename(ck, dir / "best.old");
  const auto loaded = load_checkpoint(ck, *m2, nullptr);
  EXPECT_EQ(loaded.state.step, 2);
  EXPECT_EQ(loaded.dir, dir / "best.old");
  // The next save completes NAME again and keeps NAME.old as its predecessor.
  st.step = 3;
  save_checkpoint(ck, *m, nullptr, st, "a: 3\n");
  EXPECT_EQ(load_checkpoint(ck, *m2, nullptr).state.step, 3);
  EXPECT_EQ(load_checkpoint(dir / "best.old", *m2, nullptr).state.step, 2);
}

TEST(Checkpoint, LoadErrorsNameTheProblem) {
  torch::manual_seed(3);
  auto m = checkpoint_model();
  TrainState st;
  st.torch_rng = get_torch_rng_state();
  test::TempDir dir;
  const auto ck = dir / "last";
  EXPECT_NE(checkpoint_error([&] { load_checkpoint(ck, *m, nullptr); }).find("does not exist"),
            std::string::npos);
  save_checkpoint(ck, *m, nullptr, st, "");

  auto wider = torch::nn::Sequential(torch::nn::Linear(4, 9), torch::nn::BatchNorm1d(9),
                                     torch::nn::ReLU(), torch::nn::Linear(9, 2));
  const std::string shape_err = checkpoint_error([&] { load_checkpoint(ck, *wider, nullptr); });
  EXPECT_NE(shape_err.find("0.weight: file [8, 4] vs module [9, 4]"), std::string::npos)
      << shape_err;
  EXPECT_NE(shape_err.find("model.safetensors"), std::string::npos) << shape_err;

  auto fewer = torch::nn::Sequential(torch::nn::Linear(4, 8));
  const std::string key_err = checkpoint_error([&] { load_checkpoint(ck, *fewer, nullptr); });
  EXPECT_NE(key_err.find("unexpected: 1.bias"), std::string::npos) << key_err;

  io::write_file_atomic(ck / "state.yaml", "format: hear-checkpoint-1\nstep: x\n");
  const std::string yaml_err = checkpoint_error([&] { load_checkpoint(ck, *m, nullptr); });
  EXPECT_NE(yaml_err.find("state.yaml"), std::string::npos) << yaml_err;
  EXPECT_NE(yaml_err.find("'step'"), std::string::npos) << yaml_err;

  std::filesystem::remove(ck / "model.safetensors");
  const std::string missing = checkpoint_error([&] { load_checkpoint(ck, *m, nullptr); });
  EXPECT_NE(missing.find("'" + ck.string() + "' has no model.safetensors"), std::string::npos)
      << missing;
}

TEST(Checkpoint, ChecksumsDetectDamageAndFallBackToThePrevious) {
  torch::manual_seed(4);
  auto m = checkpoint_model();
  auto opt = make_adamw(m->parameters(), OptimizerOptions{});
  checkpoint_train_steps(m, *opt, 1);
  TrainState st;
  st.torch_rng = get_torch_rng_state();
  test::TempDir dir;
  const auto ck = dir / "last";
  st.step = 1;
  save_checkpoint(ck, *m, opt.get(), st, "a: 1\n");
  st.step = 2;
  save_checkpoint(ck, *m, opt.get(), st, "a: 2\n");
  EXPECT_EQ(checkpoint_problem(ck), "");
  const std::string state = io::read_file(ck / "state.yaml");
  EXPECT_NE(state.find("files: {model.safetensors: {bytes: "), std::string::npos) << state;
  EXPECT_NE(state.find("optimizer.safetensors"), std::string::npos) << state;

  // Truncated: the size no longer matches; loading warns and uses last.old (one interval lost).
  const std::string model_bytes = io::read_file(ck / "model.safetensors");
  io::write_file_atomic(ck / "model.safetensors", model_bytes.substr(0, model_bytes.size() / 2));
  EXPECT_NE(checkpoint_problem(ck).find("model.safetensors has"), std::string::npos);
  EXPECT_NE(checkpoint_problem(ck).find("(truncated?)"), std::string::npos);
  auto m2 = checkpoint_model();
  auto opt2 = make_adamw(m2->parameters(), OptimizerOptions{});
  auto loaded = load_checkpoint(ck, *m2, opt2.get());
  EXPECT_EQ(loaded.dir, dir / "last.old");
  EXPECT_EQ(loaded.state.step, 1);

  // Corrupted in place (same size, one byte flipped): the SHA-256 tells.
  std::string opt_bytes = io::read_file(ck / "optimizer.safetensors");
  io::write_file_atomic(ck / "model.safetensors", model_bytes);
  EXPECT_EQ(checkpoint_problem(ck), "");
  opt_bytes[opt_bytes.size() - 3] ^= 0x40;
  io::write_file_atomic(ck / "optimizer.safetensors", opt_bytes);
  EXPECT_EQ(checkpoint_problem(ck),
            "optimizer.safetensors does not match its SHA-256 in state.yaml (corrupted)");
  EXPECT_EQ(load_checkpoint(ck, *m2, opt2.get()).dir, dir / "last.old");

  // Both damaged: an error naming both problems, nothing loaded.
  io::write_file_atomic(dir / "last.old" / "state.yaml", "{unclosed");
  const std::string both = checkpoint_error([&] { load_checkpoint(ck, *m2, opt2.get()); });
  EXPECT_NE(both.find("no usable checkpoint"), std::string::npos) << both;
  EXPECT_NE(both.find("does not match its SHA-256"), std::string::npos) << both;
  EXPECT_NE(both.find("state.yaml is unreadable"), std::string::npos) << both;
}

}  // namespace
}  // namespace hear::train
