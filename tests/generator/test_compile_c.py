"""The generated C compiles warning-free with the project's strict flags:
    gcc -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes
        -Wmissing-prototypes -c -I runtime/include -I <outdir>
for the golden fixtures and for schemas in a folder outside the repository."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "generator"))

import tablium_gen  # noqa: E402,F401

try:
    from . import support
except ImportError:  # run as a script from tests/generator
    import support

# A schema using most keywords the generator knows (each selects other template code).
KITCHEN_SINK = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "Kitchen sink",
    "description": "Exercises many template paths.\nA second line with */ inside.",
    "type": "object",
    "required": ["id", "when"],
    "properties": {
        "id": {"type": "string", "format": "uuid"},
        "when": {"type": "string", "format": "date-time"},
        "count": {"type": "integer", "minimum": 0, "maximum": 9007199254740991,
                  "multipleOf": 3},
        "ratio": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1.5},
        "flag": {"type": ["boolean", "null"]},
        "mode": {"type": ["string", "null"], "enum": ["on", "off", None]},
        "level": {"enum": ["low", "high"], "description": "A */ in a member description"},
        "matrix": {"type": "array", "items": {"type": "array", "items": {"type": "number"}}},
        "children": {"type": "array", "items": {"$ref": "#"}},
        "choice": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
        "any": {"anyOf": [{"type": "string", "maxLength": 3}, {"const": {"k": [1, 2]}}]},
        "all": {"allOf": [{"type": "object"}, {"required": ["z"]}],
                "not": {"required": ["forbidden"]}},
        "cond": {"if": {"properties": {"t": {"const": "a"}}}, "then": {"required": ["a"]},
                 "else": {"required": ["b"]}},
        "map": {"type": "object", "additionalProperties": {"type": "integer"},
                "propertyNames": {"pattern": "^[a-z]+$"}, "maxProperties": 10},
        "deps": {"type": "object", "dependentRequired": {"a": ["b"]},
                 "dependentSchemas": {"c": {"required": ["d"]}}},
        "tuple": {"type": "array", "prefixItems": [{"type": "string"}, {"type": "integer"}],
                  "items": False, "contains": {"type": "integer"}, "maxContains": 2},
        "strict": {"type": "object", "properties": {"p": {"type": "string"}},
                   "unevaluatedProperties": False},
        "uitems": {"type": "array", "prefixItems": [{"type": "string"}],
                   "unevaluatedItems": False},
        "nested": {"type": "object", "required": ["deep"], "properties": {
            "deep": {"type": "object", "properties": {
                "deeper": {"type": "string", "pattern": "\\s\\S[^]\\u00e9\\p{Letter}"}}}}},
        "user_id": {"type": "string"},
        "userId": {"type": "string"},
        "int": {"type": "integer"},
        "2fa": {"type": "boolean"},
        "percent%s": {"type": "string", "pattern": "%d%s?"},
        "unicod\u00e9": {"type": "string", "enum": ["\u00fcn\u00ef", "a\"b", "c\\d", "tri??/"]},
        "n": {"type": "integer"},
        "never": False,
        "always": True,
    },
    "patternProperties": {"^x-": {}},
    "additionalProperties": False,
}

DYNAMIC_TREE = {
    "$id": "https://example.test/tree.json", "$dynamicAnchor": "node", "type": "object",
    "properties": {"value": {"type": "number"},
                   "kids": {"type": "array", "items": {"$dynamicRef": "#node"}}},
}

OAS30_YAML = """\
type: object
required: [id]
properties:
  id: {type: integer, minimum: 1, exclusiveMinimum: true}
  name: {type: string, nullable: true}
  tags: {type: array, items: {type: string, enum: [a, b]}}
"""


class CompileCase(unittest.TestCase):
    def setUp(self):
        if not support.gcc():
            self.skipTest("gcc not found on PATH: cannot check that the generated C compiles")
        self._tmp = tempfile.TemporaryDirectory(prefix="tablium-cc-test-")
        self.tmp = os.path.abspath(self._tmp.name)

    def tearDown(self):
        self._tmp.cleanup()

    def assertCompiles(self, outdir, name=None):
        name = name or os.path.basename(outdir)
        cfile = os.path.join(outdir, name + ".c")
        rc, out = support.compile_c(cfile, outdir)
        self.assertEqual(rc, 0, "%s does not compile:\n%s" % (cfile, out))
        self.assertEqual(out.strip(), "", "compiler output for %s:\n%s" % (cfile, out))

    def gen_user(self, files, name="user_set", extra_args=()):
        """Writes {relative path: schema} into a fresh project folder outside the repository and
        generates from it, with that folder as the current directory."""
        proj = os.path.join(self.tmp, "project-" + name)
        for rel, content in files.items():
            text = content if isinstance(content, str) else json.dumps(content, indent=2)
            support.write_file(os.path.join(proj, rel), text)
        with support.cwd(proj):
            rc, err = support.run_cli(["schemas"] + sorted({p.split("/")[0] for p in files})
                                      + ["-o", os.path.join("out", name)] + list(extra_args))
        self.assertEqual(rc, 0, err)
        return os.path.join(proj, "out", name)


class GoldenFixturesCompile(CompileCase):
    def test_fixtures_compile(self):
        for name, rel_input in support.FIXTURES:
            with self.subTest(fixture=name):
                support.generate(name, rel_input, self.tmp)
                self.assertCompiles(os.path.join(self.tmp, name))

    def test_committed_golden_compiles(self):
        # the golden .c/.h themselves (equal to fresh output when test_golden passes)
        for name, _ in support.FIXTURES:
            with self.subTest(fixture=name):
                dest = os.path.join(self.tmp, name)
                os.makedirs(dest)
                for fname, path in support.golden_files(name).items():
                    shutil.copy(path, os.path.join(dest, fname))
                self.assertCompiles(dest)

    def test_headers_alone_c_and_cxx(self):
        for name, rel_input in support.FIXTURES:
            with self.subTest(fixture=name):
                support.generate(name, rel_input, self.tmp)
                outdir = os.path.join(self.tmp, name)
                tu = support.write_file(os.path.join(outdir, "only_header.c"),
                                        '#include "%s.h"\n#include "%s.h"\n' % (name, name))
                rc, out = support.compile_c(tu, outdir)
                self.assertEqual(rc, 0, out)
                gxx = shutil.which("g++")
                if gxx:
                    p = subprocess.run(
                        [gxx, "-fsyntax-only", "-Wall", "-Wextra", "-Werror", "-x", "c++",
                         "-I", support.RUNTIME_INCLUDE, os.path.join(outdir, name + ".h")],
                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
                    self.assertEqual(p.returncode, 0, p.stdout.decode())

    def test_generated_header_refuses_another_runtime_abi(self):
        name, rel_input = support.FIXTURES[0]
        support.generate(name, rel_input, self.tmp)
        outdir = os.path.join(self.tmp, name)
        tu = support.write_file(os.path.join(outdir, "guard.c"), '#include "%s.h"\n' % name)
        rc, out = support.compile_c(tu, outdir)
        self.assertEqual(rc, 0, out)
        # the same header against a runtime whose tablium/version.h says another ABI
        fake = os.path.join(self.tmp, "other-runtime", "tablium")
        os.makedirs(fake)
        support.write_file(os.path.join(fake, "version.h"),
                           "#define TB_VERSION \"9.9.9\"\n#define TB_GEN_ABI 999\n")
        rc, out = support.compile_c(tu, outdir, extra=["-I", os.path.dirname(fake)])
        self.assertNotEqual(rc, 0, out)
        self.assertIn("regenerate it with the tablium-gen of this runtime", out)


SHARED_TYPES = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "x-tablium-unit": "shared",
    "$defs": {
        "code": {"type": "string", "pattern": "^[A-Z]{3}$"},
        "Money": {"type": "object", "required": ["amount", "code"],
                  "properties": {"amount": {"type": "integer", "minimum": 0},
                                 "code": {"$ref": "#/$defs/code"},
                                 "kind": {"enum": ["cash", "card"]}},
                  "additionalProperties": False},
    },
}


class SharedUnits(CompileCase):
    """Schema files marked x-tablium-unit are generated once, into that unit; other units call
    its validators and use its types and descriptors instead of generating them again."""

    def test_a_shared_unit_is_generated_once_and_referred_to(self):
        proj = os.path.join(self.tmp, "shared-project")
        support.write_file(os.path.join(proj, "shared", "money.json"),
                           json.dumps(SHARED_TYPES, indent=2))
        support.write_file(os.path.join(proj, "app", "order.json"), json.dumps({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object", "required": ["total"],
            "properties": {"total": {"$ref": "../shared/money.json#/$defs/Money"},
                           "refunds": {"type": "array",
                                       "items": {"$ref": "../shared/money.json#/$defs/Money"}},
                           "currency": {"$ref": "../shared/money.json#/$defs/code"}}}))
        with support.cwd(proj):
            for unit in ("shared", "app"):
                rc, err = support.run_cli(["schemas", unit, "-o", os.path.join("out", unit)])
                self.assertEqual(rc, 0, err)
        out = os.path.join(proj, "out")
        shared_c = open(os.path.join(out, "shared", "shared.c")).read()
        shared_h = open(os.path.join(out, "shared", "shared.h")).read()
        app_c = open(os.path.join(out, "app", "app.c")).read()
        app_h = open(os.path.join(out, "app", "app.h")).read()
        # the shared unit exports its entries' validators and descriptors, unprefixed by app
        self.assertIn("bool shared__schema_money_defs_money(const json_t *j, struct tb_vctx *c",
                      shared_h)
        self.assertIn("extern const tb_codec_type shared_money__desc;", shared_h)
        self.assertIn("\nconst tb_codec_type shared_money__desc = ", shared_c)
        self.assertIn("} shared_money;", shared_h)
        # app includes it and generates none of it again
        self.assertIn('#include "shared/shared.h"', app_h)
        self.assertNotIn("} shared_money;", app_h)
        self.assertNotIn("bool shared__schema_", app_c)
        self.assertNotIn("shared_money__fields", app_c)
        self.assertIn("shared__schema_money_defs_money, v)", app_c)
        self.assertIn("&shared_money__desc", app_c)
        self.assertIn("shared_money total;", app_h)
        for unit in ("shared", "app"):
            rc, text = support.compile_c(os.path.join(out, unit, unit + ".c"), out)
            self.assertEqual(rc, 0, text)
            self.assertEqual(text.strip(), "", text)


class UserSchemasCompile(CompileCase):
    def test_project_with_cross_file_refs(self):
        out = self.gen_user({
            "schemas/pet.json": {
                "$id": "https://api.example.test/schemas/pet.json", "type": "object",
                "required": ["id", "name", "kind"],
                "properties": {
                    "id": {"type": "integer", "minimum": 1},
                    "name": {"type": "string", "minLength": 1},
                    "kind": {"$ref": "common.json#/$defs/kind"},
                    "owner": {"$ref": "common.json#/$defs/owner"},
                    "friends": {"type": "array", "items": {"$ref": "common.json#/$defs/owner"}},
                }},
            "schemas/common.json": {
                "$id": "https://api.example.test/schemas/common.json",
                "$defs": {
                    "kind": {"type": "string", "enum": ["cat", "dog", "red-panda"]},
                    "owner": {"type": "object", "required": ["email"], "properties": {
                        "email": {"type": "string", "format": "email"},
                        "phone": {"type": ["string", "null"]}}},
                }},
            "schemas/tag.yaml": "type: object\nproperties:\n  label:\n    type: string\n",
        }, name="pets")
        self.assertCompiles(out)

    def test_kitchen_sink(self):
        self.assertCompiles(self.gen_user({"schemas/kitchen.json": KITCHEN_SINK}, "kitchen"))

    def test_dynamic_ref(self):
        self.assertCompiles(self.gen_user({"schemas/tree.json": DYNAMIC_TREE}, "trees"))

    def test_openapi_30_dialect(self):
        out = self.gen_user({"schemas/pet.yaml": OAS30_YAML}, "oas",
                            extra_args=["--dialect", "oas30"])
        self.assertCompiles(out)
        with open(os.path.join(out, "oas.h"), encoding="utf-8") as f:
            self.assertIn("bool name_is_null;", f.read())

    # --- known generator bugs: valid schemas whose generated C does not compile ---

    def test_regression_type_names_collide_with_generated_identifiers(self):
        # Regression (fixed): C type names are the bare file stem / $defs key, not namespaced. A file a.json
        # gives "typedef struct a", and the generated prototypes declare a parameter "tb_arena *a"
        # before "a *out": "int a_parse(..., tb_arena *a, a *out, ...)" is a syntax error.
        # ($defs "x" likewise clashes with the local "json_t *x" under -Wshadow.)
        self.assertCompiles(self.gen_user({"s/a.json": {
            "type": "object", "properties": {"name": {"type": "string"}}}}, "set_a"))

    def test_regression_member_names_collide_with_derived_members(self):
        # Regression (fixed): struct member names come from a Namer that only reserves "n"; the derived
        # members has_<x>, <x>_is_null and n_<x> are not reserved, so these valid schemas give
        # "duplicate member" errors.
        cases = {
            "has": {"x": {"type": "string"}, "has_x": {"type": "boolean"}},
            "count": {"items": {"type": "array", "items": {"type": "string"}},
                      "n_items": {"type": "integer"}},
            "null": {"v": {"type": ["string", "null"]}, "v_is_null": {"type": "boolean"}},
        }
        for tag, props in cases.items():
            with self.subTest(case=tag):
                self.assertCompiles(self.gen_user({"s/rec.json": {
                    "type": "object", "properties": props}}, "members_" + tag))

    def test_regression_allof_parts_narrow_a_member(self):
        # Regression (fixed): a member that is a string in one allOf part and an enum of strings
        # in another (ix-api's problem type), or a union with a string branch in one and a string
        # in another (GitHub's created_at), was refused as "no value can match both"; the
        # narrower one is the member's type
        out = self.gen_user({"s/rec.json": {"allOf": [
            {"type": "object", "properties": {"t": {"type": "string"},
                                              "at": {"oneOf": [{"type": "integer"},
                                                               {"type": "string"}]}}},
            {"type": "object", "properties": {"t": {"enum": ["a", "b"]},
                                              "at": {"type": "string"}}}]}}, "narrow")
        self.assertCompiles(out)
        with open(os.path.join(out, "narrow.h"), encoding="utf-8") as f:
            h = f.read()
        self.assertRegex(h, r"rec_t t;")
        self.assertIn("char *at;", h)

    def test_allof_parts_that_contradict_warn_and_the_member_is_any_value(self):
        # SendGrid: last_event_time integer in one allOf part, string in the other: a warning
        # (allof-conflict, as allof-closed), not a refusal of the whole spec
        proj = os.path.join(self.tmp, "project-conflict")
        support.write_file(os.path.join(proj, "s", "rec.json"), json.dumps({"allOf": [
            {"type": "object", "properties": {"at": {"type": "integer"}}},
            {"type": "object", "properties": {"at": {"type": "string"}}}]}))
        with support.cwd(proj):
            rc, err = support.run_cli(["schemas", "s", "-o", os.path.join("out", "conflict")])
        self.assertEqual(rc, 0, err)
        self.assertIn("warning: allof-conflict: property 'at' is integer in one part and "
                      "string in another", err)
        out = os.path.join(proj, "out", "conflict")
        self.assertCompiles(out)
        with open(os.path.join(out, "conflict.h"), encoding="utf-8") as f:
            self.assertIn("json_t *at;", f.read())

    def test_regression_simple_pattern_from_zero_compiles_warning_free(self):
        # Regression (fixed): ^[a-zA-Z0-9]{0,4096}$ matched without a regex engine checked
        # "n < 0 ||" on a size_t: -Wtype-limits under -Wextra -Werror (AGCO, AWS resiliencehub)
        self.assertCompiles(self.gen_user({"s/rec.json": {
            "type": "object", "properties": {"v": {"type": "string",
                                                   "pattern": "^[a-zA-Z0-9]{0,4096}$"}}}},
            "zero_min"))

    def test_regression_enum_constants_collide_across_enums(self):
        # Regression (fixed): enum constants are <TYPE>_<VALUE>, de-duplicated only within one enum: $defs
        # "foo" = ["bar_baz"] and "foo_bar" = ["baz"] both declare FOO_BAR_BAZ.
        self.assertCompiles(self.gen_user({"s/rec.json": {
            "$defs": {"foo": {"enum": ["bar_baz"]}, "foo_bar": {"enum": ["baz"]}},
            "type": "object", "properties": {"p": {"$ref": "#/$defs/foo"},
                                             "q": {"$ref": "#/$defs/foo_bar"}}}}, "enums"))

    def test_regression_comment_terminator_in_names(self):
        # Regression (fixed): the header prints the JSON member name (/* "a*/b" */) and the enum value literal
        # (/* "x*/y" */) into comments without escaping "*/", which ends the comment early.
        for tag, props in {"member": {"a*/b": {"type": "string"}},
                           "enum": {"e": {"enum": ["x*/y", "z"]}}}.items():
            with self.subTest(case=tag):
                self.assertCompiles(self.gen_user({"s/rec.json": {
                    "type": "object", "properties": props}}, "comment_" + tag))

    def test_regression_nul_character_in_pattern(self):
        # Regression (fixed): a pattern containing U+0000 was copied raw into a C comment, and
        # into a TB_V_FAIL format ("embedded '\0' in format"). The PCRE2 literal keeps "\000":
        # TB_REGEX takes the literal's length with sizeof, so the runtime compiles all of it.
        out = self.gen_user({"s/rec.json": {
            "type": "object", "properties": {"s": {"type": "string", "pattern": "a\u0000b"}}}},
            "nul")
        with open(os.path.join(out, "nul.c"), "rb") as f:
            c = f.read()
        self.assertNotIn(b"\x00", c, "raw NUL byte in the generated source")
        regex_lines = [ln for ln in c.splitlines() if b"TB_REGEX(" in ln]
        self.assertEqual(len(regex_lines), 1)
        self.assertIn(b'TB_REGEX("a\\000b")', regex_lines[0])
        self.assertCompiles(out)


if __name__ == "__main__":
    unittest.main()
