"""IR of C types for named schemas: structs with presence flags, enums, arrays, scalars,
tagged unions (oneOf/anyOf, several types), maps (additionalProperties) and merged allOf.

A named schema is the root of a schema file (named by `x-tablium-name`, else the file name) or an
entry of its `$defs`. Inline objects become nested named structs (<parent>_<field>). A member
whose type contains itself is a pointer. A schema with no static C type (free-form `{}`, an
object without properties) is carried as `json_t *`; the builder counts those (`free_form`).
"""
import json
import math

from ..errors import Diagnostic, GenError
from . import cnames


class CType:
    """kind: string | integer | number | boolean | json | enum | struct | array."""

    def __init__(self, kind, ref=None, item=None, pointer=False, null_items=False):
        self.kind = kind
        self.ref = ref    # NamedType for enum/struct/union/map
        self.item = item  # CType for array
        # a recursive reference, or an array item that may be null: held by pointer (NULL when
        # absent or null)
        self.pointer = pointer
        self.null_items = null_items  # array: items may be null (T **items; char ** for strings)
        # declared with its tag (`enum T` / `struct T`): the struct holding it has a member named
        # T, which hides the typedef name in C++ for the rest of the struct
        self.elaborate = False

    @property
    def decl(self):
        if self.kind in ("enum", "struct", "union", "map", "list"):
            tag = ("enum " if self.kind == "enum" else "struct ") if self.elaborate else ""
            return tag + self.ref.cname + (" *" if self.pointer else " ")
        base = {
            "string": "char *", "integer": "int64_t ", "number": "double ",
            "boolean": "bool ", "json": "json_t *", "apierror": "tb_api_error ",
            "bytes": "tb_bytes ",
        }.get(self.kind)
        return base + "*" if self.pointer and base else base

    @property
    def flags(self):
        """TB_CF_* of a member of this type (without REQUIRED/NULLABLE)."""
        return [x for x, on in (("TB_CF_ARRAY", self.kind == "array"),
                                ("TB_CF_POINTER", self.pointer),
                                ("TB_CF_ITEM_NULL", self.null_items)) if on]


    @property
    def value(self):
        """The CType of one value (an array's item)."""
        return self.item if self.kind == "array" else self


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
        self.required_in = None  # "responses" (readOnly) or "requests" (writeOnly)
        self.default = None      # C literal of its default (filled in when absent)


class Branch:
    """One alternative of a union: a member of its anonymous C union."""

    def __init__(self, cname, const, ctype, validator, jtypes, title):
        self.cname = cname
        self.const = const  # the kind constant
        self.ctype = ctype
        self.validator = validator  # Sub of the branch's schema
        self.jtypes = jtypes  # JSON type names the branch can match
        self.tags = []  # discriminator values: (C literal, byte length)
        self.tag_note = ""  # the values, for the kind constant's comment
        self.title = title


class NamedType:
    def __init__(self, kind, cname, node, where):
        self.kind = kind  # struct | enum | union | map | alias
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
        self.branches = []     # union: Branch
        self.disc = None       # union: (C literal, length) of the discriminator property
        self.value = None      # map: CType of the values
        self.value_nullable = False
        self.forward = False   # referenced before its definition (recursive types)
        self.rest = None       # struct: the map type of the members that are not properties
        self.rest_name = None  # struct: its member's name


ANNOTATIONS = {"$ref", "description", "title", "$comment", "examples", "example", "default",
               "readOnly", "writeOnly", "deprecated", "externalDocs", "xml", "nullable",
               "discriminator"}


def annotation_only(node):
    """A schema that only annotates (description, xml, example...): it constrains nothing, so
    an allOf branch that is one adds no type to its siblings."""
    return isinstance(node, dict) and bool(node) and all(
        (k in ANNOTATIONS and k != "$ref") or k.startswith("x-") for k in node)


JMASK = {"null": ["JSON_NULL"], "boolean": ["JSON_TRUE", "JSON_FALSE"],
         "integer": ["JSON_INTEGER", "JSON_REAL"], "number": ["JSON_INTEGER", "JSON_REAL"],
         "string": ["JSON_STRING"], "array": ["JSON_ARRAY"], "object": ["JSON_OBJECT"]}
JSON_TYPES = ("null", "boolean", "integer", "number", "string", "array", "object")
# JSON types (jansson json_type bits) a value of each C kind comes from
KIND_JTYPES = {"string": ["string"], "integer": ["integer"], "number": ["integer", "number"],
               "boolean": ["boolean"], "enum": ["string"], "struct": ["object"],
               "map": ["object"], "array": ["array"], "apierror": ["object"],
               "bytes": ["string"]}


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


# what a type T declares besides T: T_validate... (TB_CODEC_DECLARE), T_kind (unions)
TYPE_SUFFIXES = ("_validate", "_parse", "_from_json", "_serialize", "_to_json", "_kind")


class TypeBuilder:
    def __init__(self, loader, vcomp, prefix="", unit=None):
        self.loader = loader
        self.vcomp = vcomp
        self.prefix = prefix
        self.unit = unit  # this unit's name (schema files marked x-tablium-unit)
        self.namer = cnames.Namer(reserved=RESERVED_TYPE_NAMES)
        self.avoid = set()  # names others took that a type's functions must not take
        self.warnings = []  # Diagnostics (severity warning) about schemas
        self.consts = cnames.Namer()  # enum constants share one C namespace
        self.by_node = {}
        self.lists = {}  # id(array schema that is an item of another array) -> its list type
        self.types = []  # in dependency order (dependencies first)
        self._building = set()
        self.free_form = {}  # where a value has no static C type (json_t *) -> why
        self._where = {}  # id(a schema made here, in no document) -> where it stands for
        self._merges = {}  # ids of the objects one property is in allOf parts -> their allOf
        self._spreads = {}  # id(node) -> (node, its spread branches or None)

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
        while any(cname + x in self.avoid for x in TYPE_SUFFIXES) or any(
                cname + x in self.namer.used for x in TYPE_SUFFIXES
                if kind == "union" or x != "_kind"):
            # its functions would be an operation's names (ProtectionIntent beside an
            # operation ProtectionIntent_Validate) or another type's (Twilio's flow_validate
            # beside flow), or a union's kind enum another type's name
            cname = self.namer.take(cname + "_t")
        # what it declares besides itself: a type named later takes another name
        self.namer.used.update(cname + x for x in TYPE_SUFFIXES if kind == "union" or x != "_kind")
        if kind not in ("struct", "enum", "union", "map"):
            nt = NamedType("alias", cname, node, where)
            nt.ctype = self.ctype(node, cname)
        else:
            nt = NamedType(kind, cname, node, where)
        from .validators import comment_safe
        nt.where = comment_safe(where)
        nt.public = public or kind in ("struct", "enum", "union", "map")
        if isinstance(node, dict) and isinstance(node.get("description"), str):
            from .validators import comment_safe
            nt.description = comment_safe(node["description"])
        nt.exported = shared is not None and shared == self.unit
        nt.external = shared if shared is not None and shared != self.unit else None
        self.by_node[id(node)] = nt
        # another unit's type keeps its validator there (this one only calls it)
        nt.validator = self.vcomp.sub(node) if nt.external else self.vcomp.add_entry(cname, node)
        if kind in ("struct", "union", "map"):
            self._building.add(id(node))
            try:
                {"struct": self._fill_struct, "union": self._fill_union,
                 "map": self._fill_map}[kind](nt, node)
            finally:
                self._building.discard(id(node))
        elif kind == "enum":
            from .validators import cstr, comment_safe
            for v in [v for v in node["enum"] if v is not None]:  # null: the *_is_null / NULL
                const = self.consts.take(cname.upper() + "_" + cnames.upper(v))
                nt.values.append((v, const, cstr(v), len(v.encode("utf-8")),
                                  comment_safe(json.dumps(v, ensure_ascii=False))))
        self.types.append(nt)
        return nt

    def _deref(self, node):
        """The schema that decides node's C type: through `$ref`s and one-branch `allOf`s
        that only add annotations (description, nullable, ...). True when a $ref does not
        resolve (the validator compiler reports it; no static type)."""
        for _ in range(33):
            if not isinstance(node, dict):
                break
            nxt = self._deref_once(node)
            if nxt is None:
                return True
            if nxt is node:
                break
            node = nxt
        return node

    def _nullable(self, node):
        """A member that may be null (type [T, "null"], OpenAPI 3.0 nullable, or a oneOf
        branch {type: null}), looking through the same $refs and allOfs as _deref."""
        seen = 0
        while isinstance(node, dict) and seen <= 32:
            types = _types_of(node)
            if node.get("nullable") is True or ("null" in types and len(types) >= 2):
                return True  # [T, "null"], or several types and null: a nullable union
            if (isinstance(node.get("enum"), list) and None in node["enum"]
                    and self._kind(node) == "enum"):
                return True  # an enum whose values include null
            nxt = self._deref_once(node)
            if nxt is node:
                return self._non_null_alt(node) is not None or self._null_alt(node)
            node = nxt  # None (an unresolved $ref) ends the walk
            seen += 1
        return False

    def _deref_once(self, node):
        """One step of _deref: the target of a $ref or of a one-branch allOf that only adds
        annotations; node itself when neither; None when the $ref does not resolve."""
        extra = [k for k in node if k not in ANNOTATIONS and not k.startswith("x-")]
        if isinstance(node.get("$ref"), str) and not extra:
            try:
                return self.loader.resolve(node["$ref"], node)
            except GenError:
                return None
        if extra == ["allOf"] and isinstance(node["allOf"], list) and "$ref" not in node:
            # one branch, or one beside branches that only annotate it: AWS writes every
            # member as {allOf: [{$ref: T}, {description: ...}]} (134,000 in 353 APIs.guru specs)
            kept = [b for b in node["allOf"] if not annotation_only(b)]
            if len(node["allOf"]) == 1 or len(kept) == 1:
                return (kept or node["allOf"])[0]
        return node

    def _alts(self, node):
        """The alternatives of a oneOf/anyOf node that is a union, else None: the node's own
        when it is only a oneOf/anyOf, the spread ones (_spread) when members beside it are
        shared by branches that add their own."""
        kw = "oneOf" if isinstance(node.get("oneOf"), list) else "anyOf"
        alts = node.get(kw)
        types = [t for t in _types_of(node) if t != "null"]
        if not (isinstance(alts, list) and alts and types in ([], ["object"])):
            return None
        if not isinstance(node.get("properties"), dict) and "allOf" not in node:
            return alts
        return self._spread(node, kw)

    # what the shared part of a spread union leaves to the node's own validator
    SPREAD_DROPS = ("oneOf", "anyOf", "discriminator", "unevaluatedProperties", "$id", "$anchor",
                    "$dynamicAnchor", "$schema", "$defs", "definitions")

    def _spread(self, node, kw):
        """Of {properties: P, required: R, oneOf: [B1..Bn]} (or allOf beside the oneOf/anyOf)
        whose branches declare members P lacks (Vercel's domains, Jira's context variables,
        ShipEngine's rate requests), the branches {allOf: [{P, R}, Bi}]: a value is the shared
        members and one branch's, so each branch's struct holds both. Read as a struct of P
        alone, the branches' members were dropped on the way through (a client sent
        {"method": ...} without the name it was given). None when the branches add no members
        (GitHub's anyOf of `required` lists), which keeps the struct of P; the node's own
        validator checks the oneOf either way."""
        if id(node) in self._spreads:
            return self._spreads[id(node)][1]
        self._spreads[id(node)] = (node, None)  # a branch that contains the node: not spread
        shared = {k: v for k, v in node.items() if k not in self.SPREAD_DROPS}
        if kw == "anyOf" and "oneOf" in node:
            shared["oneOf"] = node["oneOf"]
        info = self.loader.info(node)
        if info is None or any(self._is_null_schema(a) for a in node[kw]):
            return None
        self.loader.index(shared, info.base, info.resource, info.file, info.pointer, info.dialect)
        if self._parts(shared) is None:
            return None
        own = set(self._merged(shared)[0])
        if not any(self._parts(a) is not None and set(self._merged(a)[0]) - own
                   for a in node[kw]):
            return None
        out = []
        for i, alt in enumerate(node[kw]):
            wrap = {"allOf": [shared, alt]}
            ainfo = self.loader.info(alt)
            if ainfo is None:  # an inline branch the validator compiler has not indexed yet
                self.vcomp.child(node, "%s/%d" % (kw, i), alt)
                ainfo = self.loader.info(alt)
            self.loader.index(wrap, ainfo.base, ainfo.resource, ainfo.file, ainfo.pointer,
                              ainfo.dialect)
            out.append(wrap)
        self._spreads[id(node)] = (node, out)
        return out

    @staticmethod
    def _is_null_schema(alt):
        return isinstance(alt, dict) and _types_of(alt) == ["null"] and not any(
            k in alt for k in ("$ref", "oneOf", "anyOf", "allOf"))

    def _null_alt(self, node):
        """True for a oneOf/anyOf of several alternatives, one of them {type: null}: a nullable
        union of the others (null is its _is_null / a NULL item, not a branch)."""
        alts = self._alts(node)
        return isinstance(alts, list) and len(alts) > 2 and any(
            self._is_null_schema(a) for a in alts)

    def _non_null_alt(self, node):
        """Of a oneOf/anyOf of [T, {type: null}] (a nullable T), T; else None."""
        alts = self._alts(node)
        if isinstance(alts, list) and len(alts) == 2:
            rest = [a for a in alts if not (isinstance(a, dict) and _types_of(a) == ["null"])]
            if len(rest) == 1:
                return rest[0]
        return None

    def _parts(self, node, depth=0):
        """The object schemas an allOf node is made of (itself and its branches, recursively),
        or None when a part is not an object schema (then the merge has no struct)."""
        node = self._deref(node)
        if node is True or node == {}:
            return []
        if not isinstance(node, dict) or depth > 32:
            return None
        types = [t for t in _types_of(node) if t != "null"]
        if types not in ([], ["object"]) or any(k in node for k in ("oneOf", "anyOf", "enum",
                                                                    "const", "not")):
            return None
        out = [node]
        if "allOf" in node:
            if not isinstance(node["allOf"], list):
                return None
            for b in node["allOf"]:
                sub = self._parts(b, depth + 1)
                if sub is None:
                    return None
                out.extend(sub)
        return out

    def _merged(self, node):
        """(properties {name: [schemas]}, required set) of an object schema and its allOf."""
        props = {}
        required = set()
        for part in self._parts(node) or [node]:
            if isinstance(part.get("properties"), dict):
                for k, v in part["properties"].items():
                    props.setdefault(k, []).append(v)
            if isinstance(part.get("required"), list):
                required.update(r for r in part["required"] if isinstance(r, str))
        return props, required

    def _kind(self, node):
        node = self._deref(node)
        if not isinstance(node, dict):
            return "json"
        if node.get("x-tablium-c-type") == "tb_api_error":
            return "apierror"  # the error object of the envelope: the runtime's own type
        types = [t for t in _types_of(node) if t != "null"]
        enum = node.get("enum")
        strs = [v for v in enum if v is not None] if isinstance(enum, list) else []
        if strs and all(isinstance(v, str) for v in strs) and types in ([], ["string"]):
            return "enum"  # null among the values (OpenAPI 3.0's nullable enum): a nullable one
        if not types and "const" in node:
            # a constant has the type of its value
            c = node["const"]
            types = ["boolean" if isinstance(c, bool) else "integer" if isinstance(c, int)
                     else "number" if isinstance(c, float) else "string" if isinstance(c, str)
                     else "json"]
            if types == ["json"]:
                return "json"
        if isinstance(node.get("allOf"), list) and not any(k in node for k in ("oneOf", "anyOf")):
            parts = self._parts(node)
            if parts is not None:
                return "struct" if self._merged(node)[0] else "json"
            if not isinstance(node.get("properties"), dict) and not types:
                return "json"  # an allOf of non-object parts: validated, no C type
        if self._alts(node) is not None:
            nn = self._non_null_alt(node)
            if nn is not None:
                return self._kind(nn)  # [T, null]: a nullable T
            return "union"
        if types == ["object"] or (not types and isinstance(node.get("properties"), dict)):
            if isinstance(node.get("properties"), dict) and node["properties"]:
                return "struct"
            ap = node.get("additionalProperties")
            if isinstance(ap, dict) and ap and not node.get("patternProperties"):
                return "map"
            return "json"
        if types == ["string"] and (node.get("format") == "binary" or (
                isinstance(node.get("contentMediaType"), str) and "contentEncoding" not in node)):
            return "bytes"  # a file: its bytes and media type (tb_bytes), NULs included
        if len(types) == 1:
            return types[0]
        if len(types) > 1 and all(t in JSON_TYPES for t in types) and not any(
                k in node for k in ("oneOf", "anyOf", "allOf")):
            return "union"  # several types: one branch per type
        return "json"

    def ctype(self, node, name_hint):
        target = self._deref(node)
        if isinstance(target, dict):
            nn = self._non_null_alt(target)
            if nn is not None:
                return self.ctype(nn, name_hint)  # oneOf [T, null]: T, nullable
        kind = self._kind(node)
        if kind == "apierror":
            return CType("apierror")
        if kind == "bytes":
            return CType("bytes")
        if kind in ("string", "integer", "number", "boolean"):
            if kind == "string":
                self.vcomp.no_nul(target)  # a char *: U+0000 would cut it
            return CType(kind)
        if kind in ("struct", "enum", "union", "map"):
            if id(target) in self._building:
                # a type that contains itself: this member is a pointer
                nt = self.by_node[id(target)]
                nt.forward = True  # named before it is complete: declared first
                return CType(kind, ref=nt, pointer=True)
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
                if item.kind == "array":
                    item = CType("list", ref=self._list(item, self._deref(items),
                                                        name_hint + "_item"))
                if item.pointer:  # items are held in the array: no pointer needed
                    item = CType(item.kind, ref=item.ref)
                # items that may be null: pointers, NULL for null (a string is one already;
                # JSON has its own null)
                null_items = item.kind != "json" and self._nullable(items)
                if null_items and item.kind != "string":
                    item = CType(item.kind, ref=item.ref, pointer=True)
                return CType("array", item=item, null_items=null_items)
            self._free(node, "a tuple (prefixItems)" if "prefixItems" in target
                       else "an array without items")
            return CType("json")
        if not isinstance(target, dict) or not [k for k in target if k not in ANNOTATIONS
                                                and not k.startswith("x-")]:
            why = "free-form"
        elif kind == "json" and "object" in _types_of(target):
            why = "an object without properties"
        else:
            why = "no single static type"
        self._free(node, why)
        return CType("json")

    def _list(self, arr, node, hint):
        """The named list type of `node`, an array schema that is an item of another array: one
        per schema, however many arrays (a named array and the members that $ref it) hold it."""
        if id(node) in self.lists:
            return self.lists[id(node)]
        nt = NamedType("list", self.namer.take(hint), None, "")
        self.lists[id(node)] = nt
        nt.item = arr.item
        nt.null_items = arr.null_items
        nt.public = False
        nt.validator = None
        self.types.append(nt)
        return nt

    def _free(self, node, why):
        info = self.loader.info(node) if isinstance(node, dict) else None
        where = ("%s#%s" % (cnames.short_path(info.file), info.pointer) if info
                 else self._where.get(id(node), "?"))
        self.free_form.setdefault(where, why)

    def _default_literal(self, node, ct):
        """The C literal of a scalar member's `default` (filled in when the member is absent;
        has_ then says it was not sent), or None."""
        node = self._deref(node)
        d = node.get("default") if isinstance(node, dict) else None
        if d is None:
            return None
        if ct.kind == "integer" and isinstance(d, int) and not isinstance(d, bool) \
                and -2**63 <= d < 2**63:
            return "INT64_C(%d)" % d
        if ct.kind == "number" and isinstance(d, (int, float)) and not isinstance(d, bool) \
                and math.isfinite(float(d)):
            return repr(float(d))
        if ct.kind == "boolean" and isinstance(d, bool):
            return "true" if d else "false"
        if ct.kind == "string" and isinstance(d, str) and "\0" not in d:
            from .validators import cstr
            return "(char *)" + cstr(d)
        if ct.kind == "enum" and isinstance(d, str) and ct.ref is not None:
            for v, const, _, _, _ in ct.ref.values:
                if v == d:
                    return const
        return None

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

    @staticmethod
    def _compat(kind):
        """Kinds of a union branch whose values a member of this kind can hold."""
        return {"enum": {"enum", "string"}, "integer": {"integer", "number"}}.get(kind, {kind})

    def _branch_kinds(self, node):
        """The kinds of a union's branches (oneOf/anyOf alternatives, or its several types)."""
        node = self._deref(node)
        if not isinstance(node, dict):
            return set()
        alts = self._alts(node)
        if alts is not None:
            return {self._kind(a) for a in alts}
        return {t for t in _types_of(node) if t != "null"}

    def _pick(self, nt, pname, schemas):
        """Of the schemas one property has in the parts of an allOf, the one that decides its C
        type: the first with a static type; two different static types cannot both match."""
        best = None
        for sch in schemas:
            k = self._kind(sch)
            if k == "json":
                continue
            if best is None:
                best = (sch, k)
            elif k != best[1]:
                if {k, best[1]} == {"integer", "number"}:
                    best = (sch, "integer") if k == "integer" else best
                    continue
                # the narrower of the two: an enum of strings narrows a string (ix-api's
                # problem type); a scalar narrows a union with a branch of its kind (GitHub's
                # created_at: oneOf [integer, string] in one part, string in another). The
                # allOf's validator still checks every part.
                if {k, best[1]} == {"enum", "string"}:
                    best = (sch, k) if k == "enum" else best
                    continue
                if best[1] == "union" and self._branch_kinds(best[0]) & self._compat(k):
                    best = (sch, k)
                    continue
                if k == "union" and self._branch_kinds(sch) & self._compat(best[1]):
                    continue
                # no value can match both: the schema never validates (a mistake of the
                # spec, like SendGrid's last_event_time, integer in one part and string in
                # the other); the rest of the spec still generates, the member is any value
                # (json_t *) and validation refuses every value, as the schema says
                self.warnings.append(Diagnostic(
                    nt.where.split("#")[0], nt.where.partition("#")[2],
                    "allof-conflict: property %r is %s in one part and %s in another: no value "
                    "can match both, so no value of this schema is valid" % (pname, best[1], k),
                    severity="warning"))
                self._free(schemas[0], "allOf parts that contradict each other")
                return {}
        if best and best[1] == "struct":
            # objects of different schemas (PeerTube's VideoDetails: account is an
            # AccountSummary in Video and an Account in its own part): a value is both, so
            # the member is the struct of both parts' members, not the first's alone (which
            # dropped Account's own members on the way through)
            objs, seen = [], set()
            for sch in schemas:
                t = self._deref(sch)
                if self._kind(sch) == "struct" and id(t) not in seen:
                    seen.add(id(t))
                    objs.append(sch)
            if len(objs) > 1:
                return self._merge_of(objs)
        return best[0] if best else schemas[0]

    def _merge_of(self, objs):
        """{allOf: objs}, one per set of schemas, indexed where the first of them is."""
        key = tuple(id(self._deref(o)) for o in objs)
        got = self._merges.get(key)
        if got is None:
            got = {"allOf": list(objs)}
            info = self.loader.info(objs[0]) or self.loader.info(self._deref(objs[0]))
            if info is not None:
                self.loader.index(got, info.base, info.resource, info.file, info.pointer,
                                  info.dialect)
            self._merges[key] = got
        return got

    def _fill_struct(self, nt, node):
        node = self._deref(node)
        props, required = self._merged(node)
        # a required name no properties declare (required: [name] beside properties that lack
        # it) is a member all the same: its schema is additionalProperties' (when a schema), else
        # any value (json_t *). Without it, a valid value lost a member it must have.
        ap = node.get("additionalProperties")
        for r in sorted(required - set(props)):
            if ap is not False:
                props[r] = [ap if isinstance(ap, dict) and "patternProperties" not in node
                            else {}]
                info = self.loader.info(node)
                if info is not None and props[r][0] == {}:  # where a note names it
                    self._where[id(props[r][0])] = "%s#%s/required (%s, undeclared)" % (
                        cnames.short_path(info.file), info.pointer, r)
        fnamer = cnames.Namer(reserved={"n"})
        members = set()
        from .validators import cstr_bytes, comment_safe, access_mode
        for pname, schemas in props.items():
            pnode = self._pick(nt, pname, schemas) if len(schemas) > 1 else schemas[0]
            nullable = self._nullable(pnode)
            is_array = self._kind(pnode) == "array"
            # a readOnly (writeOnly) member is required in responses (requests) only: absent
            # from the other side's values, it has its has_ flag
            mode = next((m for m in (access_mode(self.loader, x) for x in schemas) if m), None)
            is_required = pname in required and mode is None
            fname = self._field_name(fnamer, cnames.snake(pname), not is_required,
                                     nullable, is_array)
            ct = self.ctype(pnode, nt.cname + "_" + fname)
            vt = ct.item if ct.kind == "array" else ct
            if vt.ref is not None and vt.ref.cname in members | {fname}:
                vt.elaborate = True
            members.add(fname)
            desc = pnode.get("description") if isinstance(pnode, dict) else None
            f = Field(pname, fname, ct, is_required, nullable,
                      comment_safe(desc) if isinstance(desc, str) else None)
            if pname in required and mode:
                f.required_in = "responses" if mode == "readOnly" else "requests"
            f.default = None if is_required else self._default_literal(pnode, ct)
            if f.default:
                f.default_text = comment_safe(json.dumps(self._deref(pnode)["default"],
                                                         ensure_ascii=False))
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
            f.cflags = " | ".join([x for x, on in (("TB_CF_REQUIRED", f.required),
                                                   ("TB_CF_NULLABLE", nullable)) if on]
                                  + ct.flags) or "0"
            nt.fields.append(f)
        self._fill_rest(nt, node, fnamer)

    def _fill_rest(self, nt, node, fnamer):
        """Properties and additionalProperties (a schema, or true): the other members are kept
        in a map member, in document order, so that nothing the schema allows is lost between
        the JSON and the struct. With patternProperties they are kept as any value (a member
        may belong to a pattern, or to several): the validator has checked each against its
        schemas, and additionalProperties: false leaves the members a pattern takes.
        A merged allOf keeps them, as any value, when its parts that say what is additional all
        allow some (Plaid's answers: additionalProperties: true beside the allOf, or in a part);
        each part's own schema for them is the validator's to check."""
        def allows(n):
            a = n.get("additionalProperties")
            return a is True or isinstance(a, dict) or bool(n.get("patternProperties"))

        ap = node.get("additionalProperties")
        if "allOf" in node:
            parts = self._parts(node) or []
            says = [p for p in parts if "additionalProperties" in p or "patternProperties" in p]
            if not says or not all(allows(p) for p in says):
                return
            ap = True
        elif node.get("patternProperties"):
            ap = True
        elif not (ap is True or isinstance(ap, dict)):
            return
        mt = NamedType("map", self.namer.take(nt.cname + "_additional"), None, "")
        mt.public = False
        mt.validator = None  # the struct's validator has checked them
        mt.entry_cname = self.namer.take(mt.cname + "_entry")
        free = ap is True or not [k for k in ap if k not in ANNOTATIONS and not k.startswith("x-")]
        mt.value_nullable = not free and self._nullable(ap)
        mt.value = CType("json") if free else self.ctype(ap, mt.cname + "_value")
        mt.vflags = " | ".join((["TB_CF_NULLABLE"] if mt.value_nullable else [])
                               + mt.value.flags) or "0"
        self.types.append(mt)
        nt.rest = mt
        nt.rest_name = self._field_name(fnamer, "additional_properties", False, False, False)

    def _fill_union(self, nt, node):
        from .validators import cstr_bytes, comment_safe
        node = self._deref(node)
        nt.none_const = self.consts.take(nt.cname.upper() + "_NONE")
        bnamer = cnames.Namer(reserved={"kind", "n"})
        kw = "oneOf" if isinstance(node.get("oneOf"), list) else "anyOf"
        # the branches as typed (spread ones carry the members beside the oneOf), and as written
        # (their names)
        alts = self._alts(node) if isinstance(node.get(kw), list) else None
        spread = alts is not None and alts is not node[kw]
        if alts is None:  # several types: one branch per type
            kw = None
            alts = written = [{"type": t} for t in _types_of(node) if t != "null"]
        elif self._null_alt(node):  # null is the union's own _is_null / NULL, not a branch
            alts = written = [a for a in alts if not self._is_null_schema(a)]
        else:
            written = node[kw]
        for i, (typed, alt) in enumerate(zip(alts, written)):
            target = self._deref(alt)
            info = self.loader.info(target) if isinstance(target, dict) else None
            if isinstance(alt, dict) and isinstance(alt.get("$ref"), str):
                want = cnames.snake(alt["$ref"].rsplit("/", 1)[-1])
            elif isinstance(target, dict) and isinstance(target.get("title"), str):
                want = cnames.snake(target["title"])
            else:
                k = self._kind(alt)
                want = {"struct": "object", "map": "object", "union": "alt", "json": "value",
                        "enum": "string", "apierror": "error"}.get(k, k)
            bname = bnamer.take(want)
            if kw is not None and info is None and isinstance(alt, dict):
                self.vcomp.child(node, "%s/%d" % (kw, i), alt)  # indexes an inline branch
            if kw is None:
                ct = CType(alt["type"]) if alt["type"] in ("string", "integer", "number",
                                                           "boolean") else CType("json")
                if ct.kind == "string":
                    self.vcomp.no_nul(node)
                sub = None
            else:
                ct = self.ctype(typed, nt.cname + "_" + bname)
                sub = self.vcomp.keep(typed)
            if isinstance(typed, dict) and _types_of(self._deref(typed) if isinstance(
                    self._deref(typed), dict) else {}) == ["null"]:
                jt = ["null"]
            elif ct.kind == "json" or ct.kind == "union":
                jt = list(JSON_TYPES)
            else:
                jt = KIND_JTYPES.get(ct.kind, list(JSON_TYPES))
            b = Branch(bname, self.consts.take(nt.cname.upper() + "_" + bname.upper().lstrip("_")),
                       ct, sub, jt, alt.get("$ref", "").rsplit("/", 1)[-1]
                       if isinstance(alt, dict) else "")
            b.cflags = " | ".join(ct.flags) or "0"
            b.jmask = " | ".join("TB_J(%s)" % x for t in jt for x in JMASK[t])
            nt.branches.append(b)
        nt.kw = kw or "type: %s" % json.dumps([t for t in _types_of(node) if t != "null"])
        if spread:
            nt.kw += ", each branch with the members beside it"
        if "null" in _types_of(node) or self._null_alt(node):
            nt.kw += " or null (the member's _is_null, a NULL item)"
        disc = self.vcomp.discriminator(node) if kw else None
        if disc is not None:
            pb = disc[0].encode("utf-8")
            nt.disc = (cstr_bytes(pb), len(pb))
            nt.disc_name = comment_safe(json.dumps(disc[0], ensure_ascii=False))
            notes = {}
            for value, i in disc[1]:
                vb = value.encode("utf-8")
                nt.branches[i].tags.append((cstr_bytes(vb), len(vb)))
                notes.setdefault(i, []).append(json.dumps(value, ensure_ascii=False))
            fallback = self.vcomp.discriminator_default(node)
            if fallback is not None:
                notes.setdefault(fallback, []).append("any other value")
            for i, vals in notes.items():
                note = ", ".join(vals)
                if len(note) > 120:
                    note = note[:117] + "..."
                nt.branches[i].tag_note = comment_safe(note)

    def _fill_map(self, nt, node):
        node = self._deref(node)
        nt.entry_cname = self.namer.take(nt.cname + "_entry")
        ap = node["additionalProperties"]
        nt.value_nullable = self._nullable(ap)
        nt.value = self.ctype(ap, nt.cname + "_value")
        nt.vflags = " | ".join(([("TB_CF_NULLABLE")] if nt.value_nullable else [])
                               + nt.value.flags) or "0"
