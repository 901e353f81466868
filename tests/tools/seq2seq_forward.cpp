// Test support, not a user command: runs an encoder-decoder model folder on given source ids and
// decoder ids and prints the encoder's last hidden state and the decoder's logits as JSON, so
// tests/python/test_seq2seq.py can compare both with transformers.
//
// usage: hfpipe_seq2seq_forward MODEL_DIR < request.json
//   stdin: {"input_ids": [[id, ...], ...]  (sources of any lengths, right-padded together),
//           "decoder_input_ids": [[id, ...], ...]  (one per source, all the same length)}
// stdout: {"encoder_last_hidden_state": [source][token][hidden] (unpadded),
//          "logits": [source][decoder position][vocab]}; the decoder is fed one token per
//          step through its key/value cache, as generation runs it.
// Errors: "hfpipe_seq2seq_forward: error: ..." on stderr and exit status 1.
#include <iostream>
#include <iterator>

#include "core/error.h"
#include "formats/config.h"
#include "formats/weights.h"
#include "hfpipe/value.h"
#include "models/seq2seq.h"

namespace {

using hfpipe::ErrorKind;
using hfpipe::Value;

int run(const std::string& model_dir) {
  auto config = hfpipe::formats::ModelConfig::load(model_dir);
  auto model = hfpipe::models::load_seq2seq(config, hfpipe::formats::load_checkpoint(model_dir));
  const std::string text((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
  const Value request = Value::parse(text);
  const Value& sources = request.at("input_ids");
  const Value& targets = request.at("decoder_input_ids");
  hfpipe::check(sources.is_array() && !sources.empty() && targets.size() == sources.size(),
                ErrorKind::InvalidArgument, "input_ids and decoder_input_ids must be lists of the same length");
  const int64_t batch = static_cast<int64_t>(sources.size());
  int64_t seq = 0;
  for (const auto& s : sources) seq = std::max<int64_t>(seq, static_cast<int64_t>(s.size()));
  const auto pad = static_cast<int32_t>(config.get_int("pad_token_id", 0));
  std::vector<int32_t> ids(batch * seq, pad), mask(batch * seq, 0);
  for (int64_t b = 0; b < batch; ++b)
    for (size_t t = 0; t < sources[b].size(); ++t) {
      ids[b * seq + t] = sources[b][t].get<int32_t>();
      mask[b * seq + t] = 1;
    }
  const auto encoded = model->encode(ids.data(), mask.data(), batch, seq);
  Value out;
  out["encoder_last_hidden_state"] = Value::array();
  for (int64_t b = 0; b < batch; ++b) {
    Value rows = Value::array();
    for (size_t t = 0; t < sources[b].size(); ++t) {
      const float* row = encoded.states.data() + (b * seq + static_cast<int64_t>(t)) * encoded.hidden;
      rows.push_back(std::vector<float>(row, row + encoded.hidden));
    }
    out["encoder_last_hidden_state"].push_back(rows);
  }
  std::vector<int32_t> row_sources(batch);
  for (int64_t b = 0; b < batch; ++b) row_sources[b] = static_cast<int32_t>(b);
  auto decoder = model->bind(encoded, row_sources);
  const int64_t steps = static_cast<int64_t>(targets[0].size()), vocab = decoder->vocab_size();
  auto cache = decoder->new_cache(batch, steps);
  Value logits = Value::array();
  for (int64_t b = 0; b < batch; ++b) logits.push_back(Value::array());
  for (int64_t t = 0; t < steps; ++t) {
    std::vector<int32_t> step_ids(batch), positions(batch, static_cast<int32_t>(t)), key_mask(batch * (t + 1), 1);
    for (int64_t b = 0; b < batch; ++b) {
      hfpipe::check(static_cast<int64_t>(targets[b].size()) == steps, ErrorKind::InvalidArgument,
                    "decoder_input_ids rows must have the same length");
      step_ids[b] = targets[b][t].get<int32_t>();
    }
    const hfpipe::models::DecoderStep step{batch, 1, step_ids.data(), positions.data(), key_mask.data()};
    const auto result = decoder->forward(step, cache);
    for (int64_t b = 0; b < batch; ++b)
      logits[b].push_back(std::vector<float>(result.f32() + b * vocab, result.f32() + (b + 1) * vocab));
  }
  out["logits"] = logits;
  std::cout << out.dump() << '\n';
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: hfpipe_seq2seq_forward MODEL_DIR < request.json\n";
    return 2;
  }
  try {
    return run(argv[1]);
  } catch (const std::exception& e) {
    std::cerr << "hfpipe_seq2seq_forward: error: " << e.what() << '\n';
    return 1;
  }
}
