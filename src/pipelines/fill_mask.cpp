// fill-mask, as transformers' FillMaskPipeline: the masked-LM head's top_k predictions for
// every mask token of the input (a list per mask when there are several), optionally
// restricted to targets (out-of-vocabulary targets replaced by their first token, with
// transformers' warning), with `token`, `token_str` and `sequence` decoded as transformers
// decodes them. A one-item list gives that item's result, unwrapped (FillMaskPipeline.__call__).
#include <algorithm>
#include <cstdint>
#include <cmath>
#include <numeric>

#include "core/error.h"
#include "formats/weights.h"
#include "ops/ops.h"
#include "pipelines/params.h"
#include "pipelines/task.h"
#include "pipelines/text_inputs.h"

namespace hfpipe::pipelines {

namespace {

struct Prediction {
  float score;
  int32_t token;
};

// torch.topk over the candidates (all token ids, or the target ids): the k best, best first;
// equal scores keep the lower candidate index first.
std::vector<Prediction> top_predictions(const std::vector<float>& probs, const std::vector<int32_t>* targets, size_t k) {
  const size_t n = targets ? targets->size() : probs.size();
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  auto score = [&](size_t i) { return targets ? probs[static_cast<size_t>((*targets)[i])] : probs[i]; };
  std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(k), order.end(),
                    [&](size_t a, size_t b) { return score(a) > score(b) || (score(a) == score(b) && a < b); });
  std::vector<Prediction> out;
  for (size_t i = 0; i < k; ++i)
    out.push_back({score(order[i]), targets ? (*targets)[order[i]] : static_cast<int32_t>(order[i])});
  return out;
}

class FillMask : public Task {
 public:
  explicit FillMask(const TaskContext& context)
      : Task(context),
        tokenizer_(text::Tokenizer::from_folder(context.model_dir)),
        model_(models::load_encoder(context.config, load_weights(context), models::Head::MaskedLM)),
        batch_size_(context.options.batch_size) {
    mask_token_ = tokenizer_.special_token("mask_token");
    if (mask_token_) mask_id_ = tokenizer_.token_to_id(*mask_token_);
  }

  // FillMaskPipeline.__call__: a list of one input gives that input's result, not a list of it.
  bool unwraps_single_item_list() const override { return true; }

  std::vector<Value> run(const std::vector<Value>& items, const Value& params, bool /*single_call*/) const override {
    Params p(params, name(), {"top_k", "targets", "tokenizer_kwargs", "batch_size"});
    // _sanitize_parameters' order: targets first, then the mask token check.
    std::optional<std::vector<int32_t>> targets;
    if (p.has("targets") && !p.get("targets").is_null()) targets = target_ids(p.get("targets"));
    if (!mask_id_)
      fail(ErrorKind::InvalidArgument, "fill-mask: The tokenizer does not define a `mask_token`.");
    int64_t top_k = p.get_int("top_k").value_or(5);
    if (targets && static_cast<int64_t>(targets->size()) < top_k) top_k = static_cast<int64_t>(targets->size());
    const text::EncodeOptions options = encode_options_from(p.get_object("tokenizer_kwargs"), tokenizer_, name());
    const int64_t batch_size = p.get_int("batch_size").value_or(batch_size_);

    std::vector<text::Encoding> encodings;
    std::vector<std::vector<size_t>> masks;  // the mask positions of each input
    for (const Value& item : items) {
      encodings.push_back(encode_input(tokenizer_, {expect_text(item, name()), std::nullopt}, options, INT64_MAX));
      check_length(encodings.back());
      masks.push_back(mask_positions(encodings.back()));
    }
    std::vector<std::vector<std::vector<float>>> probs(items.size());  // [item][mask][vocab]
    for_each_batch(encodings, batch_size, tokenizer_.pad_token_id().value_or(0),
                   [&](const models::EncoderInputs& batch, const std::vector<size_t>& rows) {
                     std::vector<int64_t> flat;
                     for (size_t r = 0; r < rows.size(); ++r)
                       for (size_t pos : masks[rows[r]]) flat.push_back(static_cast<int64_t>(r) * batch.seq + static_cast<int64_t>(pos));
                     Tensor logits = model_->masked_lm_logits(batch, flat);
                     ops::softmax_rows(logits.f32(), logits.dim(0), logits.dim(1));
                     const auto vocab = static_cast<size_t>(logits.dim(1));
                     const float* row = logits.f32();
                     for (size_t r = 0; r < rows.size(); ++r)
                       for (size_t m = 0; m < masks[rows[r]].size(); ++m, row += vocab)
                         probs[rows[r]].emplace_back(row, row + vocab);
                   });

    std::vector<Value> results;
    for (size_t i = 0; i < items.size(); ++i)
      results.push_back(postprocess(encodings[i], masks[i], probs[i], targets ? &*targets : nullptr, top_k));
    return results;
  }

 private:
  // encode_input's own advice names a parameter fill-mask does not have.
  void check_length(const text::Encoding& encoding) const {
    if (static_cast<int64_t>(encoding.size()) > model_->max_sequence_length())
      fail(ErrorKind::InvalidArgument,
           "the input is " + std::to_string(encoding.size()) + " tokens long, but the model accepts at most " +
               std::to_string(model_->max_sequence_length()) +
               "; pass tokenizer_kwargs={\"truncation\": true} (CLI: --param 'tokenizer_kwargs={\"truncation\":true}') to cut it");
  }

  std::vector<size_t> mask_positions(const text::Encoding& encoding) const {
    std::vector<size_t> positions;
    for (size_t i = 0; i < encoding.size(); ++i)
      if (encoding.ids[i] == *mask_id_) positions.push_back(i);
    if (positions.empty())
      fail(ErrorKind::InvalidArgument, "No mask_token (" + *mask_token_ + ") found on the input");
    return positions;
  }

  // get_target_ids: a vocabulary entry as it is; anything else is tokenized and its first
  // token used, with transformers' warnings; duplicates collapse (a set).
  std::vector<int32_t> target_ids(const Value& targets) const {
    std::vector<std::string> names;
    if (targets.is_string()) {
      names.push_back(targets.get<std::string>());
    } else if (targets.is_array()) {
      for (const Value& t : targets) {
        if (!t.is_string()) fail(ErrorKind::InvalidArgument, "targets must be a string or a list of strings, got " + targets.dump());
        names.push_back(t.get<std::string>());
      }
    } else {
      fail(ErrorKind::InvalidArgument, "targets must be a string or a list of strings, got " + targets.dump());
    }
    std::vector<int32_t> ids;
    text::EncodeOptions plain;
    plain.add_special_tokens = false;
    for (const std::string& target : names) {
      if (auto id = tokenizer_.token_to_id(target)) {
        ids.push_back(*id);
        continue;
      }
      if (!text::is_valid_utf8(target)) fail(ErrorKind::InvalidArgument, "a target is not valid UTF-8");
      const text::Encoding e = tokenizer_.encode(target, plain);
      if (e.ids.empty()) {
        warn("The specified target token `" + target +
             "` does not exist in the model vocabulary. We cannot replace it with anything meaningful, ignoring it");
        continue;
      }
      warn("The specified target token `" + target + "` does not exist in the model vocabulary. Replacing with `" +
           tokenizer_.id_to_token(e.ids[0]).value_or("") + "`.");
      ids.push_back(e.ids[0]);
    }
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    if (ids.empty()) fail(ErrorKind::InvalidArgument, "At least one target must be provided when passed.");
    return ids;
  }

  // What torch would refuse after the forward pass: top_k over more candidates than there
  // are (a RuntimeError in transformers), targets outside the model's vocabulary logits.
  static void check_candidates(size_t vocab, const std::vector<int32_t>* targets, int64_t top_k) {
    if (targets)
      for (int32_t id : *targets)
        if (static_cast<size_t>(id) >= vocab)
          fail(ErrorKind::InvalidArgument, "target token id " + std::to_string(id) + " is outside the model's " +
                                               std::to_string(vocab) + " vocabulary logits");
    const size_t candidates = targets ? targets->size() : vocab;
    if (top_k < 0 || static_cast<size_t>(top_k) > candidates)
      fail(ErrorKind::InvalidArgument, "top_k must be between 0 and the number of candidate tokens (" +
                                           std::to_string(candidates) + "), got " + std::to_string(top_k) +
                                           " (in transformers, torch.topk's \"selected index k out of range\")");
  }

  // One prediction list per mask; a single mask gives its list alone. The sequence decodes the
  // input with the mask filled, padding dropped, special tokens skipped only for one mask (so
  // that the other masks stay visible).
  Value postprocess(const text::Encoding& encoding, const std::vector<size_t>& masks,
                    const std::vector<std::vector<float>>& probs, const std::vector<int32_t>* targets,
                    int64_t top_k) const {
    check_candidates(probs.front().size(), targets, top_k);
    const bool single_mask = masks.size() == 1;
    const bool clean_up = tokenizer_.clean_up_tokenization_spaces();
    const std::optional<int32_t> pad = tokenizer_.pad_token_id();
    Value per_mask = Value::array();
    for (size_t m = 0; m < masks.size(); ++m) {
      Value row = Value::array();
      for (const Prediction& pred : top_predictions(probs[m], targets, static_cast<size_t>(top_k))) {
        std::vector<int32_t> tokens;
        for (size_t i = 0; i < encoding.size(); ++i) {
          const int32_t id = i == masks[m] ? pred.token : encoding.ids[i];
          if (!pad || id != *pad) tokens.push_back(id);
        }
        row.push_back(Value{{"score", static_cast<double>(pred.score)},
                            {"token", pred.token},
                            {"token_str", tokenizer_.decode({pred.token}, false, clean_up)},
                            {"sequence", tokenizer_.decode(tokens, single_mask, clean_up)}});
      }
      per_mask.push_back(std::move(row));
    }
    return single_mask ? per_mask[0] : per_mask;
  }

  text::Tokenizer tokenizer_;
  std::unique_ptr<models::EncoderModel> model_;
  int64_t batch_size_;
  std::optional<std::string> mask_token_;
  std::optional<int32_t> mask_id_;
};

}  // namespace

std::unique_ptr<Task> make_fill_mask(const TaskContext& context) { return std::make_unique<FillMask>(context); }

}  // namespace hfpipe::pipelines
