// The rotary embedding a config.json describes, for every decoder family that has one:
// rope_theta, partial rotary dimensions and the rope_scaling types of transformers'
// modeling_rope_utils.py (default, linear, dynamic, yarn, longrope, llama3). Each is
// computed in the precision transformers uses (f32 tensors, f64 Python scalars) so that the
// frequencies agree to the last bit where they can.
#include <cmath>

#include "core/error.h"
#include "models/decoder.h"

namespace hfpipe::models {

namespace {

float scaling_float(const Value& scaling, const char* key) { return scaling.at(key).get<float>(); }

// transformers' llama3 scaling (_compute_llama3_parameters), in f32 as there.
std::vector<float> llama3_inv_freq(std::vector<float> inv, const Value& scaling) {
  const float factor = scaling_float(scaling, "factor");
  const float low = scaling_float(scaling, "low_freq_factor"), high = scaling_float(scaling, "high_freq_factor");
  const float old_context = scaling_float(scaling, "original_max_position_embeddings");
  const float low_wavelen = old_context / low, high_wavelen = old_context / high;
  for (float& f : inv) {
    const float wavelen = 2.f * static_cast<float>(M_PI) / f;
    float scaled = wavelen > low_wavelen ? f / factor : f;
    if (!(wavelen < high_wavelen) && !(wavelen > low_wavelen)) {
      const float smooth = (old_context / wavelen - low) / (high - low);
      scaled = (1.f - smooth) * scaled / factor + smooth * scaled;
    }
    f = scaled;
  }
  return inv;
}

// Dynamic NTK (_compute_dynamic_ntk_parameters): past max_position_embeddings the base grows
// with the sequence length. transformers computes it from a tensor seq_len, so in f32.
ops::Rope::Frequencies dynamic_ntk(const RopeParams& p, double factor, int64_t seq_len) {
  if (seq_len <= p.max_positions) return {ops::default_rope_inv_freq(p.theta, p.rotary_dim), 1.f};
  const float ratio = static_cast<float>(factor) * static_cast<float>(seq_len) / static_cast<float>(p.max_positions);
  const float grown = std::pow(ratio - static_cast<float>(factor - 1.0),
                               static_cast<float>(static_cast<double>(p.rotary_dim) / (p.rotary_dim - 2)));
  const float base = static_cast<float>(p.theta) * grown;
  return {ops::default_rope_inv_freq(base, p.rotary_dim), 1.f};
}

// YaRN (_compute_yarn_parameters): interpolated low frequencies, extrapolated high ones, a
// linear ramp between, and an attention factor on cos and sin.
ops::Rope::Frequencies yarn(const RopeParams& p, const Value& scaling) {
  const double factor = scaling.at("factor").get<double>();
  auto optional = [&](const char* key) -> double {
    return scaling.contains(key) && !scaling[key].is_null() ? scaling[key].get<double>() : 0.0;
  };
  const double mscale = optional("mscale"), mscale_all_dim = optional("mscale_all_dim");
  const double original = optional("original_max_position_embeddings") != 0.0
                              ? optional("original_max_position_embeddings")
                              : static_cast<double>(p.max_positions);
  auto get_mscale = [](double scale, double m) { return scale <= 1 ? 1.0 : 0.1 * m * std::log(scale) + 1.0; };
  double attention = optional("attention_factor");
  if (attention == 0.0)
    attention = mscale != 0.0 && mscale_all_dim != 0.0 ? get_mscale(factor, mscale) / get_mscale(factor, mscale_all_dim)
                                                       : get_mscale(factor, 1.0);
  const double beta_fast = optional("beta_fast") != 0.0 ? optional("beta_fast") : 32.0;
  const double beta_slow = optional("beta_slow") != 0.0 ? optional("beta_slow") : 1.0;
  const int64_t dim = p.rotary_dim;
  auto correction_dim = [&](double rotations) {
    return (dim * std::log(original / (rotations * 2 * M_PI))) / (2 * std::log(p.theta));
  };
  double low = correction_dim(beta_fast), high = correction_dim(beta_slow);
  if (scaling.value("truncate", true)) {
    low = std::floor(low);
    high = std::ceil(high);
  }
  low = std::max(low, 0.0);
  high = std::min(high, static_cast<double>(dim - 1));
  if (low == high) high += 0.001;  // as transformers: avoids a zero-width ramp
  std::vector<float> inv(static_cast<size_t>(dim / 2));
  const float fbase = static_cast<float>(p.theta), ffactor = static_cast<float>(factor);
  const float flow = static_cast<float>(low), span = static_cast<float>(high - low);
  for (int64_t i = 0; i < dim / 2; ++i) {
    const float pos_freq = std::pow(fbase, static_cast<float>(2 * i) / static_cast<float>(dim));
    const float extrapolation = 1.f / pos_freq, interpolation = 1.f / (ffactor * pos_freq);
    const float ramp = std::clamp((static_cast<float>(i) - flow) / span, 0.f, 1.f);
    const float extrapolation_factor = 1.f - ramp;
    inv[static_cast<size_t>(i)] =
        interpolation * (1.f - extrapolation_factor) + extrapolation * extrapolation_factor;
  }
  return {std::move(inv), static_cast<float>(attention)};
}

// LongRoPE (_compute_longrope_parameters): per-frequency factors, short_factor up to
// original_max_position_embeddings and long_factor past it, with one attention factor.
ops::Rope::Frequencies longrope(const RopeParams& p, const Value& scaling, bool long_context) {
  const Value& factors = scaling.at(long_context ? "long_factor" : "short_factor");
  check(factors.is_array() && static_cast<int64_t>(factors.size()) == p.rotary_dim / 2, ErrorKind::CorruptFile,
        "config.json's rope_scaling long_factor/short_factor must list rotary_dim / 2 = " +
            std::to_string(p.rotary_dim / 2) + " numbers");
  double factor = scaling.contains("factor") && !scaling["factor"].is_null() ? scaling["factor"].get<double>() : 1.0;
  double original = static_cast<double>(p.max_positions);
  if (p.original_max_positions > 0) {  // Phi-3: the ratio of the two lengths is the factor
    original = static_cast<double>(p.original_max_positions);
    factor = static_cast<double>(p.max_positions) / original;
  }
  double attention = scaling.contains("attention_factor") && !scaling["attention_factor"].is_null()
                         ? scaling["attention_factor"].get<double>()
                         : (factor <= 1.0 ? 1.0 : std::sqrt(1 + std::log(factor) / std::log(original)));
  std::vector<float> inv(static_cast<size_t>(p.rotary_dim / 2));
  const float fbase = static_cast<float>(p.theta);
  for (int64_t i = 0; i < p.rotary_dim / 2; ++i) {
    const float shape = static_cast<float>(2 * i) / static_cast<float>(p.rotary_dim);
    inv[static_cast<size_t>(i)] = 1.f / (factors.at(i).get<float>() * std::pow(fbase, shape));
  }
  return {std::move(inv), static_cast<float>(attention)};
}

}  // namespace

int64_t longrope_original_length(const RopeParams& p) {
  return p.original_max_positions > 0 ? p.original_max_positions : p.max_positions;
}

ops::Rope rope_from_config(const formats::ModelConfig& c, const RopeParams& p) {
  check(p.rotary_dim > 0 && p.rotary_dim % 2 == 0 && p.rotary_dim <= p.head_dim, ErrorKind::CorruptFile,
        "the rotary dimension (" + std::to_string(p.rotary_dim) + ") must be even and at most the head size");
  std::vector<float> inv = ops::default_rope_inv_freq(p.theta, p.rotary_dim);
  if (!c.has("rope_scaling")) return ops::Rope(std::move(inv), 1.f, p.head_dim);
  const Value& scaling = c.json()["rope_scaling"];
  check(scaling.is_object(), ErrorKind::CorruptFile, "config.json's rope_scaling must be an object");
  std::string type = scaling.value("rope_type", scaling.value("type", std::string("default")));
  // Phi3Config renames the legacy types "su" and "yarn" to longrope.
  if (c.model_type() == "phi3" && (type == "su" || type == "yarn")) type = "longrope";
  try {
    if (type == "default") return ops::Rope(std::move(inv), 1.f, p.head_dim);
    if (type == "linear") {
      const float factor = scaling_float(scaling, "factor");
      for (float& f : inv) f /= factor;
      return ops::Rope(std::move(inv), 1.f, p.head_dim);
    }
    if (type == "llama3") return ops::Rope(llama3_inv_freq(std::move(inv), scaling), 1.f, p.head_dim);
    if (type == "yarn") {
      auto f = yarn(p, scaling);
      return ops::Rope(std::move(f.inv_freq), f.scaling, p.head_dim);
    }
    if (type == "dynamic") {
      const double factor = scaling.at("factor").get<double>();
      return ops::Rope([p, factor](int64_t seq_len) { return dynamic_ntk(p, factor, seq_len); }, p.rotary_dim,
                       p.head_dim);
    }
    if (type == "longrope") {
      const int64_t original = longrope_original_length(p);
      const auto short_f = longrope(p, scaling, false), long_f = longrope(p, scaling, true);
      return ops::Rope([=](int64_t seq_len) { return seq_len > original ? long_f : short_f; }, p.rotary_dim,
                       p.head_dim);
    }
  } catch (const nlohmann::json::exception& e) {
    fail(ErrorKind::CorruptFile, "config.json's rope_scaling is incomplete for '" + type + "': " + e.what());
  }
  fail(ErrorKind::UnsupportedModel, "rope_scaling type '" + type +
                                        "' is not supported; supported: default, linear, dynamic, yarn, longrope, llama3");
}

}  // namespace hfpipe::models
