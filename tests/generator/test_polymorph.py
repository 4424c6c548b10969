"""polymorph.rewrite: an allOf hierarchy under a base with a discriminator becomes a tagged union
(the base's __base copy first, then every subtype, each with its tag). Behaviour through the
generated C is in tests/unit/test_polymorph.c and the round trip of tests/specs/polymorph.yaml;
these check the document the rewrite leaves on the shapes real specs have."""
import copy
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "generator"))

from tablium_gen.ir import polymorph  # noqa: E402

R = "#/components/schemas/"


def doc(schemas, paths=None):
    return {"openapi": "3.0.3", "paths": paths or {}, "components": {"schemas": schemas}}


def base(prop="kind", **kw):
    d = {"type": "object", "required": [prop], "properties": {prop: {"type": "string"}},
         "discriminator": {"propertyName": prop}}
    d.update(kw)
    return d


def sub(parent, **props):
    return {"allOf": [{"$ref": R + parent}, {"type": "object", "properties": props}]}


class Rewrite(unittest.TestCase):
    def test_opting_out_keeps_the_literal_reading(self):
        for d in (doc({"Pet": base(**{"x-tablium-polymorphic": False}), "Cat": sub("Pet"),
                       "Box": base(), "Crate": sub("Box")}),
                  dict(doc({"Pet": base(), "Cat": sub("Pet")}), **{"x-tablium-polymorphic": False})):
            before = copy.deepcopy(d)
            made = polymorph.rewrite(d)
            kept = d["components"]["schemas"]["Pet"]
            self.assertEqual(kept, before["components"]["schemas"]["Pet"])
            self.assertEqual(d["components"]["schemas"]["Cat"]["allOf"][0]["$ref"], R + "Pet")
            self.assertNotIn("Pet", made)
            self.assertEqual(made, ["Box"] if "Box" in before["components"]["schemas"] else [])

    def test_base_becomes_union_of_its_subtypes_and_itself(self):
        d = doc({"Pet": base(description="a pet"), "Cat": sub("Pet", claws={"type": "boolean"}),
                 "Dog": sub("Pet"), "Lion": sub("Cat")})
        self.assertEqual(polymorph.rewrite(d), ["Pet"])
        s = d["components"]["schemas"]
        self.assertEqual([b["$ref"] for b in s["Pet"]["oneOf"]],
                         [R + "Pet__base", R + "Cat", R + "Dog", R + "Lion"])
        self.assertEqual(s["Pet"]["discriminator"]["mapping"],
                         {"Pet": R + "Pet__base", "Cat": R + "Cat", "Dog": R + "Dog",
                          "Lion": R + "Lion"})
        self.assertEqual(s["Pet"][polymorph.DEFAULT], R + "Pet__base")
        self.assertEqual(s["Pet"]["description"], "a pet")
        self.assertNotIn("properties", s["Pet"])
        # the copy keeps the members, not the discriminator; the subtypes extend the copy
        self.assertEqual(s["Pet__base"]["properties"], {"kind": {"type": "string"}})
        self.assertNotIn("discriminator", s["Pet__base"])
        self.assertEqual(s["Cat"]["allOf"][0], {"$ref": R + "Pet__base"})
        self.assertEqual(s["Lion"]["allOf"][0], {"$ref": R + "Cat"})  # Cat is no base

    def test_tags_from_mapping_then_azure_then_names(self):
        d = doc({"Job": base("@odata.type", **{"x-ms-discriminator-value": "#job"}),
                 "Copy": sub("Job"), "Move": dict(sub("Job"), **{"x-ms-discriminator-value": "#mv"}),
                 "Del": sub("Job")})
        d["components"]["schemas"]["Job"]["discriminator"]["mapping"] = {
            "#copy": R + "Copy", "#cp": "Copy", "#self": R + "Job"}
        polymorph.rewrite(d)
        m = d["components"]["schemas"]["Job"]["discriminator"]["mapping"]
        self.assertEqual(m, {"#self": R + "Job__base", "#copy": R + "Copy", "#cp": R + "Copy",
                             "#mv": R + "Move", "Del": R + "Del"})
        # the base's own x-ms-discriminator-value is not added: the mapping named it already

    def test_unique_base_name_and_untouched_schemas(self):
        d = doc({"A": base(), "A__base": {"type": "string"}, "B": sub("A"),
                 "Lonely": base(), "Poly": dict(base(), oneOf=[{"$ref": R + "B"}])})
        before = copy.deepcopy(d["components"]["schemas"])
        self.assertEqual(polymorph.rewrite(d), ["A"])
        s = d["components"]["schemas"]
        self.assertEqual(s["A__base"], {"type": "string"})
        self.assertEqual(s["A"]["oneOf"][0], {"$ref": R + "A__base2"})
        self.assertEqual(s["B"]["allOf"][0], {"$ref": R + "A__base2"})
        # a base no schema extends, and a discriminator beside its own oneOf, stay as written
        self.assertEqual(s["Lonely"], before["Lonely"])
        self.assertEqual(s["Poly"], before["Poly"])

    def test_inline_references(self):
        paths = {"/p": {"post": {"requestBody": {"content": {"application/json": {"schema": {
            "type": "object", "properties": {
                "annotated": {"allOf": [{"$ref": R + "Pet"}], "description": "any pet"},
                "extended": {"allOf": [{"$ref": R + "Pet"}, {"required": ["x"]}]},
                "plain": {"$ref": R + "Pet"},
                "default": {"allOf": [{"$ref": R + "Pet"}, {"required": ["y"]}]}},
            "example": {"allOf": [{"$ref": R + "Pet"}, {}]}}}}}}}}
        d = doc({"Pet": base(), "Cat": sub("Pet")}, paths)
        polymorph.rewrite(d)
        props = d["paths"]["/p"]["post"]["requestBody"]["content"]["application/json"][
            "schema"]["properties"]
        self.assertEqual(props["annotated"]["allOf"], [{"$ref": R + "Pet"}])  # still any pet
        self.assertEqual(props["extended"]["allOf"][0], {"$ref": R + "Pet__base"})
        self.assertEqual(props["plain"], {"$ref": R + "Pet"})
        # a property named like a keyword is a schema; an example is an instance, left alone
        self.assertEqual(props["default"]["allOf"][0], {"$ref": R + "Pet__base"})
        self.assertEqual(d["paths"]["/p"]["post"]["requestBody"]["content"]["application/json"][
            "schema"]["example"]["allOf"][0], {"$ref": R + "Pet"})

    def test_nested_hierarchies(self):
        # Azure: an intermediate type with its own discriminator (the same property) under a
        # base; each is a union, the intermediate's subtypes are the outer base's subtypes too
        d = doc({"Top": base(), "Mid": dict(base(), allOf=[{"$ref": R + "Top"}]),
                 "Leaf": sub("Mid"), "Other": sub("Top")})
        self.assertEqual(polymorph.rewrite(d), ["Mid", "Top"])
        s = d["components"]["schemas"]
        self.assertEqual([b["$ref"] for b in s["Top"]["oneOf"]],
                         [R + "Top__base", R + "Mid", R + "Other", R + "Leaf"])
        self.assertEqual([b["$ref"] for b in s["Mid"]["oneOf"]], [R + "Mid__base", R + "Leaf"])
        self.assertEqual(s["Mid__base"]["allOf"], [{"$ref": R + "Top__base"}])
        self.assertEqual(s["Leaf"]["allOf"][0], {"$ref": R + "Mid__base"})

    def test_names_that_need_escaping_and_cycles(self):
        d = doc({"a/b": base(), "c~d": sub("a~1b"), "x": sub("y"), "y": sub("x")})
        self.assertEqual(polymorph.rewrite(d), ["a/b"])
        s = d["components"]["schemas"]
        self.assertEqual(s["c~d"]["allOf"][0], {"$ref": R + "a~1b__base"})
        self.assertEqual(s["a/b"]["discriminator"]["mapping"]["c~d"], R + "c~0d")

    def test_not_an_openapi_document(self):
        self.assertEqual(polymorph.rewrite([]), [])
        self.assertEqual(polymorph.rewrite({"components": {"schemas": []}}), [])


if __name__ == "__main__":
    unittest.main()
