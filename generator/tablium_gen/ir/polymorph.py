"""Polymorphism by allOf and a discriminator, made a tagged union.

OpenAPI's other way to write "one of these types" is a base schema with a `discriminator` and no
oneOf, which the subtypes extend with `allOf: [{$ref: Base}, {...}]`. A value described by `Base`
is then any of its subtypes, the property naming which (Azure's specs write the tags as
`x-ms-discriminator-value`). Read literally, `Base` is one struct and a subtype's members are
dropped on the way through a typed API.

`rewrite(doc)` turns each such base, before the document is indexed, into the union the spec
means, which the oneOf machinery already types, validates and encodes:

    Base:        {oneOf: [Sub1, Sub2, ..., Base__base], discriminator: {propertyName, mapping}}
    Base__base:  the old Base without its discriminator (a new component)
    Sub1:        {allOf: [{$ref: Base__base}, ...]}   (every allOf reference to Base, in fact)

Tags come from the base's mapping, else the subtype's `x-ms-discriminator-value`, else its
schema name (OpenAPI's implicit mapping). Subtypes of subtypes are subtypes. `Base__base` is the
first branch and also takes the values no subtype is tagged with
(`x-tablium-discriminator-default`): plain JSON Schema reads such a value against `Base`, and a
service that adds a subtype must not break its clients' decoding.

`x-tablium-polymorphic: false` on a base, or at the document's root for all of them, keeps the
literal reading (the base one struct, the discriminator ignored): the types a spec had before
tablium read hierarchies, for handlers written against them.

A single-member allOf outside components/schemas (`{allOf: [{$ref: Base}], description: ...}`,
the usual way to annotate a reference), or one whose other members only annotate
(`{allOf: [{$ref: Base}, {description: ...}]}`, AWS's way), still means any subtype and keeps
pointing at the union.
"""

from urllib.parse import quote, unquote

from ..load.loader import INSTANCE_KEYS, NAME_MAPS
from .types import annotation_only

PREFIX = "#/components/schemas/"
DEFAULT = "x-tablium-discriminator-default"
OPT = "x-tablium-polymorphic"


def _name_of(ref):
    """The component name of a local `#/components/schemas/NAME` reference, or None."""
    if not isinstance(ref, str) or not ref.startswith(PREFIX):
        return None
    name = unquote(ref[len(PREFIX):])
    if "/" in name:
        return None
    return name.replace("~1", "/").replace("~0", "~")


def _ref_to(name):
    return PREFIX + quote(name.replace("~", "~0").replace("/", "~1"), safe="~!$&'()*+,;=:@")


def _is_base(node):
    d = node.get("discriminator") if isinstance(node, dict) else None
    return (isinstance(d, dict) and isinstance(d.get("propertyName"), str)
            and not isinstance(node.get("oneOf"), list) and not isinstance(node.get("anyOf"), list))


def _allof_parents(node):
    out = []
    if isinstance(node, dict) and isinstance(node.get("allOf"), list):
        for b in node["allOf"]:
            n = _name_of(b.get("$ref")) if isinstance(b, dict) else None
            if n is not None:
                out.append(n)
    return out


def rewrite(doc):
    """Rewrites `doc` (an OpenAPI document, before indexing) in place. Returns the names of the
    bases made unions."""
    if isinstance(doc, dict) and doc.get(OPT) is False:
        return []
    comps = doc.get("components") if isinstance(doc, dict) else None
    schemas = comps.get("schemas") if isinstance(comps, dict) else None
    if not isinstance(schemas, dict):
        return []
    children = {}
    for name, node in schemas.items():
        for p in _allof_parents(node):
            if p != name:
                children.setdefault(p, []).append(name)
    made = {}  # base name -> its __base name
    plans = []
    for name, node in list(schemas.items()):
        if not _is_base(node) or name not in children or node.get(OPT) is False:
            continue
        # every schema that extends the base, directly or through another subtype
        desc, todo, seen = [], list(children[name]), {name}
        while todo:
            c = todo.pop(0)
            if c in seen:
                continue
            seen.add(c)
            desc.append(c)
            todo.extend(children.get(c, []))
        bname = name + "__base"
        k = 2
        while bname in schemas or bname in made.values():
            bname = "%s__base%d" % (name, k)
            k += 1
        made[name] = bname
        plans.append((name, node, desc, bname))
    for name, node, desc, bname in plans:
        d = node["discriminator"]
        base = {k: v for k, v in node.items() if k != "discriminator"}
        tags = {}   # branch ref -> [values]
        order = []  # branch refs, base first

        def branch(ref):
            if ref not in tags:
                tags[ref] = []
                order.append(ref)
            return tags[ref]

        branch(_ref_to(bname))
        used = set()
        mapping = d.get("mapping") if isinstance(d.get("mapping"), dict) else {}
        mapped = set()
        for value, ref in mapping.items():
            if not isinstance(ref, str):
                continue  # the validator compiler reports it on the union
            if "#" not in ref and "/" not in ref and "." not in ref:
                ref = _ref_to(ref)  # a bare schema name
            n = _name_of(ref)
            if n == name:  # the base itself: its copy
                ref = _ref_to(bname)
            branch(ref).append(value)
            used.add(value)
            if n is not None:
                mapped.add(n)
        for c in desc:
            if c in mapped:
                continue
            v = schemas[c].get("x-ms-discriminator-value") if isinstance(schemas[c], dict) else None
            v = v if isinstance(v, str) else c
            lst = branch(_ref_to(c))
            if v not in used:
                lst.append(v)
                used.add(v)
        own = node.get("x-ms-discriminator-value")
        own = own if isinstance(own, str) else name
        if own not in used and name not in mapped:
            tags[_ref_to(bname)].append(own)
            used.add(own)
        new_map = {}
        for ref in order:
            for v in tags[ref]:
                new_map[v] = ref
        union = {"oneOf": [{"$ref": r} for r in order],
                 "discriminator": {"propertyName": d["propertyName"], "mapping": new_map},
                 DEFAULT: _ref_to(bname)}
        for k in ("description", "nullable", "readOnly", "writeOnly", "deprecated"):
            if k in node:
                union[k] = node[k]
        node.clear()
        node.update(union)
        schemas[bname] = base
    if made:
        _redirect(doc, made, schemas)
    return sorted(made)


def _redirect(node, made, schemas, in_schemas=False, depth=0, key=None):
    """Points allOf references to a rewritten base at its __base copy: the subtype extends the
    base's members, not the union of its subtypes. `key`: the member `node` is the value of."""
    if depth > 200:
        return
    if isinstance(node, dict):
        lst = node.get("allOf")
        if isinstance(lst, list):
            # branches that only annotate ({description: ...}, as AWS writes every member)
            # extend nothing: {allOf: [{$ref: Base}, {description}]} is any Base, as with one
            kept = [b for b in lst if not annotation_only(b)]
            extends = in_schemas or len(kept) > 1 or isinstance(node.get("properties"), dict)
            if extends:
                for i, b in enumerate(lst):
                    n = _name_of(b.get("$ref")) if isinstance(b, dict) else None
                    if n in made:
                        lst[i] = dict(b)
                        lst[i]["$ref"] = _ref_to(made[n])
        named = key in NAME_MAPS  # its keys are names (a property called "default"...)
        for k, v in node.items():
            if k in INSTANCE_KEYS and not named:
                continue  # instances, not schemas
            # a component schema itself extends by its allOf (in_schemas); nested ones do not
            _redirect(v, made, schemas, node is schemas, depth + 1, k)
    elif isinstance(node, list):
        for v in node:
            _redirect(v, made, schemas, False, depth + 1, None)
