#include "text/jinja_builtins.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>

#include "core/numeric.h"
#include "text/jinja_internal.h"
#include "text/unicode.h"

namespace hfpipe::text::jinja {

namespace {

// ---- strings as Python sees them (code points) ----

std::u32string chars(std::string_view s) { return unicode::decode_all(s); }
std::string utf8(std::u32string_view s) {
  std::string out;
  for (char32_t c : s) unicode::append(out, c);
  return out;
}

std::string map_case(std::string_view s, bool upper) {
  std::u32string out;
  for (char32_t c : chars(s)) upper ? unicode::to_uppercase(c, out) : unicode::to_lowercase(c, out);
  return utf8(out);
}

bool is_cased(char32_t c) {
  std::u32string u, l;
  unicode::to_uppercase(c, u);
  unicode::to_lowercase(c, l);
  return u != std::u32string(1, c) || l != std::u32string(1, c);
}

// Python's str.title(): a cased character after an uncased one starts a word.
std::string py_title(std::string_view s) {
  std::u32string out;
  bool prev_cased = false;
  for (char32_t c : chars(s)) {
    const bool cased = is_cased(c);
    if (cased) prev_cased ? unicode::to_lowercase(c, out) : unicode::to_uppercase(c, out);
    else out.push_back(c);
    prev_cased = cased;
  }
  return utf8(out);
}

// Python's str.capitalize(): the first character upper-cased, the rest lower-cased.
std::string py_capitalize(std::string_view s) {
  std::u32string in = chars(s), out;
  for (size_t k = 0; k < in.size(); ++k) k == 0 ? unicode::to_uppercase(in[k], out) : unicode::to_lowercase(in[k], out);
  return utf8(out);
}

// jinja2's `title` filter: words start after '-', whitespace, '(', '{', '[' or '<'.
std::string jinja_title(std::string_view s) {
  std::u32string in = chars(s), out;
  bool word_start = true;
  for (char32_t c : in) {
    const bool sep = c == '-' || c == '(' || c == '{' || c == '[' || c == '<' || py_isspace(c);
    if (sep) out.push_back(c);
    else word_start ? unicode::to_uppercase(c, out) : unicode::to_lowercase(c, out);
    word_start = sep;
  }
  return utf8(out);
}

std::string py_strip(std::string_view s, const std::optional<Val>& strip_chars, bool left, bool right) {
  std::u32string in = chars(s), set;
  const bool by_set = strip_chars && !strip_chars->is_none();
  if (by_set) {
    if (!strip_chars->is_str()) template_error("strip arg must be None or str");
    set = chars(strip_chars->s);
  }
  auto strip = [&](char32_t c) { return by_set ? set.find(c) != std::u32string::npos : py_isspace(c); };
  size_t b = 0, e = in.size();
  if (left)
    while (b < e && strip(in[b])) ++b;
  if (right)
    while (e > b && strip(in[e - 1])) --e;
  return utf8(in.substr(b, e - b));
}

// Python's str.split / str.rsplit.
ValList py_split(std::string_view s, const std::optional<Val>& sep, int64_t maxsplit, bool from_right) {
  ValList parts;
  if (!sep || sep->is_none()) {
    std::u32string in = chars(s);
    std::vector<std::pair<size_t, size_t>> words;
    for (size_t k = 0; k < in.size();) {
      while (k < in.size() && py_isspace(in[k])) ++k;
      if (k == in.size()) break;
      size_t b = k;
      while (k < in.size() && !py_isspace(in[k])) ++k;
      words.emplace_back(b, k);
    }
    if (maxsplit >= 0 && int64_t(words.size()) > maxsplit + 1) {
      // The unsplit remainder keeps its inner whitespace (and, for split, its trailing one).
      if (from_right) {
        const size_t first = words.size() - size_t(maxsplit) - 1;
        size_t b = 0;
        while (b < in.size() && py_isspace(in[b])) ++b;
        parts.push_back(Val::str(utf8(in.substr(b, words[first].second - b))));
        for (size_t k = first + 1; k < words.size(); ++k)
          parts.push_back(Val::str(utf8(in.substr(words[k].first, words[k].second - words[k].first))));
      } else {
        for (int64_t k = 0; k < maxsplit; ++k)
          parts.push_back(Val::str(utf8(in.substr(words[k].first, words[k].second - words[k].first))));
        size_t e = in.size();
        while (e > 0 && py_isspace(in[e - 1])) --e;
        const size_t b = words[size_t(maxsplit)].first;
        parts.push_back(Val::str(utf8(in.substr(b, e - b))));
      }
      return parts;
    }
    for (auto [b, e] : words) parts.push_back(Val::str(utf8(in.substr(b, e - b))));
    return parts;
  }
  if (!sep->is_str()) template_error("must be str or None, not " + type_name(*sep));
  if (sep->s.empty()) template_error("empty separator");
  std::vector<std::string> pieces;
  std::string_view rest = s;
  if (!from_right) {
    for (int64_t n = 0; maxsplit < 0 || n < maxsplit; ++n) {
      size_t at = rest.find(sep->s);
      if (at == std::string_view::npos) break;
      pieces.emplace_back(rest.substr(0, at));
      rest.remove_prefix(at + sep->s.size());
    }
    pieces.emplace_back(rest);
  } else {
    for (int64_t n = 0; maxsplit < 0 || n < maxsplit; ++n) {
      size_t at = rest.rfind(sep->s);
      if (at == std::string_view::npos) break;
      pieces.emplace_back(rest.substr(at + sep->s.size()));
      rest = rest.substr(0, at);
    }
    pieces.emplace_back(rest);
    std::reverse(pieces.begin(), pieces.end());
  }
  for (auto& p : pieces) parts.push_back(Val::str(std::move(p)));
  return parts;
}

// Python's str.replace(old, new[, count]); an empty `old` inserts between characters.
std::string py_replace(std::string_view s, std::string_view old, std::string_view repl, int64_t count) {
  std::string out;
  if (old.empty()) {
    std::u32string in = chars(s);
    int64_t n = 0;
    for (size_t k = 0; k <= in.size(); ++k) {
      if (count < 0 || n < count) out += repl, ++n;
      if (k < in.size()) unicode::append(out, in[k]);
    }
    return out;
  }
  size_t pos = 0;
  for (int64_t n = 0; count < 0 || n < count; ++n) {
    size_t at = s.find(old, pos);
    if (at == std::string_view::npos) break;
    out.append(s.substr(pos, at - pos));
    out.append(repl);
    pos = at + old.size();
  }
  out.append(s.substr(pos));
  if (out.size() > (size_t(64) << 20)) template_error("replace result is too large");
  return out;
}

std::string need_str(const Val& v, const std::string& what) {
  if (!v.is_str()) template_error(what + " must be str, not " + type_name(v));
  return v.s;
}

int64_t need_int(const std::optional<Val>& v, int64_t dflt, const std::string& what) {
  if (!v || v->is_none()) return dflt;
  if (v->kind == Val::Kind::Bool) return v->b;
  if (!v->is_int()) template_error(what + " must be an integer, not " + type_name(*v));
  return v->i;
}

// startswith/endswith take a string or a tuple of strings.
bool affix_match(const std::string& s, const Val& affix, bool prefix) {
  auto one = [&](const Val& a) {
    const std::string t = need_str(a, prefix ? "startswith arg" : "endswith arg");
    return s.size() >= t.size() && (prefix ? s.compare(0, t.size(), t) == 0 : s.compare(s.size() - t.size(), t.size(), t) == 0);
  };
  if (affix.is_list()) {
    for (const auto& a : affix.items())
      if (one(a)) return true;
    return false;
  }
  return one(affix);
}

// ---- methods ----

const char* const kPyStrMethods[] = {
    "casefold", "center", "count", "encode", "expandtabs", "format", "format_map", "index", "isalnum", "isalpha",
    "isascii", "isdecimal", "isdigit", "isidentifier", "islower", "isnumeric", "isprintable", "isspace", "istitle",
    "isupper", "ljust", "maketrans", "partition", "rfind", "rindex", "rjust", "rpartition", "splitlines",
    "swapcase", "translate", "zfill"};
const char* const kPyDictMethods[] = {"copy", "pop", "popitem", "setdefault", "update", "clear", "fromkeys"};
const char* const kPyListMethods[] = {"append", "extend", "insert", "pop", "remove", "reverse", "sort", "clear", "index", "count", "copy"};

template <size_t N>
bool listed(const char* const (&names)[N], const std::string& name) {
  for (const char* n : names)
    if (name == n) return true;
  return false;
}


Val str_method(const std::string& name, const Val& self, CallArgs& a) {
  const std::string& s = self.s;
  auto finish = [&](Val v) {
    a.done();
    return v;
  };
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    auto c = a.take(0, "chars");
    return finish(Val::str(py_strip(s, c, name != "rstrip", name != "lstrip")));
  }
  if (name == "upper" || name == "lower") return finish(Val::str(map_case(s, name == "upper")));
  if (name == "title") return finish(Val::str(py_title(s)));
  if (name == "capitalize") return finish(Val::str(py_capitalize(s)));
  if (name == "startswith" || name == "endswith") {
    auto affix = a.take(0, "prefix");
    if (!affix) template_error(name + "() takes at least 1 argument");
    return finish(Val::boolean(affix_match(s, *affix, name == "startswith")));
  }
  if (name == "split" || name == "rsplit") {
    auto sep = a.take(0, "sep");
    const int64_t maxsplit = need_int(a.take(1, "maxsplit"), -1, "maxsplit");
    return finish(Val::make_list(py_split(s, sep, maxsplit, name == "rsplit")));
  }
  if (name == "replace") {
    auto old = a.take(0, "old"), repl = a.take(1, "new");
    if (!old || !repl) template_error("replace() takes at least 2 arguments");
    const int64_t count = need_int(a.take(2, "count"), -1, "count");
    return finish(Val::str(py_replace(s, need_str(*old, "replace arg"), need_str(*repl, "replace arg"), count)));
  }
  if (name == "join") {
    auto items = a.take(0, "iterable");
    if (!items) template_error("join() takes exactly one argument");
    std::string out;
    bool first = true;
    for (const Val& v : iterate(*items)) {
      if (!v.is_str()) template_error("sequence item: expected str instance, " + type_name(v) + " found");
      out += (first ? "" : s) + v.s, first = false;
    }
    return finish(Val::str(std::move(out)));
  }
  if (name == "find") {
    auto sub = a.take(0, "sub");
    if (!sub) template_error("find() takes at least 1 argument");
    const size_t at = s.find(need_str(*sub, "find arg"));
    return finish(Val::integer(at == std::string::npos ? -1 : int64_t(unicode::count_chars(std::string_view(s).substr(0, at)))));
  }
  if (name == "removeprefix" || name == "removesuffix") {
    auto affix = a.take(0, name == "removeprefix" ? "prefix" : "suffix");
    if (!affix) template_error(name + "() takes exactly one argument");
    const std::string t = need_str(*affix, name + " arg");
    const bool pre = name == "removeprefix";
    if (!affix_match(s, *affix, pre) || t.empty()) return finish(self);
    return finish(Val::str(pre ? s.substr(t.size()) : s.substr(0, s.size() - t.size())));
  }
  template_error("chat template uses unsupported string method '" + name + "'");
}

bool is_str_method(const std::string& n) {
  static const char* const kOwn[] = {"strip", "lstrip", "rstrip", "upper", "lower", "title", "capitalize",
                                     "startswith", "endswith", "split", "rsplit", "replace", "join", "find",
                                     "removeprefix", "removesuffix"};
  return listed(kOwn, n);
}

Val dict_method(const std::string& name, const Val& self, CallArgs& a) {
  if (name == "get") {
    auto key = a.take(0, "key");
    auto dflt = a.take(1, "default");
    a.done();
    if (!key) template_error("get expected at least 1 argument, got 0");
    const Val* v = key->is_str() ? self.dict->find(key->s) : nullptr;
    return v ? *v : dflt ? *dflt : Val::none();
  }
  a.done();
  ValList out;
  for (const auto& [k, v] : self.dict->items) {
    if (name == "keys") out.push_back(Val::str(k));
    else if (name == "values") out.push_back(v);
    else out.push_back(Val::make_list({Val::str(k), v}, true));
  }
  return Val::make_list(std::move(out));
}

Val bound(const Val& self, const std::string& name, Val (*method)(const std::string&, const Val&, CallArgs&)) {
  return Val::function(name, [self, name, method](CallArgs& a) { return method(name, self, a); });
}

std::string object_name(const Val& v) { return type_name(v) + " object"; }

// ---- iteration helpers ----

// jinja2's make_attrgetter: "a.b.0" looks up a, then b, then item 0.
Val attr_path(const Val& v, const std::string& path) {
  Val cur = v;
  size_t b = 0;
  while (true) {
    const size_t dot = path.find('.', b);
    const std::string part = path.substr(b, dot == std::string::npos ? std::string::npos : dot - b);
    const bool numeric = !part.empty() && std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; });
    cur = numeric ? get_item(cur, Val::integer(std::stoll(part))) : get_item(cur, Val::str(part));
    if (dot == std::string::npos) return cur;
    b = dot + 1;
  }
}

std::string soft_str(const Val& v) { return py_str(v); }

// ---- filters ----

using Filter = Val (*)(Evaluator& ev, Val in, CallArgs& a);

Val f_trim(Evaluator&, Val in, CallArgs& a) {
  auto c = a.take(0, "chars");
  a.done();
  return Val::str(py_strip(soft_str(in), c, true, true));
}

Val f_length(Evaluator&, Val in, CallArgs& a) {
  a.done();
  switch (in.kind) {
    case Val::Kind::Undefined: return Val::integer(0);
    case Val::Kind::Str: return Val::integer(int64_t(unicode::count_chars(in.s)));
    case Val::Kind::List: return Val::integer(int64_t(in.items().size()));
    case Val::Kind::Dict:
    case Val::Kind::Namespace: return Val::integer(int64_t(in.dict->items.size()));
    default: template_error("object of type '" + type_name(in) + "' has no len()");
  }
}

Val f_upper(Evaluator&, Val in, CallArgs& a) {
  a.done();
  return Val::str(map_case(soft_str(in), true));
}
Val f_lower(Evaluator&, Val in, CallArgs& a) {
  a.done();
  return Val::str(map_case(soft_str(in), false));
}
Val f_title(Evaluator&, Val in, CallArgs& a) {
  a.done();
  return Val::str(jinja_title(soft_str(in)));
}
Val f_capitalize(Evaluator&, Val in, CallArgs& a) {
  a.done();
  return Val::str(py_capitalize(soft_str(in)));
}
Val f_string(Evaluator&, Val in, CallArgs& a) {
  a.done();
  return in.is_str() ? in : Val::str(soft_str(in));
}

// transformers' tojson: json.dumps(x, ensure_ascii=False, indent=None, separators=None,
// sort_keys=False).
Val f_tojson(Evaluator&, Val in, CallArgs& a) {
  JsonOptions o;
  if (auto v = a.take(0, "ensure_ascii")) o.ensure_ascii = truthy(*v);
  if (auto v = a.take(1, "indent"); v && !v->is_none()) {
    if (v->is_str()) o.indent_text = v->s;
    else o.indent = int(std::clamp<int64_t>(need_int(v, 0, "indent"), 0, 64));
  }
  if (auto v = a.take(2, "separators"); v && !v->is_none()) {
    if (!v->is_list() || v->items().size() != 2) template_error("tojson separators must be a pair of strings");
    o.separators = std::make_pair(need_str(v->items()[0], "separator"), need_str(v->items()[1], "separator"));
  }
  if (auto v = a.take(3, "sort_keys")) o.sort_keys = truthy(*v);
  a.done();
  return Val::str(to_json(in, o));
}

std::optional<int64_t> parse_py_int(std::string s, int64_t base) {
  std::string t;
  for (char c : s)
    if (c != '_') t += c;
  size_t b = t.find_first_not_of(" \t\n\r\f\v"), e = t.find_last_not_of(" \t\n\r\f\v");
  if (b == std::string::npos) return std::nullopt;
  t = t.substr(b, e - b + 1);
  try {
    size_t used = 0;
    const long long v = std::stoll(t, &used, int(base));
    if (used == t.size()) return v;
  } catch (const std::exception&) {
  }
  return std::nullopt;
}

Val f_int(Evaluator&, Val in, CallArgs& a) {
  const int64_t dflt = need_int(a.take(0, "default"), 0, "default");
  const int64_t base = need_int(a.take(1, "base"), 10, "base");
  a.done();
  if (in.is_int()) return in;
  if (in.kind == Val::Kind::Bool) return Val::integer(in.b);
  // Python's int() would give a big integer for 1e300; hfpipe's integers are 64-bit, so such a
  // value takes the filter's default, as inf and nan do.
  if (in.kind == Val::Kind::Float) return fits_int64(in.f) ? Val::integer(int64_t(in.f)) : Val::integer(dflt);
  if (in.is_str()) {
    if (auto v = parse_py_int(in.s, base)) return Val::integer(*v);
    try {
      size_t used = 0;
      const double d = std::stod(in.s, &used);
      if (used == in.s.size() && fits_int64(d)) return Val::integer(int64_t(d));
    } catch (const std::exception&) {
    }
  }
  return Val::integer(dflt);
}

Val f_float(Evaluator&, Val in, CallArgs& a) {
  auto d = a.take(0, "default");
  a.done();
  if (in.kind == Val::Kind::Float) return in;
  if (in.is_number()) return Val::number(in.is_int() ? double(in.i) : double(in.b));
  if (in.is_str()) {
    try {
      size_t used = 0;
      const double v = std::stod(in.s, &used);
      if (used == in.s.size()) return Val::number(v);
    } catch (const std::exception&) {
    }
  }
  return d ? *d : Val::number(0.0);
}

Val f_join(Evaluator&, Val in, CallArgs& a) {
  auto sep = a.take(0, "d");
  auto attr = a.take(1, "attribute");
  a.done();
  std::string out;
  bool first = true;
  for (const Val& v : iterate(in)) {
    out += (first ? "" : sep ? soft_str(*sep) : "") + soft_str(attr && !attr->is_none() ? attr_path(v, soft_str(*attr)) : v);
    first = false;
  }
  return Val::str(std::move(out));
}

Val f_first(Evaluator&, Val in, CallArgs& a) {
  a.done();
  ValList items = iterate(in);
  return items.empty() ? Val::undefined("No first item, sequence was empty.") : items.front();
}
Val f_last(Evaluator&, Val in, CallArgs& a) {
  a.done();
  ValList items = iterate(in);
  return items.empty() ? Val::undefined("No last item, sequence was empty.") : items.back();
}

Val f_default(Evaluator&, Val in, CallArgs& a) {
  auto dflt = a.take(0, "default_value");
  auto boolean = a.take(1, "boolean");
  a.done();
  const bool use_default = in.is_undefined() || (boolean && truthy(*boolean) && !truthy(in));
  return use_default ? (dflt ? *dflt : Val::str("")) : in;
}

Val f_replace(Evaluator&, Val in, CallArgs& a) {
  auto old = a.take(0, "old"), repl = a.take(1, "new");
  const int64_t count = need_int(a.take(2, "count"), -1, "count");
  a.done();
  if (!old || !repl) template_error("filter 'replace' takes old and new strings");
  return Val::str(py_replace(soft_str(in), soft_str(*old), soft_str(*repl), count));
}

Val f_safe(Evaluator&, Val in, CallArgs& a) {
  a.done();
  return in.is_str() ? in : Val::str(soft_str(in));
}

Val f_items(Evaluator&, Val in, CallArgs& a) {
  a.done();
  if (in.is_undefined()) return Val::make_list({});
  if (!in.is_dict()) template_error("Can only get item pairs from a mapping.");
  CallArgs none;
  return dict_method("items", in, none);
}

Val f_list(Evaluator&, Val in, CallArgs& a) {
  a.done();
  return Val::make_list(iterate(in));
}

Val f_reverse(Evaluator&, Val in, CallArgs& a) {
  a.done();
  if (in.is_str()) {
    std::u32string c = chars(in.s);
    std::reverse(c.begin(), c.end());
    return Val::str(utf8(c));
  }
  ValList items = iterate(in);
  std::reverse(items.begin(), items.end());
  return Val::make_list(std::move(items));
}

Val f_abs(Evaluator&, Val in, CallArgs& a) {
  a.done();
  if (in.kind == Val::Kind::Float) return Val::number(std::fabs(in.f));
  if (in.is_number()) return binary_op("*", in, Val::integer(in.is_int() && in.i < 0 ? -1 : 1));
  template_error("bad operand type for abs(): '" + type_name(in) + "'");
}

// The remaining positional arguments of a call (from index `from`), for map/select.
CallArgs rest_args(CallArgs& a, size_t from, const std::string& callee) {
  CallArgs r;
  r.callee = callee;
  for (size_t k = from; k < a.positional.size(); ++k) {
    if (a.positional[k]) r.positional.push_back(std::move(a.positional[k]));
    a.positional[k].reset();
  }
  return r;
}

Val f_map(Evaluator& ev, Val in, CallArgs& a) {
  ValList out;
  if (auto attr = a.take(99, "attribute")) {
    auto dflt = a.take(99, "default");
    a.done();
    for (const Val& v : iterate(in)) {
      Val got = attr_path(v, soft_str(*attr));
      out.push_back(got.is_undefined() && dflt ? *dflt : got);
    }
    return Val::make_list(std::move(out));
  }
  auto filter = a.take(0, "name");
  if (!filter || !filter->is_str()) template_error("map() needs a filter name or attribute=");
  CallArgs extra = rest_args(a, 1, "filter '" + filter->s + "'");
  extra.keyword = std::move(a.keyword);
  a.keyword.clear();
  for (const Val& v : iterate(in)) {
    CallArgs each = extra;
    out.push_back(apply_filter(ev, filter->s, v, each));
  }
  return Val::make_list(std::move(out));
}

// select / reject / selectattr / rejectattr.
Val select_items(Evaluator& ev, Val in, CallArgs& a, bool by_attr, bool keep) {
  std::optional<Val> attr;
  if (by_attr) {
    attr = a.take(0, "attribute");
    if (!attr) template_error("selectattr / rejectattr need an attribute name");
  }
  const size_t test_at = by_attr ? 1 : 0;
  auto test = a.take(test_at, "test");
  CallArgs extra = rest_args(a, test_at + 1, test ? "test '" + soft_str(*test) + "'" : "test");
  a.done();
  ValList out;
  for (const Val& v : iterate(in)) {
    const Val subject = attr ? attr_path(v, soft_str(*attr)) : v;
    bool ok;
    if (test) {
      CallArgs each = extra;
      ok = apply_test(ev, soft_str(*test), subject, each);
    } else {
      ok = truthy(subject);
    }
    if (ok == keep) out.push_back(v);
  }
  return Val::make_list(std::move(out));
}
Val f_select(Evaluator& ev, Val in, CallArgs& a) { return select_items(ev, std::move(in), a, false, true); }
Val f_reject(Evaluator& ev, Val in, CallArgs& a) { return select_items(ev, std::move(in), a, false, false); }
Val f_selectattr(Evaluator& ev, Val in, CallArgs& a) { return select_items(ev, std::move(in), a, true, true); }
Val f_rejectattr(Evaluator& ev, Val in, CallArgs& a) { return select_items(ev, std::move(in), a, true, false); }

const std::map<std::string, Filter>& filters() {
  static const std::map<std::string, Filter> table = {
      {"trim", f_trim},           {"length", f_length},         {"count", f_length},   {"upper", f_upper},
      {"lower", f_lower},         {"title", f_title},           {"capitalize", f_capitalize},
      {"string", f_string},       {"tojson", f_tojson},         {"int", f_int},        {"float", f_float},
      {"join", f_join},           {"first", f_first},           {"last", f_last},      {"default", f_default},
      {"d", f_default},           {"replace", f_replace},       {"safe", f_safe},      {"items", f_items},
      {"list", f_list},           {"reverse", f_reverse},       {"abs", f_abs},        {"map", f_map},
      {"select", f_select},       {"reject", f_reject},         {"selectattr", f_selectattr},
      {"rejectattr", f_rejectattr}};
  return table;
}

// ---- tests ----

bool compare_test(const std::string& name, const Val& in, CallArgs& a) {
  auto other = a.take(0, "other");
  a.done();
  if (!other) template_error("test '" + name + "' needs an argument");
  if (name == "eq" || name == "equalto" || name == "==") return equals(in, *other);
  if (name == "ne" || name == "!=") return !equals(in, *other);
  if (name == "lt" || name == "lessthan" || name == "<") return less(in, *other);
  if (name == "gt" || name == "greaterthan" || name == ">") return less(*other, in);
  if (name == "le" || name == "<=") return !less(*other, in);
  if (name == "ge" || name == ">=") return !less(in, *other);
  if (name == "in") return contains(*other, in);
  if (name == "sameas") return in.kind == other->kind && (in.kind == Val::Kind::None || in.kind == Val::Kind::Bool ? equals(in, *other) : false);
  return false;
}

bool is_compare_test(const std::string& n) {
  static const char* const kNames[] = {"eq", "equalto", "==", "ne", "!=", "lt", "lessthan", "<", "gt",
                                       "greaterthan", ">", "le", "<=", "ge", ">=", "in", "sameas"};
  return listed(kNames, n);
}

}  // namespace

Val apply_filter(Evaluator& ev, const std::string& name, Val input, CallArgs& args) {
  auto it = filters().find(name);
  if (it == filters().end()) template_error("chat template uses unsupported filter '" + name + "'");
  return it->second(ev, std::move(input), args);
}

bool apply_test(Evaluator& ev, const std::string& name, const Val& in, CallArgs& a) {
  if (is_compare_test(name)) return compare_test(name, in, a);
  if (name == "divisibleby") {
    auto n = a.take(0, "num");
    a.done();
    if (!n) template_error("test 'divisibleby' needs an argument");
    return truthy(binary_op("%", in, *n)) == false;
  }
  a.done();
  using K = Val::Kind;
  if (name == "defined") return !in.is_undefined();
  if (name == "undefined") return in.is_undefined();
  if (name == "none") return in.is_none();
  if (name == "string") return in.is_str();
  if (name == "mapping") return in.is_dict();
  if (name == "iterable") return in.is_undefined() || in.is_str() || in.is_list() || in.is_dict();
  if (name == "sequence") return in.is_undefined() || in.is_str() || in.is_list() || in.is_dict();
  if (name == "number") return in.is_number();
  if (name == "integer") return in.is_int();
  if (name == "float") return in.kind == K::Float;
  if (name == "boolean") return in.kind == K::Bool;
  if (name == "true") return in.kind == K::Bool && in.b;
  if (name == "false") return in.kind == K::Bool && !in.b;
  if (name == "callable") return in.kind == K::Func;
  if (name == "odd" || name == "even") {
    if (!in.is_number() || in.kind == K::Float) template_error("test '" + name + "' needs an integer");
    const int64_t v = in.is_int() ? in.i : in.b;
    return (v % 2 != 0) == (name == "odd");
  }
  if (name == "lower" || name == "upper") {
    const std::string s = soft_str(in);
    return map_case(s, name == "upper") == s && map_case(s, name != "upper") != s;
  }
  template_error("chat template uses unsupported test '" + name + "'");
}

Val get_attr(const Val& obj, const std::string& name) {
  switch (obj.kind) {
    case Val::Kind::Undefined: undefined_error(obj);
    case Val::Kind::Dict:
      if (name == "items" || name == "keys" || name == "values" || name == "get") return bound(obj, name, dict_method);
      if (listed(kPyDictMethods, name)) template_error("chat template uses unsupported dict method '" + name + "'");
      if (const Val* v = obj.dict->find(name)) return *v;
      break;
    case Val::Kind::Namespace:
      if (const Val* v = obj.dict->find(name)) return *v;
      break;
    case Val::Kind::Str:
      if (is_str_method(name)) return bound(obj, name, str_method);
      if (listed(kPyStrMethods, name)) template_error("chat template uses unsupported string method '" + name + "'");
      break;
    case Val::Kind::List:
      if (listed(kPyListMethods, name)) template_error("chat template uses unsupported list method '" + name + "'");
      break;
    default: break;
  }
  return Val::undefined("'" + object_name(obj) + "' has no attribute '" + name + "'");
}

Val get_item(const Val& obj, const Val& key) {
  if (obj.is_undefined()) undefined_error(obj);
  if (key.is_str()) {
    if ((obj.is_dict() || obj.kind == Val::Kind::Namespace) && obj.dict->find(key.s)) return *obj.dict->find(key.s);
    return get_attr(obj, key.s);
  }
  if (key.is_int() || key.kind == Val::Kind::Bool) {
    const int64_t i = key.is_int() ? key.i : key.b;
    if (obj.is_list()) {
      const int64_t n = int64_t(obj.items().size());
      const int64_t k = i < 0 ? i + n : i;
      if (k >= 0 && k < n) return obj.items()[size_t(k)];
    } else if (obj.is_str()) {
      std::u32string c = chars(obj.s);
      const int64_t n = int64_t(c.size());
      const int64_t k = i < 0 ? i + n : i;
      if (k >= 0 && k < n) return Val::str(utf8(c.substr(size_t(k), 1)));
    }
    return Val::undefined(object_name(obj) + " has no element " + std::to_string(i));
  }
  return Val::undefined(object_name(obj) + " has no element " + py_repr(key));
}

Val slice(const Val& obj, std::optional<int64_t> start, std::optional<int64_t> stop, std::optional<int64_t> step) {
  if (obj.is_undefined()) undefined_error(obj);
  const bool is_str = obj.is_str();
  if (!is_str && !obj.is_list()) template_error("'" + type_name(obj) + "' object is not subscriptable");
  std::u32string c = is_str ? chars(obj.s) : std::u32string();
  const int64_t n = is_str ? int64_t(c.size()) : int64_t(obj.items().size());
  const int64_t st = step.value_or(1);
  if (st == 0) template_error("slice step cannot be zero");
  // Python's slice.indices().
  auto clamp = [&](std::optional<int64_t> v, int64_t dflt) {
    if (!v) return dflt;
    int64_t x = *v < 0 ? *v + n : *v;
    if (st > 0) return std::clamp<int64_t>(x, 0, n);
    return std::clamp<int64_t>(x, -1, n - 1);
  };
  const int64_t b = clamp(start, st > 0 ? 0 : n - 1), e = clamp(stop, st > 0 ? n : -1);
  std::u32string out_chars;
  ValList out_items;
  for (int64_t k = b; st > 0 ? k < e : k > e; k += st) {
    if (is_str) out_chars.push_back(c[size_t(k)]);
    else out_items.push_back(obj.items()[size_t(k)]);
  }
  return is_str ? Val::str(utf8(out_chars)) : Val::make_list(std::move(out_items), obj.tuple);
}

ValList iterate(const Val& v) {
  switch (v.kind) {
    case Val::Kind::Undefined: return {};
    case Val::Kind::List: return v.items();
    case Val::Kind::Dict: {
      ValList keys;
      for (const auto& [k, e] : v.dict->items) keys.push_back(Val::str(k));
      return keys;
    }
    case Val::Kind::Str: {
      ValList out;
      for (char32_t c : chars(v.s)) out.push_back(Val::str(unicode::encode(c)));
      return out;
    }
    default: template_error("'" + type_name(v) + "' object is not iterable");
  }
}

bool contains(const Val& container, const Val& item) {
  switch (container.kind) {
    case Val::Kind::Undefined: return false;
    case Val::Kind::Str:
      if (!item.is_str()) template_error("'in <string>' requires string as left operand, not " + type_name(item));
      return container.s.find(item.s) != std::string::npos;
    case Val::Kind::List:
      for (const auto& e : container.items())
        if (equals(e, item)) return true;
      return false;
    case Val::Kind::Dict: return item.is_str() && container.dict->find(item.s);
    default: template_error("argument of type '" + type_name(container) + "' is not iterable");
  }
}

}  // namespace hfpipe::text::jinja
