// Causal attention of many new tokens at once (a prompt's prefill), in tiles: the query rows of
// a block of tokens against their keys as small matrix products, instead of one dot product
// per (query, key, head) as the one-token path does (ops/decoder_ops.cpp).
#pragma once

#include <cstdint>

#include "ops/decoder_ops.h"

namespace hfpipe::ops {

// causal_attention's contract after the new keys and values are in the cache: each query of
// positions past .. past + new_tokens - 1 attends over the cache positions it sees (causal,
// sliding window, key_mask), with scale and soft-capping as in CausalAttentionShape. A batch
// row's left padding is skipped, not computed and masked: its queries see from its first
// unmasked position.
void prefill_attention(const float* q, const CacheView& cache, const int32_t* key_mask, float* out,
                       const CausalAttentionShape& shape);

}  // namespace hfpipe::ops
