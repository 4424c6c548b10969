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
"""
from ..errors import Diagnostic
from ..load.uri import pointer_escape


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
        return self.warnings

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
            if k in ("example", "examples", "default", "enum", "const"):
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
