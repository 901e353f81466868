// Internals of the Jinja subset shared by its parser (jinja_parse.cpp), evaluator
// (jinja_render.cpp) and values (jinja_value.cpp): the syntax tree and the error types.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/error.h"
#include "text/jinja_value.h"

namespace hfpipe::text::jinja {

// Nesting limit for the parser (expressions and blocks), for macro calls and for
// tojson/repr of nested data: a template is untrusted input and must not exhaust the stack.
constexpr int kMaxDepth = 200;

// A failure raised by a value operation that does not know where in the template it is;
// the evaluator adds the line and column ("chat template line 3, column 7: ...").
struct UnlocatedError : Error {
  explicit UnlocatedError(const std::string& m) : Error(ErrorKind::InvalidArgument, m) {}
};

// jinja2's UndefinedError for an operation on an Undefined value.
[[noreturn]] void undefined_error(const Val& v);

struct Pos {
  int line = 1, column = 1;
};

struct Expr;
using ExprP = std::unique_ptr<Expr>;

struct Expr {
  enum class K {
    Const,     // value
    Name,      // name
    List,      // args
    Tuple,     // args
    Dict,      // args: key, value, key, value, ...
    Getattr,   // args[0] . name
    Getitem,   // args[0] [ args[1] ]
    Slice,     // args: start, stop, step (nullptr when absent)
    Call,      // args[0] ( args[1..], kwargs )
    Filter,    // args[0] | name ( args[1..], kwargs )
    Test,      // args[0] is name ( args[1..], kwargs )
    Unary,     // name: "-", "+", "not"; args[0]
    Binary,    // name: "+", "-", "*", "/", "//", "%", "**", "and", "or"; args[0], args[1]
    Concat,    // args joined with ~
    Compare,   // args[0] ops[k] args[k+1] ...
    CondExpr,  // args: value, condition, else value (nullptr when absent)
  };
  K kind;
  Pos pos;
  std::string name;
  Val value;
  std::vector<ExprP> args;
  std::vector<std::pair<std::string, ExprP>> kwargs;
  std::vector<std::string> ops;  // Compare: "==", "!=", "<", "<=", ">", ">=", "in", "notin"
};

struct Stmt;
using StmtP = std::unique_ptr<Stmt>;
using Body = std::vector<StmtP>;

// An assignment target: a name, a namespace attribute (ns.attr) or a tuple of names.
struct Target {
  std::vector<std::string> names;  // more than one: tuple unpacking
  std::string ns_attr;             // set: names[0] is the namespace
  bool tuple = false;
};

struct Param {
  std::string name;
  ExprP default_value;  // nullptr when required
};

struct Stmt {
  enum class K { Text, Output, If, For, Set, SetBlock, Macro, Break, Continue, Scope };
  K kind;
  Pos pos;
  std::string text;                       // Text; Macro name
  ExprP expr;                             // Output, For iterable, Set value
  ExprP filter;                           // For: the "if" filter
  Target target;                          // For, Set, SetBlock
  std::vector<std::pair<ExprP, Body>> branches;  // If: condition, body
  Body body;                              // For, SetBlock, Macro, Scope (with/generation)
  Body else_body;                         // If, For
  std::vector<Param> params;              // Macro
  std::vector<std::pair<Target, ExprP>> assignments;  // Scope ({% with a = 1 %})
};

struct Program {
  Body body;
};

// Parses a template (jinja2's lexer and parser with trim_blocks and lstrip_blocks on, as
// transformers configures them). Syntax errors and unsupported tags raise Error naming
// the construct and its line and column.
std::shared_ptr<const Program> parse_template(std::string_view source);

}  // namespace hfpipe::text::jinja
