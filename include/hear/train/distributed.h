#pragma once
// Data-parallel training on LibTorch's c10d (a TCPStore for the rendezvous, ProcessGroupGloo for
// the collectives on CPU): the rank / world size of a torchrun-style launch, parameter broadcast
// from rank 0, bucketed gradient averaging, and reductions of validation counts.
//
//   torchrun --nproc_per_node 2 --no-python hear-pretrain ...   (or any launcher that sets RANK,
//   WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT)
//
// A collective whose peer has died fails with hear::Error (Gloo sees the closed connection, or
// the timeout passes) instead of hanging.
#include <ATen/core/Tensor.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace hear::train {

struct ProcessGroupConfig {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  std::chrono::milliseconds timeout{std::chrono::minutes(5)};  // rendezvous and each collective
  // "gloo" (CPU collectives; CUDA tensors are staged through host memory) or "nccl" (CUDA
  // tensors in place, on device cuda:local_rank; needs a LibTorch built with NCCL).
  std::string backend = "gloo";
};

// True when this LibTorch build has ProcessGroupNCCL (USE_C10D_NCCL).
bool nccl_available();

// torchrun's variables; world size 1 when WORLD_SIZE is unset. A malformed or inconsistent value
// throws hear::Error naming the variable.
ProcessGroupConfig process_group_config_from_environment();

class DataParallel {
 public:
  // World size 1: no communication (every call is a local no-op). Otherwise joins the group:
  // rank 0 serves the TCPStore at master_addr:master_port.
  explicit DataParallel(const ProcessGroupConfig& config);
  ~DataParallel();
  DataParallel(const DataParallel&) = delete;
  DataParallel& operator=(const DataParallel&) = delete;

  int rank() const { return rank_; }
  int local_rank() const { return local_rank_; }  // the rank within its node (its GPU index)
  int world_size() const { return world_size_; }
  bool is_main() const { return rank_ == 0; }  // the rank that writes logs and checkpoints

  // Rank 0's values into every rank's tensors (in place), in buckets of bucket_bytes.
  void broadcast(const std::vector<at::Tensor>& tensors, int64_t bucket_bytes = 25 << 20);
  // Every parameter's .grad() replaced by the mean over ranks (a missing gradient counts as
  // zeros), flattened into float32 buckets of at most bucket_bytes. Returns the bytes reduced.
  int64_t average_gradients(const std::vector<at::Tensor>& params, int64_t bucket_bytes = 25 << 20);
  // Sums of per-rank values (validation counts and loss sums), float64.
  std::vector<double> sum(const std::vector<double>& values) const;
  // A contiguous tensor (any device) summed over the ranks in place (batch statistics:
  // nn/batch_shard.h).
  void sum_in_place(at::Tensor& tensor) const;
  void barrier() const;

 private:
  struct Group;
  std::unique_ptr<Group> group_;
  int rank_ = 0;
  int local_rank_ = 0;
  int world_size_ = 1;
};

}  // namespace hear::train
