// The evaluator of the Jinja subset: statements, expressions, scoping as jinja2 scopes
// (a for-loop iteration and a macro call open a scope; if-blocks do not; namespace()
// objects carry state out of loops), the globals transformers provides, and Python's
// semantics for the operators chat templates use. Filters, tests and methods live in
// jinja_builtins.cpp.
#include <chrono>
#include <cmath>
#include <ctime>

#include "text/jinja.h"
#include "text/jinja_builtins.h"
#include "text/jinja_internal.h"
#include "text/unicode.h"

namespace hfpipe::text::jinja {

void undefined_error(const Val& v) { template_error(v.s.empty() ? "value is undefined" : v.s); }

namespace {

// Bounds on what a render may do, so that a hostile template fails instead of hanging or
// exhausting memory: total loop iterations, output size, macro call depth.
constexpr size_t kMaxIterations = 10'000'000;
constexpr size_t kMaxOutput = size_t(64) << 20;
constexpr int kMaxCallDepth = 100;

struct Scope {
  std::vector<std::pair<std::string, Val>> vars;
  std::shared_ptr<Scope> parent;

  const Val* lookup(std::string_view name) const {
    for (const Scope* s = this; s; s = s->parent.get())
      for (const auto& [k, v] : s->vars)
        if (k == name) return &v;
    return nullptr;
  }
  void set(const std::string& name, Val v) {
    for (auto& [k, old] : vars)
      if (k == name) {
        old = std::move(v);
        return;
      }
    vars.emplace_back(name, std::move(v));
  }
};
using ScopeP = std::shared_ptr<Scope>;

enum class Flow { Normal, Break, Continue };

class Renderer final : public Evaluator {
 public:
  explicit Renderer(const Value& variables) : context_(from_json(variables)) {
    if (!context_.is_dict()) template_error("chat template variables must be a JSON object");
  }

  std::string run(const Program& program) {
    auto scope = std::make_shared<Scope>();
    std::string out;
    exec(program.body, scope, out);
    return out;
  }

  Val call(const Val& callee, CallArgs& args) override {
    if (callee.is_undefined()) undefined_error(callee);
    if (callee.kind != Val::Kind::Func) template_error("'" + type_name(callee) + "' object is not callable");
    return (*callee.fn)(args);
  }

 private:
  Val context_;
  size_t iterations_ = 0;
  int call_depth_ = 0;
  // The scopes macros were defined in, alive until the render ends. A macro refers to its
  // scope weakly: the scope holds the macro (and a namespace may too), so a strong reference
  // back made a cycle that leaked every scope a template defined a macro in (LeakSanitizer).
  // Macros cannot outlive the Renderer anyway (they call back into it).
  std::vector<ScopeP> macro_scopes_;

  // ---- statements ----

  void append(std::string& out, std::string_view s) {
    if (out.size() + s.size() > kMaxOutput) template_error("chat template output exceeds 64 MiB");
    out.append(s);
  }

  Flow exec(const Body& body, const ScopeP& scope, std::string& out) {
    for (const auto& s : body) {
      Flow f = exec(*s, scope, out);
      if (f != Flow::Normal) return f;
    }
    return Flow::Normal;
  }

  Flow exec(const Stmt& s, const ScopeP& scope, std::string& out) {
    switch (s.kind) {
      case Stmt::K::Text: append(out, s.text); return Flow::Normal;
      case Stmt::K::Output: append(out, py_str(eval(*s.expr, scope))); return Flow::Normal;
      case Stmt::K::If:
        for (const auto& [cond, body] : s.branches)
          if (truthy(eval(*cond, scope))) return exec(body, scope, out);
        return exec(s.else_body, scope, out);
      case Stmt::K::For: return exec_for(s, scope, out);
      case Stmt::K::Set: assign(s.target, eval(*s.expr, scope), scope, s.pos); return Flow::Normal;
      case Stmt::K::SetBlock: {
        std::string captured;
        exec(s.body, std::make_shared<Scope>(Scope{{}, scope}), captured);
        assign(s.target, Val::str(std::move(captured)), scope, s.pos);
        return Flow::Normal;
      }
      case Stmt::K::Macro: scope->set(s.text, make_macro(s, scope)); return Flow::Normal;
      case Stmt::K::Break: return Flow::Break;
      case Stmt::K::Continue: return Flow::Continue;
      case Stmt::K::Scope: {
        auto inner = std::make_shared<Scope>(Scope{{}, scope});
        for (const auto& [target, value] : s.assignments) assign(target, eval(*value, inner), inner, s.pos);
        return exec(s.body, inner, out);
      }
    }
    return Flow::Normal;
  }

  [[noreturn]] void located(const Pos& pos, const std::string& what) {
    fail(ErrorKind::InvalidArgument,
         "chat template line " + std::to_string(pos.line) + ", column " + std::to_string(pos.column) + ": " + what);
  }

  void assign(const Target& t, Val v, const ScopeP& scope, const Pos& pos) {
    try {
      if (!t.ns_attr.empty()) {
        const Val* ns = scope->lookup(t.names[0]);
        if (!ns || ns->kind != Val::Kind::Namespace)
          template_error("cannot assign attribute on non-namespace object '" + t.names[0] + "'");
        if (holds_namespace(v)) template_error("chat template stores a namespace inside a namespace (unsupported)");
        ns->dict->set(t.ns_attr, std::move(v));
        return;
      }
      if (!t.tuple) {
        scope->set(t.names[0], std::move(v));
        return;
      }
      ValList items = iterate(v);
      if (items.size() != t.names.size())
        template_error("cannot unpack " + std::to_string(items.size()) + " values into " +
                       std::to_string(t.names.size()) + " names");
      for (size_t k = 0; k < items.size(); ++k) scope->set(t.names[k], std::move(items[k]));
    } catch (const UnlocatedError& e) {
      located(pos, e.what());
    }
  }

  // Namespaces are the only mutable values; keeping them out of each other keeps values
  // acyclic.
  static bool holds_namespace(const Val& v) {
    if (v.kind == Val::Kind::Namespace) return true;
    if (v.is_list())
      for (const auto& e : v.items())
        if (holds_namespace(e)) return true;
    if (v.is_dict())
      for (const auto& [k, e] : v.dict->items)
        if (holds_namespace(e)) return true;
    return false;
  }

  static Val loop_object(const ValList& items, size_t k) {
    const int64_t n = int64_t(items.size()), i = int64_t(k);
    ValDict d;
    d.items = {{"index", Val::integer(i + 1)},      {"index0", Val::integer(i)},
               {"revindex", Val::integer(n - i)},   {"revindex0", Val::integer(n - i - 1)},
               {"first", Val::boolean(i == 0)},     {"last", Val::boolean(i == n - 1)},
               {"length", Val::integer(n)},         {"depth", Val::integer(1)},
               {"depth0", Val::integer(0)}};
    if (k > 0) d.items.emplace_back("previtem", items[k - 1]);
    if (k + 1 < items.size()) d.items.emplace_back("nextitem", items[k + 1]);
    return Val::make_dict(std::move(d));
  }

  void count_iteration() {
    if (++iterations_ > kMaxIterations) template_error("chat template runs more than 10 million loop iterations");
  }

  Flow exec_for(const Stmt& s, const ScopeP& scope, std::string& out) {
    ValList items;
    try {
      items = iterate(eval(*s.expr, scope));
    } catch (const UnlocatedError& e) {
      located(s.pos, e.what());
    }
    if (s.filter) {
      ValList kept;
      for (auto& item : items) {
        auto inner = std::make_shared<Scope>(Scope{{}, scope});
        assign(s.target, item, inner, s.pos);
        if (truthy(eval(*s.filter, inner))) kept.push_back(std::move(item));
      }
      items = std::move(kept);
    }
    for (size_t k = 0; k < items.size(); ++k) {
      try {
        count_iteration();
      } catch (const UnlocatedError& e) {
        located(s.pos, e.what());
      }
      auto inner = std::make_shared<Scope>(Scope{{}, scope});
      inner->set("loop", loop_object(items, k));
      assign(s.target, items[k], inner, s.pos);
      if (exec(s.body, inner, out) == Flow::Break) break;
    }
    if (items.empty()) return exec(s.else_body, scope, out);
    return Flow::Normal;
  }

  Val make_macro(const Stmt& s, const ScopeP& defining) {
    const Stmt* macro = &s;
    macro_scopes_.push_back(defining);
    return Val::function(s.text, [this, macro, weak = std::weak_ptr<Scope>(defining)](CallArgs& args) {
      if (++call_depth_ > kMaxCallDepth) {
        --call_depth_;
        template_error("macro calls nested more than " + std::to_string(kMaxCallDepth) + " deep");
      }
      struct Unwind {
        int& d;
        ~Unwind() { --d; }
      } unwind{call_depth_};
      auto scope = std::make_shared<Scope>(Scope{{}, weak.lock()});  // kept alive by macro_scopes_
      for (size_t k = 0; k < macro->params.size(); ++k) {
        const Param& p = macro->params[k];
        if (auto v = args.take(k, p.name)) scope->set(p.name, std::move(*v));
        else if (p.default_value) scope->set(p.name, eval(*p.default_value, scope));
        else scope->set(p.name, Val::undefined("parameter '" + p.name + "' was not provided"));
      }
      args.done();
      std::string out;
      exec(macro->body, scope, out);
      return Val::str(std::move(out));
    });
  }

  // ---- expressions ----

  Val eval(const Expr& e, const ScopeP& scope) {
    try {
      return eval_inner(e, scope);
    } catch (const UnlocatedError& err) {
      located(e.pos, err.what());
    }
  }

  Val eval_inner(const Expr& e, const ScopeP& scope) {
    switch (e.kind) {
      case Expr::K::Const: return e.value;
      case Expr::K::Name: return lookup(e.name, scope);
      case Expr::K::List:
      case Expr::K::Tuple: {
        ValList items;
        for (const auto& a : e.args) items.push_back(eval(*a, scope));
        return Val::make_list(std::move(items), e.kind == Expr::K::Tuple);
      }
      case Expr::K::Dict: {
        ValDict d;
        for (size_t k = 0; k + 1 < e.args.size(); k += 2) {
          Val key = eval(*e.args[k], scope);
          if (!key.is_str()) template_error("chat template uses a non-string dict key (" + py_repr(key) + ")");
          d.set(key.s, eval(*e.args[k + 1], scope));
        }
        return Val::make_dict(std::move(d));
      }
      case Expr::K::Getattr: return get_attr(eval(*e.args[0], scope), e.name);
      case Expr::K::Getitem: return eval_getitem(e, scope);
      case Expr::K::Slice: template_error("slice outside a subscript");
      case Expr::K::Call: {
        Val callee = eval(*e.args[0], scope);
        CallArgs args = eval_args(e, scope, callee.kind == Val::Kind::Func ? callee.s : "call");
        return call(callee, args);
      }
      case Expr::K::Filter: {
        Val input = eval(*e.args[0], scope);
        CallArgs args = eval_args(e, scope, "filter '" + e.name + "'");
        return apply_filter(*this, e.name, std::move(input), args);
      }
      case Expr::K::Test: {
        Val input = eval(*e.args[0], scope);
        CallArgs args = eval_args(e, scope, "test '" + e.name + "'");
        return Val::boolean(apply_test(*this, e.name, input, args));
      }
      case Expr::K::Unary: return eval_unary(e.name, eval(*e.args[0], scope));
      case Expr::K::Binary: {
        if (e.name == "and" || e.name == "or") {
          Val left = eval(*e.args[0], scope);
          if (truthy(left) == (e.name == "or")) return left;
          return eval(*e.args[1], scope);
        }
        return binary_op(e.name, eval(*e.args[0], scope), eval(*e.args[1], scope));
      }
      case Expr::K::Concat: {
        std::string s;
        for (const auto& a : e.args) s += py_str(eval(*a, scope));
        return Val::str(std::move(s));
      }
      case Expr::K::Compare: return eval_compare(e, scope);
      case Expr::K::CondExpr:
        if (truthy(eval(*e.args[1], scope))) return eval(*e.args[0], scope);
        if (e.args[2]) return eval(*e.args[2], scope);
        return Val::undefined("the inline if-expression on line " + std::to_string(e.pos.line) +
                              " evaluated to false and no else section was defined.");
    }
    template_error("unknown expression");
  }

  CallArgs eval_args(const Expr& e, const ScopeP& scope, std::string callee) {
    CallArgs args;
    args.callee = std::move(callee);
    for (size_t k = 1; k < e.args.size(); ++k) args.positional.emplace_back(eval(*e.args[k], scope));
    for (const auto& [name, value] : e.kwargs) args.keyword.emplace_back(name, eval(*value, scope));
    return args;
  }

  Val lookup(const std::string& name, const ScopeP& scope) {
    if (const Val* v = scope->lookup(name)) return *v;
    if (const Val* v = context_.dict->find(name)) return *v;
    if (Val g = global(name); !g.is_undefined()) return g;
    return Val::undefined("'" + name + "' is undefined");
  }

  // The globals of transformers' environment plus jinja2's own that templates use.
  Val global(const std::string& name) {
    if (name == "raise_exception")
      return Val::function(name, [](CallArgs& a) -> Val {
        std::optional<Val> msg = a.take(0, "message");
        a.done();
        // transformers raises jinja2's TemplateError(message): the message, nothing else.
        fail(ErrorKind::InvalidArgument, msg ? py_str(*msg) : "");
      });
    if (name == "strftime_now")
      return Val::function(name, [](CallArgs& a) {
        std::optional<Val> fmt = a.take(0, "format");
        a.done();
        if (!fmt || !fmt->is_str()) template_error("strftime_now() takes a format string");
        return Val::str(strftime_now(fmt->s));
      });
    if (name == "namespace")
      return Val::function(name, [](CallArgs& a) {
        ValDict d;
        for (auto& p : a.positional) {
          if (!p) continue;
          if (!p->is_dict()) template_error("namespace() takes keyword arguments or a dict");
          for (const auto& [k, v] : p->dict->items) d.set(k, v);
          p.reset();
        }
        for (auto& [k, v] : a.keyword) d.set(k, std::move(v));
        a.keyword.clear();
        return Val::make_namespace(std::move(d));
      });
    if (name == "dict")
      return Val::function(name, [](CallArgs& a) {
        ValDict d;
        for (auto& [k, v] : a.keyword) d.set(k, std::move(v));
        a.keyword.clear();
        a.done();
        return Val::make_dict(std::move(d));
      });
    if (name == "range") return Val::function(name, [](CallArgs& a) { return py_range(a); });
    return Val::undefined("");
  }

  static std::string strftime_now(const std::string& fmt) {
    const std::time_t now = std::time(nullptr);
    std::tm local{};
    localtime_r(&now, &local);
    std::string buf(256 + fmt.size() * 8, '\0');
    const size_t n = std::strftime(buf.data(), buf.size(), fmt.c_str(), &local);
    if (n == 0 && !fmt.empty()) template_error("strftime_now(): format produces no output or is too long");
    buf.resize(n);
    return buf;
  }

  static Val py_range(CallArgs& a) {
    std::vector<int64_t> v;
    for (auto& p : a.positional) {
      if (!p || !p->is_int()) template_error("range() takes integer arguments");
      v.push_back(p->i);
    }
    a.positional.clear();
    a.done();
    if (v.empty() || v.size() > 3) template_error("range() takes 1 to 3 arguments");
    const int64_t start = v.size() == 1 ? 0 : v[0], stop = v.size() == 1 ? v[0] : v[1], step = v.size() == 3 ? v[2] : 1;
    if (step == 0) template_error("range() arg 3 must not be zero");
    ValList items;
    for (int64_t k = start; step > 0 ? k < stop : k > stop; k += step) {
      // jinja2's sandbox refuses ranges longer than 100000 (MAX_RANGE).
      if (items.size() >= 100000) template_error("range too big");
      items.push_back(Val::integer(k));
    }
    return Val::make_list(std::move(items));
  }

  Val eval_getitem(const Expr& e, const ScopeP& scope) {
    Val obj = eval(*e.args[0], scope);
    const Expr& sub = *e.args[1];
    if (sub.kind != Expr::K::Slice) return get_item(obj, eval(sub, scope));
    std::optional<int64_t> bounds[3];
    for (int k = 0; k < 3; ++k) {
      if (!sub.args[k]) continue;
      Val b = eval(*sub.args[k], scope);
      if (b.is_none()) continue;
      if (b.kind == Val::Kind::Bool) b = Val::integer(b.b);
      if (!b.is_int()) template_error("slice indices must be integers or None");
      bounds[k] = b.i;
    }
    return slice(obj, bounds[0], bounds[1], bounds[2]);
  }

  Val eval_unary(const std::string& op, const Val& v) {
    if (op == "not") return Val::boolean(!truthy(v));
    if (v.is_undefined()) undefined_error(v);
    if (v.kind == Val::Kind::Float) return Val::number(op == "-" ? -v.f : v.f);
    if (v.is_number()) {
      const int64_t i = v.kind == Val::Kind::Int ? v.i : v.b;
      if (op == "-" && i == INT64_MIN) template_error("integer overflow");
      return Val::integer(op == "-" ? -i : i);
    }
    template_error("bad operand type for unary " + op + ": '" + type_name(v) + "'");
  }

  Val eval_compare(const Expr& e, const ScopeP& scope) {
    Val left = eval(*e.args[0], scope);
    for (size_t k = 0; k < e.ops.size(); ++k) {
      Val right = eval(*e.args[k + 1], scope);
      const std::string& op = e.ops[k];
      bool r;
      if (op == "==") r = equals(left, right);
      else if (op == "!=") r = !equals(left, right);
      else if (op == "<") r = less(left, right);
      else if (op == ">") r = less(right, left);
      else if (op == "<=") r = less(left, right) || equals(left, right);
      else if (op == ">=") r = less(right, left) || equals(left, right);
      else if (op == "in") r = contains(right, left);
      else r = !contains(right, left);
      if (!r) return Val::boolean(false);
      left = std::move(right);
    }
    return Val::boolean(true);
  }
};

// ---- Python arithmetic ----

int64_t as_int(const Val& v) { return v.kind == Val::Kind::Int ? v.i : v.b; }
double as_float(const Val& v) { return v.kind == Val::Kind::Float ? v.f : double(as_int(v)); }

[[noreturn]] void unsupported_operands(const std::string& op, const Val& a, const Val& b) {
  if (a.is_undefined()) undefined_error(a);
  if (b.is_undefined()) undefined_error(b);
  if (op == "+" && a.is_str()) template_error("can only concatenate str (not \"" + type_name(b) + "\") to str");
  template_error("unsupported operand type(s) for " + op + ": '" + type_name(a) + "' and '" + type_name(b) + "'");
}

Val repeat(const Val& seq, int64_t times) {
  if (times < 0) times = 0;
  const size_t unit = seq.is_str() ? seq.s.size() : seq.items().size();
  if (unit && size_t(times) > (size_t(64) << 20) / unit) template_error("repetition result is too large");
  if (seq.is_str()) {
    std::string out;
    for (int64_t k = 0; k < times; ++k) out += seq.s;
    return Val::str(std::move(out));
  }
  ValList out;
  for (int64_t k = 0; k < times; ++k) out.insert(out.end(), seq.items().begin(), seq.items().end());
  return Val::make_list(std::move(out), seq.tuple);
}

Val int_op(const std::string& op, int64_t a, int64_t b) {
  int64_t r = 0;
  if (op == "+" && !__builtin_add_overflow(a, b, &r)) return Val::integer(r);
  if (op == "-" && !__builtin_sub_overflow(a, b, &r)) return Val::integer(r);
  if (op == "*" && !__builtin_mul_overflow(a, b, &r)) return Val::integer(r);
  if (op == "/") {
    if (b == 0) template_error("division by zero");
    return Val::number(double(a) / double(b));
  }
  if (op == "//" || op == "%") {
    if (b == 0) template_error(op == "//" ? "integer division or modulo by zero" : "integer modulo by zero");
    if (a == INT64_MIN && b == -1) template_error("integer overflow");
    int64_t q = a / b, m = a % b;
    if (m != 0 && ((m < 0) != (b < 0))) --q, m += b;  // Python floors toward negative infinity
    return Val::integer(op == "//" ? q : m);
  }
  if (op == "**") {
    if (b < 0) return Val::number(std::pow(double(a), double(b)));
    int64_t result = 1;
    for (int64_t k = 0; k < b; ++k)
      if (__builtin_mul_overflow(result, a, &result)) template_error("integer overflow");
    return Val::integer(result);
  }
  template_error("integer overflow");
}

Val float_op(const std::string& op, double a, double b) {
  if (op == "+") return Val::number(a + b);
  if (op == "-") return Val::number(a - b);
  if (op == "*") return Val::number(a * b);
  if (op == "**") return Val::number(std::pow(a, b));
  if (b == 0) template_error("float division by zero");
  if (op == "/") return Val::number(a / b);
  double m = std::fmod(a, b);
  if (m != 0 && ((m < 0) != (b < 0))) m += b;
  if (op == "%") return Val::number(m);
  return Val::number(std::floor(a / b));
}

}  // namespace

Val binary_op(const std::string& op, const Val& a, const Val& b) {
  if (a.is_number() && b.is_number()) {
    if (a.kind == Val::Kind::Float || b.kind == Val::Kind::Float) return float_op(op, as_float(a), as_float(b));
    return int_op(op, as_int(a), as_int(b));
  }
  if (op == "+" && a.is_str() && b.is_str()) {
    if (a.s.size() + b.s.size() > kMaxOutput) template_error("string result is too large");
    return Val::str(a.s + b.s);
  }
  if (op == "+" && a.is_list() && b.is_list() && a.tuple == b.tuple) {
    ValList items = a.items();
    items.insert(items.end(), b.items().begin(), b.items().end());
    return Val::make_list(std::move(items), a.tuple);
  }
  if (op == "*" && (a.is_str() || a.is_list()) && b.is_int()) return repeat(a, b.i);
  if (op == "*" && a.is_int() && (b.is_str() || b.is_list())) return repeat(b, a.i);
  if (op == "%" && a.is_str()) template_error("chat template uses unsupported printf-style string formatting ('%')");
  unsupported_operands(op, a, b);
}

Template::Template(std::string_view source) : program_(parse_template(source)) {}

std::string Template::render(const Value& variables) const {
  Renderer r(variables);
  return r.run(*program_);
}

}  // namespace hfpipe::text::jinja
