"""ECMA-262 regular expressions to PCRE2 syntax, and a compile check with the real PCRE2.

JSON Schema patterns use ECMA-262 semantics. PCRE2 (compiled with PCRE2_UTF and
PCRE2_DOLLAR_ENDONLY, without PCRE2_UCP) already matches ECMA for \\d, \\w, \\b and $; this
rewrites the few spellings that differ: \\uXXXX and \\u{...} escapes, \\s/\\S (ECMA counts Unicode
spaces), [^] (any character) and [] (nothing).
"""
import ctypes
import ctypes.util

_ECMA_SPACE = "\\t\\n\\x{0b}\\f\\r \\x{a0}\\x{1680}\\x{2000}-\\x{200a}\\x{2028}\\x{2029}\\x{202f}" \
              "\\x{205f}\\x{3000}\\x{feff}"


# ECMA-262 accepts long General_Category names; PCRE2 10.42 only the short ones.
_GC_LONG = {
    "Letter": "L", "Cased_Letter": "LC", "Uppercase_Letter": "Lu", "Lowercase_Letter": "Ll",
    "Titlecase_Letter": "Lt", "Modifier_Letter": "Lm", "Other_Letter": "Lo", "Mark": "M",
    "Nonspacing_Mark": "Mn", "Spacing_Mark": "Mc", "Enclosing_Mark": "Me", "Number": "N",
    "Decimal_Number": "Nd", "digit": "Nd", "Letter_Number": "Nl", "Other_Number": "No",
    "Punctuation": "P", "punct": "P", "Connector_Punctuation": "Pc", "Dash_Punctuation": "Pd",
    "Open_Punctuation": "Ps", "Close_Punctuation": "Pe", "Initial_Punctuation": "Pi",
    "Final_Punctuation": "Pf", "Other_Punctuation": "Po", "Symbol": "S", "Math_Symbol": "Sm",
    "Currency_Symbol": "Sc", "Modifier_Symbol": "Sk", "Other_Symbol": "So", "Separator": "Z",
    "Space_Separator": "Zs", "Line_Separator": "Zl", "Paragraph_Separator": "Zp", "Other": "C",
    "Control": "Cc", "cntrl": "Cc", "Format": "Cf", "Surrogate": "Cs", "Private_Use": "Co",
    "Unassigned": "Cn",
}


# Java's POSIX class names (\p{Alnum}, \p{XDigit}...), common in specs generated from Java (AWS):
# not ECMA-262, which refuses them with the u flag and reads "\p" as "p" without it. Their
# Java meaning is ASCII-only, as PCRE2's [:name:] classes are without UCP.
_POSIX = {"Lower": "lower", "Upper": "upper", "ASCII": "ascii", "Alpha": "alpha",
          "Digit": "digit", "Alnum": "alnum", "Punct": "punct", "Graph": "graph",
          "Print": "print", "Blank": "blank", "Cntrl": "cntrl", "XDigit": "xdigit",
          "Space": "space"}
# Java's Is-prefixed spellings of categories
_JAVA_IS = {"IsLetter": "L", "IsAlphabetic": "L", "IsDigit": "Nd", "IsUppercase": "Lu",
            "IsLowercase": "Ll", "IsWhite_Space": "Z", "IsPunctuation": "P"}
_SURROGATES = (0xD800, 0xDFFF)
_SUPPLEMENTARY = "\\x{10000}-\\x{10FFFF}"


def _class_range(lo, hi):
    """The members of an ECMA class range lo-hi (code units) in PCRE2's UTF terms: surrogates
    are halves of characters beyond U+FFFF (a class of them, repeated, matches those), which
    a UTF-8 string holds whole."""
    parts = []
    if lo < _SURROGATES[0]:
        parts.append("\\x{%X}" % lo if hi == lo else
                     "\\x{%X}-\\x{%X}" % (lo, min(hi, _SURROGATES[0] - 1)))
    if hi >= _SURROGATES[0] and lo <= _SURROGATES[1]:
        parts.append(_SUPPLEMENTARY)
    if hi > _SURROGATES[1]:
        lo2 = max(lo, _SURROGATES[1] + 1)
        parts.append("\\x{%X}" % lo2 if hi == lo2 else "\\x{%X}-\\x{%X}" % (lo2, hi))
    return "".join(parts)


def _property(name):
    for prefix in ("General_Category=", "gc=", "Script=", "sc=", "Script_Extensions=", "scx="):
        if name.startswith(prefix):
            name = name[len(prefix):]
    return _GC_LONG.get(name, name)


_CLASS_ESCAPES = "dDwWsSpP"


def ecma_to_pcre2(p):
    out = []

    def literal_dash_after(i):
        """ECMA (Annex B): a '-' beside a class escape in a class is a '-' ([\\w-.], AWS's), a
        range in PCRE2 (an error). The index after it, once written as \\-."""
        if in_class and i + 1 < n and p[i] == "-" and p[i + 1] != "]":
            out.append("\\-")
            return i + 1
        return i

    i = 0
    n = len(p)
    in_class = False
    while i < n:
        c = p[i]
        if c == "\\":
            if i + 1 >= n:
                raise ValueError("trailing backslash")
            d = p[i + 1]
            if d == "u":
                if i + 2 < n and p[i + 2] == "{":
                    j = p.find("}", i + 3)
                    if j < 0:
                        raise ValueError("unterminated \\u{")
                    out.append("\\x{%s}" % p[i + 3:j])
                    i = j + 1
                    continue
                hexd = p[i + 2:i + 6]
                if len(hexd) == 4 and all(h in "0123456789abcdefABCDEF" for h in hexd):
                    cp = int(hexd, 16)
                    low = p[i + 8:i + 12] if p.startswith("\\u", i + 6) else ""
                    if (0xD800 <= cp < 0xDC00 and len(low) == 4
                            and all(h in "0123456789abcdefABCDEF" for h in low)
                            and 0xDC00 <= int(low, 16) < 0xE000):
                        # a UTF-16 surrogate pair names one code point
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (int(low, 16) - 0xDC00)
                        out.append("\\x{%X}" % cp)
                        i += 12
                        continue
                    if in_class:
                        # a range lo-hi, or one member: surrogates become what they halve
                        hi, k = cp, i + 6
                        if (p.startswith("-\\u", k) and len(p) >= k + 7 and
                                all(h in "0123456789abcdefABCDEF" for h in p[k + 3:k + 7])):
                            hi, k = int(p[k + 3:k + 7], 16), k + 7
                        if (hi >= cp and hi >= _SURROGATES[0] and cp <= _SURROGATES[1]):
                            out.append(_class_range(cp, hi))
                            i = k
                            continue
                    elif _SURROGATES[0] <= cp <= _SURROGATES[1]:
                        out.append("(?!)")  # a lone half of a character: no UTF-8 string has it
                        i += 6
                        continue
                    out.append("\\x{%s}" % hexd)
                    i += 6
                    continue
                out.append("u")
                i += 2
                continue
            if d in "pP" and i + 2 < n and p[i + 2] == "{":
                j = p.find("}", i + 3)
                if j < 0:
                    raise ValueError("unterminated \\%s{" % d)
                name = p[i + 3:j]
                if name in _POSIX:
                    cls = "[:%s%s:]" % ("^" if d == "P" else "", _POSIX[name])
                    out.append(cls if in_class else "[" + cls + "]")
                elif name == "all" and d == "p":
                    out.append("\\x{0}-\\x{10FFFF}" if in_class else "[\\s\\S]")
                else:
                    out.append("\\%s{%s}" % (d, _JAVA_IS.get(name) or _property(name)))
                i = literal_dash_after(j + 1)
                continue
            if d in "pP":
                out.append(d)  # without {: ECMA's identity escape (AWS's \\p\\{L\\}), a letter
                i += 2
                continue
            if d == "s":
                out.append(_ECMA_SPACE if in_class else "[" + _ECMA_SPACE + "]")
                i = literal_dash_after(i + 2)
                continue
            if d == "S" and not in_class:
                out.append("[^" + _ECMA_SPACE + "]")
                i += 2
                continue
            out.append(p[i:i + 2])
            i = literal_dash_after(i + 2) if d in _CLASS_ESCAPES else i + 2
            continue
        if in_class and c == "-" and i + 2 < n and p[i + 1] == "\\" and p[i + 2] in _CLASS_ESCAPES:
            out.append("\\-")  # before a class escape: a '-' too
            i += 1
            continue
        if not in_class and c == "[":
            if p.startswith("[^]", i):
                out.append("[\\s\\S]")
                i += 3
                continue
            if p.startswith("[]", i):
                out.append("(?!)")
                i += 2
                continue
            in_class = True
            out.append(c)
            i += 1
            if i < n and p[i] == "^":
                out.append("^")
                i += 1
            continue
        if not in_class and c == ".":
            out.append("[^\\n\\r\\x{2028}\\x{2029}]")  # ECMA: any but line terminators
            i += 1
            continue
        if in_class and c == "]":
            in_class = False
        elif in_class and c == "[":
            out.append("\\[")  # a literal '[' in an ECMA class; PCRE2 would read POSIX [:x:]
            i += 1
            continue
        out.append(c)
        i += 1
    return "".join(out)


_pcre = None


def _lib():
    global _pcre
    if _pcre is None:
        name = ctypes.util.find_library("pcre2-8") or "libpcre2-8.so.0"
        try:
            lib = ctypes.CDLL(name)
            lib.pcre2_compile_8.restype = ctypes.c_void_p
            lib.pcre2_compile_8.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint32,
                                            ctypes.POINTER(ctypes.c_int),
                                            ctypes.POINTER(ctypes.c_size_t), ctypes.c_void_p]
            lib.pcre2_code_free_8.argtypes = [ctypes.c_void_p]
            lib.pcre2_get_error_message_8.argtypes = [ctypes.c_int, ctypes.c_char_p,
                                                      ctypes.c_size_t]
            lib.pcre2_match_data_create_from_pattern_8.restype = ctypes.c_void_p
            lib.pcre2_match_data_create_from_pattern_8.argtypes = [ctypes.c_void_p,
                                                                   ctypes.c_void_p]
            lib.pcre2_match_context_create_8.restype = ctypes.c_void_p
            lib.pcre2_match_context_create_8.argtypes = [ctypes.c_void_p]
            lib.pcre2_set_match_limit_8.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
            lib.pcre2_match_8.restype = ctypes.c_int
            lib.pcre2_match_8.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t,
                                          ctypes.c_size_t, ctypes.c_uint32, ctypes.c_void_p,
                                          ctypes.c_void_p]
            _pcre = lib
        except OSError:
            _pcre = False
    return _pcre


PCRE2_UTF = 0x00080000
PCRE2_DOLLAR_ENDONLY = 0x00000010
PCRE2_ERROR_NOMATCH = -1
MATCH_LIMIT = 1000000  # as the runtime's TB_REGEX_MATCH_LIMIT

_compiled = {}  # ECMA pattern -> (code, match data), or (None, None) when it does not compile
_context = None  # the match context with the runtime's limit, made once


def _compile(lib, b):
    """pcre2_compile with the runtime's options: (code or None, error code, error offset)."""
    err = ctypes.c_int(0)
    off = ctypes.c_size_t(0)
    code = lib.pcre2_compile_8(b, len(b), PCRE2_UTF | PCRE2_DOLLAR_ENDONLY, ctypes.byref(err),
                               ctypes.byref(off), None)
    return code, err.value, off.value


def pcre2_search(pattern, subject):
    """Whether an ECMA-262 `pattern` finds a match in `subject`, as the runtime's PCRE2 judges
    it, within the runtime's match limit: True, False, or None when it cannot say (the limit ran
    out, the pattern does not compile, PCRE2 is not here). Python's re backtracks without a
    limit: a spec's nested stars on a long example would stop generation for hours."""
    global _context
    lib = _lib()
    if not lib:
        return None
    if _context is None:
        _context = lib.pcre2_match_context_create_8(None)
        lib.pcre2_set_match_limit_8(_context, MATCH_LIMIT)
    ent = _compiled.get(pattern)
    if ent is None:
        try:
            code = _compile(lib, ecma_to_pcre2(pattern).encode("utf-8"))[0]
        except Exception:
            code = None
        md = lib.pcre2_match_data_create_from_pattern_8(code, None) if code else None
        ent = _compiled[pattern] = (code, md)
    code, md = ent
    if not code or not md:
        return None
    subj = subject.encode("utf-8", "surrogatepass")
    rc = lib.pcre2_match_8(code, subj, len(subj), 0, 0, md, _context)
    if rc >= 0:
        return True
    return False if rc == PCRE2_ERROR_NOMATCH else None


def check_pcre2(pattern):
    """None when PCRE2 compiles the pattern (or PCRE2 is not available here), else the reason."""
    lib = _lib()
    if not lib:
        return None
    code, err, off = _compile(lib, pattern.encode("utf-8"))
    if code:
        lib.pcre2_code_free_8(code)
        return None
    buf = ctypes.create_string_buffer(256)
    lib.pcre2_get_error_message_8(err, buf, 256)
    return "%s at offset %d" % (buf.value.decode(), off)


def simple_matcher(p):
    """A C expression plan for patterns simple enough to match without a regex engine:
    ^ ATOM... $ where every atom is an ASCII literal or a non-negated ASCII class with an
    optional {n}, {n,m}, ?, * or + quantifier, and only the last atom may vary in length (so
    greedy matching needs no backtracking). Returns a list of (byte set, min, max or None), or
    None when the pattern is not that simple."""
    if not (p.startswith("^") and p.endswith("$")) or p.endswith("\\$"):
        return None
    body = p[1:-1]
    atoms = []
    i = 0
    n = len(body)
    while i < n:
        c = body[i]
        if c == "[":
            j = i + 1
            if j < n and body[j] == "^":
                return None
            chars = set()
            first = True
            while j < n and (body[j] != "]" or first):
                first = False
                ch = body[j]
                if ch == "\\":
                    if j + 1 >= n or body[j + 1] not in ".-[]\\/^$":
                        return None
                    ch = body[j + 1]
                    j += 2
                else:
                    j += 1
                if j + 1 < n and body[j] == "-" and body[j + 1] != "]":
                    hi = body[j + 1]
                    if hi == "\\" or ord(hi) < ord(ch):
                        return None
                    chars.update(chr(x) for x in range(ord(ch), ord(hi) + 1))
                    j += 2
                else:
                    chars.add(ch)
            if j >= n:
                return None
            i = j + 1
        elif c == "\\":
            if i + 1 >= n or body[i + 1] not in ".-[]\\/^$(){}*+?|":
                return None
            chars = {body[i + 1]}
            i += 2
        elif c in "().*+?{}|$^":
            return None
        else:
            chars = {c}
            i += 1
        if any(ord(ch) > 126 or ord(ch) < 32 for ch in chars):
            return None
        lo, hi = 1, 1
        if i < n and body[i] in "?*+{":
            q = body[i]
            if q == "?":
                lo, hi, i = 0, 1, i + 1
            elif q == "*":
                lo, hi, i = 0, None, i + 1
            elif q == "+":
                lo, hi, i = 1, None, i + 1
            else:
                j = body.find("}", i)
                if j < 0:
                    return None
                spec = body[i + 1:j]
                try:
                    if "," in spec:
                        a, b = spec.split(",", 1)
                        lo, hi = int(a), (int(b) if b else None)
                    else:
                        lo = hi = int(spec)
                except ValueError:
                    return None
                i = j + 1
            if i < n and body[i] in "?+":
                return None  # lazy / possessive quantifiers
        atoms.append((frozenset(chars), lo, hi))
    if not atoms or any(lo != hi for _, lo, hi in atoms[:-1]):
        return None
    return atoms
