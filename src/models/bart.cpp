// BART and DistilBART (modeling_bart.py), and the implementation of the BART-style layout the
// related families configure (bart_style.h): post-norm layers, learned positions offset by 2,
// layernorm_embedding, tied LM head plus final_logits_bias. Checkpoint names with or without
// the "model." prefix of BartForConditionalGeneration.
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "models/bart_style.h"
#include "models/layers.h"
#include "ops/decoder_ops.h"
#include "ops/linear.h"
#include "ops/ops.h"

namespace hfpipe::models {

namespace {

struct AttentionWeights {
  ops::Linear q, k, v, o;
};

struct Layer {
  AttentionWeights self_attention, cross_attention;  // cross only in the decoder
  LayerNorm self_norm, cross_norm, final_norm;
  ops::Linear fc1, fc2;
};

struct Shape {
  int64_t d_model = 0, heads = 0, head_dim = 0, ffn = 0, vocab = 0, positions = 0;
};

// MarianSinusoidalPositionalEmbedding / PegasusSinusoidalPositionalEmbedding._init_weight:
// angle pos / 10000^(2 (j // 2) / dim) in double; sines of the even j in the first half,
// cosines of the odd j in the second; then float32.
Tensor sinusoidal_table(int64_t positions, int64_t dim) {
  Tensor t = Tensor::empty(DType::F32, {positions, dim});
  const int64_t sentinel = dim % 2 == 0 ? dim / 2 : dim / 2 + 1;
  float* out = t.f32();
  for (int64_t pos = 0; pos < positions; ++pos) {
    for (int64_t j = 0; j < dim; j += 2)
      out[pos * dim + j / 2] =
          static_cast<float>(std::sin(pos / std::pow(10000.0, 2.0 * (j / 2) / static_cast<double>(dim))));
    for (int64_t j = 1; j < dim; j += 2)
      out[pos * dim + sentinel + j / 2] =
          static_cast<float>(std::cos(pos / std::pow(10000.0, 2.0 * (j / 2) / static_cast<double>(dim))));
  }
  return t;
}

// M2M100SinusoidalPositionalEmbedding.get_embedding for one position, in float32 as torch
// computes it: frequency j is exp(j * -(ln 10000 / (half - 1))); sines of position * frequency
// in the first half, cosines in the second, a zero column when dim is odd. (The padding_idx
// row, all zeros, is the caller's business.) Computed per row instead of from a table because
// transformers' table has no upper bound.
void fairseq_sinusoid(int64_t position, int64_t dim, float* out) {
  const int64_t half = dim / 2;
  const float step = static_cast<float>(-(std::log(10000.0) / static_cast<double>(half - 1)));
  const float p = static_cast<float>(position);
  for (int64_t j = 0; j < half; ++j) {
    const float angle = p * std::exp(static_cast<float>(j) * step);
    out[j] = std::sin(angle);
    out[half + j] = std::cos(angle);
  }
  if (dim % 2 == 1) out[dim - 1] = 0.f;
}

class BartStyle;

class BartStyleDecoder : public DecoderModel {
 public:
  BartStyleDecoder(const BartStyle& model, const EncoderOutput& encoded, std::vector<int32_t> row_sources);
  Tensor forward(const DecoderStep& step, KvCache& cache, bool all_positions) const override;
  KvCache new_cache(int64_t batch, int64_t capacity) const override;
  int64_t vocab_size() const override;
  int64_t max_position_embeddings() const override;
  bool positions_are_bounded() const override;

 private:
  const BartStyle& model_;
  CrossAttentionSources cross_;
};

class BartStyle : public Seq2SeqModel {
 public:
  BartStyle(const formats::ModelConfig& config, formats::WeightMap weights, BartStyleOptions options)
      : weights_(std::move(weights)), o_(std::move(options)) {
    WeightReader reader(weights_, "model.", "shared.weight");
    WeightReader encoder_probe(weights_, "model.", "encoder.embed_tokens.weight");
    s_.d_model = config.get_int("d_model");
    s_.heads = config.get_int("encoder_attention_heads");
    check(config.get_int("decoder_attention_heads", s_.heads) == s_.heads && s_.d_model % s_.heads == 0,
          ErrorKind::UnsupportedModel, o_.family + ": encoder and decoder must have the same number of heads");
    s_.head_dim = s_.d_model / s_.heads;
    s_.vocab = config.get_int("vocab_size");
    s_.positions = config.get_int("max_position_embeddings");
    if (o_.fairseq_positions) {
      padding_idx_ = config.get_int("pad_token_id", 1);
      check(s_.d_model >= 4, ErrorKind::UnsupportedModel, o_.family + " needs d_model >= 4 for its positions");
    }
    if (!config.get_bool("share_encoder_decoder_embeddings", true))
      fail(ErrorKind::UnsupportedModel, o_.family + " with separate encoder and decoder embeddings is not supported");
    embed_scale_ = config.get_bool("scale_embedding", false)
                       ? static_cast<float>(std::sqrt(static_cast<double>(s_.d_model))) : 1.f;
    const auto act = ops::activation_from_name(config.get_string("activation_function", "gelu"));
    const bool has_shared = weights_.contains("model.shared.weight") || weights_.contains("shared.weight");
    tokens_ = has_shared ? reader.base("shared.weight") : encoder_probe.base("encoder.embed_tokens.weight");
    const WeightReader& r = has_shared ? reader : encoder_probe;
    check(tokens_.ndim() == 2 && tokens_.dim(1) == s_.d_model, ErrorKind::CorruptFile,
          o_.family + " token embeddings must be [vocab_size, d_model]");
    for (const char* stack : {"encoder", "decoder"}) {
      const bool decoder = std::string(stack) == "decoder";
      const int64_t n = config.get_int(decoder ? "decoder_layers" : "encoder_layers");
      auto& layers = decoder ? decoder_ : encoder_;
      for (int64_t i = 0; i < n; ++i) layers.push_back(load_layer(r, stack, i, decoder, act));
      Tensor& positions = decoder ? decoder_positions_ : encoder_positions_;
      if (!o_.fairseq_positions) {
        positions = o_.sinusoidal_positions ? sinusoidal_table(s_.positions, s_.d_model)
                                            : r.base(std::string(stack) + ".embed_positions.weight");
        check(positions.ndim() == 2 && positions.dim(0) >= s_.positions + o_.position_offset &&
                  positions.dim(1) == s_.d_model,
              ErrorKind::CorruptFile, o_.family + " position embeddings are smaller than max_position_embeddings");
      }
      if (o_.layernorm_embedding)
        (decoder ? decoder_embedding_norm_ : encoder_embedding_norm_) =
            LayerNorm::load(r, std::string(stack) + ".layernorm_embedding", 1e-5f);
      if (o_.final_layer_norms)
        (decoder ? decoder_final_norm_ : encoder_final_norm_) = LayerNorm::load(r, std::string(stack) + ".layer_norm", 1e-5f);
    }
    const bool tied = config.get_bool("tie_word_embeddings", true);
    lm_head_ = ops::Linear(!tied && r.has_head("lm_head.weight") ? r.head("lm_head.weight") : tokens_, Tensor());
    if (r.has_head("final_logits_bias")) {
      final_logits_bias_ = r.head("final_logits_bias");
      check(final_logits_bias_.numel() == lm_head_.out_features(), ErrorKind::CorruptFile,
            o_.family + " final_logits_bias does not match the vocabulary");
    }
  }

  EncoderOutput encode(const int32_t* ids, const int32_t* mask, int64_t batch, int64_t seq) const override {
    check(o_.fairseq_positions || seq <= s_.positions, ErrorKind::InvalidArgument,
          "the input is " + std::to_string(seq) + " tokens long, but the model accepts at most " +
              std::to_string(s_.positions));
    EncoderOutput out{batch, seq, s_.d_model, {}, std::vector<int32_t>(mask, mask + batch * seq)};
    std::vector<int32_t> positions(static_cast<size_t>(batch * seq));
    for (int64_t i = 0; i < batch * seq; ++i) positions[i] = static_cast<int32_t>(i % seq);
    if (o_.fairseq_positions)
      for (int64_t r = 0; r < batch; ++r) fairseq_position_ids(ids + r * seq, seq, 0, positions.data() + r * seq);
    out.states = embed(ids, positions.data(), batch * seq, encoder_positions_, encoder_embedding_norm_);
    Scratch b(batch * seq, s_);
    for (const Layer& layer : encoder_) {
      sublayer(out.states, layer.self_norm, b, batch * seq, [&](const float* in, float* result) {
        project_qkv(layer.self_attention, in, batch * seq, b);
        for (int64_t r = 0; r < batch; ++r) {
          const int64_t at = r * seq * s_.d_model;
          seq2seq_attend(b.q.data() + at, b.k.data() + at, b.v.data() + at, mask + r * seq, nullptr,
                         b.context.data() + at, attention_shape(seq, seq, -1));
        }
        layer.self_attention.o.forward(b.context.data(), batch * seq, result);
      });
      feed_forward(layer, out.states, b, batch * seq);
    }
    if (o_.final_layer_norms) encoder_final_norm_.apply(out.states.data(), nullptr, batch * seq);
    return out;
  }

  std::unique_ptr<DecoderModel> bind(const EncoderOutput& encoded, std::vector<int32_t> row_sources) const override {
    return std::make_unique<BartStyleDecoder>(*this, encoded, std::move(row_sources));
  }

  int64_t vocab_size() const override { return lm_head_.out_features(); }
  int64_t max_source_positions() const override { return o_.fairseq_positions ? 0 : s_.positions; }
  int64_t max_target_positions() const override { return o_.fairseq_positions ? 0 : s_.positions; }

 private:
  friend class BartStyleDecoder;

  struct Scratch {
    std::vector<float> normed, q, k, v, context, projected, inner;
    Scratch(int64_t rows, const Shape& s)
        : normed(rows * s.d_model), q(rows * s.d_model), k(rows * s.d_model), v(rows * s.d_model),
          context(rows * s.d_model), projected(rows * s.d_model), inner(rows * s.ffn) {}
  };

  Seq2SeqAttention attention_shape(int64_t queries, int64_t keys, int64_t causal_past) const {
    return {queries, keys, s_.heads, s_.head_dim, s_.d_model, s_.d_model, causal_past,
            static_cast<float>(std::pow(static_cast<double>(s_.head_dim), -0.5))};
  }

  Layer load_layer(const WeightReader& r, const std::string& stack, int64_t i, bool decoder, ops::Activation act) {
    const std::string p = stack + ".layers." + std::to_string(i) + ".";
    auto linear = [&](const std::string& name, ops::Activation a = ops::Activation::None) {
      return ops::Linear(r.base(p + name + ".weight"), r.base(p + name + ".bias"), a);
    };
    auto attention = [&](const std::string& name) {
      return AttentionWeights{linear(name + ".q_proj"), linear(name + ".k_proj"), linear(name + ".v_proj"),
                              linear(name + ".out_proj")};
    };
    Layer layer;
    layer.self_attention = attention("self_attn");
    layer.self_norm = LayerNorm::load(r, p + "self_attn_layer_norm", 1e-5f);
    if (decoder) {
      layer.cross_attention = attention("encoder_attn");
      layer.cross_norm = LayerNorm::load(r, p + "encoder_attn_layer_norm", 1e-5f);
    }
    layer.fc1 = linear("fc1", act);
    layer.fc2 = linear("fc2");
    layer.final_norm = LayerNorm::load(r, p + "final_layer_norm", 1e-5f);
    s_.ffn = std::max(s_.ffn, layer.fc1.out_features());
    return layer;
  }

  // create_position_ids_from_input_ids for one row of n new tokens after `past` ones: a non-pad
  // token is padding_idx + past + (its rank among the row's non-pad new tokens), a pad token
  // padding_idx, so positions depend on where the padding is.
  void fairseq_position_ids(const int32_t* ids, int64_t n, int64_t past, int32_t* out) const {
    int64_t seen = 0;
    for (int64_t i = 0; i < n; ++i)
      out[i] = static_cast<int32_t>(ids[i] == padding_idx_ ? padding_idx_ : padding_idx_ + past + ++seen);
  }

  // tokens * embed_scale + positions[position + offset], then layernorm_embedding if any.
  // With fairseq_positions the positions are create_position_ids_from_input_ids' ids.
  std::vector<float> embed(const int32_t* ids, const int32_t* positions, int64_t rows, const Tensor& table,
                           const LayerNorm& norm) const {
    std::vector<float> x(static_cast<size_t>(rows * s_.d_model)), pos(x.size());
    embedding_lookup(tokens_, ids, rows, x.data(), "token");
    if (o_.fairseq_positions) {
      for (int64_t i = 0; i < rows; ++i)
        if (positions[i] != padding_idx_) fairseq_sinusoid(positions[i], s_.d_model, pos.data() + i * s_.d_model);
    } else {
      std::vector<int32_t> shifted(positions, positions + rows);
      for (auto& p : shifted) p += static_cast<int32_t>(o_.position_offset);
      embedding_lookup(table, shifted.data(), rows, pos.data(), "position");
    }
    if (embed_scale_ != 1.f)
      for (float& v : x) v *= embed_scale_;
    ops::add(x.data(), pos.data(), x.data(), rows * s_.d_model);
    if (o_.layernorm_embedding) norm.apply(x.data(), nullptr, rows);
    return x;
  }

  // x = x + f(LN(x)) (pre-norm) or x = LN(x + f(x)) (post-norm); f writes d_model floats per row.
  template <typename F>
  void sublayer(std::vector<float>& x, const LayerNorm& norm, Scratch& b, int64_t rows, F&& f) const {
    if (o_.pre_norm) {
      std::memcpy(b.normed.data(), x.data(), sizeof(float) * rows * s_.d_model);
      norm.apply(b.normed.data(), nullptr, rows);
      f(b.normed.data(), b.projected.data());
      ops::add(x.data(), b.projected.data(), x.data(), rows * s_.d_model);
    } else {
      f(x.data(), b.projected.data());
      norm.apply(x.data(), b.projected.data(), rows);
    }
  }

  void project_qkv(const AttentionWeights& a, const float* in, int64_t rows, Scratch& b) const {
    a.q.forward(in, rows, b.q.data());
    a.k.forward(in, rows, b.k.data());
    a.v.forward(in, rows, b.v.data());
  }

  void feed_forward(const Layer& layer, std::vector<float>& x, Scratch& b, int64_t rows) const {
    sublayer(x, layer.final_norm, b, rows, [&](const float* in, float* result) {
      layer.fc1.forward(in, rows, b.inner.data());
      layer.fc2.forward(b.inner.data(), rows, result);
    });
  }

  formats::WeightMap weights_;
  BartStyleOptions o_;
  Shape s_;
  float embed_scale_ = 1.f;
  int64_t padding_idx_ = 1;  // fairseq_positions only
  Tensor tokens_, encoder_positions_, decoder_positions_, final_logits_bias_;
  LayerNorm encoder_embedding_norm_, decoder_embedding_norm_, encoder_final_norm_, decoder_final_norm_;
  std::vector<Layer> encoder_, decoder_;
  ops::Linear lm_head_;
};

BartStyleDecoder::BartStyleDecoder(const BartStyle& model, const EncoderOutput& encoded,
                                   std::vector<int32_t> row_sources)
    : model_(model),
      cross_(encoded, std::move(row_sources), model.s_.d_model, cross_projections(model.decoder_), model.s_.d_model) {}

KvCache BartStyleDecoder::new_cache(int64_t batch, int64_t capacity) const {
  return KvCache(static_cast<int64_t>(model_.decoder_.size()), batch, capacity, model_.s_.d_model);
}

int64_t BartStyleDecoder::vocab_size() const { return model_.vocab_size(); }
int64_t BartStyleDecoder::max_position_embeddings() const { return model_.s_.positions; }
bool BartStyleDecoder::positions_are_bounded() const { return !model_.o_.fairseq_positions; }

Tensor BartStyleDecoder::forward(const DecoderStep& step, KvCache& cache, bool all_positions) const {
  const Shape& s = model_.s_;
  check(step.batch == static_cast<int64_t>(cross_.row_sources.size()), ErrorKind::Internal,
        "the decoding batch differs from the rows the decoder was bound to");
  const int64_t n = step.new_tokens, rows = step.batch * n, past = cache.length(), d = s.d_model;
  const int32_t* positions = step.positions;
  std::vector<int32_t> fairseq_positions;
  if (model_.o_.fairseq_positions) {
    // past_key_values_length is the cache length: every earlier token counts, pad or not.
    fairseq_positions.resize(static_cast<size_t>(rows));
    for (int64_t r = 0; r < step.batch; ++r)
      model_.fairseq_position_ids(step.ids + r * n, n, past, fairseq_positions.data() + r * n);
    positions = fairseq_positions.data();
  } else {
    for (int64_t i = 0; i < rows; ++i)
      check(step.positions[i] >= 0 && step.positions[i] < s.positions, ErrorKind::InvalidArgument,
            "decoder position " + std::to_string(step.positions[i]) + " is beyond max_position_embeddings (" +
                std::to_string(s.positions) + ")");
  }
  std::vector<float> x = model_.embed(step.ids, positions, rows, model_.decoder_positions_,
                                      model_.decoder_embedding_norm_);
  BartStyle::Scratch b(rows, s);
  for (size_t l = 0; l < model_.decoder_.size(); ++l) {
    const Layer& layer = model_.decoder_[l];
    const ops::CacheView view = cache.layer(static_cast<int64_t>(l));
    model_.sublayer(x, layer.self_norm, b, rows, [&](const float* in, float* result) {
      model_.project_qkv(layer.self_attention, in, rows, b);
      for (int64_t r = 0; r < step.batch; ++r) {
        float* keys = view.keys + r * view.capacity * d;
        float* values = view.values + r * view.capacity * d;
        std::memcpy(keys + past * d, b.k.data() + r * n * d, sizeof(float) * n * d);
        std::memcpy(values + past * d, b.v.data() + r * n * d, sizeof(float) * n * d);
        seq2seq_attend(b.q.data() + r * n * d, keys, values, step.key_mask + r * (past + n), nullptr,
                       b.context.data() + r * n * d, model_.attention_shape(n, past + n, past));
      }
      layer.self_attention.o.forward(b.context.data(), rows, result);
    });
    model_.sublayer(x, layer.cross_norm, b, rows, [&](const float* in, float* result) {
      layer.cross_attention.q.forward(in, rows, b.q.data());
      for (int64_t r = 0; r < step.batch; ++r) {
        const int64_t src = cross_.row_sources[r], at = src * cross_.source_seq * d;
        seq2seq_attend(b.q.data() + r * n * d, cross_.keys[l].data() + at, cross_.values[l].data() + at,
                       cross_.source_mask.data() + src * cross_.source_seq, nullptr, b.context.data() + r * n * d,
                       model_.attention_shape(n, cross_.source_seq, -1));
      }
      layer.cross_attention.o.forward(b.context.data(), rows, result);
    });
    model_.feed_forward(layer, x, b, rows);
  }
  cache.advance(n);
  std::vector<float> last = select_rows(x, step.batch, n, d, all_positions);
  const int64_t out_rows = static_cast<int64_t>(last.size()) / d, vocab = vocab_size();
  if (model_.o_.final_layer_norms) model_.decoder_final_norm_.apply(last.data(), nullptr, out_rows);
  Tensor logits = all_positions ? Tensor::empty(DType::F32, {step.batch, n, vocab})
                                : Tensor::empty(DType::F32, {step.batch, vocab});
  model_.lm_head_.forward(last.data(), out_rows, logits.f32());
  if (model_.final_logits_bias_.raw())
    for (int64_t r = 0; r < out_rows; ++r)
      ops::add(logits.f32() + r * vocab, model_.final_logits_bias_.f32(), logits.f32() + r * vocab, vocab);
  return logits;
}

}  // namespace

std::unique_ptr<Seq2SeqModel> make_bart_style(const formats::ModelConfig& config, formats::WeightMap weights,
                                              const BartStyleOptions& options) {
  return std::make_unique<BartStyle>(config, std::move(weights), options);
}

std::unique_ptr<Seq2SeqModel> make_bart(const formats::ModelConfig& config, formats::WeightMap weights) {
  BartStyleOptions o;
  o.family = "BART";
  o.layernorm_embedding = true;
  o.position_offset = 2;
  return make_bart_style(config, std::move(weights), o);
}

}  // namespace hfpipe::models
