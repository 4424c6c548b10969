"""tablium_gen.ir.regex: ECMA-262 patterns rewritten for PCRE2, and the PCRE2 compile check.

Besides the spelling of the rewrites, a few tests run the rewritten pattern through the real
libpcre2-8 (ctypes, with the options the runtime uses: PCRE2_UTF | PCRE2_DOLLAR_ENDONLY) and
check the match result against ECMA-262 semantics.
"""
import ctypes
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "generator"))

from tablium_gen.ir import regex as R  # noqa: E402
from tablium_gen.ir.regex import check_pcre2, ecma_to_pcre2  # noqa: E402

SPACE = R._ECMA_SPACE  # the ECMA WhiteSpace + LineTerminator class body


def _pcre():
    lib = R._lib()
    if not lib:
        return None
    lib.pcre2_match_data_create_from_pattern_8.restype = ctypes.c_void_p
    lib.pcre2_match_data_create_from_pattern_8.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    lib.pcre2_match_data_free_8.argtypes = [ctypes.c_void_p]
    lib.pcre2_match_8.restype = ctypes.c_int
    lib.pcre2_match_8.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t,
                                  ctypes.c_size_t, ctypes.c_uint32, ctypes.c_void_p,
                                  ctypes.c_void_p]
    return lib


def pcre_search(pattern, subject):
    """True when the PCRE2 pattern finds a match in subject (runtime options)."""
    lib = _pcre()
    b = pattern.encode("utf-8")
    err = ctypes.c_int(0)
    off = ctypes.c_size_t(0)
    code = lib.pcre2_compile_8(b, len(b), R.PCRE2_UTF | R.PCRE2_DOLLAR_ENDONLY,
                               ctypes.byref(err), ctypes.byref(off), None)
    if not code:
        raise AssertionError("PCRE2 rejects %r" % pattern)
    try:
        md = lib.pcre2_match_data_create_from_pattern_8(code, None)
        try:
            s = subject.encode("utf-8")
            rc = lib.pcre2_match_8(code, s, len(s), 0, 0, md, None)
        finally:
            lib.pcre2_match_data_free_8(md)
    finally:
        lib.pcre2_code_free_8(code)
    return rc >= 0


class Rewrites(unittest.TestCase):
    def conv(self, ecma, pcre):
        self.assertEqual(ecma_to_pcre2(ecma), pcre)

    def test_unicode_escape_4_digits(self):
        self.conv(r"\u00e9", r"\x{00e9}")
        self.conv(r"^\u0041\u00DF$", r"^\x{0041}\x{00DF}$")
        self.conv(r"[\u0061-\u007a]", r"[\x{0061}-\x{007a}]")

    def test_unicode_escape_braces(self):
        self.conv(r"\u{1F600}", r"\x{1F600}")
        self.conv(r"[\u{1F600}-\u{1F64F}]+", r"[\x{1F600}-\x{1F64F}]+")

    def test_u_without_hex_digits_is_literal_u(self):
        self.conv(r"\uZZ", "uZZ")
        self.conv(r"\u12", "u12")

    def test_unterminated_u_brace(self):
        with self.assertRaises(ValueError):
            ecma_to_pcre2(r"\u{1F600")

    def test_property_long_names(self):
        self.conv(r"\p{Letter}", r"\p{L}")
        self.conv(r"\P{Letter}", r"\P{L}")
        self.conv(r"\p{Uppercase_Letter}", r"\p{Lu}")
        self.conv(r"\p{Decimal_Number}", r"\p{Nd}")
        self.conv(r"[\p{Letter}\p{Mark}]", r"[\p{L}\p{M}]")

    def test_property_prefixes_and_short_names(self):
        self.conv(r"\p{Lu}", r"\p{Lu}")
        self.conv(r"\p{gc=Letter}", r"\p{L}")
        self.conv(r"\p{General_Category=Number}", r"\p{N}")
        self.conv(r"\p{Script=Greek}", r"\p{Greek}")
        self.conv(r"\p{sc=Latin}", r"\p{Latin}")

    def test_unterminated_property(self):
        with self.assertRaises(ValueError):
            ecma_to_pcre2(r"\p{Letter")

    def test_whitespace_outside_class(self):
        self.conv(r"\s", "[" + SPACE + "]")
        self.conv(r"a\sb", "a[" + SPACE + "]b")
        self.conv(r"\S+", "[^" + SPACE + "]+")

    def test_whitespace_inside_class(self):
        self.conv(r"[\s]", "[" + SPACE + "]")
        self.conv(r"[^\s,]", "[^" + SPACE + ",]")
        self.conv(r"[a\sb]", "[a" + SPACE + "b]")

    def test_space_class_lists_unicode_spaces(self):
        for cp in ("\\t", "\\n", "\\x{0b}", "\\f", "\\r", " ", "\\x{a0}", "\\x{1680}",
                   "\\x{2000}-\\x{200a}", "\\x{2028}", "\\x{2029}", "\\x{202f}", "\\x{205f}",
                   "\\x{3000}", "\\x{feff}"):
            with self.subTest(cp=cp):
                self.assertIn(cp, SPACE)

    def test_any_character_class(self):
        self.conv("[^]", r"[\s\S]")
        self.conv("a[^]*b", r"a[\s\S]*b")

    def test_empty_class(self):
        self.conv("[]", "(?!)")
        self.conv("a[]b", "a(?!)b")

    def test_literal_open_bracket_inside_class(self):
        self.conv("[[]", r"[\[]")
        self.conv("[^[]", r"[^\[]")
        # PCRE2 would read "[:b]" as a POSIX class inside the class
        self.conv("[a[:b]", r"[a\[:b]")
        self.conv("[[a]]", r"[\[a]]")

    def test_escapes_are_kept(self):
        for p in (r"\d\w\b\D\W\B", r"\[", r"\]", r"[\]]", r"\\", r"\/", r"\.", r"\x41",
                  r"\cA", r"\0", r"\n\t", r"[\b]", r"(?<year>\d{4})-\k<year>"):
            with self.subTest(p=p):
                self.conv(p, p)

    def test_escaped_backslash_then_u(self):
        # "\\u0041" is a literal backslash followed by "u0041"
        self.conv(r"\\u0041", r"\\u0041")

    def test_plain_patterns_unchanged(self):
        for p in ("^[a-z]+$", "^ORD-[0-9]{6}$", "(a|b)*c?", "^$", "[^a-z]", "x{2,3}"):
            with self.subTest(p=p):
                self.conv(p, p)

    def test_trailing_backslash(self):
        with self.assertRaises(ValueError):
            ecma_to_pcre2("abc\\")


@unittest.skipUnless(R._lib(), "libpcre2-8 is not available to ctypes")
class CheckPcre2(unittest.TestCase):
    def test_valid(self):
        for p in ("^[a-z]+$", r"\p{L}", r"\x{1F600}", "(?<n>a)\\k<n>", ecma_to_pcre2(r"\s\S[^]"),
                  ecma_to_pcre2("[]")):
            with self.subTest(p=p):
                self.assertIsNone(check_pcre2(p))

    def test_unbalanced_parenthesis(self):
        reason = check_pcre2("(")
        self.assertIsInstance(reason, str)
        self.assertIn("parenthesis", reason)
        self.assertIn("offset 1", reason)

    def test_other_errors(self):
        for p in ("[", "a{2,1}", "*a", r"\p{NoSuchProperty}"):
            with self.subTest(p=p):
                reason = check_pcre2(p)
                self.assertIsInstance(reason, str)
                self.assertRegex(reason, r"at offset \d+$")

    def test_non_ascii_pattern(self):
        self.assertIsNone(check_pcre2("^caf\u00e9\U0001F600$"))


@unittest.skipUnless(R._lib(), "libpcre2-8 is not available to ctypes")
class EcmaSemantics(unittest.TestCase):
    """The rewritten pattern, run by PCRE2, matches as the ECMA-262 pattern would."""

    def match(self, ecma, subject):
        return pcre_search(ecma_to_pcre2(ecma), subject)

    def check(self, cases):
        for ecma, subject, want in cases:
            with self.subTest(pattern=ecma, subject=subject):
                self.assertEqual(self.match(ecma, subject), want)

    def test_whitespace(self):
        self.check([
            (r"^\s$", " ", True), (r"^\s$", "\u00a0", True), (r"^\s$", "\u3000", True),
            (r"^\s$", "\ufeff", True), (r"^\s$", "\u2028", True), (r"^\s$", "\x0b", True),
            (r"^\s$", "a", False), (r"^\s$", "\u200b", False),
            (r"^\S$", "\u00a0", False), (r"^\S$", "\u3000", False), (r"^\S$", "a", True),
            (r"^[^\s]$", "\u00a0", False), (r"^[^\s]$", "x", True),
            (r"^[\s]$", "\u2003", True),
        ])

    def test_any_and_empty_class(self):
        self.check([
            ("^[^]$", "\n", True), ("^[^]$", "\U0001F600", True), ("^[^]$", "", False),
            ("[]", "a", False), ("[]", "", False), ("a|[]", "a", True),
        ])

    def test_unicode_escapes_and_properties(self):
        self.check([
            (r"^\u00e9$", "\u00e9", True), (r"^\u{1F600}$", "\U0001F600", True),
            (r"^\p{Letter}+$", "\u00e9t\u00e9", True), (r"^\p{Letter}+$", "a1", False),
            (r"^\P{Letter}$", "1", True),
        ])

    def test_ascii_classes_like_ecma(self):
        # ECMA \d, \w and \b are ASCII-only (without the i/u+i flags); PCRE2 without UCP too
        self.check([
            (r"^\d$", "\u0663", False), (r"^\d$", "7", True),
            (r"^\w$", "\u00e9", False), (r"^\w$", "_", True),
        ])

    def test_dollar_is_end_only(self):
        self.check([("a$", "a\n", False), ("a$", "a", True), ("^a", "ba", False)])

    def test_literal_bracket_in_class(self):
        self.check([("^[[]$", "[", True), ("^[a[:b]+$", "a[:b", True), ("^[a[:b]+$", "c", False)])

    def test_java_posix_classes_are_ascii_classes(self):
        # \p{Alnum}, \p{XDigit}... (Java's, in AWS specs) were refused by PCRE2 ("unknown
        # property"): they are PCRE2's ASCII [:name:] classes, negated by \P
        self.check([
            (r"^\p{XDigit}{2}$", "aF", True), (r"^\p{XDigit}$", "g", False),
            (r"^[\-\p{Alnum}_:.]+$", "node-1:a.b", True), (r"^[\p{Alnum}]$", "\u00e9", False),
            (r"^\P{Alnum}$", "-", True), (r"^\P{Alnum}$", "a", False),
            (r"^[^\P{Digit}]$", "7", True), (r"^\p{Punct}$", "!", True),
            (r"^\p{IsLetter}+$", "\u00e9t\u00e9", True), (r"^[\p{all}]$", "\n", True),
            # \p without { is ECMA's identity escape: a p (AWS's over-escaped \p\{L\})
            (r"^[\p\{L\}]\+$", "L+", True), (r"^\p\{$", "p{", True),
        ])

    def test_a_dash_beside_a_class_escape_in_a_class_is_a_dash(self):
        # ECMA Annex B: [\w-.] is word characters, '-' and '.'; PCRE2 refused it ("invalid
        # range"), and [\s-_] (our \s expanded) was "range out of order" (AWS's patterns)
        self.check([
            (r"^[\w-.+]+@[\w-.+]+$", "a-b.c@d-e", True), (r"^[\w-.]+$", "a,b", False),
            (r"^[a-zA-Z\d-_/]+$", "a-_/1", True), (r"^[a-zA-Z\d-_/]+$", "a.b", False),
            (r"^[0-9\s-_()]+$", "1 -_(2)", True), (r"^[0-9\s-_()]+$", "a", False),
            (r"^[a-\d]+$", "a-1", True), (r"^[a-\d]+$", "b", False),
            (r"^[\p{L}-.]+$", "\u00e9-.", True),
        ])

    def test_surrogates_in_a_class_stand_for_characters_beyond_the_bmp(self):
        # AWS's UriString: [\u0020-\uD7FF\uE000-\uFFFD\uD800\uDBFF-\uDC00\uDFFF\r\n\t]* (the
        # XML characters, supplementary ones as surrogate pairs) was refused ("disallowed
        # Unicode code point")
        xml = r"^[\u0020-\uD7FF\uE000-\uFFFD\uD800\uDBFF-\uDC00\uDFFF\r\n\t]*$"
        self.check([
            (xml, "a b\U0001F600\u00e9", True), (xml, "\x01", False), (xml, "\ufffe", False),
            (r"^[\uD800-\uDFFF]+$", "\U0001F600\U00010000", True),
            (r"^[\uD800-\uDFFF]$", "a", False), (r"^[^\uD800-\uDFFF]$", "\U0001F600", False),
            (r"^[\u0000-\uFFFF]*$", "a\U0001F600", True),
            (r"a\uD800", "a\U00010000", False),  # a lone half outside a class matches nothing
        ])

    # --- known generator bugs (see the final report of these tests) ---

    @unittest.expectedFailure
    def test_bug_nonspace_inside_class(self):
        # BUG: "\S" inside a character class is passed through unchanged; PCRE2 (without UCP)
        # reads it as "not ASCII whitespace", so [\S] matches U+00A0 and U+3000, which ECMA's
        # \S excludes. Likewise [^\S] misses the Unicode spaces.
        self.check([(r"^[\S]$", "\u00a0", False), (r"^[\S]$", "\u3000", False),
                    (r"^[^\S]$", "\u00a0", True)])

    def test_regression_dot_matches_line_terminators(self):
        # Regression (fixed): ECMA "." excludes every LineTerminator (LF, CR, U+2028, U+2029); the pattern is
        # passed to PCRE2 unchanged and PCRE2's "." (NEWLINE=LF by default) matches CR, U+2028
        # and U+2029.
        self.check([("^.$", "\n", False), ("^.$", "\r", False), ("^.$", "\u2028", False),
                    ("^.$", "\u2029", False)])

    def test_regression_surrogate_pair_escapes(self):
        # Regression (fixed): "\uD83D\uDE00" is a valid ECMA-262 escape of U+1F600 (a UTF-16 surrogate pair);
        # it becomes "\x{D83D}\x{DE00}", which PCRE2 in UTF mode rejects ("disallowed Unicode
        # code point"), so the generator refuses a valid schema.
        converted = ecma_to_pcre2(r"^\uD83D\uDE00$")
        self.assertIsNone(check_pcre2(converted))
        self.assertTrue(pcre_search(converted, "\U0001F600"))


if __name__ == "__main__":
    unittest.main()
