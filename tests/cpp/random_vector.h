// Seeded standard-normal test data shared by the kernel tests.
#pragma once

#include <random>
#include <vector>

namespace hfpipe::testing {

inline std::vector<float> random_vector(size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.f, 1.f);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

}  // namespace hfpipe::testing
