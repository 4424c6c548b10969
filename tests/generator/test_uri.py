"""tablium_gen.load.uri: RFC 3986 reference resolution and JSON pointer fragments."""
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "generator"))

from tablium_gen.load import uri as U  # noqa: E402

BASE = "http://a/b/c/d;p?q"

# RFC 3986 section 5.4.1
NORMAL = [
    ("g:h", "g:h"),
    ("g", "http://a/b/c/g"),
    ("./g", "http://a/b/c/g"),
    ("g/", "http://a/b/c/g/"),
    ("/g", "http://a/g"),
    ("//g", "http://g"),
    ("?y", "http://a/b/c/d;p?y"),
    ("g?y", "http://a/b/c/g?y"),
    ("#s", "http://a/b/c/d;p?q#s"),
    ("g#s", "http://a/b/c/g#s"),
    ("g?y#s", "http://a/b/c/g?y#s"),
    (";x", "http://a/b/c/;x"),
    ("g;x", "http://a/b/c/g;x"),
    ("g;x?y#s", "http://a/b/c/g;x?y#s"),
    ("", "http://a/b/c/d;p?q"),
    (".", "http://a/b/c/"),
    ("./", "http://a/b/c/"),
    ("..", "http://a/b/"),
    ("../", "http://a/b/"),
    ("../g", "http://a/b/g"),
    ("../..", "http://a/"),
    ("../../", "http://a/"),
    ("../../g", "http://a/g"),
]

# RFC 3986 section 5.4.2 (strict parser: "http:g" stays as it is)
ABNORMAL = [
    ("../../../g", "http://a/g"),
    ("../../../../g", "http://a/g"),
    ("/./g", "http://a/g"),
    ("/../g", "http://a/g"),
    ("g.", "http://a/b/c/g."),
    (".g", "http://a/b/c/.g"),
    ("g..", "http://a/b/c/g.."),
    ("..g", "http://a/b/c/..g"),
    ("./../g", "http://a/b/g"),
    ("./g/.", "http://a/b/c/g/"),
    ("g/./h", "http://a/b/c/g/h"),
    ("g/../h", "http://a/b/c/h"),
    ("g;x=1/./y", "http://a/b/c/g;x=1/y"),
    ("g;x=1/../y", "http://a/b/c/y"),
    ("g?y/./x", "http://a/b/c/g?y/./x"),
    ("g?y/../x", "http://a/b/c/g?y/../x"),
    ("g#s/./x", "http://a/b/c/g#s/./x"),
    ("g#s/../x", "http://a/b/c/g#s/../x"),
    ("http:g", "http:g"),
]

URN = "urn:uuid:deadbeef-1234-ffff-ffff-4321feebdaed"


class JoinRFC3986(unittest.TestCase):
    def test_normal_examples(self):
        for ref, want in NORMAL:
            with self.subTest(ref=ref):
                self.assertEqual(U.join(BASE, ref), want)

    def test_abnormal_examples(self):
        for ref, want in ABNORMAL:
            with self.subTest(ref=ref):
                self.assertEqual(U.join(BASE, ref), want)

    def test_no_base_returns_reference(self):
        self.assertEqual(U.join(None, "g/h#x"), "g/h#x")

    def test_authority_with_empty_path(self):
        # RFC 3986 5.2.3: base with authority and empty path merges as "/" + ref
        self.assertEqual(U.join("http://a", "g"), "http://a/g")
        self.assertEqual(U.join("http://a?q", "?y"), "http://a?y")

    def test_absolute_reference_removes_dot_segments(self):
        self.assertEqual(U.join(BASE, "http://x/a/./b/../c"), "http://x/a/c")
        self.assertEqual(U.join(BASE, "//x/a/../b"), "http://x/b")


class JoinURN(unittest.TestCase):
    def test_fragment_pointer(self):
        self.assertEqual(U.join(URN, "#/$defs/x"), URN + "#/$defs/x")

    def test_fragment_anchor(self):
        self.assertEqual(U.join(URN, "#foo"), URN + "#foo")

    def test_base_fragment_is_replaced(self):
        self.assertEqual(U.join(URN + "#/a", "#/b"), URN + "#/b")

    def test_empty_reference_drops_fragment(self):
        self.assertEqual(U.join(URN + "#frag", ""), URN)

    def test_other_urn_is_absolute(self):
        self.assertEqual(U.join(URN, "urn:example:other#x"), "urn:example:other#x")

    def test_relative_path_against_urn(self):
        # strict RFC 3986: the urn path has no "/", so the merged path is the reference
        self.assertEqual(U.join(URN, "other.json"), "urn:other.json")

    def test_defrag(self):
        self.assertEqual(U.defrag(URN + "#/$defs/x"), (URN, "/$defs/x"))
        self.assertEqual(U.defrag(URN), (URN, ""))
        self.assertEqual(U.defrag(URN + "#"), (URN, ""))


class JoinFile(unittest.TestCase):
    BASE = "file:///home/u/schemas/events/a.json"

    def test_sibling(self):
        self.assertEqual(U.join(self.BASE, "b.json"), "file:///home/u/schemas/events/b.json")

    def test_sibling_with_pointer(self):
        self.assertEqual(U.join(self.BASE, "b.json#/$defs/x"),
                         "file:///home/u/schemas/events/b.json#/$defs/x")

    def test_parent_folder(self):
        self.assertEqual(U.join(self.BASE, "../common/types.json#/$defs/uuid"),
                         "file:///home/u/schemas/common/types.json#/$defs/uuid")

    def test_above_root_is_clamped(self):
        self.assertEqual(U.join(self.BASE, "../../../../../x.json"), "file:///x.json")

    def test_absolute_path(self):
        self.assertEqual(U.join(self.BASE, "/etc/x.json"), "file:///etc/x.json")

    def test_same_document(self):
        self.assertEqual(U.join(self.BASE, "#/$defs/x"), self.BASE + "#/$defs/x")

    def test_percent_encoded_path_is_kept(self):
        self.assertEqual(U.join("file:///my%20dir/a.json", "b.json"), "file:///my%20dir/b.json")

    def test_https_id_reference(self):
        self.assertEqual(U.join("https://schemas.example.test/events/a.json",
                                "../common/types.json"),
                         "https://schemas.example.test/common/types.json")


class SplitUnsplit(unittest.TestCase):
    def test_components(self):
        self.assertEqual(U.split("http://a/b/c/d;p?q#f"), ("http", "a", "/b/c/d;p", "q", "f"))
        self.assertEqual(U.split(URN), ("urn", None, "uuid:deadbeef-1234-ffff-ffff-4321feebdaed",
                                        None, None))
        self.assertEqual(U.split("file:///x/y"), ("file", "", "/x/y", None, None))
        self.assertEqual(U.split("#/a"), (None, None, "", None, "/a"))

    def test_round_trip(self):
        for u in ("http://a/b/c/d;p?q#f", URN + "#/x", "file:///x/y", "g?y", "#", "?", "//h"):
            with self.subTest(uri=u):
                self.assertEqual(U.unsplit(*U.split(u)), u)


class PointerTokens(unittest.TestCase):
    def test_empty_and_root(self):
        self.assertEqual(U.pointer_tokens(""), [])
        self.assertEqual(U.pointer_tokens("/"), [""])

    def test_plain(self):
        self.assertEqual(U.pointer_tokens("/$defs/x"), ["$defs", "x"])
        self.assertEqual(U.pointer_tokens("/items/0"), ["items", "0"])

    def test_tilde_escapes(self):
        self.assertEqual(U.pointer_tokens("/a~1b"), ["a/b"])
        self.assertEqual(U.pointer_tokens("/m~0n"), ["m~n"])
        # "~01" is "~" followed by "1", not "/" (decode ~1 first, then ~0)
        self.assertEqual(U.pointer_tokens("/~01"), ["~1"])
        self.assertEqual(U.pointer_tokens("/~0~1/~1~0"), ["~/", "/~"])

    def test_percent_encoding(self):
        self.assertEqual(U.pointer_tokens("/a%20b"), ["a b"])
        self.assertEqual(U.pointer_tokens("/%25"), ["%"])
        self.assertEqual(U.pointer_tokens("/c%25d"), ["c%d"])
        self.assertEqual(U.pointer_tokens("/%C3%A9"), ["\u00e9"])
        # percent-decoding happens before the ~ escapes (RFC 6901 section 6)
        self.assertEqual(U.pointer_tokens("/%7E1"), ["/"])
        self.assertEqual(U.pointer_tokens("/%2F"), ["", ""])

    def test_not_a_pointer(self):
        with self.assertRaises(ValueError):
            U.pointer_tokens("foo")

    def test_escape_round_trip(self):
        for tok in ("a/b", "m~n", "~1", "/~", "", "plain", "0"):
            with self.subTest(token=tok):
                self.assertEqual(U.pointer_tokens("/" + U.pointer_escape(tok)), [tok])
        self.assertEqual(U.pointer_escape("a/b~c"), "a~1b~0c")
        self.assertEqual(U.pointer_escape(3), "3")


if __name__ == "__main__":
    unittest.main()
