"""The command line (tablium_gen.cli.main) on schema files in a temporary folder: diagnostics
name the file, the line:column or the JSON pointer and the reason; nothing is written on error;
relative $refs between user files work, with or without https $ids."""
import json
import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "generator"))

import tablium_gen.cli  # noqa: E402,F401  (the entry point under test)

try:
    from . import support
except ImportError:  # run as a script from tests/generator
    import support


class CliCase(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="tablium-gen-test-")
        self.tmp = os.path.abspath(self._tmp.name)
        self.out = os.path.join(self.tmp, "out")

    def tearDown(self):
        self._tmp.cleanup()

    def write(self, rel, content):
        """Writes a schema (dict -> JSON, str as is) under the temp folder; returns its path."""
        text = json.dumps(content, indent=2) if not isinstance(content, str) else content
        return support.write_file(os.path.join(self.tmp, rel), text)

    def gen(self, *inputs, out=None):
        # cwd = repository root (as in `make test-generator`): files outside it are shown by name
        with support.cwd(support.REPO):
            return support.run_cli(["schemas"] + list(inputs) + ["-o", out or self.out])

    def generated(self, out=None):
        out = out or self.out
        if not os.path.isdir(out):
            return []
        return sorted(n for n in os.listdir(out))

    def assertFails(self, *inputs):
        rc, err = self.gen(*inputs)
        self.assertEqual(rc, 1, err)
        self.assertIn("tablium-gen: nothing written", err)
        self.assertEqual(self.generated(), [], "files written despite the error")
        return err

    def assertOk(self, *inputs, out=None):
        rc, err = self.gen(*inputs, out=out)
        self.assertEqual(rc, 0, err)
        out = out or self.out
        name = os.path.basename(out)
        self.assertEqual(self.generated(out), [name + ".c", name + ".h"])
        with open(os.path.join(out, name + ".h"), encoding="utf-8") as f:
            h = f.read()
        with open(os.path.join(out, name + ".c"), encoding="utf-8") as f:
            c = f.read()
        return h, c


class SyntaxErrors(CliCase):
    def test_invalid_json(self):
        path = self.write("bad.json", '{\n  "type": "object",\n  "properties": {\n'
                                      '    "a": {"type": "string"},\n  }\n}\n')
        err = self.assertFails(path)
        self.assertIn("%s:5:3: error: invalid JSON" % path, err)

    def test_invalid_json_keeps_existing_output(self):
        path = self.write("rec.json", {"type": "object",
                                       "properties": {"a": {"type": "string"}}})
        h, c = self.assertOk(path)
        self.write("rec.json", '{"type": "object",\n "properties": {"a": {"type": "string"}}\n')
        rc, err = self.gen(path)
        self.assertEqual(rc, 1)
        self.assertIn("%s:3:1: error: invalid JSON" % path, err)
        self.assertEqual(self.generated(), ["out.c", "out.h"])  # no .tmp left either
        with open(os.path.join(self.out, "out.h"), encoding="utf-8") as f:
            self.assertEqual(f.read(), h)

    def test_invalid_json_in_existing_empty_out_folder(self):
        os.makedirs(self.out)
        path = self.write("bad.json", "[1, 2,,]")
        err = self.assertFails(path)
        self.assertIn("%s:1:7: error: invalid JSON" % path, err)

    def test_invalid_json_in_referenced_file(self):
        main = self.write("main.json", {"type": "object",
                                        "properties": {"a": {"$ref": "other.json"}}})
        other = self.write("other.json", '{\n  "type": "string",,\n}\n')
        err = self.assertFails(main)
        self.assertIn("%s:2:20: error: invalid JSON" % other, err)

    def test_invalid_yaml(self):
        path = self.write("bad.yaml", "type: object\nproperties:\n  a: [1, 2\n  b: {\n")
        err = self.assertFails(path)
        self.assertIn("%s:4:4: error: invalid YAML" % path, err)

    def test_invalid_yaml_indentation(self):
        path = self.write("bad.yml", "type: object\nproperties:\n  a:\n    type: string\n"
                                     "   bad: 1\n")
        err = self.assertFails(path)
        self.assertRegex(err, r"bad\.yml:5:\d+: error: invalid YAML")

    def test_yaml_dates_stay_strings(self):
        path = self.write("d.yaml", "type: string\nconst: 2024-01-01\n")
        h, c = self.assertOk(path)
        self.assertIn('"2024-01-01"', c)

    def test_missing_file(self):
        path = os.path.join(self.tmp, "nope.json")
        err = self.assertFails(path)
        self.assertIn("%s: error: cannot read" % path, err)

    def test_no_schema_files(self):
        os.makedirs(os.path.join(self.tmp, "empty"))
        with open(os.path.join(self.tmp, "empty", "readme.txt"), "w") as f:
            f.write("not a schema")
        err = self.assertFails(os.path.join(self.tmp, "empty"))
        self.assertIn("tablium-gen: no schema files in", err)

    def test_usage_error(self):
        rc, err = support.run_cli(["schemas", "x.json"])  # -o is required
        self.assertEqual(rc, 2)
        self.assertIn("-o", err)


class ReferenceErrors(CliCase):
    def test_unresolvable_pointer(self):
        path = self.write("s.json", {"properties": {"a": {"$ref": "#/$defs/missing"}}})
        err = self.assertFails(path)
        self.assertIn(path, err)
        self.assertIn("#/properties/a/$ref", err)
        self.assertIn("cannot resolve", err)
        self.assertIn("%s: #/properties/a/$ref: error: cannot resolve $ref '#/$defs/missing'"
                      % path, err)

    def test_unresolvable_anchor(self):
        path = self.write("s.json", {"$defs": {"d": {"items": {"$ref": "#nowhere"}}}})
        err = self.assertFails(path)
        self.assertIn("%s: #/$defs/d/items/$ref: error: cannot resolve" % path, err)
        self.assertIn("anchor", err)

    def test_missing_sibling_file(self):
        path = self.write("s.json", {"properties": {"a": {"$ref": "gone.json#/$defs/x"}}})
        err = self.assertFails(path)
        self.assertIn("%s: #/properties/a/$ref: error: cannot resolve" % path, err)
        self.assertIn("gone.json", err)

    def test_unmapped_https_reference(self):
        path = self.write("s.json", {"properties": {
            "a": {"$ref": "https://elsewhere.example.test/x.json"}}})
        err = self.assertFails(path)
        self.assertIn("#/properties/a/$ref", err)
        self.assertIn("cannot resolve", err)

    def test_pointer_with_escapes_in_diagnostic(self):
        path = self.write("s.json", {"properties": {"a/b~c": {"$ref": "#/$defs/missing"}}})
        err = self.assertFails(path)
        self.assertIn("#/properties/a~1b~0c/$ref", err)

    def test_regression_only_first_unresolvable_ref_reported(self):
        # Regression (fixed): the validator compiler collects every diagnostic, but TypeBuilder
        # (ir/types.py, _deref via loader.resolve) raises on the first unresolvable $ref of a
        # struct member, so the second one below is never reported.
        path = self.write("s.json", {"properties": {"a": {"$ref": "#/$defs/m1"},
                                                    "b": {"$ref": "#/$defs/m2"}}})
        err = self.assertFails(path)
        self.assertIn("#/properties/a/$ref", err)
        self.assertIn("#/properties/b/$ref", err)


class KeywordErrors(CliCase):
    def test_invalid_pattern(self):
        path = self.write("s.json", {"properties": {"a": {"type": "string", "pattern": "(abc"}}})
        err = self.assertFails(path)
        self.assertIn("%s: #/properties/a/pattern: error: cannot compile pattern '(abc'" % path,
                      err)

    def test_invalid_pattern_in_defs(self):
        path = self.write("s.json", {"$defs": {"code": {"type": "string", "pattern": "[a-"}}})
        err = self.assertFails(path)
        self.assertIn("#/$defs/code/pattern", err)
        self.assertIn("cannot compile pattern", err)

    def test_invalid_pattern_property(self):
        path = self.write("s.json", {"type": "object", "patternProperties": {"(": {}}})
        err = self.assertFails(path)
        self.assertIn("#/patternProperties", err)
        self.assertIn("cannot compile pattern", err)

    def test_wrong_keyword_types(self):
        path = self.write("s.json", {"type": "object", "required": "x", "properties": {
            "a": {"minimum": "3"}, "b": {"type": "strng"}}})
        err = self.assertFails(path)
        self.assertIn("%s: #/properties/a/minimum: error: minimum must be a number, got \"3\""
                      % path, err)
        self.assertIn("%s: #/required: error: required must be an array of strings" % path, err)
        self.assertIn("%s: #/properties/b/type: error: type must be one of" % path, err)
        self.assertIn('got "strng"', err)

    def test_each_wrong_type_alone(self):
        cases = [
            ({"minimum": "3"}, "#/minimum", "minimum must be a number"),
            ({"required": "x"}, "#/required", "required must be an array of strings"),
            ({"required": [1]}, "#/required", "required must be an array of strings"),
            ({"type": "strng"}, "#/type", "type must be one of"),
            ({"type": ["string", 3]}, "#/type", "type must be one of"),
            ({"maxLength": -1}, "#/maxLength", "maxLength must be a non-negative integer"),
            ({"minItems": 1.5}, "#/minItems", "minItems must be a non-negative integer"),
            ({"multipleOf": 0}, "#/multipleOf", "multipleOf must be > 0"),
            ({"enum": "a"}, "#/enum", "enum must be an array"),
            ({"items": 3}, "#/items", "must be a schema"),
            ({"allOf": []}, "#/allOf", "allOf must be a non-empty array of schemas"),
            ({"properties": []}, "#/properties", "properties must be an object"),
        ]
        for schema, pointer, reason in cases:
            with self.subTest(schema=schema):
                path = self.write("s.json", schema)
                err = self.assertFails(path)
                self.assertIn("%s: %s: error: %s" % (path, pointer, reason), err)

    def test_regression_non_string_ref_crashes(self):
        # Regression (fixed): {"properties": {"a": {"$ref": 3}}} (or {"$ref": 3}) makes TypeBuilder._deref
        # call loader.resolve(3, ...), and uri.split raises TypeError: the CLI dies with a
        # Python traceback instead of the diagnostic "#/properties/a/$ref: error: $ref must
        # be a string" that the validator compiler already produced.
        path = self.write("s.json", {"properties": {"a": {"$ref": 3}}})
        err = self.assertFails(path)
        self.assertIn("%s: #/properties/a/$ref: error: $ref must be a string" % path, err)

    def test_nested_pointer(self):
        path = self.write("s.json", {"properties": {"list": {"type": "array", "items": {
            "properties": {"n": {"exclusiveMaximum": True}}}}}})
        err = self.assertFails(path)
        self.assertIn("#/properties/list/items/properties/n/exclusiveMaximum", err)


class RelativeReferences(CliCase):
    def assertEnumField(self, h):
        self.assertIn("typedef enum shade {", h)
        self.assertIn('SHADE_RED = 0, /* "red" */', h)
        self.assertIn("typedef struct item {", h)
        self.assertIn('    shade x; /* "x", required */', h)

    def test_sibling_file(self):
        a = self.write("s/item.json", {"type": "object", "required": ["x"],
                                    "properties": {"x": {"$ref": "shades.json#/$defs/shade"}}})
        self.write("s/shades.json", {"$defs": {"shade": {"type": "string", "enum": ["red", "blue"]}}})
        h, c = self.assertOk(a)
        self.assertEnumField(h)
        self.assertIn("/* ---- shade: shades.json#/$defs/shade ---- */", h)

    def test_sibling_file_with_https_ids(self):
        a = self.write("s/item.json", {
            "$id": "https://schemas.example.test/s/item.json", "type": "object",
            "required": ["x"], "properties": {"x": {"$ref": "shades.json#/$defs/shade"}}})
        self.write("s/shades.json", {
            "$id": "https://schemas.example.test/s/shades.json",
            "$defs": {"shade": {"type": "string", "enum": ["red", "blue"]}}})
        h, c = self.assertOk(a)
        self.assertEnumField(h)

    def test_other_folder_with_https_ids(self):
        # $id folders differ from the local ones above the common suffix
        a = self.write("proj/schemas/events/item.json", {
            "$id": "https://schemas.example.test/v1/events/item.json", "type": "object",
            "required": ["x"], "properties": {"x": {"$ref": "../common/shades.json#/$defs/shade"}}})
        self.write("proj/schemas/common/shades.json", {
            "$id": "https://schemas.example.test/v1/common/shades.json",
            "$defs": {"shade": {"type": "string", "enum": ["red", "blue"]}}})
        h, c = self.assertOk(a)
        self.assertEnumField(h)

    def test_https_id_without_matching_folder_fails_cleanly(self):
        a = self.write("s/item.json", {
            "$id": "https://schemas.example.test/s/item.json",
            "properties": {"x": {"$ref": "shades.json#/$defs/shade"}}})
        err = self.assertFails(a)
        self.assertIn("#/properties/x/$ref", err)
        self.assertIn("https://schemas.example.test/s/shades.json", err)

    def test_folder_input_with_cross_references(self):
        self.write("s/item.json", {"type": "object", "required": ["x"],
                                "properties": {"x": {"$ref": "shades.json#/$defs/shade"}}})
        self.write("s/shades.json", {"$defs": {"shade": {"type": "string", "enum": ["red", "blue"]}}})
        h, c = self.assertOk(os.path.join(self.tmp, "s"))
        self.assertEnumField(h)
        self.assertEqual(h.count("typedef enum shade {"), 1)

    def test_anchor_reference(self):
        a = self.write("s/item.json", {"type": "object",
                                    "properties": {"x": {"$ref": "shades.json#colour"}}})
        self.write("s/shades.json", {"$defs": {"c": {"$anchor": "colour", "enum": ["red"]}}})
        h, c = self.assertOk(a)
        self.assertIn('"red"', h)

    def test_regression_file_reached_by_id_then_loaded_is_duplicated(self):
        # Regression (fixed): a file with an https $id that is first reached through a $ref (via the
        # $id -> folder mapping, under its https URI) and then loaded as an input file (under
        # its file:// URI) is parsed and indexed twice, so its $defs become two identical C
        # types: "colour" and "colour_2" (and its validators are compiled twice).
        self.write("s/a_events/ev.json", {
            "$id": "https://schemas.example.test/s/a_events/ev.json", "type": "object",
            "properties": {"c": {"$ref": "../z_common/b.json#/$defs/colour"}}})
        self.write("s/z_common/b.json", {
            "$id": "https://schemas.example.test/s/z_common/b.json",
            "$defs": {"colour": {"type": "string", "enum": ["red", "blue"]}}})
        h, c = self.assertOk(os.path.join(self.tmp, "s"))
        self.assertEqual(h.count("typedef enum colour"), 1, h)


class UserProject(CliCase):
    """The generator used on a user's own schemas, in a folder outside the repository."""

    def make_project(self):
        proj = os.path.join(self.tmp, "my-service")
        self.write("my-service/api/schemas/pet.json", {
            "$id": "https://api.example.test/schemas/pet.json",
            "title": "Pet", "type": "object", "required": ["id", "name", "kind"],
            "properties": {
                "id": {"type": "integer", "minimum": 1},
                "name": {"type": "string", "minLength": 1},
                "kind": {"$ref": "common.json#/$defs/kind"},
                "owner": {"$ref": "common.json#/$defs/owner"},
            }})
        self.write("my-service/api/schemas/common.json", {
            "$id": "https://api.example.test/schemas/common.json",
            "$defs": {
                "kind": {"type": "string", "enum": ["cat", "dog"]},
                "owner": {"type": "object", "required": ["email"], "properties": {
                    "email": {"type": "string", "format": "email"}}},
            }})
        self.write("my-service/api/schemas/tag.yaml",
                   "type: object\nproperties:\n  label:\n    type: string\n")
        return proj

    def test_in_process_from_project_folder(self):
        proj = self.make_project()
        with support.cwd(proj):
            rc, err = support.run_cli(["schemas", "api/schemas", "-o", "gen/pets"])
        self.assertEqual(rc, 0, err)
        self.assertEqual(sorted(os.listdir(os.path.join(proj, "gen", "pets"))),
                         ["pets.c", "pets.h"])
        with open(os.path.join(proj, "gen", "pets", "pets.h"), encoding="utf-8") as f:
            h = f.read()
        self.assertIn("Generated by tablium-gen from api/schemas.", h)
        self.assertIn("/* ---- pet: api/schemas/pet.json ---- */", h)
        self.assertIn("typedef struct pet {", h)
        self.assertIn("typedef enum kind {", h)
        self.assertIn("typedef struct owner {", h)
        self.assertIn("typedef struct tag {", h)
        self.assertIn("#define TB_GEN_PETS_H", h)
        self.assertNotIn(support.REPO, h)

    def test_real_script_from_project_folder(self):
        proj = self.make_project()
        env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
        p = subprocess.run([support.PYTHON, support.GEN_SCRIPT, "schemas", "api/schemas",
                            "-o", "out", "--name", "petStore"], cwd=proj, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        self.assertEqual(sorted(os.listdir(os.path.join(proj, "out"))),
                         ["pet_store.c", "pet_store.h"])
        with open(os.path.join(proj, "out", "pet_store.c"), encoding="utf-8") as f:
            c = f.read()
        self.assertIn('#include "pet_store.h"', c)
        self.assertNotIn(support.REPO, c)

    def test_real_script_reports_errors(self):
        path = self.write("x/bad.json", '{"type": "object",}')
        p = subprocess.run([support.PYTHON, support.GEN_SCRIPT, "schemas", path, "-o",
                            self.out], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=60)
        self.assertEqual(p.returncode, 1)
        self.assertIn("%s:1:19: error: invalid JSON" % path, p.stderr.decode())
        self.assertFalse(os.path.exists(self.out))

    def test_paths_outside_cwd_shown_as_file_names(self):
        proj = self.make_project()
        with support.cwd(support.REPO):
            rc, err = support.run_cli(["schemas", os.path.join(proj, "api", "schemas", "pet.json"),
                                       "-o", self.out])
        self.assertEqual(rc, 0, err)
        with open(os.path.join(self.out, "out.h"), encoding="utf-8") as f:
            h = f.read()
        self.assertIn("Generated by tablium-gen from pet.json.", h)
        self.assertNotIn(self.tmp, h)


if __name__ == "__main__":
    unittest.main()
