// The lexer and parser of the Jinja subset. They follow jinja2's own (lexer.py,
// parser.py) closely where chat templates can tell the difference: whitespace control
// ({%- -%}, trim_blocks, lstrip_blocks, the dropped final newline), operator precedence,
// where `is` tests and `|` filters bind, implicit string concatenation and tuples.
#include <algorithm>
#include <cstring>

#include "text/jinja_internal.h"
#include "text/unicode.h"

namespace hfpipe::text::jinja {

namespace {

struct Token {
  enum class T { Data, BlockBegin, BlockEnd, VarBegin, VarEnd, Name, String, Int, Float, Op, Eof };
  T type;
  std::string text;  // Data, Name, Op; the decoded value of a String
  Val number;        // Int, Float
  Pos pos;
};

using T = Token::T;

bool is_name_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_name_char(char c) { return is_name_start(c) || (c >= '0' && c <= '9'); }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Python's str.rstrip() (all Unicode whitespace).
std::string_view rstrip_ws(std::string_view s) {
  size_t end = s.size();
  while (end > 0) {
    size_t start = end - 1;
    while (start > 0 && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
    size_t len = 0;
    if (!py_isspace(unicode::decode(s, start, &len))) break;
    end = start;
  }
  return s.substr(0, end);
}

// Length of the whitespace run (regex \s) at s[i].
size_t ws_run(std::string_view s, size_t i) {
  size_t k = i;
  while (k < s.size()) {
    size_t len = 0;
    if (!py_isspace(unicode::decode(s, k, &len))) break;
    k += len;
  }
  return k - i;
}

class Lexer {
 public:
  explicit Lexer(std::string_view source) {
    // jinja2 splits on \r\n, \r and \n, drops one trailing newline (keep_trailing_newline
    // is off) and joins the lines with \n.
    for (size_t i = 0; i < source.size(); ++i) {
      if (source[i] == '\r') {
        src_ += '\n';
        if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
      } else {
        src_ += source[i];
      }
    }
    if (!src_.empty() && src_.back() == '\n') src_.pop_back();
    line_starts_.push_back(0);
    for (size_t i = 0; i < src_.size(); ++i)
      if (src_[i] == '\n') line_starts_.push_back(i + 1);
  }

  std::vector<Token> run() {
    size_t pos = 0;
    while (pos < src_.size()) {
      const size_t tag = next_tag(pos);
      std::string_view text = std::string_view(src_).substr(pos, tag == std::string::npos ? std::string::npos : tag - pos);
      if (tag == std::string::npos) {
        emit_data(text, pos);
        break;
      }
      const char kind = src_[tag + 1];
      const char sign = tag + 2 < src_.size() && (src_[tag + 2] == '-' || src_[tag + 2] == '+') ? src_[tag + 2] : 0;
      emit_data(control_whitespace(text, pos, kind, sign), pos);
      size_t inner = tag + 2 + (sign ? 1 : 0);
      if (kind == '#') pos = skip_comment(inner, tag);
      else pos = lex_tag(inner, tag, kind == '%');
    }
    tokens_.push_back(Token{T::Eof, "", {}, at(src_.size())});
    return std::move(tokens_);
  }

 private:
  std::string src_;
  std::vector<size_t> line_starts_;
  std::vector<Token> tokens_;

  Pos at(size_t offset) const {
    auto it = std::upper_bound(line_starts_.begin(), line_starts_.end(), offset);
    const size_t line = size_t(it - line_starts_.begin());
    return Pos{int(line), int(offset - line_starts_[line - 1] + 1)};
  }

  [[noreturn]] void error(size_t offset, const std::string& what) const {
    Pos p = at(offset);
    fail(ErrorKind::InvalidArgument,
         "chat template line " + std::to_string(p.line) + ", column " + std::to_string(p.column) + ": " + what);
  }

  size_t next_tag(size_t pos) const {
    for (size_t i = src_.find('{', pos); i != std::string::npos; i = src_.find('{', i + 1))
      if (i + 1 < src_.size() && (src_[i + 1] == '{' || src_[i + 1] == '%' || src_[i + 1] == '#')) return i;
    return std::string::npos;
  }

  // {%- / {{- strip all whitespace before the tag; lstrip_blocks strips spaces and tabs
  // between a line start and a block or comment tag unless it is opened with {%+.
  std::string_view control_whitespace(std::string_view text, size_t text_pos, char kind, char sign) const {
    if (sign == '-') return rstrip_ws(text);
    if (sign == '+' || kind == '{') return text;
    const size_t nl = text.rfind('\n');
    const size_t line_start = nl == std::string_view::npos ? 0 : nl + 1;
    const bool line_starting = line_start > 0 || text_pos == 0 || src_[text_pos - 1] == '\n';
    if (line_starting && ws_run(text, line_start) == text.size() - line_start) return text.substr(0, line_start);
    return text;
  }

  void emit_data(std::string_view text, size_t pos) {
    if (!text.empty()) tokens_.push_back(Token{T::Data, std::string(text), {}, at(pos)});
  }

  // After a block or comment tag, trim_blocks drops one newline; "-%}" drops all
  // whitespace; "+%}" keeps everything.
  size_t after_block_end(size_t end, char sign) const {
    if (sign == '-') return end + ws_run(src_, end);
    if (sign != '+' && end < src_.size() && src_[end] == '\n') return end + 1;
    return end;
  }

  size_t skip_comment(size_t inner, size_t tag) const {
    const size_t close = src_.find("#}", inner);
    if (close == std::string::npos) error(tag, "missing end of comment tag");
    const char sign = close > inner && (src_[close - 1] == '-' || src_[close - 1] == '+') ? src_[close - 1] : 0;
    return after_block_end(close + 2, sign);
  }

  size_t lex_tag(size_t pos, size_t tag, bool block) {
    tokens_.push_back(Token{block ? T::BlockBegin : T::VarBegin, "", {}, at(tag)});
    std::vector<char> brackets;
    while (true) {
      pos += ws_run(src_, pos);
      if (pos >= src_.size()) error(tag, std::string("unexpected end of template, expected '") + (block ? "%}" : "}}") + "'");
      if (brackets.empty()) {
        if (size_t end = tag_end(pos, block)) return end;
      }
      pos = lex_token(pos, brackets);
    }
  }

  // The offset after the tag's end marker at `pos` (with its whitespace handling), or 0.
  size_t tag_end(size_t pos, bool block) {
    const char* close = block ? "%}" : "}}";
    char sign = 0;
    size_t p = pos;
    if ((src_[p] == '-' || (block && src_[p] == '+')) && src_.compare(p + 1, 2, close) == 0) sign = src_[p++];
    if (src_.compare(p, 2, close) != 0) return 0;
    tokens_.push_back(Token{block ? T::BlockEnd : T::VarEnd, "", {}, at(pos)});
    if (!block) return sign == '-' ? p + 2 + ws_run(src_, p + 2) : p + 2;
    return after_block_end(p + 2, sign);
  }

  size_t lex_token(size_t pos, std::vector<char>& brackets) {
    const char c = src_[pos];
    if (is_name_start(c)) {
      size_t end = pos;
      while (end < src_.size() && is_name_char(src_[end])) ++end;
      tokens_.push_back(Token{T::Name, src_.substr(pos, end - pos), {}, at(pos)});
      return end;
    }
    if (is_digit(c)) return lex_number(pos);
    if (c == '\'' || c == '"') return lex_string(pos);
    static const char* const kTwo[] = {"//", "**", "==", "!=", ">=", "<="};
    for (const char* op : kTwo)
      if (src_.compare(pos, 2, op) == 0) {
        tokens_.push_back(Token{T::Op, op, {}, at(pos)});
        return pos + 2;
      }
    if (!std::strchr("+-/*%~[](){}><=.:|,;", c)) error(pos, std::string("unexpected character '") + c + "'");
    if (c == '(' || c == '[' || c == '{') brackets.push_back(c == '(' ? ')' : c == '[' ? ']' : '}');
    if (c == ')' || c == ']' || c == '}') {
      if (brackets.empty()) error(pos, std::string("unexpected '") + c + "'");
      if (brackets.back() != c) error(pos, std::string("unexpected '") + c + "', expected '" + brackets.back() + "'");
      brackets.pop_back();
    }
    tokens_.push_back(Token{T::Op, std::string(1, c), {}, at(pos)});
    return pos + 1;
  }

  size_t digits(size_t pos) const {
    while (pos < src_.size() && (is_digit(src_[pos]) || (src_[pos] == '_' && pos + 1 < src_.size() && is_digit(src_[pos + 1]))))
      ++pos;
    return pos;
  }

  size_t lex_number(size_t pos) {
    size_t end = digits(pos);
    bool is_float = false;
    const bool after_dot = pos > 0 && src_[pos - 1] == '.';  // "a.0.1" is two lookups, not a float
    if (!after_dot && end + 1 < src_.size() && src_[end] == '.' && is_digit(src_[end + 1])) end = digits(end + 1), is_float = true;
    if (!after_dot && end < src_.size() && src_[end] == 'e') {
      size_t e = end + 1;
      if (e < src_.size() && (src_[e] == '+' || src_[e] == '-')) ++e;
      if (e < src_.size() && is_digit(src_[e])) end = digits(e), is_float = true;
    }
    std::string text;
    for (size_t k = pos; k < end; ++k)
      if (src_[k] != '_') text += src_[k];
    Token t{is_float ? T::Float : T::Int, text, {}, at(pos)};
    try {
      t.number = is_float ? Val::number(std::stod(text)) : Val::integer(std::stoll(text));
    } catch (const std::exception&) {
      error(pos, "number '" + text + "' is out of range");
    }
    tokens_.push_back(std::move(t));
    return end;
  }

  size_t lex_string(size_t pos) {
    const char quote = src_[pos];
    size_t k = pos + 1;
    while (k < src_.size() && src_[k] != quote) k += src_[k] == '\\' ? 2 : 1;
    if (k >= src_.size()) error(pos, "unterminated string");
    tokens_.push_back(Token{T::String, unescape(std::string_view(src_).substr(pos + 1, k - pos - 1), pos), {}, at(pos)});
    return k + 1;
  }

  // Python's "unicode-escape" decoding, which jinja2 applies to string literals.
  std::string unescape(std::string_view s, size_t pos) const {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
      if (s[i] != '\\' || i + 1 >= s.size()) {
        out += s[i];
        continue;
      }
      const char e = s[++i];
      switch (e) {
        case 'n': out += '\n'; break;
        case 't': out += '\t'; break;
        case 'r': out += '\r'; break;
        case '\\': out += '\\'; break;
        case '\'': out += '\''; break;
        case '"': out += '"'; break;
        case 'a': out += '\a'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'v': out += '\v'; break;
        case '\n': break;
        case 'x': case 'u': case 'U': {
          const size_t n = e == 'x' ? 2 : e == 'u' ? 4 : 8;
          char32_t c = 0;
          for (size_t k = 1; k <= n; ++k) {
            const char h = i + k < s.size() ? s[i + k] : 0;
            const int d = h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10 : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
            if (d < 0) error(pos, "truncated \\" + std::string(1, e) + " escape");
            c = c * 16 + char32_t(d);
          }
          if (c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) error(pos, "string escape is not a valid character");
          unicode::append(out, c);
          i += n;
          break;
        }
        default:
          if (e >= '0' && e <= '7') {
            char32_t c = 0;
            size_t k = 0;
            for (; k < 3 && i + k < s.size() && s[i + k] >= '0' && s[i + k] <= '7'; ++k) c = c * 8 + char32_t(s[i + k] - '0');
            unicode::append(out, c);
            i += k - 1;
          } else if (e == 'N') {
            error(pos, "chat template uses unsupported \\N{...} string escape");
          } else {
            out += '\\';
            out += e;
          }
      }
    }
    return out;
  }
};

// Tags jinja2 knows that the subset refuses (named in the error rather than "unknown tag").
const char* const kUnsupportedTags[] = {"block", "extends", "include", "import", "from",       "call",
                                        "filter", "autoescape", "raw", "do",     "endraw",     "print"};

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : toks_(std::move(tokens)) {}

  std::shared_ptr<const Program> run() {
    auto prog = std::make_shared<Program>();
    std::string end;
    prog->body = parse_body({}, &end);
    return prog;
  }

 private:
  std::vector<Token> toks_;
  size_t i_ = 0;
  int depth_ = 0;
  int loop_depth_ = 0;

  struct DepthGuard {
    Parser& p;
    explicit DepthGuard(Parser& parser) : p(parser) {
      if (++p.depth_ > kMaxDepth) p.error(p.cur(), "template nested too deeply");
    }
    ~DepthGuard() { --p.depth_; }
  };

  const Token& cur() const { return toks_[i_]; }
  const Token& peek(size_t k = 1) const { return toks_[std::min(i_ + k, toks_.size() - 1)]; }
  const Token& next() { return toks_[i_ < toks_.size() - 1 ? i_++ : i_]; }

  [[noreturn]] void error(const Token& t, const std::string& what) const {
    fail(ErrorKind::InvalidArgument, "chat template line " + std::to_string(t.pos.line) + ", column " +
                                         std::to_string(t.pos.column) + ": " + what);
  }

  static std::string describe(const Token& t) {
    switch (t.type) {
      case T::Eof: return "end of template";
      case T::BlockEnd: return "end of statement block";
      case T::VarEnd: return "end of print statement";
      case T::BlockBegin: return "begin of statement block";
      case T::VarBegin: return "begin of print statement";
      case T::Data: return "template data";
      case T::String: return "string";
      default: return "'" + t.text + "'";
    }
  }

  bool is_op(const char* op) const { return cur().type == T::Op && cur().text == op; }
  bool is_name(const char* name) const { return cur().type == T::Name && cur().text == name; }
  bool skip_op(const char* op) {
    if (!is_op(op)) return false;
    next();
    return true;
  }
  bool skip_name(const char* name) {
    if (!is_name(name)) return false;
    next();
    return true;
  }
  void expect_op(const char* op) {
    if (!skip_op(op)) error(cur(), std::string("expected '") + op + "', got " + describe(cur()));
  }
  std::string expect_name() {
    if (cur().type != T::Name) error(cur(), "expected a name, got " + describe(cur()));
    return next().text;
  }
  void expect(T type, const char* what) {
    if (cur().type != type) error(cur(), std::string("expected ") + what + ", got " + describe(cur()));
    next();
  }

  ExprP make(Expr::K kind, const Token& at) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->pos = at.pos;
    return e;
  }

  // ---- statements ----

  // Parses until a block tag whose name is in `ends` (left unconsumed after storing it
  // in *end) or the end of the template when `ends` is empty.
  Body parse_body(const std::vector<std::string>& ends, std::string* end) {
    DepthGuard guard(*this);
    Body body;
    while (true) {
      const Token& t = cur();
      if (t.type == T::Eof) {
        if (!ends.empty()) error(t, "unexpected end of template, expected '" + ends.front() + "'");
        return body;
      }
      if (t.type == T::Data) {
        auto s = std::make_unique<Stmt>();
        s->kind = Stmt::K::Text;
        s->pos = t.pos;
        s->text = t.text;
        body.push_back(std::move(s));
        next();
      } else if (t.type == T::VarBegin) {
        next();
        auto s = std::make_unique<Stmt>();
        s->kind = Stmt::K::Output;
        s->pos = t.pos;
        s->expr = parse_tuple(true);
        expect(T::VarEnd, "'}}'");
        body.push_back(std::move(s));
      } else {
        next();  // BlockBegin
        const Token& name = cur();
        if (name.type != T::Name) error(name, "expected a tag name, got " + describe(name));
        if (std::find(ends.begin(), ends.end(), name.text) != ends.end()) {
          *end = name.text;
          next();
          return body;
        }
        body.push_back(parse_statement());
      }
    }
  }

  StmtP make_stmt(Stmt::K kind, const Token& at) {
    auto s = std::make_unique<Stmt>();
    s->kind = kind;
    s->pos = at.pos;
    return s;
  }

  StmtP parse_statement() {
    const Token& tag = next();
    const std::string& n = tag.text;
    if (n == "if") return parse_if(tag);
    if (n == "for") return parse_for(tag);
    if (n == "set") return parse_set(tag);
    if (n == "macro") return parse_macro(tag);
    if (n == "with") return parse_with(tag);
    if (n == "generation") {
      auto s = make_stmt(Stmt::K::Scope, tag);
      expect(T::BlockEnd, "'%}'");
      s->body = parse_block_body({"endgeneration"});
      expect(T::BlockEnd, "'%}'");
      return s;
    }
    if (n == "break" || n == "continue") {
      if (loop_depth_ == 0) error(tag, "'" + n + "' outside of a loop");
      expect(T::BlockEnd, "'%}'");
      return make_stmt(n == "break" ? Stmt::K::Break : Stmt::K::Continue, tag);
    }
    for (const char* u : kUnsupportedTags)
      if (n == u) error(tag, "chat template uses unsupported tag '" + n + "'");
    error(tag, "unknown tag '" + n + "'");
  }

  // The body of a block up to its end tag, which must be the only thing in its tag.
  Body parse_block_body(const std::vector<std::string>& ends, std::string* which = nullptr) {
    std::string end;
    Body body = parse_body(ends, &end);
    if (which) *which = end;
    return body;
  }

  StmtP parse_if(const Token& tag) {
    auto s = make_stmt(Stmt::K::If, tag);
    while (true) {
      ExprP cond = parse_tuple(false);
      expect(T::BlockEnd, "'%}'");
      std::string end;
      Body body = parse_block_body({"elif", "else", "endif"}, &end);
      s->branches.emplace_back(std::move(cond), std::move(body));
      if (end == "elif") continue;
      if (end == "else") {
        expect(T::BlockEnd, "'%}'");
        s->else_body = parse_block_body({"endif"});
      }
      expect(T::BlockEnd, "'%}'");
      return s;
    }
  }

  Target parse_target(bool with_namespace) {
    Target t;
    const bool paren = skip_op("(");
    if (with_namespace && !paren && cur().type == T::Name && peek().type == T::Op && peek().text == ".") {
      t.names.push_back(next().text);
      next();
      t.ns_attr = expect_name();
      return t;
    }
    do {
      if (paren && is_op(")")) break;
      if (cur().type != T::Name) error(cur(), "can't assign to " + describe(cur()));
      const std::string& n = cur().text;
      if (n == "true" || n == "false" || n == "none" || n == "True" || n == "False" || n == "None")
        error(cur(), "can't assign to constant '" + n + "'");
      t.names.push_back(next().text);
      if (is_op(",")) t.tuple = true;
    } while (skip_op(","));
    if (paren) expect_op(")");
    if (paren && t.names.size() != 1) t.tuple = true;
    return t;
  }

  StmtP parse_for(const Token& tag) {
    auto s = make_stmt(Stmt::K::For, tag);
    s->target = parse_target(false);
    if (!skip_name("in")) error(cur(), "expected 'in', got " + describe(cur()));
    s->expr = parse_tuple(false);
    if (skip_name("if")) s->filter = parse_expression(true);
    if (is_name("recursive")) error(cur(), "chat template uses unsupported recursive for loop");
    expect(T::BlockEnd, "'%}'");
    ++loop_depth_;
    std::string end;
    s->body = parse_block_body({"endfor", "else"}, &end);
    --loop_depth_;
    if (end == "else") {
      expect(T::BlockEnd, "'%}'");
      s->else_body = parse_block_body({"endfor"});
    }
    expect(T::BlockEnd, "'%}'");
    return s;
  }

  StmtP parse_set(const Token& tag) {
    Target target = parse_target(true);
    if (skip_op("=")) {
      auto s = make_stmt(Stmt::K::Set, tag);
      s->target = std::move(target);
      s->expr = parse_tuple(true);
      expect(T::BlockEnd, "'%}'");
      return s;
    }
    if (is_op("|")) error(cur(), "chat template uses unsupported filter on a set block");
    auto s = make_stmt(Stmt::K::SetBlock, tag);
    s->target = std::move(target);
    expect(T::BlockEnd, "'%}'");
    s->body = parse_block_body({"endset"});
    expect(T::BlockEnd, "'%}'");
    return s;
  }

  StmtP parse_macro(const Token& tag) {
    auto s = make_stmt(Stmt::K::Macro, tag);
    s->text = expect_name();
    expect_op("(");
    while (!skip_op(")")) {
      if (!s->params.empty()) expect_op(",");
      if (skip_op(")")) break;
      Param p;
      p.name = expect_name();
      if (skip_op("=")) p.default_value = parse_expression(true);
      else if (!s->params.empty() && s->params.back().default_value)
        error(cur(), "non-default argument follows default argument");
      s->params.push_back(std::move(p));
    }
    expect(T::BlockEnd, "'%}'");
    const int saved = loop_depth_;
    loop_depth_ = 0;
    s->body = parse_block_body({"endmacro"});
    loop_depth_ = saved;
    expect(T::BlockEnd, "'%}'");
    return s;
  }

  StmtP parse_with(const Token& tag) {
    auto s = make_stmt(Stmt::K::Scope, tag);
    while (cur().type != T::BlockEnd) {
      if (!s->assignments.empty()) expect_op(",");
      Target t = parse_target(false);
      expect_op("=");
      s->assignments.emplace_back(std::move(t), parse_expression(true));
    }
    next();
    s->body = parse_block_body({"endwith"});
    expect(T::BlockEnd, "'%}'");
    return s;
  }

  // ---- expressions ----

  ExprP parse_tuple(bool with_condexpr) {
    const Token& start = cur();
    std::vector<ExprP> items;
    bool is_tuple = false;
    while (true) {
      if (!items.empty()) expect_op(",");
      if (cur().type == T::VarEnd || cur().type == T::BlockEnd || is_op(")") || is_name("in") || is_name("recursive")) break;
      items.push_back(parse_expression(with_condexpr));
      if (is_op(",")) is_tuple = true;
      else break;
    }
    if (!is_tuple) {
      if (items.empty()) error(cur(), "expected an expression, got " + describe(cur()));
      return std::move(items.front());
    }
    auto e = make(Expr::K::Tuple, start);
    e->args = std::move(items);
    return e;
  }

  ExprP parse_expression(bool with_condexpr) {
    DepthGuard guard(*this);
    return with_condexpr ? parse_condexpr() : parse_or();
  }

  ExprP parse_condexpr() {
    ExprP value = parse_or();
    while (is_name("if")) {
      const Token& at = next();
      auto e = make(Expr::K::CondExpr, at);
      ExprP cond = parse_or();
      ExprP otherwise = skip_name("else") ? parse_condexpr() : nullptr;
      e->args.push_back(std::move(value));
      e->args.push_back(std::move(cond));
      e->args.push_back(std::move(otherwise));
      value = std::move(e);
    }
    return value;
  }

  ExprP binary(const Token& at, const std::string& op, ExprP left, ExprP right) {
    auto e = make(Expr::K::Binary, at);
    e->name = op;
    e->args.push_back(std::move(left));
    e->args.push_back(std::move(right));
    return e;
  }

  // One left-associative precedence level: operands parsed by `operand`, joined by the
  // operators `at_operator` accepts (the operator token's text names the operation).
  template <class AtOperator>
  ExprP left_assoc(ExprP (Parser::*operand)(), AtOperator at_operator) {
    ExprP left = (this->*operand)();
    while (at_operator()) {
      const Token& at = next();
      left = binary(at, at.text, std::move(left), (this->*operand)());
    }
    return left;
  }

  ExprP parse_or() { return left_assoc(&Parser::parse_and, [this] { return is_name("or"); }); }
  ExprP parse_and() { return left_assoc(&Parser::parse_not, [this] { return is_name("and"); }); }

  ExprP parse_not() {
    if (is_name("not")) {
      DepthGuard guard(*this);
      const Token& at = next();
      auto e = make(Expr::K::Unary, at);
      e->name = "not";
      e->args.push_back(parse_not());
      return e;
    }
    return parse_compare();
  }

  ExprP parse_compare() {
    const Token& start = cur();
    ExprP first = parse_math1();
    auto e = make(Expr::K::Compare, start);
    while (true) {
      static const char* const kOps[] = {"==", "!=", "<", "<=", ">", ">="};
      std::string op;
      for (const char* o : kOps)
        if (is_op(o)) op = o;
      if (!op.empty()) next();
      else if (skip_name("in")) op = "in";
      else if (is_name("not") && peek().type == T::Name && peek().text == "in") next(), next(), op = "notin";
      else break;
      e->ops.push_back(op);
      e->args.push_back(parse_math1());
    }
    if (e->ops.empty()) return first;
    e->args.insert(e->args.begin(), std::move(first));
    return e;
  }

  ExprP parse_math1() { return left_assoc(&Parser::parse_concat, [this] { return is_op("+") || is_op("-"); }); }

  ExprP parse_concat() {
    const Token& start = cur();
    ExprP first = parse_math2();
    if (!is_op("~")) return first;
    auto e = make(Expr::K::Concat, start);
    e->args.push_back(std::move(first));
    while (skip_op("~")) e->args.push_back(parse_math2());
    return e;
  }

  ExprP parse_math2() {
    return left_assoc(&Parser::parse_pow, [this] { return is_op("*") || is_op("/") || is_op("//") || is_op("%"); });
  }

  ExprP parse_pow() { return left_assoc(&Parser::parse_filtered_unary, [this] { return is_op("**"); }); }
  ExprP parse_filtered_unary() { return parse_unary(true); }

  ExprP parse_unary(bool with_filter) {
    DepthGuard guard(*this);
    ExprP node;
    if (is_op("-") || is_op("+")) {
      const Token& at = next();
      node = make(Expr::K::Unary, at);
      node->name = at.text;
      node->args.push_back(parse_unary(false));
    } else {
      node = parse_primary();
    }
    node = parse_postfix(std::move(node));
    return with_filter ? parse_filter_expr(std::move(node)) : std::move(node);
  }

  ExprP parse_primary() {
    const Token& t = cur();
    switch (t.type) {
      case T::Name: {
        next();
        auto e = make(Expr::K::Const, t);
        if (t.text == "true" || t.text == "True") e->value = Val::boolean(true);
        else if (t.text == "false" || t.text == "False") e->value = Val::boolean(false);
        else if (t.text == "none" || t.text == "None") e->value = Val::none();
        else e->kind = Expr::K::Name, e->name = t.text;
        return e;
      }
      case T::String: {
        auto e = make(Expr::K::Const, t);
        std::string s;
        while (cur().type == T::String) s += next().text;  // implicit concatenation
        e->value = Val::str(std::move(s));
        return e;
      }
      case T::Int:
      case T::Float: {
        next();
        auto e = make(Expr::K::Const, t);
        e->value = t.number;
        return e;
      }
      default: break;
    }
    if (skip_op("(")) {
      ExprP inner = parse_paren_tuple(t);
      expect_op(")");
      return inner;
    }
    if (is_op("[")) return parse_display(Expr::K::List, "]");
    if (is_op("{")) return parse_display(Expr::K::Dict, "}");
    error(t, "unexpected " + describe(t));
  }

  ExprP parse_paren_tuple(const Token& at) {
    if (is_op(")")) return make(Expr::K::Tuple, at);  // ()
    ExprP first = parse_expression(true);
    if (!is_op(",")) return first;
    auto e = make(Expr::K::Tuple, at);
    e->args.push_back(std::move(first));
    while (skip_op(",")) {
      if (is_op(")")) break;
      e->args.push_back(parse_expression(true));
    }
    return e;
  }

  // [a, b] and {k: v, ...}: comma-separated items up to `close`, a trailing comma allowed.
  ExprP parse_display(Expr::K kind, const char* close) {
    auto e = make(kind, next());
    while (!is_op(close)) {
      if (!e->args.empty()) expect_op(",");
      if (is_op(close)) break;
      e->args.push_back(parse_expression(true));
      if (kind == Expr::K::Dict) {
        expect_op(":");
        e->args.push_back(parse_expression(true));
      }
    }
    next();
    return e;
  }

  ExprP parse_postfix(ExprP node) {
    while (true) {
      if (is_op(".") || is_op("[")) node = parse_subscript(std::move(node));
      else if (is_op("(")) node = parse_call(std::move(node), Expr::K::Call, "");
      else return node;
    }
  }

  ExprP parse_filter_expr(ExprP node) {
    while (true) {
      if (is_op("|")) node = parse_filter(std::move(node));
      else if (is_name("is")) node = parse_test(std::move(node));
      else if (is_op("(")) node = parse_call(std::move(node), Expr::K::Call, "");
      else return node;
    }
  }

  ExprP parse_subscript(ExprP node) {
    const Token& at = next();
    if (at.text == ".") {
      const Token& attr = next();
      if (attr.type == T::Name) {
        auto e = make(Expr::K::Getattr, at);
        e->name = attr.text;
        e->args.push_back(std::move(node));
        return e;
      }
      if (attr.type != T::Int) error(attr, "expected name or number");
      auto e = make(Expr::K::Getitem, at);
      e->args.push_back(std::move(node));
      auto idx = make(Expr::K::Const, attr);
      idx->value = attr.number;
      e->args.push_back(std::move(idx));
      return e;
    }
    auto e = make(Expr::K::Getitem, at);
    e->args.push_back(std::move(node));
    std::vector<ExprP> subs;
    while (!is_op("]")) {
      if (!subs.empty()) expect_op(",");
      subs.push_back(parse_subscribed());
    }
    next();
    if (subs.size() != 1) error(at, "chat template uses unsupported multi-dimensional subscript");
    e->args.push_back(std::move(subs.front()));
    return e;
  }

  ExprP parse_subscribed() {
    const Token& start = cur();
    ExprP first;
    if (!is_op(":")) {
      first = parse_expression(true);
      if (!is_op(":")) return first;
    }
    next();  // ':'
    auto e = make(Expr::K::Slice, start);
    e->args.push_back(std::move(first));
    auto optional_expr = [&]() -> ExprP {
      if (is_op("]") || is_op(",") || is_op(":")) return nullptr;
      return parse_expression(true);
    };
    e->args.push_back(optional_expr());
    e->args.push_back(skip_op(":") ? optional_expr() : nullptr);
    return e;
  }

  void parse_call_args(Expr& e) {
    expect_op("(");
    bool first = true;
    while (!is_op(")")) {
      if (!first) {
        expect_op(",");
        if (is_op(")")) break;
      }
      first = false;
      if (is_op("*") || is_op("**")) error(cur(), "chat template uses unsupported *args / **kwargs in a call");
      if (cur().type == T::Name && peek().type == T::Op && peek().text == "=") {
        std::string key = next().text;
        next();
        e.kwargs.emplace_back(std::move(key), parse_expression(true));
      } else {
        if (!e.kwargs.empty()) error(cur(), "positional argument follows keyword argument");
        e.args.push_back(parse_expression(true));
      }
    }
    next();
  }

  ExprP parse_call(ExprP callee, Expr::K kind, const std::string& name) {
    auto e = make(kind, cur());
    e->name = name;
    e->args.push_back(std::move(callee));
    parse_call_args(*e);
    return e;
  }

  std::string dotted_name() {
    std::string name = expect_name();
    while (skip_op(".")) name += "." + expect_name();
    return name;
  }

  ExprP parse_filter(ExprP node) {
    while (skip_op("|")) {
      const Token& at = cur();
      std::string name = dotted_name();
      if (is_op("(")) {
        node = parse_call(std::move(node), Expr::K::Filter, name);
        node->pos = at.pos;
      } else {
        auto e = make(Expr::K::Filter, at);
        e->name = name;
        e->args.push_back(std::move(node));
        node = std::move(e);
      }
    }
    return node;
  }

  ExprP parse_test(ExprP node) {
    const Token& at = next();  // 'is'
    const bool negated = skip_name("not");
    std::string name = dotted_name();
    ExprP test;
    if (is_op("(")) {
      test = parse_call(std::move(node), Expr::K::Test, name);
    } else {
      test = make(Expr::K::Test, at);
      test->name = name;
      test->args.push_back(std::move(node));
      const bool arg_follows = cur().type == T::Name || cur().type == T::String || cur().type == T::Int ||
                               cur().type == T::Float || is_op("(") || is_op("[") || is_op("{");
      if (arg_follows && !is_name("else") && !is_name("or") && !is_name("and")) {
        if (is_name("is")) error(cur(), "You cannot chain multiple tests with is");
        test->args.push_back(parse_postfix(parse_primary()));
      }
    }
    test->pos = at.pos;
    if (!negated) return test;
    auto e = make(Expr::K::Unary, at);
    e->name = "not";
    e->args.push_back(std::move(test));
    return e;
  }
};

}  // namespace

std::shared_ptr<const Program> parse_template(std::string_view source) {
  if (auto bad = unicode::first_invalid_utf8(source))
    fail(ErrorKind::InvalidArgument, "chat template is not valid UTF-8 (byte " + std::to_string(*bad) + ")");
  return Parser(Lexer(source).run()).run();
}

}  // namespace hfpipe::text::jinja
