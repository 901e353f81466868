// DeBERTa (modeling_deberta.py, model_type "deberta") and DeBERTa-v2/v3 (modeling_deberta_v2.py,
// "deberta-v2"): post-norm layers whose attention adds disentangled relative-position terms to
// the content scores,
//   score(i, j) = (q_i . k_j  +  c2p: q_i . pk[r(i, j)]  +  p2c: k_j . pq[r'(i, j)]) / sqrt(d * f),
// where pk / pq are the layer's key / query projections of the relative-position embeddings,
// f = 1 + the number of position terms, and r, r' are rows of the relative embedding table
// chosen by the distance i - j: clamped to the attention span, and in v2 mapped to log-spaced
// buckets beyond position_buckets / 2. The two versions differ in how they store the weights
// (v1: one in_proj for q, k, v plus q_bias / v_bias, pos_proj / pos_q_proj; v2: query_proj,
// key_proj, value_proj, pos_key_proj / pos_query_proj or the content projections when
// share_att_key) and in the v2-only options: log buckets, a LayerNorm on the relative
// embeddings (norm_rel_ebd), and a convolution next to the first layer (conv_kernel_size).
// Embeddings: word (+ absolute position if position_biased_input) (+ token type), projected
// without bias when embedding_size differs from the hidden size, LayerNorm, times the mask.
// Heads: ContextPooler (pooler.dense + pooler_hidden_act on [CLS]) + classifier; the masked-LM
// head under its legacy (cls.predictions) or current (lm_predictions.lm_head) names as the
// config's `legacy` says; classifier / qa_outputs per token. Names with or without "deberta.".
#include <oneapi/dnnl/dnnl.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "models/encoder.h"
#include "models/layers.h"
#include "ops/ops.h"

namespace hfpipe::models {

namespace {

// ------------------------------------------------------------------ configuration

struct DebertaOptions {
  int version = 2;  // 1: modeling_deberta.py, 2: modeling_deberta_v2.py
  EncoderShape shape{};
  bool relative_attention = false;
  bool c2p = false, p2c = false;
  int scale_factor = 1;                // f above
  int64_t max_relative_positions = 0;  // after transformers' "< 1 means max_position_embeddings"
  int64_t position_buckets = 0;        // v2; 0: plain distances
  int64_t span = 0;                    // att_span: half the rows of the relative embedding table
  bool share_att_key = false;          // v2
  bool norm_rel_ebd = false;           // v2: LayerNorm on the relative embeddings
  bool position_biased_input = true;
  int64_t conv_kernel = 0, conv_groups = 1;  // v2: 0 = no convolution layer
  ops::Activation conv_activation = ops::Activation::Tanh;
};

// "a|b" → {"a", "b"}, stripped and lower-cased, as DeBERTa configs read their option strings.
std::vector<std::string> split_option_string(const std::string& value) {
  std::vector<std::string> items;
  for (size_t start = 0;;) {
    const size_t bar = value.find('|', start);
    std::string item = value.substr(start, bar - start);
    item.erase(0, item.find_first_not_of(" \t"));
    item.erase(item.find_last_not_of(" \t") + 1);
    std::transform(item.begin(), item.end(), item.begin(), [](unsigned char c) { return std::tolower(c); });
    items.push_back(item);
    if (bar == std::string::npos) return items;
    start = bar + 1;
  }
}

// pos_att_type: a list (taken as is), or a "c2p|p2c" string (older configs), as DebertaConfig.
std::vector<std::string> pos_att_types(const formats::ModelConfig& config) {
  if (!config.has("pos_att_type")) return {};
  const Value& v = config.json()["pos_att_type"];
  if (v.is_string()) return split_option_string(v.get<std::string>());
  check(v.is_array(), ErrorKind::CorruptFile, "pos_att_type must be a list or a string");
  std::vector<std::string> types;
  for (const auto& item : v) {
    check(item.is_string(), ErrorKind::CorruptFile, "pos_att_type entries must be strings");
    types.push_back(item.get<std::string>());
  }
  return types;
}

// norm_rel_ebd: "none" or "layer_norm", possibly joined by "|".
bool parse_norm_rel_ebd(const formats::ModelConfig& config) {
  bool layer_norm = false;
  for (const auto& item : split_option_string(config.get_string("norm_rel_ebd", "none"))) {
    check(item == "none" || item == "layer_norm", ErrorKind::UnsupportedModel,
          "DeBERTa norm_rel_ebd '" + item + "' is not supported (only \"layer_norm\" and \"none\")");
    layer_norm = layer_norm || item == "layer_norm";
  }
  return layer_norm;
}

// The v2-only options: log buckets, shared position keys, norm_rel_ebd, the convolution layer.
void read_v2_options(const formats::ModelConfig& config, DebertaOptions& o) {
  o.position_buckets = std::max<int64_t>(config.get_int("position_buckets", -1), 0);
  check(o.position_buckets != 1, ErrorKind::UnsupportedModel,
        "DeBERTa-v2 position_buckets 1 is not supported (transformers divides by position_buckets / 2)");
  if (o.position_buckets > 0) o.span = o.position_buckets;
  o.share_att_key = config.get_bool("share_att_key", false);
  o.norm_rel_ebd = parse_norm_rel_ebd(config);
  o.conv_kernel = std::max<int64_t>(config.get_int("conv_kernel_size", 0), 0);
  o.conv_groups = config.get_int("conv_groups", 1);
  o.conv_activation = ops::activation_from_name(config.get_string("conv_act", "tanh"));
  check(o.conv_kernel == 0 || o.conv_kernel % 2 == 1, ErrorKind::UnsupportedModel,
        "DeBERTa-v2 conv_kernel_size " + std::to_string(o.conv_kernel) +
            " is not supported (only odd sizes keep the sequence length)");
  check(o.conv_groups >= 1 && o.shape.hidden % o.conv_groups == 0, ErrorKind::CorruptFile,
        "DeBERTa-v2 conv_groups must divide hidden_size");
}

DebertaOptions read_options(const formats::ModelConfig& config, int version) {
  DebertaOptions o;
  o.version = version;
  const int64_t hidden = config.get_int("hidden_size", 768);
  o.shape = {config.get_int("num_hidden_layers", 12), hidden, config.get_int("num_attention_heads", 12),
             config.get_int("intermediate_size", 3072),
             ops::activation_from_name(config.get_string("hidden_act", "gelu")),
             static_cast<float>(config.get_double("layer_norm_eps", 1e-7))};
  check(o.shape.heads > 0 && hidden % o.shape.heads == 0, ErrorKind::CorruptFile,
        "hidden_size is not a multiple of num_attention_heads");
  // Each version reads only its own of these two (v1 ignores attention_head_size, v2 talking_head).
  check(version == 1 || !config.has("attention_head_size") ||
            config.get_int("attention_head_size") * o.shape.heads == hidden,
        ErrorKind::UnsupportedModel, "DeBERTa-v2 attention_head_size other than hidden_size / num_attention_heads is not supported");
  check(version == 2 || !config.get_bool("talking_head", false), ErrorKind::UnsupportedModel,
        "DeBERTa talking_head is not supported");

  const auto types = pos_att_types(config);
  for (const auto& t : types) {
    check(t == "c2p" || t == "p2c", ErrorKind::UnsupportedModel,
          "DeBERTa pos_att_type '" + t + "' is not supported (only \"c2p\" and \"p2c\")");
    o.c2p = o.c2p || t == "c2p";
    o.p2c = o.p2c || t == "p2c";
  }
  // v1 counts every entry of the list, v2 only c2p and p2c (the same once others are refused).
  o.scale_factor = 1 + (version == 1 ? static_cast<int>(types.size()) : int(o.c2p) + int(o.p2c));

  o.relative_attention = config.get_bool("relative_attention", false);
  o.max_relative_positions = config.get_int("max_relative_positions", -1);
  if (o.max_relative_positions < 1) o.max_relative_positions = config.get_int("max_position_embeddings", 512);
  o.span = o.max_relative_positions;
  if (version == 2) read_v2_options(config, o);
  o.position_biased_input = config.get_bool("position_biased_input", true);
  return o;
}

// ------------------------------------------------------------------ relative positions

// make_log_bucket_position of modeling_deberta_v2.py for one distance, in the same float32
// steps as torch (the ceil makes the last bit matter).
int64_t log_bucket_position(int64_t relative, int64_t bucket_size, int64_t max_position) {
  const int64_t mid = bucket_size / 2;
  const int64_t abs_pos = (relative < mid && relative > -mid) ? mid - 1 : std::abs(relative);
  if (abs_pos <= mid) return relative;
  const float ratio = static_cast<float>(abs_pos) / static_cast<float>(mid);
  const float base = static_cast<float>(static_cast<double>(max_position - 1) / static_cast<double>(mid));
  const float log_pos =
      std::ceil(std::log(ratio) / std::log(base) * static_cast<float>(mid - 1)) + static_cast<float>(mid);
  // max_relative_positions <= position_buckets / 2 + 1 makes the base 1 or less: no bucket.
  check(std::isfinite(log_pos) && log_pos >= 0.f, ErrorKind::UnsupportedModel,
        "DeBERTa-v2 max_relative_positions " + std::to_string(max_position) + " is not supported with position_buckets " +
            std::to_string(bucket_size) + " (no valid log bucket)");
  return static_cast<int64_t>(relative > 0 ? log_pos : -log_pos);
}

// For every distance d = i - j of a sequence of `seq` tokens (index d + seq - 1), the row of
// the relative embedding table that c2p and p2c read for the pair (i, j).
struct RelativeRows {
  std::vector<int64_t> c2p, p2c;
  int64_t lo = 0, hi = -1;  // the rows any pair reads, inclusive
};

RelativeRows relative_rows(const DebertaOptions& o, int64_t seq) {
  auto position = [&](int64_t d) {  // relative_pos of build_relative_position: q - k
    return o.position_buckets > 0 ? log_bucket_position(d, o.position_buckets, o.max_relative_positions) : d;
  };
  auto row = [&](int64_t p) { return std::clamp<int64_t>(p + o.span, 0, 2 * o.span - 1); };
  RelativeRows r;
  const int64_t n = 2 * seq - 1;
  r.c2p.resize(n);
  r.p2c.resize(n);
  r.lo = 2 * o.span;
  for (int64_t d = -(seq - 1); d <= seq - 1; ++d) {
    // c2p gathers row (relative_pos[i][j] + span); p2c gathers (-relative_pos[j][i] + span).
    r.c2p[d + seq - 1] = row(position(d));
    r.p2c[d + seq - 1] = row(-position(-d));
    for (int64_t x : {r.c2p[d + seq - 1], r.p2c[d + seq - 1]}) {
      r.lo = std::min(r.lo, x);
      r.hi = std::max(r.hi, x);
    }
  }
  return r;
}

// ------------------------------------------------------------------ attention

struct AttentionBuffers {
  const float *q, *k, *v;    // [batch * seq, hidden]
  const float *pos_key;      // [rows, hidden]: key projection of the used relative rows (c2p)
  const float *pos_query;    // [rows, hidden]: query projection (p2c)
  int64_t rel_rows;
  float* out;                // [batch * seq, hidden]
};

// One (sequence, head) over its `len` tokens (padding, at the end, is masked out of the keys
// and does not change the real tokens' results). Strides are the full hidden width.
void attend_one_head(const AttentionBuffers& in, int64_t offset, int64_t head_offset, int64_t len, int64_t seq,
                     int64_t head_dim, int64_t hidden, float scale, const RelativeRows* rel, float* scores,
                     float* c2p, float* p2c) {
  const float* q = in.q + offset;
  const float* k = in.k + offset;
  dnnl_sgemm('N', 'T', len, len, head_dim, 1.f / scale, q, hidden, k, hidden, 0.f, scores, len);
  if (rel) {
    const int64_t n = in.rel_rows;
    if (in.pos_key) dnnl_sgemm('N', 'T', len, n, head_dim, 1.f, q, hidden, in.pos_key + head_offset, hidden, 0.f, c2p, n);
    if (in.pos_query) dnnl_sgemm('N', 'T', len, n, head_dim, 1.f, k, hidden, in.pos_query + head_offset, hidden, 0.f, p2c, n);
    for (int64_t i = 0; i < len; ++i)
      for (int64_t j = 0; j < len; ++j) {
        const int64_t d = i - j + seq - 1;
        float bias = 0.f;
        if (in.pos_key) bias += c2p[i * n + rel->c2p[d] - rel->lo] / scale;
        if (in.pos_query) bias += p2c[j * n + rel->p2c[d] - rel->lo] / scale;
        scores[i * len + j] += bias;
      }
  }
  ops::softmax_rows(scores, len, len);
  dnnl_sgemm('N', 'N', len, head_dim, len, 1.f, scores, len, in.v + offset, hidden, 0.f, in.out + offset, hidden);
}

int64_t sequence_length(const int32_t* mask, int64_t seq) {
  int64_t len = seq;
  while (len > 0 && !mask[len - 1]) --len;
  for (int64_t j = 0; j < len; ++j)
    check(mask[j] != 0, ErrorKind::Internal, "attention masks must pad on the right only");
  return len;
}

void disentangled_attention(const AttentionBuffers& in, int64_t batch, int64_t seq, int64_t heads, int64_t hidden,
                            const int32_t* mask, float scale, const RelativeRows* rel) {
  const int64_t head_dim = hidden / heads;
  std::vector<int64_t> lengths(batch);
  for (int64_t b = 0; b < batch; ++b) {
    lengths[b] = sequence_length(mask + b * seq, seq);
    std::fill(in.out + (b * seq + lengths[b]) * hidden, in.out + (b + 1) * seq * hidden, 0.f);
  }
#pragma omp parallel
  {
    std::vector<float> scores(seq * seq), c2p(rel ? seq * in.rel_rows : 0), p2c(rel ? seq * in.rel_rows : 0);
#pragma omp for schedule(static)
    for (int64_t p = 0; p < batch * heads; ++p) {
      const int64_t b = p / heads, h = p % heads;
      if (lengths[b] == 0) continue;
      attend_one_head(in, b * seq * hidden + h * head_dim, h * head_dim, lengths[b], seq, head_dim, hidden, scale, rel,
                      scores.data(), c2p.data(), p2c.data());
    }
  }
}

// ------------------------------------------------------------------ the model

std::string layer_name(int64_t i, const std::string& rest) { return "encoder.layer." + std::to_string(i) + "." + rest; }

ops::Linear linear(const WeightReader& reader, const std::string& name, bool bias = true,
                   ops::Activation act = ops::Activation::None) {
  return ops::Linear(reader.base(name + ".weight"), bias ? reader.base(name + ".bias") : Tensor(), act,
                     reader.encoder_packing());
}

// Rows [first, first + count) of each head's block of `per_head` rows of a [heads * per_head, in]
// matrix, stacked: DeBERTa v1's in_proj keeps q, k and v interleaved per head.
Tensor head_rows(const Tensor& w, int64_t heads, int64_t per_head, int64_t first, int64_t count) {
  const int64_t in = w.dim(1);
  Tensor out = Tensor::empty(DType::F32, {heads * count, in});
  for (int64_t h = 0; h < heads; ++h)
    std::memcpy(out.f32() + h * count * in, w.f32() + (h * per_head + first) * in, sizeof(float) * count * in);
  return out;
}

class Deberta : public EncoderModel {
 public:
  Deberta(const formats::ModelConfig& config, formats::WeightMap weights, Head head, int version)
      : weights_(std::move(weights)), o_(read_options(config, version)) {
    WeightReader reader(weights_, "deberta.", "embeddings.word_embeddings.weight");
    load_embeddings(reader, config);
    for (int64_t i = 0; i < o_.shape.layers; ++i) layers_.push_back(load_layer(reader, i));
    if (o_.relative_attention) load_relative_embeddings(reader);
    if (o_.conv_kernel > 0) load_conv(reader);
    max_positions_ = config.get_int("max_position_embeddings", 512);
    head_ = load_head(head, reader, config);
  }

  Tensor last_hidden_state(const EncoderInputs& in) const override {
    const int64_t rows = in.batch * in.seq, h = o_.shape.hidden;
    Tensor embedded = embed(in);
    Tensor hidden = Tensor::empty(DType::F32, {in.batch, in.seq, h});
    std::memcpy(hidden.f32(), embedded.f32(), sizeof(float) * rows * h);
    RelativeRows rel;
    if (o_.relative_attention) rel = relative_rows(o_, in.seq);
    for (size_t i = 0; i < layers_.size(); ++i) {
      forward_layer(layers_[i], hidden.f32(), in, o_.relative_attention ? &rel : nullptr);
      if (i == 0 && o_.conv_kernel > 0) apply_conv(embedded.f32(), hidden.f32(), in);
    }
    return hidden;
  }

  const EncoderHead& head() const override { return head_; }
  int64_t max_sequence_length() const override { return max_positions_; }
  int64_t type_vocab_size() const override { return token_type_.raw() ? token_type_.dim(0) : 0; }

 private:
  struct Layer {
    ops::Linear query, key, value, pos_key, pos_query, attention_out, ffn_in, ffn_out;
    LayerNorm attention_norm, output_norm;
  };

  formats::WeightMap weights_;
  DebertaOptions o_;
  Tensor word_, position_, token_type_;
  ops::Linear embed_proj_;
  LayerNorm embed_norm_;
  std::vector<Layer> layers_;
  Tensor relative_;  // [2 * span, hidden], normalised once when norm_rel_ebd says so
  std::vector<Tensor> conv_taps_;  // one [hidden, hidden / groups] matrix per kernel tap
  Tensor conv_bias_;
  LayerNorm conv_norm_;
  int64_t max_positions_ = 512;
  EncoderHead head_;

  void load_embeddings(const WeightReader& reader, const formats::ModelConfig& config) {
    word_ = reader.base("embeddings.word_embeddings.weight");
    if (o_.position_biased_input) position_ = reader.base("embeddings.position_embeddings.weight");
    if (config.get_int("type_vocab_size", 0) > 0) token_type_ = reader.base("embeddings.token_type_embeddings.weight");
    if (word_.dim(1) != o_.shape.hidden) embed_proj_ = linear(reader, "embeddings.embed_proj", /*bias=*/false);
    embed_norm_ = LayerNorm::load(reader, "embeddings.LayerNorm", o_.shape.layer_norm_eps);
  }

  Layer load_layer(const WeightReader& reader, int64_t i) const {
    Layer l;
    const auto self = [&](const std::string& rest) { return layer_name(i, "attention.self." + rest); };
    if (o_.version == 1) {
      // in_proj: per head, d rows of q, then k, then v; biases only for q and v.
      const Tensor w = reader.base(self("in_proj.weight"));
      const int64_t heads = o_.shape.heads, d = o_.shape.hidden / heads;
      check(w.ndim() == 2 && w.dim(0) == 3 * o_.shape.hidden, ErrorKind::CorruptFile, "DeBERTa in_proj has the wrong shape");
      const auto packing = reader.encoder_packing();
      l.query = ops::Linear(head_rows(w, heads, 3 * d, 0, d), reader.base(self("q_bias")), ops::Activation::None, packing);
      l.key = ops::Linear(head_rows(w, heads, 3 * d, d, d), Tensor(), ops::Activation::None, packing);
      l.value = ops::Linear(head_rows(w, heads, 3 * d, 2 * d, d), reader.base(self("v_bias")), ops::Activation::None, packing);
      if (o_.relative_attention && o_.c2p) l.pos_key = linear(reader, self("pos_proj"), /*bias=*/false);
      if (o_.relative_attention && o_.p2c) l.pos_query = linear(reader, self("pos_q_proj"));
    } else {
      l.query = linear(reader, self("query_proj"));
      l.key = linear(reader, self("key_proj"));
      l.value = linear(reader, self("value_proj"));
      if (o_.relative_attention && o_.c2p) l.pos_key = o_.share_att_key ? l.key : linear(reader, self("pos_key_proj"));
      if (o_.relative_attention && o_.p2c) l.pos_query = o_.share_att_key ? l.query : linear(reader, self("pos_query_proj"));
    }
    const float eps = o_.shape.layer_norm_eps;
    l.attention_out = linear(reader, layer_name(i, "attention.output.dense"));
    l.attention_norm = LayerNorm::load(reader, layer_name(i, "attention.output.LayerNorm"), eps);
    l.ffn_in = linear(reader, layer_name(i, "intermediate.dense"), true, o_.shape.activation);
    l.ffn_out = linear(reader, layer_name(i, "output.dense"));
    l.output_norm = LayerNorm::load(reader, layer_name(i, "output.LayerNorm"), eps);
    return l;
  }

  void load_relative_embeddings(const WeightReader& reader) {
    const Tensor table = reader.base("encoder.rel_embeddings.weight");
    check(table.ndim() == 2 && table.dim(0) >= 2 * o_.span && table.dim(1) == o_.shape.hidden, ErrorKind::CorruptFile,
          "DeBERTa rel_embeddings must have 2 * " + std::to_string(o_.span) + " rows of hidden_size");
    relative_ = Tensor::empty(DType::F32, {2 * o_.span, o_.shape.hidden});
    std::memcpy(relative_.f32(), table.f32(), sizeof(float) * relative_.numel());
    if (o_.norm_rel_ebd)
      LayerNorm::load(reader, "encoder.LayerNorm", o_.shape.layer_norm_eps).apply(relative_.f32(), nullptr, 2 * o_.span);
  }

  // nn.Conv1d weight [hidden, hidden / groups, kernel] → per tap t a matrix [hidden, hidden / groups].
  void load_conv(const WeightReader& reader) {
    const Tensor w = reader.base("encoder.conv.conv.weight");
    const int64_t h = o_.shape.hidden, in = h / o_.conv_groups, k = o_.conv_kernel;
    check(w.ndim() == 3 && w.dim(0) == h && w.dim(1) == in && w.dim(2) == k, ErrorKind::CorruptFile,
          "DeBERTa-v2 encoder.conv.conv.weight has the wrong shape");
    for (int64_t t = 0; t < k; ++t) {
      Tensor tap = Tensor::empty(DType::F32, {h, in});
      for (int64_t r = 0; r < h * in; ++r) tap.f32()[r] = w.f32()[r * k + t];
      conv_taps_.push_back(tap);
    }
    conv_bias_ = reader.base("encoder.conv.conv.bias");
    conv_norm_ = LayerNorm::load(reader, "encoder.conv.LayerNorm", o_.shape.layer_norm_eps);
  }

  // DebertaEmbeddings: padding rows come out zero (multiplied by the mask).
  Tensor embed(const EncoderInputs& in) const {
    const int64_t rows = in.batch * in.seq, e = word_.dim(1);
    Tensor x = Tensor::empty(DType::F32, {in.batch, in.seq, e});
    std::vector<float> extra(rows * e);
    embedding_lookup(word_, in.input_ids.data(), rows, x.f32(), "token");
    if (position_.raw()) {
      auto positions = sequential_position_ids(in.batch, in.seq);
      embedding_lookup(position_, positions.data(), rows, extra.data(), "position");
      ops::add(x.f32(), extra.data(), x.f32(), rows * e);
    }
    if (token_type_.raw()) {
      std::vector<int32_t> types = in.token_type_ids;
      if (types.empty()) types.assign(rows, 0);
      embedding_lookup(token_type_, types.data(), rows, extra.data(), "token type");
      ops::add(x.f32(), extra.data(), x.f32(), rows * e);
    }
    if (embed_proj_.out_features()) x = embed_proj_.forward(x);
    embed_norm_.apply(x.f32(), nullptr, rows);
    zero_padding(x.f32(), in);
    return x;
  }

  void zero_padding(float* x, const EncoderInputs& in) const {
    const int64_t h = o_.shape.hidden;
    for (int64_t r = 0; r < in.batch * in.seq; ++r)
      if (!in.attention_mask[r]) std::fill(x + r * h, x + (r + 1) * h, 0.f);
  }

  void forward_layer(const Layer& l, float* hidden, const EncoderInputs& in, const RelativeRows* rel) const {
    const int64_t rows = in.batch * in.seq, h = o_.shape.hidden;
    std::vector<float> q(rows * h), k(rows * h), v(rows * h), context(rows * h), projected(rows * h);
    l.query.forward(hidden, rows, q.data());
    l.key.forward(hidden, rows, k.data());
    l.value.forward(hidden, rows, v.data());
    std::vector<float> pos_key, pos_query;
    AttentionBuffers buffers{q.data(), k.data(), v.data(), nullptr, nullptr, 0, context.data()};
    if (rel) {
      // Only the table rows this length reaches: the projections are row by row.
      buffers.rel_rows = rel->hi - rel->lo + 1;
      const float* table = relative_.f32() + rel->lo * h;
      if (o_.c2p) {
        pos_key.resize(buffers.rel_rows * h);
        l.pos_key.forward(table, buffers.rel_rows, pos_key.data());
        buffers.pos_key = pos_key.data();
      }
      if (o_.p2c) {
        pos_query.resize(buffers.rel_rows * h);
        l.pos_query.forward(table, buffers.rel_rows, pos_query.data());
        buffers.pos_query = pos_query.data();
      }
    }
    const float scale = std::sqrt(static_cast<float>(h / o_.shape.heads) * static_cast<float>(o_.scale_factor));
    disentangled_attention(buffers, in.batch, in.seq, o_.shape.heads, h, in.attention_mask.data(), scale, rel);
    l.attention_out.forward(context.data(), rows, projected.data());
    l.attention_norm.apply(projected.data(), hidden, rows);  // projected = LN(attention + hidden)
    std::vector<float> inner(rows * o_.shape.intermediate);
    l.ffn_in.forward(projected.data(), rows, inner.data());
    l.ffn_out.forward(inner.data(), rows, hidden);
    l.output_norm.apply(hidden, projected.data(), rows);  // hidden = LN(ffn + projected)
  }

  // ConvLayer: hidden = LN(hidden + act(conv1d(embedded))) on tokens, zero on padding. The
  // convolution pads with zeros, and padding rows of `embedded` are zero too, so each
  // sequence is convolved over its own tokens only.
  void apply_conv(const float* embedded, float* hidden, const EncoderInputs& in) const {
    const int64_t h = o_.shape.hidden, rows = in.batch * in.seq, half = (o_.conv_kernel - 1) / 2;
    const int64_t groups = o_.conv_groups, width = h / groups;
    std::vector<float> out(rows * h), tap_out(rows * width);
    for (int64_t r = 0; r < rows; ++r) std::memcpy(out.data() + r * h, conv_bias_.f32(), sizeof(float) * h);
    for (int64_t b = 0; b < in.batch; ++b) {
      const int64_t len = sequence_length(in.attention_mask.data() + b * in.seq, in.seq);
      for (int64_t t = 0; t < o_.conv_kernel; ++t) {
        // output s reads input s + t - half; the rows outside [0, len) are zero.
        const int64_t shift = t - half, first = std::max<int64_t>(0, -shift), last = std::min(len, len - shift);
        if (last <= first) continue;
        for (int64_t g = 0; g < groups; ++g)
          add_tap(conv_taps_[t], embedded + (b * in.seq + first + shift) * h + g * width, last - first, g, width,
                  out.data() + (b * in.seq + first) * h);
      }
    }
    zero_padding(out.data(), in);
    ops::apply_activation(out.data(), rows * h, o_.conv_activation);
    conv_norm_.apply(hidden, out.data(), rows);
    zero_padding(hidden, in);
  }

  // out[r][g * width + o] += sum_c tap[g * width + o][c] * x[r][c] for `n` rows of stride hidden.
  void add_tap(const Tensor& tap, const float* x, int64_t n, int64_t g, int64_t width, float* out) const {
    const int64_t h = o_.shape.hidden;
    dnnl_sgemm('N', 'T', n, width, width, 1.f, x, h, tap.f32() + g * width * width, width, 1.f, out + g * width, h);
  }

  EncoderHead load_head(Head kind, const WeightReader& reader, const formats::ModelConfig& config) const {
    const float eps = o_.shape.layer_norm_eps;
    const auto act = ops::activation_from_name(config.get_string("hidden_act", "gelu"));
    if (kind == Head::SequenceClassification)
      return EncoderHead::sequence_classification(FirstTokenHead(
          reader.head("pooler.dense.weight"), reader.head("pooler.dense.bias"),
          ops::activation_from_name(config.get_string("pooler_hidden_act", "gelu")), reader.head("classifier.weight"),
          reader.head("classifier.bias")));
    if (kind == Head::MaskedLM && config.get_bool("legacy", true))
      return EncoderHead::masked_lm(MaskedLmHead(
          reader.head("cls.predictions.transform.dense.weight"), reader.head("cls.predictions.transform.dense.bias"), act,
          LayerNorm::load_head(reader, "cls.predictions.transform.LayerNorm", eps),
          tied_decoder_weight(reader, "cls.predictions.decoder.weight", word_), reader.head("cls.predictions.bias")));
    if (kind == Head::MaskedLM)  // DebertaLMPredictionHead: always the word embeddings as decoder
      return EncoderHead::masked_lm(MaskedLmHead(
          reader.head("lm_predictions.lm_head.dense.weight"), reader.head("lm_predictions.lm_head.dense.bias"), act,
          LayerNorm::load_head(reader, "lm_predictions.lm_head.LayerNorm", eps), word_,
          reader.head("lm_predictions.lm_head.bias")));
    return load_per_token_head(kind, reader);
  }
};

}  // namespace

std::unique_ptr<EncoderModel> make_deberta(const formats::ModelConfig& config, formats::WeightMap weights, Head head) {
  return std::make_unique<Deberta>(config, std::move(weights), head, 1);
}

std::unique_ptr<EncoderModel> make_deberta_v2(const formats::ModelConfig& config, formats::WeightMap weights,
                                              Head head) {
  return std::make_unique<Deberta>(config, std::move(weights), head, 2);
}

}  // namespace hfpipe::models
