#include "hear/train/distributed.h"

#include <torch/torch.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include "hear/util/torch_compat.h"  // defines USE_C10D_GLOO first
#ifdef USE_C10D_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <cstdlib>
#include <functional>

#include "hear/error.h"
#include "hear/util/strings.h"

namespace hear::train {
namespace {

int env_int(const char* name, int fallback, int min) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  const std::string what = std::string("environment variable ") + name;
  const int64_t parsed = util::parse_int(v, what);
  if (parsed < min || parsed > (1 << 30)) {
    throw Error(what + "='" + v + "': expected an integer >= " + std::to_string(min));
  }
  return static_cast<int>(parsed);
}

// Runs a collective and waits, turning c10d / Gloo failures into one clear error.
void run(const char* what, const std::function<c10::intrusive_ptr<c10d::Work>()>& start) {
  try {
    start()->wait();
  } catch (const std::exception& e) {
    throw Error(std::string("data parallel ") + what +
                " failed (a peer process died or timed out?): " + e.what());
  }
}

// Consecutive tensors grouped into buckets of at most `bytes` (one oversized tensor alone).
std::vector<std::vector<size_t>> buckets(const std::vector<at::Tensor>& ts, int64_t bytes) {
  std::vector<std::vector<size_t>> out;
  int64_t size = 0;
  for (size_t i = 0; i < ts.size(); ++i) {
    const int64_t b = ts[i].numel() * 4;
    if (out.empty() || size + b > bytes) {
      out.emplace_back();
      size = 0;
    }
    out.back().push_back(i);
    size += b;
  }
  return out;
}

}  // namespace

struct DataParallel::Group {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<compat::ProcessGroupBase> pg;
  // Where collectives run: the CPU for Gloo (CUDA tensors are staged through host memory),
  // this rank's CUDA device for NCCL.
  at::Device device = at::kCPU;
};

bool nccl_available() {
#ifdef USE_C10D_NCCL
  return true;
#else
  return false;
#endif
}

ProcessGroupConfig process_group_config_from_environment() {
  ProcessGroupConfig c;
  c.world_size = env_int("WORLD_SIZE", 1, 1);
  c.rank = env_int("RANK", 0, 0);
  c.local_rank = env_int("LOCAL_RANK", c.rank, 0);
  c.master_port = env_int("MASTER_PORT", c.master_port, 1);
  if (const char* a = std::getenv("MASTER_ADDR"); a && *a) c.master_addr = a;
  if (c.rank >= c.world_size) {
    throw Error("environment variable RANK=" + std::to_string(c.rank) +
                " must be < WORLD_SIZE=" + std::to_string(c.world_size));
  }
  if (c.master_port > 65535) throw Error("environment variable MASTER_PORT must be <= 65535");
  return c;
}

DataParallel::DataParallel(const ProcessGroupConfig& config)
    : rank_(config.rank), local_rank_(config.local_rank), world_size_(config.world_size) {
  if (world_size_ <= 1) return;
  group_ = std::make_unique<Group>();
  try {
    // Under torchrun the agent already serves the store at MASTER_PORT: every rank is a client,
    // under a prefix of its own (per restart attempt).
    const char* agent = std::getenv("TORCHELASTIC_USE_AGENT_STORE");
    const bool agent_store = agent && std::string(agent) == "True";
    c10d::TCPStoreOptions so;
    so.port = static_cast<uint16_t>(config.master_port);
    so.isServer = rank_ == 0 && !agent_store;
    so.numWorkers = world_size_;
    so.waitWorkers = !agent_store;
    so.timeout = config.timeout;
    c10::intrusive_ptr<c10d::Store> store =
        c10::make_intrusive<c10d::TCPStore>(config.master_addr, so);
    if (agent_store) {
      const char* attempt = std::getenv("TORCHELASTIC_RESTART_COUNT");
      store = c10::make_intrusive<c10d::PrefixStore>(
          std::string("/hear/attempt_") + (attempt ? attempt : "0"), store);
    }
    group_->store = store;
    if (config.backend == "nccl") {
#ifdef USE_C10D_NCCL
      auto nccl_options = c10d::ProcessGroupNCCL::Options::create();
      nccl_options->timeout = config.timeout;
      group_->pg = c10::make_intrusive<c10d::ProcessGroupNCCL>(group_->store, rank_, world_size_,
                                                               nccl_options);
      group_->device = at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(config.local_rank));
      return;
#else
      throw Error("backend 'nccl': this LibTorch build has no NCCL (use gloo)");
#endif
    }
    if (config.backend != "gloo")
      throw Error("unknown backend '" + config.backend + "' (gloo | nccl)");
    auto options = c10d::ProcessGroupGloo::Options::create(config.timeout);
    options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(
        config.master_addr == "localhost" ? "127.0.0.1" : config.master_addr));
    options->threads = 1;
    group_->pg =
        c10::make_intrusive<c10d::ProcessGroupGloo>(group_->store, rank_, world_size_, options);
  } catch (const std::exception& e) {
    throw Error("data parallel: rank " + std::to_string(rank_) + " of " +
                std::to_string(world_size_) + " could not join the group at " + config.master_addr +
                ":" + std::to_string(config.master_port) + ": " + e.what());
  }
}

DataParallel::~DataParallel() = default;

void DataParallel::broadcast(const std::vector<at::Tensor>& tensors, int64_t bucket_bytes) {
  if (world_size_ <= 1) return;
  torch::NoGradGuard no_grad;
  for (const auto& bucket : buckets(tensors, bucket_bytes)) {
    std::vector<at::Tensor> flat_parts;
    for (size_t i : bucket)
      flat_parts.push_back(tensors[i].detach().to(group_->device, torch::kFloat).reshape(-1));
    std::vector<at::Tensor> flat{torch::cat(flat_parts)};
    run("broadcast", [&] { return group_->pg->broadcast(flat, c10d::BroadcastOptions{}); });
    int64_t offset = 0;
    for (size_t i : bucket) {
      const int64_t n = tensors[i].numel();
      tensors[i].detach().copy_(flat[0].narrow(0, offset, n).view_as(tensors[i]));
      offset += n;
    }
  }
}

int64_t DataParallel::average_gradients(const std::vector<at::Tensor>& params,
                                        int64_t bucket_bytes) {
  if (world_size_ <= 1) return 0;
  torch::NoGradGuard no_grad;
  int64_t bytes = 0;
  for (const auto& bucket : buckets(params, bucket_bytes)) {
    std::vector<at::Tensor> parts;
    for (size_t i : bucket) {
      const at::Tensor& g = params[i].grad();
      parts.push_back(g.defined() ? g.to(group_->device, torch::kFloat).reshape(-1)
                                  : torch::zeros({params[i].numel()}, group_->device));
    }
    std::vector<at::Tensor> flat{torch::cat(parts)};
    run("gradient all-reduce", [&] { return group_->pg->allreduce(flat); });
    flat[0].div_(world_size_);
    bytes += flat[0].numel() * 4;
    int64_t offset = 0;
    for (size_t i : bucket) {
      at::Tensor p = params[i];
      const int64_t n = p.numel();
      const at::Tensor mean = flat[0].narrow(0, offset, n).view_as(p);
      if (p.grad().defined()) {
        p.mutable_grad().copy_(mean);
      } else {
        p.mutable_grad() = mean.to(p.device(), p.scalar_type()).clone();
      }
      offset += n;
    }
  }
  return bytes;
}

std::vector<double> DataParallel::sum(const std::vector<double>& values) const {
  if (world_size_ <= 1 || values.empty()) return values;
  std::vector<at::Tensor> t{torch::tensor(values, torch::kDouble).to(group_->device)};
  run("reduction", [&] { return group_->pg->allreduce(t); });
  const at::Tensor host = t[0].cpu();
  return {host.data_ptr<double>(), host.data_ptr<double>() + host.numel()};
}

void DataParallel::sum_in_place(at::Tensor& tensor) const {
  if (world_size_ <= 1) return;
  if (!tensor.is_contiguous()) throw Error("data parallel sum: expected a contiguous tensor");
  const bool staged = tensor.device() != group_->device;
  std::vector<at::Tensor> t{staged ? tensor.to(group_->device) : tensor};
  run("batch statistic all-reduce", [&] { return group_->pg->allreduce(t); });
  if (staged) tensor.copy_(t[0]);
}

void DataParallel::barrier() const {
  if (world_size_ <= 1) return;
  run("barrier", [&] { return group_->pg->barrier(); });
}

}  // namespace hear::train
