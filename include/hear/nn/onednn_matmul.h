#pragma once
// float32 matrix products through oneDNN instead of the BLAS Debian's LibTorch links (OpenBLAS).
//
// On this machine (AMD EPYC, AVX-512) oneDNN's float32 GEMM runs at ~2x OpenBLAS's rate
// (420 vs 200 GFLOP/s on 2 threads for the acoustic model's (4800 x 384) x (384 x 1536)), and
// matrix products are 75% of a paper-size training step. Installing replaces LibTorch's CPU
// kernels of aten::mm, addmm, bmm and baddbmm (forward and, through autograd's formulas, every
// backward product) for float32 operands of at least 64^3 multiply-adds; every other case (small,
// other dtypes, empty) goes to LibTorch's own CPU kernel. Transposed operands are passed as
// strides (no copies). Results differ from OpenBLAS's in the last bits (another summation order:
// relative differences ~1e-6); oneDNN's GEMM is deterministic for a given thread count, so
// resumed runs stay bitwise.
//
// Process-wide (a dispatcher registration), idempotent, and only available when the build found
// oneDNN (libdnnl-dev, the same library Debian's LibTorch links).

namespace hear::nn {

bool onednn_matmul_available();  // compiled with oneDNN
bool onednn_matmul_installed();
// Throws hear::Error when !onednn_matmul_available().
void install_onednn_matmul();

// The programs' policy: HEAR_MATMUL=onednn (or unset, when available) installs it, "blas" keeps
// LibTorch's kernels; anything else throws hear::Error naming the variable.
void apply_matmul_from_environment();

}  // namespace hear::nn
