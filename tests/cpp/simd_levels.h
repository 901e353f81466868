// The SIMD levels the kernel tests run each kernel at (those above the CPU's are skipped).
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "ops/gemv.h"

namespace hfpipe::testing {

inline const char* level_name(ops::SimdLevel l) {
  return l == ops::SimdLevel::Avx512 ? "avx512" : l == ops::SimdLevel::Avx2 ? "avx2" : "plain";
}

inline auto all_simd_levels() {
  return ::testing::Values(ops::SimdLevel::Avx512, ops::SimdLevel::Avx2, ops::SimdLevel::Plain);
}

inline std::string simd_level_test_name(const ::testing::TestParamInfo<ops::SimdLevel>& info) {
  return level_name(info.param);
}

}  // namespace hfpipe::testing
