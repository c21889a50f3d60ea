#include "hear/nn/kernel_override.h"

#include <c10/util/Exception.h>
#include <torch/library.h>

#include <memory>
#include <string>
#include <vector>

namespace hear::nn {

void override_aten_kernels(c10::DispatchKey key,
                           const std::function<void(torch::Library&)>& define) {
  struct Quiet : c10::WarningHandler {
    void process(const c10::SourceLocation&, const std::string&, bool) override {}
  } quiet;
  c10::Warning::WarningHandlerGuard guard(&quiet);
  // Never destroyed: the registrations stay for the process. Held by a never-destroyed list, so
  // LeakSanitizer sees them reachable (the asan preset), not leaked.
  static auto* libraries = new std::vector<std::unique_ptr<torch::Library>>();
  libraries->push_back(
      std::make_unique<torch::Library>(torch::Library::IMPL, "aten", key, __FILE__, __LINE__));
  define(*libraries->back());
}

}  // namespace hear::nn
