// Precompiled header: the heavy LibTorch headers every torch translation unit needs.
#pragma once
#include <torch/torch.h>
#include <vector>
#include <string>
#include <memory>
#include <map>
