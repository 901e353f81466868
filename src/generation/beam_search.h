// Beam search as transformers 4.57.6's GenerationMixin._beam_search (the vectorised version
// with running and finished beams), for decoder-only models and for the decoders of
// encoder-decoder models (rows whose prompt is the decoder start token(s), a DecoderModel
// bound to the encoder output).
//
// Each row's num_beams beams are decoded together as rows row * num_beams + beam of one
// left-padded batch; after each step the model reorders its per-row state within each row's
// group (DecoderModel::reorder_rows). Every row is searched exactly as if it were alone (its own
// prompt length, max_length, length normalisation and stopping), which is what transformers
// gives for one prompt at a time, the way its pipelines call generate.
//
// With do_sample the next candidates are drawn without replacement from the softmax of the
// beams' accumulated scores (transformers' beam sampling), with hfpipe's random stream.
#pragma once

#include <cstdint>
#include <vector>

#include "generation/generate.h"
#include "generation/stop_strings.h"

namespace hfpipe::generation {

// The value transformers fills the unused tail of beam-search sequences with:
// `pad_token_id or eos_token_id[0]` when there is an eos id (so a pad id of 0 gives eos),
// else -1. `pad_id` is the pad generate was given (pad_token_id, else the first eos id).
int32_t beam_fill_value(const GenerationConfig& config, int32_t pad_id);

// For each row, its config.num_return_sequences best finished sequences (best first) as new
// tokens, padded to the longest of the row's group with beam_fill_value. `pad_id` fills the
// left padding of the batch.
std::vector<std::vector<std::vector<int32_t>>> beam_search(const models::DecoderModel& model,
                                                           const std::vector<Row>& rows,
                                                           const GenerationConfig& config, int32_t pad_id,
                                                           const StopStrings* stop_strings = nullptr);

}  // namespace hfpipe::generation
