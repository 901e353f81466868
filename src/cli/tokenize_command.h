// `hfpipe tokenize` and `hfpipe detokenize`: the tokenizer engine from the command line.
//
//   hfpipe tokenize --model M [--revision R] [--pair TEXT] [--param key=JSON]... [--jsonl] [TEXT]
//   hfpipe detokenize --model M [--revision R] [--param key=JSON]... [--jsonl] [IDS_JSON]
//
// tokenize prints what transformers' `tokenizer(text, return_offsets_mapping=True)` returns
// (input_ids, token_type_ids when the tokenizer class uses them, attention_mask,
// offset_mapping in Python character offsets) plus "tokens", as one JSON object. With
// --jsonl it reads one JSON value per line from stdin — a string, or
// {"text": ..., "text_pair": ...} — and prints one JSON line per input. detokenize prints
// the decoded string as a JSON string (one per line with --jsonl, each line an id array).
#pragma once

namespace hfpipe::cli {

// argv[0] is the subcommand name. Errors go to stderr as "hfpipe: error: ..." and return 1.
int tokenize_main(int argc, char** argv);
int detokenize_main(int argc, char** argv);

}  // namespace hfpipe::cli
