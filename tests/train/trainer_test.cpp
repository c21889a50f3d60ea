#include "hear/train/trainer.h"

#include <ATen/autocast_mode.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <torch/torch.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <map>
#include <thread>

#include "hear/data/segmenter.h"
#include "hear/error.h"
#include "hear/io/file_util.h"
#include "hear/models/weights.h"
#include "hear/train/distributed.h"
#include "hear/util/random.h"
#include "hear/util/strings.h"
#include "test_util.h"

namespace hear::train {
namespace {

constexpr int64_t kTrainerInputs = 16;

// Clip i: 32 deterministic pseudo-random samples; the model reads the first 16.
at::Tensor trainer_clip(const data::ManifestEntry& e, int64_t offset, int64_t length) {
  const uint64_t base = std::hash<std::string>()(e.path.string());
  const int64_t n = length < 0 ? e.num_samples - offset : length;
  at::Tensor out = torch::empty({n}, torch::kFloat);
  auto a = out.accessor<float, 1>();
  for (int64_t i = 0; i < n; ++i) {
    a[i] = static_cast<float>(util::mix_seed(base, static_cast<uint64_t>(offset + i)) % 2000) /
               1000.0f -
           1.0f;
  }
  return out;
}

std::vector<data::ManifestEntry> trainer_entries(int n) {
  std::vector<data::ManifestEntry> e;
  for (int i = 0; i < n; ++i) e.push_back({"syn/clip" + std::to_string(i) + ".wav", 32, ""});
  return e;
}

data::LoaderOptions trainer_loader_options(int64_t batch_size, int workers) {
  data::LoaderOptions o;
  o.sampler.batch_size = batch_size;
  o.sampler.seed = 17;
  o.segments.mode = data::SegmentMode::kWhole;
  o.segments.min_seconds = 0;
  o.num_workers = workers;
  o.queue_capacity = 4;
  return o;
}

torch::nn::Sequential trainer_mlp(bool dropout) {
  torch::nn::Sequential m(torch::nn::Linear(kTrainerInputs, 32), torch::nn::ReLU());
  if (dropout) m->push_back(torch::nn::Dropout(0.2));
  m->push_back(torch::nn::Linear(32, 1));
  return m;
}

// A regression target the MLP can learn: y = x . w + 0.5 * x0 * x1.
at::Tensor trainer_target(const at::Tensor& x) {
  const auto w = torch::linspace(-1, 1, kTrainerInputs);
  return (x * w).sum(1, true) + 0.5 * x.select(1, 0).unsqueeze(1) * x.select(1, 1).unsqueeze(1);
}

TrainerCallbacks trainer_callbacks(torch::nn::Sequential m) {
  TrainerCallbacks cb;
  cb.loss = [m](const data::Batch& b, int64_t) mutable {
    const auto x = b.waveforms.narrow(1, 0, kTrainerInputs);
    const auto loss = torch::mse_loss(m->forward(x), trainer_target(x));
    return StepResult{loss, {{"abs_err", std::sqrt(loss.item<double>())}}};
  };
  cb.train_metric_names = {"abs_err"};
  return cb;
}

TrainerOptions trainer_options(int64_t steps) {
  TrainerOptions o;
  o.steps = steps;
  o.log_every = 5;
  o.checkpoint_every = 7;
  o.threads = 1;
  o.seed = 123;
  o.progress_bar = false;
  o.optimizer.lr = 3e-3;
  o.optimizer.grad_clip = 1.0;
  o.schedule.warmup_steps = 4;
  return o;
}

void trainer_expect_same_weights(const torch::nn::Module& a, const torch::nn::Module& b) {
  const auto sa = models::module_state(a), sb = models::module_state(b);
  ASSERT_EQ(sa.size(), sb.size());
  for (const auto& [k, v] : sa) EXPECT_TRUE(torch::equal(v, sb.at(k))) << k;
}

TEST(Trainer, ResumeContinuesBitwiseIdentically) {
  // 6 batches of 8 per epoch: the run stops mid-epoch (epoch 1, batch 4) and crosses epochs later.
  const auto entries = trainer_entries(48);
  std::string extra_seen;
  // Straight: 20 steps.
  test::TempDir straight_dir;
  seed_torch(1);
  auto straight = trainer_mlp(true);
  {
    data::DataLoader loader(entries, trainer_loader_options(8, 2), std::nullopt, trainer_clip);
    Trainer t(trainer_options(20), straight_dir.path(), *straight, loader,
              trainer_callbacks(straight), "seed: 1\n");
    FitResult r = t.fit();
    EXPECT_TRUE(r.finished);
    EXPECT_EQ(r.step, 20);
  }
  // Interrupted after 10 steps, then a new process-like setup (fresh model with another init,
  // fresh loader with another worker count) resumes and runs the other 10.
  test::TempDir resumed_dir;
  {
    seed_torch(1);
    auto m = trainer_mlp(true);
    data::DataLoader loader(entries, trainer_loader_options(8, 1), std::nullopt, trainer_clip);
    auto cb = trainer_callbacks(m);
    cb.save_extra = [](std::map<std::string, std::string>& extra) { extra["tau"] = "1.5"; };
    Trainer t(trainer_options(20), resumed_dir.path(), *m, loader, cb, "seed: 1\n");
    EXPECT_FALSE(t.can_resume());
    FitResult r = t.fit(10);
    EXPECT_FALSE(r.finished);
    EXPECT_EQ(r.step, 10);
  }
  seed_torch(999);
  auto resumed = trainer_mlp(true);
  {
    data::DataLoader loader(entries, trainer_loader_options(8, 3), std::nullopt, trainer_clip);
    auto cb = trainer_callbacks(resumed);
    cb.load_extra = [&](const std::map<std::string, std::string>& extra) {
      extra_seen = extra.at("tau");
    };
    Trainer t(trainer_options(20), resumed_dir.path(), *resumed, loader, cb, "seed: 1\n");
    ASSERT_TRUE(t.can_resume());
    t.resume();
    EXPECT_EQ(t.step(), 10);
    EXPECT_EQ(loader.position(), (data::LoaderPosition{1, 4}));
    FitResult r = t.fit();
    EXPECT_TRUE(r.finished);
    EXPECT_EQ(r.step, 20);
  }
  EXPECT_EQ(extra_seen, "1.5");
  trainer_expect_same_weights(*straight, *resumed);
  // The saved optimizer states agree too.
  const auto oa =
      io::load_safetensors(straight_dir / "checkpoints/last/optimizer.safetensors").tensors;
  const auto ob =
      io::load_safetensors(resumed_dir / "checkpoints/last/optimizer.safetensors").tensors;
  ASSERT_EQ(oa.size(), ob.size());
  for (const auto& [k, v] : oa) EXPECT_TRUE(torch::equal(v, ob.at(k))) << k;
  // metrics.csv of the resumed run has each step once: rows 5, 10, 15, 20.
  const std::string csv = io::read_file(resumed_dir / "metrics.csv");
  EXPECT_EQ(csv.substr(0, csv.find('\n')),
            "step,epoch,loss,abs_err,lr,grad_norm,clips_per_s,step_s,data_ms,forward_ms,"
            "backward_ms,optim_ms");
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 5) << csv;
  EXPECT_EQ(io::read_file(resumed_dir / "checkpoints/last/config.yaml"), "seed: 1\n");
  EXPECT_FALSE(std::filesystem::exists(resumed_dir / "checkpoints/last.tmp"));
}

TEST(Trainer, ValidationDoesNotChangeTheTrainingRandomStream) {
  // Dropout draws from the global generator; a validation that reseeds and draws from it too must
  // leave the training stream as it was.
  const auto entries = trainer_entries(32);
  auto run = [&](bool with_validation) {
    test::TempDir dir;
    seed_torch(5);
    auto m = trainer_mlp(/*dropout=*/true);
    data::DataLoader loader(entries, trainer_loader_options(8, 0), std::nullopt, trainer_clip);
    auto cb = trainer_callbacks(m);
    if (with_validation) {
      cb.validate = [](int64_t) {
        torch::manual_seed(4321);
        return MetricValues{{"valid_noise", torch::rand({64}).sum().item<double>()}};
      };
      cb.valid_metric_names = {"valid_noise"};
    }
    auto options = trainer_options(12);
    options.validate_every = 3;
    Trainer t(options, dir.path(), *m, loader, cb, "");
    t.fit();
    return models::module_state(*m);
  };
  const auto plain = run(false), validated = run(true);
  ASSERT_EQ(plain.size(), validated.size());
  for (const auto& [k, v] : plain) EXPECT_TRUE(torch::equal(v, validated.at(k))) << k;
}

TEST(Trainer, StepTimeAndPhasesExcludeValidation) {
  const auto entries = trainer_entries(32);
  test::TempDir dir;
  seed_torch(6);
  auto m = trainer_mlp(false);
  data::DataLoader loader(entries, trainer_loader_options(8, 0), std::nullopt, trainer_clip);
  auto cb = trainer_callbacks(m);
  cb.validate = [](int64_t) {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    return MetricValues{{"valid_x", 1.0}};
  };
  cb.valid_metric_names = {"valid_x"};
  auto options = trainer_options(4);
  options.log_every = 4;
  options.validate_every = 2;
  options.checkpoint_every = 0;
  Trainer t(options, dir.path(), *m, loader, cb, "");
  t.fit();
  const std::string csv = io::read_file(dir / "metrics.csv");
  const auto lines = util::split(csv, '\n');
  const auto header = util::split(lines.at(0), ',');
  std::vector<std::string> row;
  for (const auto& l : lines) {
    const auto fields = util::split(l, ',');
    // The training row of step 4 (its validation row leaves the step columns empty).
    if (util::starts_with(l, "4,") && fields.size() == header.size() && !fields[7].empty())
      row = fields;
  }
  ASSERT_EQ(row.size(), header.size()) << csv;
  std::map<std::string, double> v;
  for (size_t i = 0; i < header.size(); ++i) v[header[i]] = row[i].empty() ? -1 : std::stod(row[i]);
  // Two validations of 0.3 s happened inside the interval, none of it in the step time.
  EXPECT_LT(v.at("step_s"), 0.1) << csv;
  const double phases =
      v.at("data_ms") + v.at("forward_ms") + v.at("backward_ms") + v.at("optim_ms");
  EXPECT_NEAR(phases, 1e3 * v.at("step_s"), 1e-6 + 1e-3 * phases) << csv;
  EXPECT_GT(v.at("forward_ms"), 0.0);
}

TEST(Trainer, NonFiniteLossNamesTheStepAndFiles) {
  test::TempDir dir;
  seed_torch(2);
  auto m = trainer_mlp(false);
  data::DataLoader loader(trainer_entries(16), trainer_loader_options(4, 1), std::nullopt,
                          trainer_clip);
  auto cb = trainer_callbacks(m);
  auto base_loss = cb.loss;
  std::vector<std::string> bad_files;
  int nan_left = 1;
  cb.loss = [&](const data::Batch& b, int64_t step) {
    StepResult r = base_loss(b, step);
    if (step == 3 && nan_left-- > 0) {
      r.loss = r.loss * std::numeric_limits<float>::quiet_NaN();
      bad_files = b.paths;
    }
    return r;
  };
  Trainer t(trainer_options(10), dir.path(), *m, loader, cb, "");
  try {
    t.fit();
    FAIL() << "expected an error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("non-finite loss"), std::string::npos) << msg;
    EXPECT_NE(msg.find("at step 3 "), std::string::npos) << msg;
    ASSERT_EQ(bad_files.size(), 4u);
    for (const auto& f : bad_files) EXPECT_NE(msg.find(f), std::string::npos) << msg;
  }
  EXPECT_EQ(t.step(), 3);

  // With nonfinite=skip the bad batch is dropped and training goes on.
  test::TempDir dir2;
  nan_left = 1;
  auto opts = trainer_options(10);
  opts.nonfinite = NonfiniteAction::kSkip;
  data::DataLoader loader2(trainer_entries(16), trainer_loader_options(4, 1), std::nullopt,
                           trainer_clip);
  Trainer t2(opts, dir2.path(), *m, loader2, cb, "");
  FitResult r = t2.fit();
  EXPECT_TRUE(r.finished);
  EXPECT_EQ(t2.state().skipped_batches, 1);
  for (const auto& p : m->parameters()) EXPECT_TRUE(torch::isfinite(p).all().item<bool>());
}

TEST(Trainer, SigintSavesLastAndReturns) {
  test::TempDir dir;
  seed_torch(3);
  auto m = trainer_mlp(false);
  data::DataLoader loader(trainer_entries(16), trainer_loader_options(4, 2), std::nullopt,
                          trainer_clip);
  auto cb = trainer_callbacks(m);
  auto base_loss = cb.loss;
  cb.loss = [&](const data::Batch& b, int64_t step) {
    if (step == 4) std::raise(SIGINT);  // handled by the trainer: the step completes
    return base_loss(b, step);
  };
  auto opts = trainer_options(100);
  opts.checkpoint_every = 0;
  Trainer t(opts, dir.path(), *m, loader, cb, "");
  FitResult r = t.fit();
  EXPECT_TRUE(r.interrupted);
  EXPECT_FALSE(r.finished);
  EXPECT_EQ(r.step, 5);
  EXPECT_FALSE(stop_requested());
  const auto st =
      train_state_from_yaml(io::read_file(dir / "checkpoints/last/state.yaml"), "state");
  EXPECT_EQ(st.step, 5);
  EXPECT_EQ(st.loader, (data::LoaderPosition{1, 1}));  // 4 batches per epoch
  auto copy = trainer_mlp(false);
  load_checkpoint(dir / "checkpoints/last", *copy, nullptr);
  trainer_expect_same_weights(*m, *copy);
}

TEST(Trainer, RegressionLossFallsAndBestIsKept) {
  test::TempDir dir;
  seed_torch(4);
  auto m = trainer_mlp(false);
  const auto entries = trainer_entries(64);
  data::DataLoader loader(entries, trainer_loader_options(16, 2), std::nullopt, trainer_clip);
  auto valid_opts = trainer_loader_options(64, 0);
  valid_opts.sampler.shuffle = false;
  valid_opts.max_epochs = 1;
  auto cb = trainer_callbacks(m);
  std::vector<double> valid_losses;
  cb.validate = [&](int64_t) {
    data::DataLoader valid(entries, valid_opts, std::nullopt, trainer_clip);
    auto b = *valid.next();
    const auto x = b.waveforms.narrow(1, 0, kTrainerInputs);
    const double loss = torch::mse_loss(m->forward(x), trainer_target(x)).item<double>();
    valid_losses.push_back(loss);
    return MetricValues{{"valid_loss", loss}};
  };
  cb.valid_metric_names = {"valid_loss"};
  auto opts = trainer_options(200);
  opts.optimizer.lr = 1e-2;
  opts.schedule.warmup_steps = 10;
  opts.validate_every = 20;
  opts.best_metric = "valid_loss";
  opts.best_mode = BestMode::kMin;
  opts.checkpoint_every = 50;
  Trainer t(opts, dir.path(), *m, loader, cb, "");
  FitResult r = t.fit();
  EXPECT_TRUE(r.finished);
  ASSERT_EQ(valid_losses.size(), 10u);
  EXPECT_LT(valid_losses.back(), 0.1 * valid_losses.front())
      << valid_losses.front() << " -> " << valid_losses.back();
  const double best = *std::min_element(valid_losses.begin(), valid_losses.end());
  const auto st = train_state_from_yaml(io::read_file(dir / "checkpoints/best/state.yaml"), "best");
  EXPECT_EQ(st.best_value, best);
  EXPECT_EQ(st.best_metric, "valid_loss");
  EXPECT_EQ(t.state().best_value, best);
  // The schedule ran to its end.
  EXPECT_EQ(t.state().lr, t.schedule().lr(199));
  const std::string csv = io::read_file(dir / "metrics.csv");
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 1 + 40 + 10) << csv;
}

TEST(Trainer, AccumulationMatchesALargerBatch) {
  const auto entries = trainer_entries(32);
  auto run = [&](int64_t batch, int64_t accumulation) {
    test::TempDir dir;
    seed_torch(5);
    auto m = trainer_mlp(false);
    data::DataLoader loader(entries, trainer_loader_options(batch, 1), std::nullopt, trainer_clip);
    auto opts = trainer_options(6);
    opts.optimizer.accumulation_steps = accumulation;
    Trainer t(opts, dir.path(), *m, loader, trainer_callbacks(m), "");
    t.fit();
    return models::module_state(*m);
  };
  const auto big = run(8, 1);
  const auto small = run(4, 2);
  for (const auto& [k, v] : big) {
    EXPECT_TRUE(torch::allclose(v, small.at(k), 1e-5, 1e-6)) << k;
    EXPECT_FALSE(torch::equal(v, run(4, 1).at(k))) << k;  // and differs from no accumulation
    break;
  }
}

struct TrainerYamlConfig {
  TrainerOptions train;
  data::LoaderOptions data;
  void define(io::ConfigSchema& s) {
    s.section("train", train);
    s.section("data", data);
  }
};

TEST(Trainer, OptionsLoadFromYaml) {
  const std::string yaml =
      "train:\n  steps: 7\n  threads: 2\n  optimizer:\n    lr: 0.001\n    betas: [0.9, 0.98]\n"
      "  schedule:\n    warmup_steps: 3\ndata:\n  num_workers: 3\n  sampler:\n    batch_size: 4\n"
      "  segments:\n    mode: whole\n    pad_to_seconds: 1.0\n";
  auto c = io::config_from_yaml_text<TrainerYamlConfig>(yaml, "run.yaml");
  EXPECT_EQ(c.train.steps, 7);
  EXPECT_EQ(c.train.threads, 2);
  EXPECT_EQ(c.train.optimizer.lr, 0.001);
  EXPECT_EQ(c.train.optimizer.betas, (std::vector<double>{0.9, 0.98}));
  EXPECT_EQ(c.train.schedule.warmup_steps, 3);
  EXPECT_EQ(c.data.num_workers, 3);
  EXPECT_EQ(c.data.sampler.batch_size, 4);
  EXPECT_EQ(c.data.segments.mode, data::SegmentMode::kWhole);
  EXPECT_EQ(c.data.segments.pad_to_seconds, 1.0);
  // Dumped and reloaded, the values survive.
  auto again = io::config_from_yaml_text<TrainerYamlConfig>(io::config_to_yaml(c), "dump");
  EXPECT_EQ(again.train.optimizer.betas, c.train.optimizer.betas);
  EXPECT_EQ(again.data.segments.mode, data::SegmentMode::kWhole);
  EXPECT_THROW(io::config_from_yaml_text<TrainerYamlConfig>("train:\n  nonfinite: ignore\n", "x"),
               Error);
  EXPECT_THROW(io::config_from_yaml_text<TrainerYamlConfig>(
                   "train:\n  optimizer:\n    betas: [0.9, 1.5]\n", "x"),
               Error);
  EXPECT_THROW(
      io::config_from_yaml_text<TrainerYamlConfig>("data:\n  segments:\n    mode: x\n", "x"),
      Error);
}

// 200 steps of the MLP under `precision` autocast on `device`: the forward's dtype, the dtypes of
// the trained parameters, the mean loss of the first and last 3 steps, and the fp16 loss scale.
struct AutocastRun {
  at::ScalarType forward_dtype = at::kFloat;
  bool float32_parameters = true;
  double first_loss = 0, last_loss = 0, loss_scale = 0;
};

AutocastRun trainer_autocast_run(Precision precision, const std::string& device) {
  test::TempDir dir;
  seed_torch(4);
  auto m = trainer_mlp(false);
  const auto entries = trainer_entries(64);
  data::DataLoader loader(entries, trainer_loader_options(16, 1), std::nullopt, trainer_clip);
  std::vector<double> losses;
  AutocastRun run;
  TrainerCallbacks cb;
  cb.loss = [&](const data::Batch& b, int64_t) {
    const auto x = b.waveforms.narrow(1, 0, kTrainerInputs);
    const auto y = m->forward(x);
    run.forward_dtype = y.scalar_type();
    const auto loss = torch::mse_loss(y.to(torch::kFloat), trainer_target(x));
    losses.push_back(loss.item<double>());
    return StepResult{loss, {}};
  };
  auto opts = trainer_options(200);
  opts.optimizer.lr = 1e-2;
  opts.schedule.warmup_steps = 10;
  opts.precision = precision;
  opts.device = device;
  Trainer t(opts, dir.path(), *m, loader, cb, "");
  EXPECT_TRUE(t.fit().finished);
  for (const auto& p : m->parameters()) run.float32_parameters &= p.scalar_type() == at::kFloat;
  run.first_loss = (losses[0] + losses[1] + losses[2]) / 3;
  run.last_loss = (losses[197] + losses[198] + losses[199]) / 3;
  if (t.loss_scaler()) run.loss_scale = t.loss_scaler()->scale();
  return run;
}

TEST(Trainer, Bf16AutocastTrainsWithFloat32Weights) {
  const AutocastRun run = trainer_autocast_run(Precision::kBf16, "cpu");
  EXPECT_EQ(run.forward_dtype, at::kBFloat16);   // the products ran in bfloat16
  EXPECT_FALSE(at::autocast::is_cpu_enabled());  // and autocast ended with the forward
  EXPECT_TRUE(run.float32_parameters);
  EXPECT_LT(run.last_loss, 0.1 * run.first_loss) << run.first_loss << " -> " << run.last_loss;
  // fp16 is CUDA's: refused on the CPU, naming the key.
  test::TempDir dir;
  auto m = trainer_mlp(false);
  const auto entries = trainer_entries(16);
  data::DataLoader loader(entries, trainer_loader_options(8, 1), std::nullopt, trainer_clip);
  auto opts = trainer_options(2);
  opts.precision = Precision::kFp16;
  try {
    Trainer refused(opts, dir.path(), *m, loader, trainer_callbacks(m), "");
    FAIL() << "fp16 accepted on the CPU";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("train.precision"), std::string::npos) << e.what();
  }
}

TEST(Trainer, DataParallelMatchesOneProcessWithTheGlobalBatch) {
  // Two ranks (threads of this process, c10d over loopback) with batch 8 each, sharded, against
  // one process with batch 16: the same global batches, so the same weights after 12 steps
  // (across an epoch boundary); both ranks end bitwise equal, and only rank 0 writes.
  const auto entries = trainer_entries(48);
  auto options = trainer_options(12);
  options.checkpoint_every = 0;
  test::TempDir single_dir;
  seed_torch(1);
  auto single = trainer_mlp(false);
  {
    data::DataLoader loader(entries, trainer_loader_options(16, 1), std::nullopt, trainer_clip);
    Trainer t(options, single_dir.path(), *single, loader, trainer_callbacks(single), "");
    EXPECT_TRUE(t.fit().finished);
  }
  const int port = test::free_loopback_port();
  test::TempDir parallel_dir;
  std::vector<torch::nn::Sequential> ranks(2);
  seed_torch(1);
  ranks[0] = trainer_mlp(false);
  seed_torch(77);  // rank 1 starts elsewhere: the broadcast must overwrite it
  ranks[1] = trainer_mlp(false);
  auto run_rank = [&](int rank) {
    ProcessGroupConfig config;
    config.rank = rank;
    config.world_size = 2;
    config.master_port = port;
    config.timeout = std::chrono::seconds(30);
    DataParallel parallel(config);
    auto loader_options = trainer_loader_options(8, 1);
    loader_options.sampler.shard_rank = rank;
    loader_options.sampler.shard_count = 2;
    data::DataLoader loader(entries, loader_options, std::nullopt, trainer_clip);
    Trainer t(options, parallel_dir.path(), *ranks[rank], loader, trainer_callbacks(ranks[rank]),
              "");
    t.set_data_parallel(&parallel);
    EXPECT_TRUE(t.fit().finished);
  };
  std::thread second(run_rank, 1);
  run_rank(0);
  second.join();
  trainer_expect_same_weights(*ranks[0], *ranks[1]);
  const auto a = models::module_state(*single), b = models::module_state(*ranks[0]);
  for (const auto& [k, v] : a) {
    EXPECT_LT((v - b.at(k)).abs().max().item<double>(), 1e-5) << k;
  }
  EXPECT_TRUE(std::filesystem::exists(parallel_dir / "checkpoints/last/state.yaml"));
  const std::string csv = io::read_file(parallel_dir / "metrics.csv");
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 1 + 3) << csv;  // steps 5, 10, 12: one writer
}

TEST(Trainer, DataParallelSkipsANonFiniteLossOnEveryRank) {
  // Rank 1's loss is NaN at step 3: with nonfinite: skip both ranks skip that step together (no
  // desynchronised all-reduce), finish, and end with the same weights.
  const auto entries = trainer_entries(48);
  auto options = trainer_options(8);
  options.checkpoint_every = 0;
  options.nonfinite = NonfiniteAction::kSkip;
  const int port = test::free_loopback_port();
  test::TempDir dir;
  std::vector<torch::nn::Sequential> ranks(2);
  std::vector<int64_t> skipped(2), steps(2);
  seed_torch(1);
  ranks[0] = trainer_mlp(false);
  ranks[1] = trainer_mlp(false);
  auto run_rank = [&](int rank) {
    ProcessGroupConfig config;
    config.rank = rank;
    config.world_size = 2;
    config.master_port = port;
    config.timeout = std::chrono::seconds(30);
    DataParallel parallel(config);
    auto loader_options = trainer_loader_options(8, 0);
    loader_options.sampler.shard_rank = rank;
    loader_options.sampler.shard_count = 2;
    data::DataLoader loader(entries, loader_options, std::nullopt, trainer_clip);
    auto cb = trainer_callbacks(ranks[rank]);
    auto loss = cb.loss;
    int64_t calls = 0;
    cb.loss = [loss, rank, &calls](const data::Batch& b, int64_t step) {
      StepResult r = loss(b, step);
      if (rank == 1 && calls++ == 3) r.loss = r.loss * std::nan("");
      return r;
    };
    Trainer t(options, dir.path(), *ranks[rank], loader, cb, "");
    t.set_data_parallel(&parallel);
    const FitResult result = t.fit();
    EXPECT_TRUE(result.finished) << rank;
    skipped[rank] = t.state().skipped_batches;
    steps[rank] = result.step;
  };
  std::thread second(run_rank, 1);
  run_rank(0);
  second.join();
  EXPECT_EQ(skipped, (std::vector<int64_t>{1, 1}));
  EXPECT_EQ(steps, (std::vector<int64_t>{8, 8}));
  trainer_expect_same_weights(*ranks[0], *ranks[1]);
}

}  // namespace
}  // namespace hear::train

namespace hear::train {
namespace {

TEST(Trainer, DeviceAndPrecisionThatCannotRunAreRefusedNamingTheKey) {
  test::TempDir dir;
  auto m = trainer_mlp(false);
  const auto entries = trainer_entries(16);
  data::DataLoader loader(entries, trainer_loader_options(8, 1), std::nullopt, trainer_clip);
  auto opts = trainer_options(2);
  opts.device = "gpu";
  test::expect_error_containing(
      [&] { Trainer(opts, dir.path(), *m, loader, trainer_callbacks(m), ""); },
      {"train.device", "gpu", "cpu, cuda or cuda:N"});
  if (!torch::cuda::is_available()) {
    opts.device = "cuda";
    test::expect_error_containing(
        [&] { Trainer(opts, dir.path(), *m, loader, trainer_callbacks(m), ""); },
        {"train.device", "no CUDA"});
  }
  opts.device = "cpu";
  Trainer t(opts, dir.path(), *m, loader, trainer_callbacks(m), "");
  EXPECT_TRUE(t.device().is_cpu());
  EXPECT_EQ(t.loss_scaler(), nullptr);
}

TEST(LossScaler, BacksOffOnOverflowSkipsAndGrowsAfterCleanSteps) {
  LossScalerOptions o;
  o.init_scale = 1024;
  o.growth_interval = 3;
  LossScaler scaler(o);
  at::Tensor p = torch::zeros({4}, torch::requires_grad());
  p.mutable_grad() = torch::full({4}, 2048.0);
  EXPECT_TRUE(scaler.unscale_and_update({p}));
  EXPECT_TRUE(torch::equal(p.grad(), torch::full({4}, 2.0)));  // divided by the scale
  p.mutable_grad() = torch::tensor({1.0, std::numeric_limits<double>::infinity(), 0.0, 1.0});
  EXPECT_FALSE(scaler.unscale_and_update({p}));  // overflow: skip, halve
  EXPECT_EQ(scaler.scale(), 512.0);
  EXPECT_EQ(scaler.good_steps(), 0);
  for (int i = 0; i < 3; ++i) {
    p.mutable_grad() = torch::ones({4});
    EXPECT_TRUE(scaler.unscale_and_update({p}));
  }
  EXPECT_EQ(scaler.scale(), 1024.0);  // 3 clean steps: doubled
  scaler.restore(8.0, 2);
  EXPECT_EQ(scaler.scale(), 8.0);
  EXPECT_THROW(scaler.restore(0.0, 0), Error);
}

// The CUDA path: built everywhere, run where a CUDA device is present (scripts/gpu_check.sh).
TEST(Cuda, TrainerOnCudaMatchesTheCpuAndItsCheckpointLoadsOnTheCpu) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device in this LibTorch build";
  const auto entries = trainer_entries(48);
  std::vector<torch::nn::Sequential> models;
  std::vector<test::TempDir> dirs(2);
  for (const char* device : {"cpu", "cuda"}) {
    seed_torch(5);
    auto m = trainer_mlp(false);
    data::DataLoader loader(entries, trainer_loader_options(8, 1), std::nullopt, trainer_clip);
    auto opts = trainer_options(12);
    opts.device = device;
    Trainer t(opts, dirs[models.size()].path(), *m, loader, trainer_callbacks(m), "");
    EXPECT_TRUE(t.fit().finished);
    EXPECT_EQ(m->parameters()[0].device().type(),
              std::string(device) == "cpu" ? at::kCPU : at::kCUDA);
    models.push_back(m);
  }
  for (size_t i = 0; i < models[0]->parameters().size(); ++i) {
    EXPECT_TRUE(
        torch::allclose(models[0]->parameters()[i], models[1]->parameters()[i].cpu(), 1e-4, 1e-5));
  }
  // Saved from CPU copies: the CUDA run's `last` loads into a CPU model.
  auto on_cpu = trainer_mlp(false);
  load_checkpoint(dirs[1].path() / "checkpoints" / "last", *on_cpu, nullptr);
  EXPECT_TRUE(torch::equal(on_cpu->parameters()[0], models[1]->parameters()[0].cpu()));
}

TEST(Cuda, Fp16AutocastTrainsWithALossScaler) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device in this LibTorch build";
  const AutocastRun run = trainer_autocast_run(Precision::kFp16, "cuda");
  EXPECT_EQ(run.forward_dtype, at::kHalf);
  EXPECT_GT(run.loss_scale, 0.0);  // the scaler ran
  EXPECT_TRUE(run.float32_parameters);
  EXPECT_LT(run.last_loss, 0.1 * run.first_loss) << run.first_loss << " -> " << run.last_loss;
}

}  // namespace
}  // namespace hear::train
