#pragma once
// Replacing LibTorch's kernels of aten operators for one dispatch key, process-wide: `define`
// registers the replacements (library.impl("mm", TORCH_FN(f))) on a torch::Library that lives for
// the rest of the process. The dispatcher warns once per replaced operator; the replacement is
// the point here, so those warnings are not shown. Callers make it happen once (std::call_once).
#include <c10/core/DispatchKey.h>

#include <functional>

namespace torch {
class Library;
}

namespace hear::nn {

void override_aten_kernels(c10::DispatchKey key,
                           const std::function<void(torch::Library&)>& define);

}  // namespace hear::nn
