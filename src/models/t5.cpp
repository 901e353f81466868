// T5 (modeling_t5.py), v1.0 and v1.1 / FLAN-T5: a shared token embedding (no scaling, no
// absolute positions), pre-norm layers with T5's RMS layer norm (weight only, no mean, no
// bias), attention without the 1/sqrt(d) scaling and with a learned relative-position bias
// that the first layer of each stack computes and every layer adds, a ReLU MLP (v1.0) or
// a gated-GELU one (v1.1: gelu_new(wi_0 x) * wi_1 x), a final norm per stack, and an LM head
// that is the shared embedding (then the decoder output is scaled by d_model^-0.5 first) or
// its own lm_head (tie_word_embeddings false, v1.1).
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "models/layers.h"
#include "models/seq2seq.h"
#include "ops/decoder_ops.h"
#include "ops/linear.h"
#include "ops/ops.h"

namespace hfpipe::models {

namespace {

// T5Attention._relative_position_bucket, in torch's float32 arithmetic for the log buckets.
int32_t relative_position_bucket(int64_t relative_position, bool bidirectional, int64_t num_buckets,
                                 int64_t max_distance) {
  int64_t bucket = 0, n = relative_position;
  if (bidirectional) {
    num_buckets /= 2;
    if (n > 0) bucket += num_buckets;
    n = std::abs(n);
  } else {
    n = -std::min<int64_t>(n, 0);
  }
  const int64_t max_exact = num_buckets / 2;
  if (n < max_exact) return static_cast<int32_t>(bucket + n);
  const float scaled = std::log(static_cast<float>(n) / static_cast<float>(max_exact)) /
                       static_cast<float>(std::log(static_cast<double>(max_distance) / static_cast<double>(max_exact))) *
                       static_cast<float>(num_buckets - max_exact);
  const int64_t large = std::min<int64_t>(max_exact + static_cast<int64_t>(scaled), num_buckets - 1);
  return static_cast<int32_t>(bucket + large);
}

struct Attention {
  ops::Linear q, k, v, o;
};

struct FeedForward {
  bool gated = false;
  ops::Linear wi, wi_1, wo;  // wi is wi_0 when gated (the activated half)
};

struct EncoderLayer {
  Tensor attention_norm, ffn_norm;
  Attention attention;
  FeedForward ffn;
};

struct DecoderLayer {
  Tensor self_norm, cross_norm, ffn_norm;
  Attention self_attention, cross_attention;
  FeedForward ffn;
};

struct T5Shape {
  int64_t d_model = 0, inner = 0, heads = 0, d_kv = 0, d_ff = 0, vocab = 0, buckets = 32, max_distance = 128;
  float eps = 1e-6f;
};

class T5;

// The decoder bound to one batch's encoder output (see Seq2SeqModel::bind).
class T5BoundDecoder : public DecoderModel {
 public:
  T5BoundDecoder(const T5& model, const EncoderOutput& encoded, std::vector<int32_t> row_sources);
  Tensor forward(const DecoderStep& step, KvCache& cache, bool all_positions) const override;
  KvCache new_cache(int64_t batch, int64_t capacity) const override;
  int64_t vocab_size() const override;
  int64_t max_position_embeddings() const override { return INT32_MAX; }
  bool positions_are_bounded() const override { return false; }

 private:
  const T5& model_;
  CrossAttentionSources cross_;
};

class T5 : public Seq2SeqModel {
 public:
  T5(const formats::ModelConfig& config, formats::WeightMap weights) : weights_(std::move(weights)) {
    WeightReader reader(weights_, "", "shared.weight");
    s_.d_model = config.get_int("d_model");
    s_.heads = config.get_int("num_heads");
    s_.d_kv = config.get_int("d_kv");
    s_.inner = s_.heads * s_.d_kv;
    s_.d_ff = config.get_int("d_ff");
    s_.vocab = config.get_int("vocab_size");
    s_.buckets = config.get_int("relative_attention_num_buckets", 32);
    s_.max_distance = config.get_int("relative_attention_max_distance", 128);
    s_.eps = static_cast<float>(config.get_double("layer_norm_epsilon", 1e-6));
    // T5Config: "gated-gelu" → gated with gelu_new; "relu" / "gated-silu" etc. name the act.
    const std::string proj = config.get_string("feed_forward_proj", "relu");
    gated_ = proj.rfind("gated-", 0) == 0;
    std::string act = gated_ ? proj.substr(6) : proj;
    if (proj == "gated-gelu") act = "gelu_new";
    activation_ = ops::activation_from_name(act);
    tied_ = config.get_bool("tie_word_embeddings", true);

    shared_ = weights_.contains("shared.weight") ? reader.base("shared.weight")
                                                  : reader.base("encoder.embed_tokens.weight");
    check(shared_.ndim() == 2 && shared_.dim(1) == s_.d_model, ErrorKind::CorruptFile,
          "T5 shared embedding must be [vocab_size, d_model]");
    const int64_t encoder_layers = config.get_int("num_layers");
    const int64_t decoder_layers = config.get_int("num_decoder_layers", encoder_layers);
    for (int64_t i = 0; i < encoder_layers; ++i) encoder_.push_back(load_encoder_layer(reader, i));
    for (int64_t i = 0; i < decoder_layers; ++i) decoder_.push_back(load_decoder_layer(reader, i));
    encoder_bias_ = relative_bias(reader, "encoder.block.0.layer.0.SelfAttention");
    decoder_bias_ = relative_bias(reader, "decoder.block.0.layer.0.SelfAttention");
    encoder_final_ = reader.base("encoder.final_layer_norm.weight");
    decoder_final_ = reader.base("decoder.final_layer_norm.weight");
    lm_head_ = ops::Linear(tied_ ? shared_ : reader.base("lm_head.weight"), Tensor());
  }

  EncoderOutput encode(const int32_t* ids, const int32_t* mask, int64_t batch, int64_t seq) const override {
    EncoderOutput out{batch, seq, s_.d_model, std::vector<float>(static_cast<size_t>(batch * seq * s_.d_model)),
                      std::vector<int32_t>(mask, mask + batch * seq)};
    const int64_t rows = batch * seq;
    embedding_lookup(shared_, ids, rows, out.states.data(), "token");
    // One bias for every layer and row: positions are 0..seq-1 in every source.
    std::vector<float> bias(static_cast<size_t>(s_.heads * seq * seq));
    std::vector<int32_t> query_positions(static_cast<size_t>(seq));
    for (int64_t i = 0; i < seq; ++i) query_positions[i] = static_cast<int32_t>(i);
    position_bias(encoder_bias_, query_positions.data(), seq, seq, /*bidirectional=*/true, bias.data());
    Scratch b(rows, s_);
    for (const EncoderLayer& layer : encoder_) {
      normalize(out.states, layer.attention_norm, b.normed, rows);
      layer.attention.q.forward(b.normed.data(), rows, b.q.data());
      layer.attention.k.forward(b.normed.data(), rows, b.k.data());
      layer.attention.v.forward(b.normed.data(), rows, b.v.data());
      for (int64_t r = 0; r < batch; ++r) {
        const int64_t at = r * seq * s_.inner;
        seq2seq_attend(b.q.data() + at, b.k.data() + at, b.v.data() + at, mask + r * seq, bias.data(),
                       b.context.data() + at, {seq, seq, s_.heads, s_.d_kv, s_.inner, s_.inner, -1, 1.f});
      }
      residual(layer.attention.o, b.context, out.states, b.projected, rows);
      feed_forward(layer.ffn_norm, layer.ffn, out.states, b, rows);
    }
    ops::rms_norm(out.states.data(), rows, s_.d_model, encoder_final_.f32(), s_.eps);
    return out;
  }

  std::unique_ptr<DecoderModel> bind(const EncoderOutput& encoded, std::vector<int32_t> row_sources) const override {
    return std::make_unique<T5BoundDecoder>(*this, encoded, std::move(row_sources));
  }

  int64_t vocab_size() const override { return s_.vocab; }
  int64_t max_source_positions() const override { return 0; }
  int64_t max_target_positions() const override { return 0; }

 private:
  friend class T5BoundDecoder;

  struct Scratch {
    std::vector<float> normed, q, k, v, context, projected, inner, inner_1;
    Scratch(int64_t rows, const T5Shape& s)
        : normed(rows * s.d_model), q(rows * s.inner), k(rows * s.inner), v(rows * s.inner), context(rows * s.inner),
          projected(rows * s.d_model), inner(rows * s.d_ff), inner_1(rows * s.d_ff) {}
  };

  Attention load_attention(const WeightReader& r, const std::string& p) const {
    auto linear = [&](const char* name) { return ops::Linear(r.base(p + "." + name + ".weight"), Tensor()); };
    return Attention{linear("q"), linear("k"), linear("v"), linear("o")};
  }

  FeedForward load_ffn(const WeightReader& r, const std::string& p) const {
    FeedForward f;
    f.gated = gated_;
    if (gated_) {
      f.wi = ops::Linear(r.base(p + ".DenseReluDense.wi_0.weight"), Tensor(), activation_);
      f.wi_1 = ops::Linear(r.base(p + ".DenseReluDense.wi_1.weight"), Tensor());
    } else {
      f.wi = ops::Linear(r.base(p + ".DenseReluDense.wi.weight"), Tensor(), activation_);
    }
    f.wo = ops::Linear(r.base(p + ".DenseReluDense.wo.weight"), Tensor());
    return f;
  }

  EncoderLayer load_encoder_layer(const WeightReader& r, int64_t i) const {
    const std::string p = "encoder.block." + std::to_string(i) + ".layer.";
    return EncoderLayer{r.base(p + "0.layer_norm.weight"), r.base(p + "1.layer_norm.weight"),
                        load_attention(r, p + "0.SelfAttention"), load_ffn(r, p + "1")};
  }

  DecoderLayer load_decoder_layer(const WeightReader& r, int64_t i) const {
    const std::string p = "decoder.block." + std::to_string(i) + ".layer.";
    return DecoderLayer{r.base(p + "0.layer_norm.weight"), r.base(p + "1.layer_norm.weight"),
                        r.base(p + "2.layer_norm.weight"), load_attention(r, p + "0.SelfAttention"),
                        load_attention(r, p + "1.EncDecAttention"), load_ffn(r, p + "2")};
  }

  Tensor relative_bias(const WeightReader& r, const std::string& p) const {
    Tensor t = r.base(p + ".relative_attention_bias.weight");
    check(t.ndim() == 2 && t.dim(0) == s_.buckets && t.dim(1) == s_.heads, ErrorKind::CorruptFile,
          "T5 relative_attention_bias must be [relative_attention_num_buckets, num_heads]");
    return t;
  }

  // bias[h, i, j] = table[bucket(j - query_positions[i]), h] for keys j = 0..keys-1 (compute_bias).
  void position_bias(const Tensor& table, const int32_t* query_positions, int64_t queries, int64_t keys,
                     bool bidirectional, float* bias) const {
    const float* t = table.f32();
    for (int64_t i = 0; i < queries; ++i)
      for (int64_t j = 0; j < keys; ++j) {
        const int32_t bucket =
            relative_position_bucket(j - query_positions[i], bidirectional, s_.buckets, s_.max_distance);
        for (int64_t h = 0; h < s_.heads; ++h) bias[(h * queries + i) * keys + j] = t[bucket * s_.heads + h];
      }
  }

  void normalize(const std::vector<float>& x, const Tensor& weight, std::vector<float>& out, int64_t rows) const {
    std::memcpy(out.data(), x.data(), sizeof(float) * rows * s_.d_model);
    ops::rms_norm(out.data(), rows, s_.d_model, weight.f32(), s_.eps);
  }

  // x += o(context)
  void residual(const ops::Linear& o, const std::vector<float>& context, std::vector<float>& x,
                std::vector<float>& projected, int64_t rows) const {
    o.forward(context.data(), rows, projected.data());
    ops::add(x.data(), projected.data(), x.data(), rows * s_.d_model);
  }

  // x += wo(act(wi norm(x))) or, gated, x += wo(act(wi_0 norm(x)) * wi_1 norm(x)).
  void feed_forward(const Tensor& norm, const FeedForward& f, std::vector<float>& x, Scratch& b, int64_t rows) const {
    normalize(x, norm, b.normed, rows);
    f.wi.forward(b.normed.data(), rows, b.inner.data());
    if (f.gated) {
      f.wi_1.forward(b.normed.data(), rows, b.inner_1.data());
      ops::multiply(b.inner.data(), b.inner_1.data(), b.inner.data(), rows * s_.d_ff);
    }
    residual(f.wo, b.inner, x, b.projected, rows);
  }

  formats::WeightMap weights_;
  T5Shape s_;
  bool gated_ = false, tied_ = true;
  ops::Activation activation_ = ops::Activation::Relu;
  Tensor shared_, encoder_bias_, decoder_bias_, encoder_final_, decoder_final_;
  std::vector<EncoderLayer> encoder_;
  std::vector<DecoderLayer> decoder_;
  ops::Linear lm_head_;
};

T5BoundDecoder::T5BoundDecoder(const T5& model, const EncoderOutput& encoded, std::vector<int32_t> row_sources)
    : model_(model),
      cross_(encoded, std::move(row_sources), model.s_.d_model, cross_projections(model.decoder_), model.s_.inner) {}

KvCache T5BoundDecoder::new_cache(int64_t batch, int64_t capacity) const {
  return KvCache(static_cast<int64_t>(model_.decoder_.size()), batch, capacity, model_.s_.inner);
}

int64_t T5BoundDecoder::vocab_size() const { return model_.s_.vocab; }

Tensor T5BoundDecoder::forward(const DecoderStep& step, KvCache& cache, bool all_positions) const {
  const T5Shape& s = model_.s_;
  check(step.batch == static_cast<int64_t>(cross_.row_sources.size()), ErrorKind::Internal,
        "the decoding batch differs from the rows the decoder was bound to");
  const int64_t n = step.new_tokens, rows = step.batch * n, past = cache.length(), keys = past + n;
  std::vector<float> x(static_cast<size_t>(rows * s.d_model));
  embedding_lookup(model_.shared_, step.ids, rows, x.data(), "token");
  // Each row's self-attention bias: its query positions against cache positions 0..keys-1.
  std::vector<float> bias(static_cast<size_t>(step.batch * s.heads * n * keys));
  for (int64_t b = 0; b < step.batch; ++b)
    model_.position_bias(model_.decoder_bias_, step.positions + b * n, n, keys, /*bidirectional=*/false,
                         bias.data() + b * s.heads * n * keys);
  T5::Scratch buf(rows, s);
  for (size_t l = 0; l < model_.decoder_.size(); ++l) {
    const DecoderLayer& layer = model_.decoder_[l];
    const ops::CacheView view = cache.layer(static_cast<int64_t>(l));
    model_.normalize(x, layer.self_norm, buf.normed, rows);
    layer.self_attention.q.forward(buf.normed.data(), rows, buf.q.data());
    layer.self_attention.k.forward(buf.normed.data(), rows, buf.k.data());
    layer.self_attention.v.forward(buf.normed.data(), rows, buf.v.data());
    for (int64_t b = 0; b < step.batch; ++b) {
      float* row_keys = view.keys + b * view.capacity * s.inner;
      float* row_values = view.values + b * view.capacity * s.inner;
      std::memcpy(row_keys + past * s.inner, buf.k.data() + b * n * s.inner, sizeof(float) * n * s.inner);
      std::memcpy(row_values + past * s.inner, buf.v.data() + b * n * s.inner, sizeof(float) * n * s.inner);
      seq2seq_attend(buf.q.data() + b * n * s.inner, row_keys, row_values, step.key_mask + b * keys,
                     bias.data() + b * s.heads * n * keys, buf.context.data() + b * n * s.inner,
                     {n, keys, s.heads, s.d_kv, s.inner, s.inner, past, 1.f});
    }
    model_.residual(layer.self_attention.o, buf.context, x, buf.projected, rows);

    model_.normalize(x, layer.cross_norm, buf.normed, rows);
    layer.cross_attention.q.forward(buf.normed.data(), rows, buf.q.data());
    for (int64_t b = 0; b < step.batch; ++b) {
      const int64_t src = cross_.row_sources[b], at = src * cross_.source_seq * s.inner;
      seq2seq_attend(buf.q.data() + b * n * s.inner, cross_.keys[l].data() + at, cross_.values[l].data() + at,
                     cross_.source_mask.data() + src * cross_.source_seq, nullptr, buf.context.data() + b * n * s.inner,
                     {n, cross_.source_seq, s.heads, s.d_kv, s.inner, s.inner, -1, 1.f});
    }
    model_.residual(layer.cross_attention.o, buf.context, x, buf.projected, rows);
    model_.feed_forward(layer.ffn_norm, layer.ffn, x, buf, rows);
  }
  cache.advance(n);
  std::vector<float> last = select_rows(x, step.batch, n, s.d_model, all_positions);
  const int64_t out_rows = static_cast<int64_t>(last.size()) / s.d_model;
  ops::rms_norm(last.data(), out_rows, s.d_model, model_.decoder_final_.f32(), s.eps);
  if (model_.tied_) {
    // Rescale before the tied projection (T5ForConditionalGeneration: * model_dim**-0.5).
    const float scale = static_cast<float>(std::pow(static_cast<double>(s.d_model), -0.5));
    for (float& v : last) v *= scale;
  }
  Tensor logits = all_positions ? Tensor::empty(DType::F32, {step.batch, n, s.vocab})
                                : Tensor::empty(DType::F32, {step.batch, s.vocab});
  model_.lm_head_.forward(last.data(), out_rows, logits.f32());
  return logits;
}

}  // namespace

std::unique_ptr<Seq2SeqModel> make_t5(const formats::ModelConfig& config, formats::WeightMap weights) {
  return std::make_unique<T5>(config, std::move(weights));
}

}  // namespace hfpipe::models
