"""The NUL rule: a JSON string the generated code turns into a C string (char *) refuses U+0000
(rule "nul"), since the C string would end there; a string kept as JSON (json_t *) and plain
JSON Schema validation (the conformance suite's path, no C types) keep the standard meaning.

Regression (issue 12): "a\\u0000b" was decoded into the char * "a", which defeated the wallet's
Idempotency-Key fingerprint."""
import json
import os
import re
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "generator"))

from tablium_gen.ir.validators import ValidatorCompiler  # noqa: E402
from tablium_gen.load import Loader  # noqa: E402

try:
    from . import support
except ImportError:  # run as a script from tests/generator
    import support

SCHEMA = """{
  "type": "object",
  "properties": {
    "name": {"type": "string"},
    "tags": {"type": "array", "items": {"type": "string", "maxLength": 3}},
    "code": {"$ref": "#/$defs/code"},
    "any": {"type": "array", "prefixItems": [{"type": "string"}]},
    "either": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
    "count": {"type": "integer"}
  },
  "$defs": {"code": {"type": "string", "pattern": "^[a-z]+$"}}
}
"""

NUL_FAIL = 'TB_V_FAIL("nul", "must not contain NUL characters (U+0000)");'


def functions(c_text):
    """{schema location comment: body} of each generated validator function."""
    out = {}
    # one function serves identical schemas: its comment lists them ("a, b and 3 more")
    for m in re.finditer(r"/\* (rec\.json#[^:*]*?)(?: and \d+ more)?(?::[^\n]*)? \*/\n"
                         r"static bool \w+\([^)]*\)\n\{\n(.*?)\n\}\n", c_text, re.S):
        for where in m.group(1).split(", "):
            out[where] = m.group(2)
    return out


class NulRule(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="tablium-nul-test-")
        self.tmp = self._tmp.name

    def tearDown(self):
        self._tmp.cleanup()

    def generated(self):
        support.write_file(os.path.join(self.tmp, "rec.json"), SCHEMA)
        with support.cwd(self.tmp):
            rc, err = support.run_cli(["schemas", "rec.json", "-o", os.path.join("out", "rec")])
        self.assertEqual(rc, 0, err)
        with open(os.path.join(self.tmp, "out", "rec", "rec.c"), encoding="utf-8") as f:
            return functions(f.read())

    def test_strings_that_become_c_strings_refuse_nul(self):
        fns = self.generated()
        for where in ("rec.json#/properties/name", "rec.json#/properties/tags/items",
                      "rec.json#/$defs/code",
                      "rec.json#/properties/either/oneOf/0"):  # a union's char * member
            self.assertIn(where, fns)
            self.assertIn(NUL_FAIL, fns[where], where)

    def test_identical_schemas_keep_their_own_rule(self):
        # the same object schema as a JSON value's item (first) and as a typed member (then):
        # the typed one's name is a C string and refuses NUL, the JSON value's keeps the
        # standard meaning. (Sharing the function of the first made the second lose the rule.)
        obj = {"type": "object", "properties": {"name": {"type": "string"}}}
        support.write_file(os.path.join(self.tmp, "rec.json"), json.dumps({
            "type": "object",
            "properties": {"loose": {"type": "array", "prefixItems": [obj]}, "typed": obj}}))
        with support.cwd(self.tmp):
            rc, err = support.run_cli(["schemas", "rec.json", "-o", os.path.join("out", "rec")])
        self.assertEqual(rc, 0, err)
        with open(os.path.join(self.tmp, "out", "rec", "rec.c"), encoding="utf-8") as f:
            fns = functions(f.read())
        self.assertIn(NUL_FAIL, fns["rec.json#/properties/typed/properties/name"])
        self.assertNotIn(NUL_FAIL, fns["rec.json#/properties/loose/prefixItems/0/properties/name"])

    def test_json_values_and_non_strings_keep_standard_semantics(self):
        fns = self.generated()
        self.assertIn("rec.json#/properties/any", fns)
        for where, body in fns.items():
            if where.startswith("rec.json#/properties/any") or where.endswith("/count"):
                self.assertNotIn('"nul"', body, where)

    def test_plain_json_schema_validation_has_no_nul_rule(self):
        # the conformance suite compiles schemas without C types: standard JSON Schema
        loader = Loader()
        root = loader.add_document(json.loads(SCHEMA), "https://tablium.invalid/rec.json",
                                   "rec.json")
        comp = ValidatorCompiler(loader, prefix="t_v")
        comp.add_entry("rec", root)
        unit = comp.finish()
        kinds = {c.kind for f in unit.funcs for c in f.checks}
        self.assertNotIn("nul", kinds)


if __name__ == "__main__":
    unittest.main()
