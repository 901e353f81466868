// `hfpipe chat-template`: renders a model's chat template from the command line.
//
//   hfpipe chat-template --model M [--revision R] [--param key=JSON]... [--json] MESSAGES_JSON
//
// prints what transformers' `tokenizer.apply_chat_template(messages, tokenize=False,
// **params)` returns, byte for byte (no newline added; --json prints it as a JSON string
// and a newline). MESSAGES_JSON is a JSON list of messages, or "-" to read it from stdin.
// Parameters: add_generation_prompt, continue_final_message, tools, documents,
// chat_template (a template name or text); any other key becomes a template variable, as
// transformers passes extra keyword arguments to the template.
#pragma once

namespace hfpipe::cli {

// argv[0] is the subcommand name. Errors go to stderr as "hfpipe: error: ..." and return 1.
int chat_template_main(int argc, char** argv);

}  // namespace hfpipe::cli
