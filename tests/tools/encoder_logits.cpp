// Test support, not a user command: runs an encoder model folder on given token ids and prints
// its last hidden state and head logits as JSON, so the Python parity tests can compare every
// head with transformers before the pipelines that use those heads exist.
//
// usage: hfpipe_encoder_logits MODEL_DIR HEAD < batches.json
//   HEAD: base | sequence | token | qa | mlm (which head the model is loaded with)
//   stdin: a list of batches, each {"input_ids": [[id, ...], ...]} (sequences of any lengths;
//          padded on the right with the config's pad_token_id), plus for mlm
//          "positions": [[sequence, token], ...], the positions whose logits to print.
// stdout: a list with, per batch, {"last_hidden_state": [[[float]]] (each sequence unpadded),
//         "logits": ...}: sequence → [sequence][labels]; token / qa → [sequence][token][labels]
//         (unpadded); mlm → [position][vocab]; base → no "logits".
// Errors: "hfpipe_encoder_logits: error: ..." on stderr and exit status 1.
#include <cstring>
#include <iostream>
#include <iterator>
#include <map>

#include "core/error.h"
#include "formats/config.h"
#include "formats/weights.h"
#include "hfpipe/value.h"
#include "models/encoder.h"

namespace {

using hfpipe::ErrorKind;
using hfpipe::Tensor;
using hfpipe::Value;
using hfpipe::models::Head;

Head parse_head(const std::string& name) {
  static const std::map<std::string, Head> heads = {{"base", Head::None},
                                                    {"sequence", Head::SequenceClassification},
                                                    {"token", Head::TokenClassification},
                                                    {"qa", Head::QuestionAnswering},
                                                    {"mlm", Head::MaskedLM}};
  auto it = heads.find(name);
  hfpipe::check(it != heads.end(), ErrorKind::InvalidArgument, "unknown head '" + name + "'");
  return it->second;
}

hfpipe::models::EncoderInputs pad_batch(const Value& sequences, int32_t pad_id) {
  hfpipe::check(sequences.is_array() && !sequences.empty(), ErrorKind::InvalidArgument,
                "input_ids must be a non-empty list of lists");
  hfpipe::models::EncoderInputs in;
  in.batch = static_cast<int64_t>(sequences.size());
  for (const auto& s : sequences) in.seq = std::max<int64_t>(in.seq, static_cast<int64_t>(s.size()));
  in.input_ids.assign(in.batch * in.seq, pad_id);
  in.attention_mask.assign(in.batch * in.seq, 0);
  for (int64_t b = 0; b < in.batch; ++b)
    for (size_t s = 0; s < sequences[b].size(); ++s) {
      in.input_ids[b * in.seq + s] = sequences[b][s].get<int32_t>();
      in.attention_mask[b * in.seq + s] = 1;
    }
  return in;
}

// rows [first, first + count) of a [rows, width] float buffer as nested lists
Value rows_json(const float* data, int64_t first, int64_t count, int64_t width) {
  Value out = Value::array();
  for (int64_t r = first; r < first + count; ++r)
    out.push_back(std::vector<float>(data + r * width, data + (r + 1) * width));
  return out;
}

// [batch, seq, width] → per sequence its unpadded [len][width]
Value per_sequence(const Tensor& t, const Value& sequences) {
  const int64_t seq = t.dim(1), width = t.dim(2);
  Value out = Value::array();
  for (size_t b = 0; b < sequences.size(); ++b)
    out.push_back(rows_json(t.f32(), static_cast<int64_t>(b) * seq, static_cast<int64_t>(sequences[b].size()), width));
  return out;
}

Value run_batch(const hfpipe::models::EncoderModel& model, Head head, const Value& batch, int32_t pad_id) {
  const Value& sequences = batch.at("input_ids");
  auto in = pad_batch(sequences, pad_id);
  Value result;
  Tensor hidden = model.last_hidden_state(in);
  result["last_hidden_state"] = per_sequence(hidden, sequences);
  if (head == Head::SequenceClassification) {
    Tensor logits = model.head().logits(hidden);
    result["logits"] = rows_json(logits.f32(), 0, logits.dim(0), logits.dim(1));
  } else if (head == Head::TokenClassification || head == Head::QuestionAnswering) {
    result["logits"] = per_sequence(model.head().logits(hidden), sequences);
  } else if (head == Head::MaskedLM) {
    std::vector<int64_t> rows;
    for (const auto& p : batch.at("positions")) {
      const int64_t b = p.at(0).get<int64_t>(), s = p.at(1).get<int64_t>();
      hfpipe::check(b >= 0 && b < in.batch && s >= 0 && s < static_cast<int64_t>(sequences[b].size()),
                    ErrorKind::InvalidArgument, "mlm position outside the batch");
      rows.push_back(b * in.seq + s);
    }
    Tensor logits = model.head().masked_lm_logits(hidden, rows);
    result["logits"] = rows_json(logits.f32(), 0, logits.dim(0), logits.dim(1));
  }
  return result;
}

int run(const std::string& model_dir, const std::string& head_name) {
  const Head head = parse_head(head_name);
  auto config = hfpipe::formats::ModelConfig::load(model_dir);
  auto model = hfpipe::models::load_encoder(config, hfpipe::formats::load_checkpoint(model_dir), head);
  const auto pad_id = static_cast<int32_t>(config.get_int("pad_token_id", 0));
  const std::string text((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
  const Value batches = Value::parse(text);
  hfpipe::check(batches.is_array(), ErrorKind::InvalidArgument, "stdin must hold a JSON list of batches");
  Value out = Value::array();
  for (const auto& batch : batches) out.push_back(run_batch(*model, head, batch, pad_id));
  std::cout << out.dump() << '\n';
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: hfpipe_encoder_logits MODEL_DIR base|sequence|token|qa|mlm < batches.json\n";
    return 2;
  }
  try {
    return run(argv[1], argv[2]);
  } catch (const std::exception& e) {
    std::cerr << "hfpipe_encoder_logits: error: " << e.what() << '\n';
    return 1;
  }
}
