"""IR of C types for named schemas: structs with presence flags, enums, arrays, scalars.

A named schema is the root of a schema file (named by `x-tablium-name`, else the file name) or an
entry of its `$defs`. Inline objects become nested named structs (<parent>_<field>). A schema
with no single static C type (mixed types, maps, free-form) is carried as `json_t *`.
"""
import json

from ..errors import Diagnostic, GenError
from . import cnames


class CType:
    """kind: string | integer | number | boolean | json | enum | struct | array."""

    def __init__(self, kind, ref=None, item=None):
        self.kind = kind
        self.ref = ref    # NamedType for enum/struct
        self.item = item  # CType for array

    @property
    def decl(self):
        return {
            "string": "char *", "integer": "int64_t ", "number": "double ",
            "boolean": "bool ", "json": "json_t *", "apierror": "tb_api_error ",
            "bytes": "tb_bytes ",
        }.get(self.kind) or (self.ref.cname + " " if self.kind in ("enum", "struct") else None)


class Field:
    def __init__(self, json_name, cname, ctype, required, nullable, description):
        self.json_name = json_name
        self.cname = cname
        self.ctype = ctype
        self.required = required
        self.nullable = nullable
        self.description = description
        self.lit = None
        self.len = None


class NamedType:
    def __init__(self, kind, cname, node, where):
        self.kind = kind  # struct | enum
        self.cname = cname
        self.node = node
        self.where = where
        self.fields = []
        self.values = []  # enum: (json string, C constant, C literal, byte length)
        self.description = None
        self.validator = None  # Sub of the validator function
        self.public = True  # declared with full API (parse/validate/...)
        self.deps = []
        self.exported = False  # of this unit's shared schema files: descriptors are extern
        self.external = None   # of another shared unit's files: that unit emits it


def _types_of(node):
    t = node.get("type")
    if isinstance(t, str):
        return [t]
    if isinstance(t, list):
        return [x for x in t if isinstance(x, str)]
    return []


# Identifiers the generated code uses as parameters and locals, and common typedefs: a type of
# the same name would not compile (or would shadow), so such types get a suffix.
RESERVED_TYPE_NAMES = set("""a b c d e i j k m n o r s t v x y E ev kl le np ok cp cnt fn go keep
matched seen sep dpush out err buf len flags rc json_t size_t bool int8_t int16_t int32_t int64_t
uint8_t uint16_t uint32_t uint64_t tb_arena tb_buf tb_error tb_vctx tb_eval""".split())


class TypeBuilder:
    def __init__(self, loader, vcomp, prefix="", unit=None):
        self.loader = loader
        self.vcomp = vcomp
        self.prefix = prefix
        self.unit = unit  # this unit's name (schema files marked x-tablium-unit)
        self.namer = cnames.Namer(reserved=RESERVED_TYPE_NAMES)
        self.consts = cnames.Namer()  # enum constants share one C namespace
        self.by_node = {}
        self.types = []  # in dependency order (dependencies first)
        self._building = set()

    def named(self, node, name, where, public=True, prefixed=False):
        """Registers `node` as a named type. Returns the NamedType, or None for schemas whose C
        type is not a struct or an enum (those are still validated under their name).
        `prefixed`: name already carries the prefix (hints built from another type's name)."""
        if id(node) in self.by_node:
            return self.by_node[id(node)]
        target = self._deref(node)
        if target is not node and isinstance(target, dict):
            tinfo = self.loader.info(target)
            if tinfo is not None and self.loader.unit_of(tinfo.file):
                # a name for a shared unit's schema ($ref only): that type itself
                nt = self.named(target, tinfo.pointer.rsplit("/", 1)[-1] or name,
                                "%s#%s" % (cnames.short_path(tinfo.file), tinfo.pointer),
                                public=public)
                self.by_node[id(node)] = nt
                return nt
        info = self.loader.info(node)
        shared = self.loader.unit_of(info.file) if info else None
        if shared and not prefixed:
            # a shared unit's type has one name everywhere: <unit>_<name>
            cname = self.namer.take(shared + "_" + cnames.snake(name))
        else:
            cname = self.namer.take(("" if prefixed else self.prefix) + cnames.snake(name))
        kind = self._kind(node)
        if kind not in ("struct", "enum"):
            nt = NamedType("alias", cname, node, where)
            nt.ctype = self.ctype(node, cname)
        else:
            nt = NamedType(kind, cname, node, where)
        from .validators import comment_safe
        nt.where = comment_safe(where)
        nt.public = public or kind in ("struct", "enum")
        if isinstance(node, dict) and isinstance(node.get("description"), str):
            from .validators import comment_safe
            nt.description = comment_safe(node["description"])
        nt.exported = shared is not None and shared == self.unit
        nt.external = shared if shared is not None and shared != self.unit else None
        self.by_node[id(node)] = nt
        # another unit's type keeps its validator there (this one only calls it)
        nt.validator = self.vcomp.sub(node) if nt.external else self.vcomp.add_entry(cname, node)
        if kind == "struct":
            self._building.add(id(node))
            self._fill_struct(nt, node)
            self._building.discard(id(node))
        elif kind == "enum":
            from .validators import cstr, comment_safe
            for v in node["enum"]:
                const = self.consts.take(cname.upper() + "_" + cnames.upper(v))
                nt.values.append((v, const, cstr(v), len(v.encode("utf-8")),
                                  comment_safe(json.dumps(v, ensure_ascii=False))))
        self.types.append(nt)
        return nt

    def _deref(self, node):
        seen = 0
        while isinstance(node, dict) and isinstance(node.get("$ref"), str) and len(
                [k for k in node if k not in ("$ref", "description", "title", "$comment",
                                              "examples", "example", "default")]) == 0:
            try:
                node = self.loader.resolve(node["$ref"], node)
            except GenError:
                return True  # reported by the validator compiler; no static type
            seen += 1
            if seen > 32:
                break
        return node

    def _kind(self, node):
        node = self._deref(node)
        if not isinstance(node, dict):
            return "json"
        if node.get("x-tablium-c-type") == "tb_api_error":
            return "apierror"  # the error object of the envelope: the runtime's own type
        types = [t for t in _types_of(node) if t != "null"]
        enum = node.get("enum")
        if isinstance(enum, list) and enum and all(isinstance(v, str) for v in enum) and (
                types in ([], ["string"])):
            return "enum"
        if types == ["object"] or (not types and isinstance(node.get("properties"), dict)):
            if isinstance(node.get("properties"), dict) and node["properties"]:
                return "struct"
            return "json"
        if len(types) == 1:
            return types[0]
        return "json"

    def ctype(self, node, name_hint):
        target = self._deref(node)
        kind = self._kind(node)
        if kind == "apierror":
            return CType("apierror")
        if kind in ("string", "integer", "number", "boolean"):
            if kind == "string":
                self.vcomp.no_nul(target)  # a char *: U+0000 would cut it
            return CType(kind)
        if kind in ("struct", "enum"):
            if id(target) in self._building:
                return CType("json")  # recursive type: carried as JSON
            nt = self.by_node.get(id(target))
            if nt is None:
                info = self.loader.info(target)
                is_named_ref = target is not node
                name = name_hint
                prefixed = True
                if is_named_ref and info is not None and info.pointer.rsplit("/", 1)[-1]:
                    name = info.pointer.rsplit("/", 1)[-1]
                    prefixed = False
                where = "%s#%s" % (cnames.short_path(info.file), info.pointer) if info else ""
                nt = self.named(target, name, where, public=is_named_ref, prefixed=prefixed)
            return CType(kind, ref=nt)
        if kind == "array":
            items = target.get("items")
            if id(target) in self._building:
                return CType("json")  # an array that contains itself: carried as JSON
            if isinstance(items, dict) and "prefixItems" not in target:
                self._building.add(id(target))
                try:
                    item = self.ctype(items, name_hint + "_item")
                finally:
                    self._building.discard(id(target))
                if item.kind != "array":
                    return CType("array", item=item)
            return CType("json")
        return CType("json")

    @staticmethod
    def _field_name(fnamer, want, optional, nullable, array):
        """A member name whose companions (has_x, x_is_null, n_x) are free as well."""
        base = want
        i = 2
        while True:
            companions = ([("has_" + base)] if optional else []) + (
                [base + "_is_null"] if nullable else []) + (["n_" + base] if array else [])
            names = [base] + companions
            if not any(x in fnamer.used for x in names) and len(set(names)) == len(names):
                for x in names:
                    fnamer.used.add(x)
                return base
            base = "%s_%d" % (want, i)
            i += 1

    def _fill_struct(self, nt, node):
        node = self._deref(node)
        required = node.get("required") if isinstance(node.get("required"), list) else []
        fnamer = cnames.Namer(reserved={"n"})
        from .validators import cstr_bytes, comment_safe
        for pname, pnode in node["properties"].items():
            nullable = False
            if isinstance(pnode, dict):
                d = self._deref(pnode)
                if isinstance(d, dict):
                    nullable = "null" in _types_of(d) and len(_types_of(d)) == 2 or (
                        d.get("nullable") is True)
            is_array = self._kind(pnode) == "array"
            fname = self._field_name(fnamer, cnames.snake(pname), pname not in required,
                                     nullable, is_array)
            ct = self.ctype(pnode, nt.cname + "_" + fname)
            desc = pnode.get("description") if isinstance(pnode, dict) else None
            f = Field(pname, fname, ct, pname in required, nullable,
                      comment_safe(desc) if isinstance(desc, str) else None)
            f.comment_name = comment_safe(json.dumps(pname, ensure_ascii=False))
            b = pname.encode("utf-8")
            f.lit = cstr_bytes(b)
            f.len = len(b)
            kb = json.dumps(pname, ensure_ascii=False).encode("utf-8") + b":"
            f.keylit = cstr_bytes(kb)
            f.keylen = len(kb)
            if f.keylen > 0xffff:
                raise GenError([Diagnostic(nt.where.split("#")[0], "", "property name of %d "
                                           "bytes: the codec's limit is 65,000" % f.len)])
            f.cflags = " | ".join(x for x, on in (("TB_CF_REQUIRED", f.required),
                                                  ("TB_CF_NULLABLE", nullable),
                                                  ("TB_CF_ARRAY", ct.kind == "array")) if on) or "0"
            nt.fields.append(f)
