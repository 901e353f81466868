#!/usr/bin/env python3
"""Generates src/text/regex_tables.cpp: Oniguruma's Unicode character sets as PCRE2 class bodies.

`tokenizers` compiles its patterns with Oniguruma, whose Unicode tables are newer than those
of the PCRE2 hfpipe links (10.42: Unicode 14), and whose POSIX brackets ([[:alpha:]], ...),
shorthands (\\w, \\s, \\d) and property names have their own definitions. For every set
hfpipe's regex translator supports, this script measures the set Oniguruma matches (through
the installed `tokenizers` package, i.e. Oniguruma exactly as tokenizers builds it) and the set
PCRE2 matches for a close `base` class (through libpcre2-8 with ctypes), and writes the base
together with the code points to add to it and to remove from it. The corrections are the
characters the two Unicode versions disagree on, so they stay short and PCRE2 keeps its fast
property look-ups for everything else.

Run:  .venv/bin/python src/text/gen_regex_tables.py > src/text/regex_tables.cpp
"""
import ctypes
import ctypes.util
import sys

from tokenizers import Regex, pre_tokenizers

MAX = 0x10FFFF
ALL = "".join(chr(c) for c in range(0, MAX + 1) if not 0xD800 <= c <= 0xDFFF)
ALL_UTF8 = ALL.encode("utf-8")
# `tokenizers` converts offsets in time linear in the text per piece: probe in chunks.
CHUNKS = [ALL[i:i + 8192] for i in range(0, len(ALL), 8192)]

SPACE = r"\t\n\x{0B}\f\r\x{20}\x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}"
WORD = r"\p{Alphabetic}\p{M}\p{Nd}\p{Pc}"
NOT_GRAPH = SPACE + r"\p{Cc}\p{Cn}\p{Cs}"
NOT_PRINT = r"\t\n\x{0B}\f\r\x{85}\x{2028}\x{2029}\p{Cc}\p{Cn}\p{Cs}"

# POSIX bracket name -> (PCRE2 base class body, base is negated)
POSIX = {
    "alnum": (r"\p{Alphabetic}\p{Nd}", False),
    "alpha": (r"\p{Alphabetic}", False),
    "ascii": (r"\x{0}-\x{7F}", False),
    "blank": (r"\p{Zs}\t", False),
    "cntrl": (r"\p{Cc}", False),
    "digit": (r"\p{Nd}", False),
    "graph": (NOT_GRAPH, True),
    "lower": (r"\p{Lowercase}", False),
    "print": (NOT_PRINT, True),
    "punct": (r"\p{P}\p{S}", False),
    "space": (SPACE, False),
    "upper": (r"\p{Uppercase}", False),
    "word": (WORD, False),
    "xdigit": (r"0-9A-Fa-f", False),
}

GENERAL_CATEGORIES = [
    "L", "Lu", "Ll", "Lt", "Lm", "Lo", "M", "Mn", "Mc", "Me", "N", "Nd", "Nl", "No",
    "P", "Pc", "Pd", "Ps", "Pe", "Pi", "Pf", "Po", "S", "Sm", "Sc", "Sk", "So",
    "Z", "Zs", "Zl", "Zp", "C", "Cc", "Cf", "Co", "Cn",
    "Letter", "Uppercase_Letter", "Lowercase_Letter", "Titlecase_Letter", "Modifier_Letter", "Other_Letter",
    "Mark", "Nonspacing_Mark", "Spacing_Mark", "Enclosing_Mark", "Number", "Decimal_Number", "Letter_Number",
    "Other_Number", "Punctuation", "Connector_Punctuation", "Dash_Punctuation", "Open_Punctuation",
    "Close_Punctuation", "Initial_Punctuation", "Final_Punctuation", "Other_Punctuation", "Symbol",
    "Math_Symbol", "Currency_Symbol", "Modifier_Symbol", "Other_Symbol", "Separator", "Space_Separator",
    "Line_Separator", "Paragraph_Separator", "Other", "Control", "Format", "Private_Use", "Unassigned",
]
# PCRE2 10.42 knows the general categories by their short names only.
LONG_CATEGORY = dict(zip(GENERAL_CATEGORIES[36:], [
    "L", "Lu", "Ll", "Lt", "Lm", "Lo", "M", "Mn", "Mc", "Me", "N", "Nd", "Nl", "No", "P", "Pc", "Pd", "Ps", "Pe",
    "Pi", "Pf", "Po", "S", "Sm", "Sc", "Sk", "So", "Z", "Zs", "Zl", "Zp", "C", "Cc", "Cf", "Co", "Cn"]))
SCRIPTS = ["Arabic", "Common", "Cyrillic", "Devanagari", "Greek", "Han", "Hangul", "Hebrew", "Hiragana", "Inherited",
           "Katakana", "Latin", "Thai"]
BINARY = ["Alphabetic", "Uppercase", "Lowercase", "White_Space", "Any", "Emoji", "Extended_Pictographic"]


def onig_set(pattern):
    split = pre_tokenizers.Split(Regex(pattern), "removed", invert=True)
    return {ord(c) for chunk in CHUNKS for piece, _ in split.pre_tokenize_str(chunk) for c in piece}


class Pcre2:
    UTF, UCP, NO_UTF_CHECK = 0x00080000, 0x00020000, 0x40000000

    def __init__(self):
        lib = ctypes.CDLL(ctypes.util.find_library("pcre2-8"))
        lib.pcre2_compile_8.restype = ctypes.c_void_p
        lib.pcre2_compile_8.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint32, ctypes.POINTER(ctypes.c_int),
                                        ctypes.POINTER(ctypes.c_size_t), ctypes.c_void_p]
        lib.pcre2_match_data_create_8.restype = ctypes.c_void_p
        lib.pcre2_match_data_create_8.argtypes = [ctypes.c_uint32, ctypes.c_void_p]
        lib.pcre2_match_8.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_size_t, ctypes.c_uint32,
                                      ctypes.c_void_p, ctypes.c_void_p]
        lib.pcre2_get_ovector_pointer_8.restype = ctypes.POINTER(ctypes.c_size_t)
        lib.pcre2_get_ovector_pointer_8.argtypes = [ctypes.c_void_p]
        self.lib = lib

    def set(self, cls):
        pat = (cls + "+").encode()
        err, off = ctypes.c_int(), ctypes.c_size_t()
        code = self.lib.pcre2_compile_8(pat, len(pat), self.UTF | self.UCP, ctypes.byref(err), ctypes.byref(off), None)
        if not code:
            raise ValueError(f"PCRE2 does not compile {cls}")
        md = self.lib.pcre2_match_data_create_8(1, None)
        out, start = set(), 0
        while self.lib.pcre2_match_8(code, ALL_UTF8, len(ALL_UTF8), start, self.NO_UTF_CHECK, md, None) >= 0:
            ov = self.lib.pcre2_get_ovector_pointer_8(md)
            out.update(ord(c) for c in ALL_UTF8[ov[0]:ov[1]].decode("utf-8"))
            start = ov[1]
        return out


def ranges(codes):
    out = []
    for c in sorted(codes):
        if out and out[-1][1] == c - 1:
            out[-1][1] = c
        else:
            out.append([c, c])
    return "".join(f"\\\\x{{{a:X}}}" if a == b else f"\\\\x{{{a:X}}}-\\\\x{{{b:X}}}" for a, b in out)


def loose(name):
    """Oniguruma's property-name matching: case, spaces, '-' and '_' do not count."""
    return "".join(ch for ch in name.lower() if ch not in " -_")


def entries():
    pcre2 = Pcre2()

    def entry(key, onig_pattern, base, negated):
        want = onig_set(onig_pattern)
        have = pcre2.set(("[^" if negated else "[") + base + "]")
        add, remove = want - have, have - want
        print(f"{key}: {len(want)} code points, add {len(add)}, remove {len(remove)}", file=sys.stderr)
        return key, base.replace("\\", "\\\\"), negated, ranges(add), ranges(remove)

    for name, (base, negated) in POSIX.items():
        yield entry("posix:" + name, f"[[:{name}:]]+", base, negated)
    yield entry(r"escape:w", r"\w+", WORD, False)  # outside a class: Latin-1 quirks of its own
    yield entry(r"escape:s", r"\s+", SPACE, False)
    yield entry(r"escape:d", r"\d+", r"\p{Nd}", False)
    short = {}
    for name in GENERAL_CATEGORIES + SCRIPTS + BINARY:
        if name in LONG_CATEGORY:  # the same set as its short name: measured once
            _, base, negated, add, remove = short[LONG_CATEGORY[name]]
            yield "property:" + loose(name), base, negated, add, remove
            continue
        short[name] = entry("property:" + loose(name), rf"\p{{{name}}}+", rf"\p{{{name}}}", False)
        yield short[name]
    # \p{Alpha}, \p{Word}, ...: Oniguruma's POSIX ctypes, except \p{Punct}, which leaves out the
    # symbols [[:punct:]] takes (measured); outside a class \p{Word} is \w (the translator's business).
    for name, (base, negated) in POSIX.items():
        if loose(name) not in {loose(n) for n in GENERAL_CATEGORIES + SCRIPTS + BINARY}:
            base = r"\p{P}" if name == "punct" else base
            yield entry("property:" + name, rf"[\p{{{name}}}]+", base, negated)


def main():
    rows = sorted(entries())
    print("// Generated by src/text/gen_regex_tables.py from the installed `tokenizers` package and libpcre2-8: do not edit.")
    print('#include "text/regex_tables.h"\n')
    print("#include <algorithm>\n")
    print("namespace hfpipe::text {\n")
    print("namespace {")
    print("// Sorted by key for binary search.")
    print("constexpr OnigCharSet kSets[] = {")
    for key, base, negated, add, remove in rows:
        print(f'    {{"{key}", "{base}", {"true" if negated else "false"}, "{add}", "{remove}"}},')
    print("};")
    print("}  // namespace\n")
    print("const OnigCharSet* find_onig_char_set(std::string_view key) {")
    print("  auto it = std::lower_bound(std::begin(kSets), std::end(kSets), key,")
    print("                             [](const OnigCharSet& s, std::string_view k) { return s.key < k; });")
    print("  return it != std::end(kSets) && it->key == key ? it : nullptr;")
    print("}\n")
    print("}  // namespace hfpipe::text")


if __name__ == "__main__":
    main()
