#include "hear/train/trainer.h"

#include <signal.h>
#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>

#include "hear/error.h"
#include "hear/nn/batch_shard.h"
#include "hear/util/device.h"

namespace hear::train {
namespace fs = std::filesystem;
namespace {

volatile std::sig_atomic_t g_stop_flag = 0;

void on_stop_signal(int) {
  g_stop_flag = 1;
}

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

std::string batch_files_text(const data::Batch& batch) {
  std::string s;
  for (size_t i = 0; i < batch.paths.size(); ++i) {
    if (i == 8) {
      s += ", ... (" + std::to_string(batch.paths.size()) + " clips)";
      break;
    }
    s += (i ? ", " : "") + batch.paths[i];
    if (batch.offsets.size() > i && batch.offsets[i] > 0) {
      s += "@" + std::to_string(batch.offsets[i]);
    }
  }
  return s;
}

std::vector<torch::Tensor> trainable_parameters(const torch::nn::Module& model,
                                                std::vector<torch::Tensor> given) {
  if (given.empty()) {
    for (const auto& p : model.parameters(true)) {
      if (p.requires_grad()) given.push_back(p);
    }
  }
  return given;
}

}  // namespace

bool stop_requested() {
  return g_stop_flag != 0;
}
void request_stop() {
  g_stop_flag = 1;
}
void clear_stop_request() {
  g_stop_flag = 0;
}

struct StopSignalGuard::Saved {
  struct sigaction int_action {};
  struct sigaction term_action {};
};

StopSignalGuard::StopSignalGuard() : saved_(std::make_unique<Saved>()) {
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  // The first signal asks for a clean stop; SA_RESETHAND makes a second one act as usual.
  action.sa_flags = SA_RESETHAND;
  sigaction(SIGINT, &action, &saved_->int_action);
  sigaction(SIGTERM, &action, &saved_->term_action);
}

StopSignalGuard::~StopSignalGuard() {
  sigaction(SIGINT, &saved_->int_action, nullptr);
  sigaction(SIGTERM, &saved_->term_action, nullptr);
}

void seed_torch(uint64_t seed) {
  torch::manual_seed(seed);
}

struct Trainer::Interval {
  Clock::time_point start = Clock::now();
  int64_t steps = 0;
  int64_t clips = 0;
  double loss_sum = 0.0;
  int64_t loss_count = 0;
  double grad_norm_sum = 0.0;
  // Seconds inside the optimizer steps of the interval, by phase (validation and checkpoint
  // writes between steps are not in them).
  double data_s = 0.0, forward_s = 0.0, backward_s = 0.0, optim_s = 0.0;
  double step_s() const { return data_s + forward_s + backward_s + optim_s; }
  std::vector<std::pair<std::string, std::pair<double, int64_t>>> sums;  // name -> (sum, count)
  void add(const std::string& name, double v) {
    for (auto& s : sums) {
      if (s.first == name) {
        s.second.first += v;
        s.second.second += 1;
        return;
      }
    }
    sums.push_back({name, {v, 1}});
  }
};

Trainer::Trainer(TrainerOptions options, fs::path run_dir, torch::nn::Module& model,
                 data::DataLoader& loader, TrainerCallbacks callbacks, std::string config_yaml,
                 std::vector<torch::Tensor> params)
    : options_(std::move(options)),
      run_dir_(std::move(run_dir)),
      model_(&model),
      loader_(&loader),
      callbacks_(std::move(callbacks)),
      config_yaml_(std::move(config_yaml)),
      params_(trainable_parameters(model, std::move(params))),
      schedule_(options_.optimizer.lr, options_.schedule, options_.steps) {
  io::validate_config(options_, "train");
  device_ = util::parse_device(options_.device, "train.device");
  check_precision(options_.precision, device_, "train.precision");
  if (options_.precision == Precision::kFp16) scaler_.emplace();
  // Module::to replaces each parameter's data in place: params_ and the callers' handles stay
  // valid.
  if (!device_.is_cpu()) model.to(device_);
  if (!callbacks_.loss) throw Error("trainer: no loss callback");
  if (!options_.best_metric.empty() && !callbacks_.validate) {
    throw Error("train.best_metric '" + options_.best_metric + "' needs a validation callback");
  }
  optimizer_ = make_adamw(params_, options_.optimizer);
  state_.best_metric = options_.best_metric;
}

Trainer::~Trainer() = default;

fs::path Trainer::checkpoint_dir(const std::string& name) const {
  return run_dir_ / "checkpoints" / name;
}

bool Trainer::can_resume() const {
  try {
    resolve_checkpoint_dir(checkpoint_dir("last"));
    return true;
  } catch (const Error&) {
    return false;
  }
}

void Trainer::resume() {
  LoadedCheckpoint ck = load_checkpoint(checkpoint_dir("last"), *model_, optimizer_.get());
  state_ = ck.state;
  if (state_.best_metric != options_.best_metric) {
    spdlog::warn("resume: best metric changes from '{}' to '{}'; the old best value is dropped",
                 state_.best_metric, options_.best_metric);
    state_.best_metric = options_.best_metric;
    state_.best_value.reset();
    state_.best_step = -1;
  }
  if (state_.loader.batch >= loader_->batches_per_epoch()) {
    throw Error("resume: '" + ck.dir.string() + "' was saved at batch " +
                std::to_string(state_.loader.batch) + " of an epoch, but the data now has " +
                std::to_string(loader_->batches_per_epoch()) +
                " batches per epoch (different manifest or batch size?)");
  }
  loader_->seek(state_.loader);
  set_torch_rng_state(state_.torch_rng);
  if (callbacks_.load_extra) callbacks_.load_extra(state_.extra);
  if (scaler_ && state_.extra.count("trainer.loss_scale")) {
    scaler_->restore(parse_double(state_.extra.at("trainer.loss_scale"), "trainer.loss_scale"),
                     std::stoll(state_.extra.at("trainer.loss_scale_good_steps")));
  }
  resumed_ = true;
  spdlog::info("resumed from '{}' at step {} (epoch {}, batch {})", ck.dir.string(), state_.step,
               state_.loader.epoch, state_.loader.batch);
}

TrainState Trainer::snapshot_state() {
  TrainState s = state_;
  s.loader = loader_->position();
  s.epoch = s.loader.epoch;
  s.torch_rng = get_torch_rng_state();
  s.extra.clear();
  if (callbacks_.save_extra) callbacks_.save_extra(s.extra);
  if (scaler_) {
    s.extra["trainer.loss_scale"] = format_double(scaler_->scale());
    s.extra["trainer.loss_scale_good_steps"] = std::to_string(scaler_->good_steps());
  }
  return s;
}

bool Trainer::writes() const {
  return !parallel_ || parallel_->is_main();
}

bool Trainer::distributed() const {
  return parallel_ && parallel_->world_size() > 1;
}

void Trainer::save_checkpoint(const std::string& name) {
  if (!writes()) return;
  const TrainState s = snapshot_state();
  hear::train::save_checkpoint(checkpoint_dir(name), *model_, optimizer_.get(), s, config_yaml_);
}

std::optional<data::Batch> Trainer::next_batch() {
  std::optional<data::Batch> batch = loader_->next();
  if (batch && batch->last_in_epoch) epoch_ended_ = true;
  return batch;
}

StepResult Trainer::forward_loss(const data::Batch& batch) {
  StepResult r;
  const data::Batch on_device = device_.is_cpu() ? data::Batch() : data::to_device(batch, device_);
  {
    AutocastGuard autocast(options_.precision, device_.type());
    std::optional<nn::BatchShardGuard> shard;
    if (distributed()) {
      const DataParallel* parallel = parallel_;
      shard.emplace(nn::BatchShard{parallel->rank(), parallel->world_size(),
                                   [parallel](at::Tensor& t) { parallel->sum_in_place(t); }});
    }
    r = callbacks_.loss(device_.is_cpu() ? batch : on_device, state_.step);
  }
  if (!r.loss.defined() || r.loss.numel() != 1) {
    throw Error("trainer: the loss callback must return a scalar loss (step " +
                std::to_string(state_.step) + ")");
  }
  return r;
}

void Trainer::backward(const StepResult& result, double scale) {
  if (scaler_) scale *= scaler_->scale();
  if (scale == 1.0) {
    result.loss.backward();
  } else {
    (result.loss * scale).backward();
  }
}

void Trainer::sync_gradients() {
  if (callbacks_.sync_gradients) {
    callbacks_.sync_gradients(params_);
  } else if (parallel_) {
    parallel_->average_gradients(params_);
  }
}

double Trainer::clip() {
  return clip_gradients(params_, options_.optimizer.grad_clip);
}

void Trainer::optimizer_step() {
  state_.lr = schedule_.lr(state_.step);
  set_learning_rate(*optimizer_, state_.lr);
  optimizer_->step();
  ++state_.step;
}

void Trainer::handle_nonfinite(const std::string& what, double value, const data::Batch& batch) {
  const std::string msg = "non-finite " + what + " (" + std::to_string(value) + ") at step " +
                          std::to_string(state_.step) + " (epoch " + std::to_string(batch.epoch) +
                          ", batch " + std::to_string(batch.index) +
                          "); batch files: " + batch_files_text(batch);
  if (options_.nonfinite == NonfiniteAction::kError) throw Error(msg);
  ++state_.skipped_batches;
  if (++consecutive_skips_ > options_.max_consecutive_skips) {
    throw Error(msg + " — " + std::to_string(consecutive_skips_) +
                " batches skipped in a row, giving up");
  }
  spdlog::warn("{}; skipped ({} skipped so far)", msg, state_.skipped_batches);
}

Trainer::StepOutcome Trainer::train_step(Interval& interval) {
  optimizer_->zero_grad();
  const int64_t micro = options_.optimizer.accumulation_steps;
  const double scale = 1.0 / static_cast<double>(micro);
  std::optional<data::Batch> last;
  double loss_sum = 0.0;
  int64_t clips = 0;
  MetricValues metric_values;
  double data_s = 0.0, forward_s = 0.0, backward_s = 0.0;
  // Data parallel: a non-finite loss on any rank skips the step on every rank. The ranks decide
  // together after each forward pass, before any backward (whose sums over the shards are
  // collectives too), and still take their remaining batches so the loaders stay in step.
  std::optional<std::pair<double, data::Batch>> bad_loss;  // this rank's first non-finite loss
  double bad_ranks = 0;
  for (int64_t m = 0; m < micro; ++m) {
    auto t0 = Clock::now();
    std::optional<data::Batch> batch = next_batch();
    if (!batch) return StepOutcome::kNoData;
    data_s += seconds_since(t0);
    if (bad_ranks > 0) {
      last = std::move(batch);
      continue;
    }
    t0 = Clock::now();
    StepResult r = forward_loss(*batch);
    const double loss = r.loss.detach().to(torch::kDouble).item<double>();
    forward_s += seconds_since(t0);
    if (distributed()) bad_ranks = parallel_->sum({std::isfinite(loss) ? 0.0 : 1.0})[0];
    if (!std::isfinite(loss)) {
      if (!distributed()) {
        handle_nonfinite("loss", loss, *batch);
        optimizer_->zero_grad();
        return StepOutcome::kSkipped;
      }
      bad_loss = std::make_pair(loss, *batch);
    }
    if (bad_ranks > 0) {
      last = std::move(batch);
      continue;
    }
    t0 = Clock::now();
    backward(r, scale);
    backward_s += seconds_since(t0);
    loss_sum += loss;
    clips += batch->size();
    for (auto& mv : r.metrics) metric_values.push_back(mv);
    last = std::move(batch);
  }
  const auto optim_start = Clock::now();
  if (distributed()) {
    if (bad_ranks > 0) {
      if (bad_loss) {
        handle_nonfinite("loss", bad_loss->first, bad_loss->second);
      } else {
        handle_nonfinite(
            "loss on " + std::to_string(static_cast<int>(bad_ranks)) + " other rank(s)",
            std::nan(""), *last);
      }
      optimizer_->zero_grad();
      return StepOutcome::kSkipped;
    }
  }
  sync_gradients();
  if (scaler_ && !scaler_->unscale_and_update(params_)) {
    // The averaged gradients are the same on every rank, so every rank skips together.
    spdlog::warn("fp16: gradients overflowed at step {}; step skipped, loss scale -> {}",
                 state_.step, scaler_->scale());
    optimizer_->zero_grad();
    return StepOutcome::kSkipped;
  }
  const double grad_norm = clip();
  if (!std::isfinite(grad_norm)) {
    handle_nonfinite("gradient norm", grad_norm, *last);
    optimizer_->zero_grad();
    return StepOutcome::kSkipped;
  }
  optimizer_step();
  interval.optim_s += seconds_since(optim_start);
  interval.data_s += data_s;
  interval.forward_s += forward_s;
  interval.backward_s += backward_s;
  consecutive_skips_ = 0;
  interval.steps += 1;
  interval.clips += clips;
  interval.loss_sum += loss_sum / static_cast<double>(micro);
  interval.loss_count += 1;
  interval.grad_norm_sum += grad_norm;
  for (const auto& [k, v] : metric_values) {
    if (k != "loss") interval.add(k, v);  // the trainer reports the loss itself
  }
  return StepOutcome::kStepped;
}

void Trainer::report(Interval& interval, bool force) {
  if (interval.steps == 0 || (!force && state_.step % options_.log_every != 0)) return;
  if (distributed()) {
    // The global batch's values: losses and metrics averaged over the ranks, clips summed (every
    // rank reports at the same steps, with the same metric names in the same order).
    std::vector<double> v{interval.loss_sum, static_cast<double>(interval.clips)};
    for (const auto& s : interval.sums) v.push_back(s.second.first);
    v = parallel_->sum(v);
    const double world = parallel_->world_size();
    interval.loss_sum = v[0] / world;
    interval.clips = static_cast<int64_t>(v[1]);
    for (size_t i = 0; i < interval.sums.size(); ++i)
      interval.sums[i].second.first = v[i + 2] / world;
  }
  // Throughput and step time of the optimizer steps alone; the ETA also counts what runs between
  // them (validation, checkpoints).
  const double steps = static_cast<double>(interval.steps);
  const double busy = interval.step_s();
  const double clips_per_s = busy > 0 ? static_cast<double>(interval.clips) / busy : 0.0;
  const double step_s = busy / steps;
  const double wall_per_step = seconds_since(interval.start) / steps;
  MetricValues row;
  row.emplace_back("epoch", static_cast<double>(loader_->position().epoch));
  row.emplace_back("loss", interval.loss_sum / static_cast<double>(interval.loss_count));
  for (const auto& [name, sc] : interval.sums) {
    row.emplace_back(name, sc.first / static_cast<double>(sc.second));
  }
  row.emplace_back("lr", state_.lr);
  row.emplace_back("grad_norm", interval.grad_norm_sum / static_cast<double>(interval.steps));
  row.emplace_back("clips_per_s", clips_per_s);
  row.emplace_back("step_s", step_s);
  row.emplace_back("data_ms", 1e3 * interval.data_s / steps);
  row.emplace_back("forward_ms", 1e3 * interval.forward_s / steps);
  row.emplace_back("backward_ms", 1e3 * interval.backward_s / steps);
  row.emplace_back("optim_ms", 1e3 * interval.optim_s / steps);
  if (metrics_) metrics_->write(state_.step, row);

  ReportLine line;
  line.step = state_.step;
  line.total_steps = options_.steps;
  line.epoch = loader_->position().epoch;
  line.losses.assign(row.begin() + 1, row.end() - 8);
  line.lr = state_.lr;
  line.clips_per_s = clips_per_s;
  line.phase_ms = {{"data", 1e3 * interval.data_s / steps},
                   {"fwd", 1e3 * interval.forward_s / steps},
                   {"bwd", 1e3 * interval.backward_s / steps},
                   {"optim", 1e3 * interval.optim_s / steps}};
  line.eta_s = wall_per_step * static_cast<double>(options_.steps - state_.step);
  if (progress_) progress_->clear();
  spdlog::info("{}", format_report(line));
  interval = Interval{};
}

MetricValues Trainer::run_validation() {
  MetricValues values;
  {
    torch::NoGradGuard no_grad;
    const std::string rng = get_torch_rng_state();
    model_->eval();
    try {
      values = callbacks_.validate(state_.step);
    } catch (...) {
      model_->train();
      throw;
    }
    model_->train();
    set_torch_rng_state(rng);
  }
  if (metrics_) metrics_->write(state_.step, values);
  std::string text;
  for (const auto& [k, v] : values) text += fmt::format(" {} {:.4f}", k, v);
  if (progress_) progress_->clear();
  spdlog::info("validation at step {}:{}", state_.step, text);
  if (!options_.best_metric.empty()) {
    const auto it = std::find_if(values.begin(), values.end(),
                                 [&](const auto& kv) { return kv.first == options_.best_metric; });
    if (it == values.end()) {
      std::string names;
      for (const auto& [k, v] : values) names += (names.empty() ? "" : ", ") + k;
      throw Error("train.best_metric '" + options_.best_metric +
                  "' is not among the validation values (" + names + ")");
    }
    const double v = it->second;
    const bool better =
        std::isfinite(v) &&
        (!state_.best_value ||
         (options_.best_mode == BestMode::kMax ? v > *state_.best_value : v < *state_.best_value));
    if (better) {
      state_.best_value = v;
      state_.best_step = state_.step;
      save_checkpoint("best");
      spdlog::info("new best {} {:.6g} at step {}: saved '{}'", options_.best_metric, v,
                   state_.step, checkpoint_dir("best").string());
    }
  }
  return values;
}

FitResult Trainer::fit(int64_t stop_at_step) {
  if (options_.threads > 0) at::set_num_threads(options_.threads);
  if (!resumed_) seed_torch(static_cast<uint64_t>(options_.seed));
  std::vector<std::string> columns = {"epoch", "loss"};
  for (const auto& n : callbacks_.train_metric_names) columns.push_back(n);
  for (const auto& n : {"lr", "grad_norm", "clips_per_s", "step_s", "data_ms", "forward_ms",
                        "backward_ms", "optim_ms"}) {
    columns.push_back(n);
  }
  for (const auto& n : callbacks_.valid_metric_names) columns.push_back(n);
  if (writes()) {
    metrics_ = std::make_unique<MetricsWriter>(
        run_dir_, columns, resumed_ ? std::optional<int64_t>(state_.step) : std::nullopt);
    progress_ = std::make_unique<ProgressBar>(
        options_.steps, options_.progress_bar ? std::nullopt : std::optional<bool>(false));
  }
  if (parallel_ && parallel_->world_size() > 1) {
    // Every rank starts from rank 0's weights (fresh or resumed alike).
    std::vector<torch::Tensor> state;
    for (const auto& p : model_->parameters()) state.push_back(p);
    for (const auto& b : model_->buffers()) {
      if (b.is_floating_point()) state.push_back(b);
    }
    parallel_->broadcast(state);
  }
  clear_stop_request();
  StopSignalGuard signals;
  model_->train();
  FitResult result;
  Interval interval;
  const int64_t target = stop_at_step > 0 ? std::min(stop_at_step, options_.steps) : options_.steps;
  spdlog::info("training from step {} to {} ({} threads, {} parameter tensors, {} batches/epoch)",
               state_.step, target, at::get_num_threads(), params_.size(),
               loader_->batches_per_epoch());
  while (state_.step < target) {
    if (stop_requested()) {
      result.interrupted = true;
      break;
    }
    const StepOutcome outcome = train_step(interval);
    if (outcome == StepOutcome::kNoData) {
      result.data_exhausted = true;
      break;
    }
    if (outcome == StepOutcome::kSkipped) continue;
    report(interval, false);
    if (progress_) progress_->update(state_.step, fmt::format("lr {:.2e}", state_.lr));
    const bool validate_now =
        callbacks_.validate &&
        (options_.validate_every > 0 ? state_.step % options_.validate_every == 0 : epoch_ended_);
    epoch_ended_ = false;
    if (validate_now) result.last_validation = run_validation();
    if (options_.checkpoint_every > 0 && state_.step % options_.checkpoint_every == 0 &&
        state_.step < target) {
      save_checkpoint("last");
    }
  }
  if (stop_requested()) result.interrupted = true;
  report(interval, true);
  if (progress_) progress_->clear();
  save_checkpoint("last");
  result.step = state_.step;
  result.finished = state_.step >= options_.steps;
  spdlog::info("{} at step {}; saved '{}'",
               result.interrupted      ? "interrupted"
               : result.data_exhausted ? "data exhausted"
               : result.finished       ? "finished"
                                       : "stopped",
               state_.step, checkpoint_dir("last").string());
  if (loader_->skipped_files() > 0) {
    spdlog::warn("data.on_error: skip left out {} clip(s) that could not be decoded (named above)",
                 loader_->skipped_files());
  }
  clear_stop_request();
  resumed_ = true;  // a later fit() continues this state (no reseeding, metrics appended)
  return result;
}

}  // namespace hear::train
