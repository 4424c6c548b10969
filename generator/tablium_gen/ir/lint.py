"""Lint of an OpenAPI document: schemas that can never validate, or that do not say what their
author meant, and operations that collide. Warnings (the spec still compiles), each with its
file and JSON pointer, printed by tablium-gen and listed by `--lint` runs.

  allof-closed       a branch of allOf with additionalProperties: false, while a sibling branch
                     or the parent declares other properties: an object holding those can never
                     validate (each branch sees the whole object)
  required-undeclared  required names a property that properties does not declare, while
                     additionalProperties is false: no object can validate
  duplicate-operationId  two operations share an operationId: clients and handlers of the second
                     get another name than the spec's
  example-invalid    an example (of a schema, a parameter or a media type) that its own schema
                     refuses, as an independent validator (python3-jsonschema) judges it: the
                     contract tests that replay examples would fail on it
  default-invalid    a schema's default that the schema refuses (a word for an integer, a value
                     outside its enum): a parameter left out gets it, and a client or server
                     that fills it in sends what the contract forbids
"""
import copy
import os
from ..errors import Diagnostic
from ..load.loader import INSTANCE_KEYS, NAME_MAPS
from ..load.uri import pointer_escape
from .polymorph import DEFAULT


def _props(node):
    p = node.get("properties") if isinstance(node, dict) else None
    return set(p) if isinstance(p, dict) else set()


def _closed(node):
    return isinstance(node, dict) and node.get("additionalProperties") is False and not \
        node.get("patternProperties")


class Linter:
    def __init__(self, loader, root, file):
        self.loader = loader
        self.root = root
        self.file = file
        self.warnings = []
        self._seen = set()

    def warn(self, pointer, code, reason):
        self.warnings.append(Diagnostic(self.file, pointer, "%s: %s" % (code, reason),
                                        severity="warning"))

    def deref(self, node):
        for _ in range(16):
            if not (isinstance(node, dict) and isinstance(node.get("$ref"), str)):
                return node
            try:
                node = self.loader.resolve(node["$ref"], node)
            except Exception:  # reported by the compiler
                return None
        return node

    def run(self):
        self.walk(self.root, "")
        self.operation_ids()
        self.examples()
        return self.warnings

    # ---- examples, judged by python3-jsonschema (when installed) ----

    def examples(self):
        try:
            import jsonschema
        except ImportError:
            return
        cls, resolver, doc = independent_validator(jsonschema, self.file, self.root,
                                                   bounded_patterns=True)
        found = []
        self._find_examples(doc, "", found)
        for schema, value, ptr in found[:500]:
            try:
                v = cls(schema, resolver=resolver)
                err = jsonschema.exceptions.best_match(v.iter_errors(value))
            except Exception:  # an unresolvable $ref or a bad schema: the compiler reports it
                continue
            if err is not None:
                at = "/" + "/".join(str(x) for x in err.absolute_path)
                what = "default" if ptr.endswith("/default") else "example"
                self.warn(ptr, what + "-invalid", "the %s does not match its schema: %s: %s" % (
                    what, at if at != "/" else "the value", err.message[:200]))

    def _find_examples(self, node, ptr, out, depth=0, in_map=False):
        """(schema, example, pointer) of every example; in_map: node is a name -> object map
        (its keys are names, not keywords)."""
        if depth > 64:
            return
        if isinstance(node, list):
            for i, x in enumerate(node):
                self._find_examples(x, "%s/%d" % (ptr, i), out, depth + 1)
            return
        if not isinstance(node, dict):
            return
        if not in_map:
            sch = node.get("schema")
            if isinstance(sch, (dict, bool)):
                # a parameter, header or media type: example, or examples {name: {value}}
                if "example" in node:
                    out.append((sch, node["example"], ptr + "/example"))
                ex = node.get("examples")
                if isinstance(ex, dict):
                    for name, e in ex.items():
                        if isinstance(e, dict) and "value" in e:
                            out.append((sch, e["value"], "%s/examples/%s/value"
                                        % (ptr, pointer_escape(str(name)))))
            elif any(k in node for k in ("type", "properties", "$ref", "allOf", "oneOf",
                                         "anyOf", "items", "enum")):
                # a schema: example (3.0) or examples [..] (3.1), and its default
                if "example" in node:
                    out.append((node, node["example"], ptr + "/example"))
                if "default" in node:
                    out.append((node, node["default"], ptr + "/default"))
                ex = node.get("examples")
                if isinstance(ex, list):
                    for i, e in enumerate(ex):
                        out.append((node, e, "%s/examples/%d" % (ptr, i)))
        for k, v in node.items():
            if not in_map and k in INSTANCE_KEYS:
                continue
            self._find_examples(v, "%s/%s" % (ptr, pointer_escape(str(k))), out, depth + 1,
                                in_map=not in_map and k in NAME_MAPS)

    def walk(self, node, ptr):
        if isinstance(node, list):
            for i, x in enumerate(node):
                self.walk(x, "%s/%d" % (ptr, i))
            return
        if not isinstance(node, dict) or id(node) in self._seen:
            return
        self._seen.add(id(node))
        self.schema(node, ptr)
        for k, v in node.items():
            if k in INSTANCE_KEYS:
                continue  # data, not schemas
            self.walk(v, "%s/%s" % (ptr, pointer_escape(str(k))))

    def schema(self, node, ptr):
        all_of = node.get("allOf")
        if isinstance(all_of, list):
            branches = [self.deref(b) for b in all_of]
            declared = [_props(b) for b in branches]
            parent = _props(node)
            for i, b in enumerate(branches):
                if not _closed(b):
                    continue
                others = set(parent)
                for j, d in enumerate(declared):
                    if j != i:
                        others |= d
                extra = sorted(others - declared[i])
                if extra:
                    self.warn("%s/allOf/%d" % (ptr, i), "allof-closed",
                              "additionalProperties: false here refuses %s, which %s declares: "
                              "an object with %s can never validate (merge the branches, or use "
                              "unevaluatedProperties: false on the parent)"
                              % (", ".join(repr(x) for x in extra[:5]),
                                 "a sibling branch" if not (parent & set(extra)) else "the parent",
                                 "them" if len(extra) > 1 else "it"))
        req = node.get("required")
        if isinstance(req, list) and _closed(node) and "allOf" not in node:
            missing = [r for r in req if isinstance(r, str) and r not in _props(node)]
            if missing:
                self.warn(ptr + "/required", "required-undeclared",
                          "%s %s required but not in properties, and additionalProperties is "
                          "false: no object can validate"
                          % (", ".join(repr(x) for x in missing),
                             "is" if len(missing) == 1 else "are"))

    def operation_ids(self):
        seen = {}
        paths = self.root.get("paths") if isinstance(self.root, dict) else None
        if not isinstance(paths, dict):
            return
        for tmpl, item in paths.items():
            if not isinstance(item, dict):
                continue
            for method, op in item.items():
                if not isinstance(op, dict) or "responses" not in op:
                    continue
                oid = op.get("operationId")
                ptr = "/paths/%s/%s/operationId" % (pointer_escape(tmpl), method)
                if not isinstance(oid, str):
                    continue
                if oid in seen:
                    self.warn(ptr, "duplicate-operationId",
                              "operationId %r is also %s" % (oid, seen[oid]))
                else:
                    seen[oid] = ptr

def independent_validator(jsonschema, path, root, extra=None, bounded_patterns=False):
    """python3-jsonschema set up for an OpenAPI document: (validator class, resolver, the
    document as that validator reads it). OpenAPI 3.0 schemas become draft 4 (nullable ->
    "null" in type); `extra(doc)` transforms every document further; $refs to other files load
    them the same way. `bounded_patterns`: `pattern` is matched by PCRE2 within the runtime's
    match limit (a pattern it cannot judge passes), not by Python's unbounded re: generation
    must not hang on a spec's catastrophic pattern (beezup's URL pattern took over 10 minutes
    on its own example)."""
    from ..load.loader import parse_text
    oas30 = isinstance(root, dict) and str(root.get("openapi", "")).startswith("3.0")

    def prepare(d):
        if oas30:
            _oas30_to_draft4(d)
        _by_tag(d)
        if extra:
            extra(d)
        return d

    def load(uri):
        file = uri[len("file://"):].split("#")[0]
        with open(file, encoding="utf-8") as f:
            return prepare(parse_text(f.read(), file))

    doc = prepare(copy.deepcopy(root))
    cls = jsonschema.Draft4Validator if oas30 else jsonschema.Draft202012Validator
    if bounded_patterns:
        from .regex import pcre2_search

        def pattern(validator, patrn, instance, schema):
            if validator.is_type(instance, "string") and isinstance(patrn, str) and \
                    pcre2_search(patrn, instance) is False:
                yield jsonschema.exceptions.ValidationError(
                    "%r does not match %r" % (instance, patrn))

        cls = jsonschema.validators.extend(cls, {"pattern": pattern})
    resolver = jsonschema.RefResolver("file://" + os.path.abspath(path), doc,
                                      handlers={"file": load})
    return cls, resolver, doc


def _by_tag(node, depth=0):
    """The unions polymorph.rewrite makes of allOf hierarchies, judged as tablium judges them:
    the discriminator's value names the one branch the value must match (a subtype matches its
    base too, so oneOf would refuse every value); a value without one, or with one no branch is
    tagged with, is judged against the default (base) branch."""
    if depth > 200:
        return
    if isinstance(node, dict):
        d = node.get("discriminator")
        if (isinstance(node.get(DEFAULT), str) and isinstance(node.get("oneOf"), list)
                and isinstance(d, dict) and isinstance(d.get("mapping"), dict)):
            prop, mapping = d.get("propertyName"), d["mapping"]
            node.pop("oneOf")
            # (anyOf of guarded branches: draft 4, OpenAPI 3.0's dialect here, has no if/then)
            rules = [{"required": [prop], "properties": {prop: {"enum": [tag]}},
                      "allOf": [{"$ref": ref}]} for tag, ref in mapping.items()]
            # no value or another: the base (which may require one)
            rules.append({"properties": {prop: {"not": {"enum": list(mapping)}}},
                          "allOf": [{"$ref": node[DEFAULT]}]})
            node["type"] = "object"
            node["anyOf"] = rules
        for k, v in node.items():
            if k not in INSTANCE_KEYS:
                _by_tag(v, depth + 1)
    elif isinstance(node, list):
        for v in node:
            _by_tag(v, depth + 1)


def _oas30_to_draft4(node):
    """OpenAPI 3.0's schema dialect as draft 4: nullable: true adds "null" to the type; beside
    allOf, oneOf, anyOf or $ref without a type (common practice, which tablium's validators and
    C types honour too) it makes the schema {"anyOf": [{"type": "null"}, the schema]}."""
    if isinstance(node, dict):
        if node.get("nullable") is True and "type" not in node and any(
                k in node for k in ("allOf", "oneOf", "anyOf", "$ref")):
            rest = {k: v for k, v in node.items() if k != "nullable"}
            node.clear()
            node["anyOf"] = [{"type": "null"}, rest]
            _oas30_to_draft4(rest)
            return
        if node.get("nullable") is True:
            t = node.get("type")
            if isinstance(t, str):
                node["type"] = [t, "null"]
            elif isinstance(t, list) and "null" not in t:
                node["type"] = t + ["null"]
            if isinstance(node.get("enum"), list) and None not in node["enum"]:
                node["enum"] = node["enum"] + [None]
        for k, v in node.items():
            if k not in INSTANCE_KEYS:
                _oas30_to_draft4(v)
    elif isinstance(node, list):
        for v in node:
            _oas30_to_draft4(v)
