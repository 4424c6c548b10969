"""IR of validators: one C function per distinct subschema, each a list of checks.

The compiler walks schemas reachable from the requested entry points, following $ref and
$dynamicRef, and produces a ValidatorUnit: functions, regex and constant tables, key matchers and
the dynamic-scope tables. Every decision about the generated C (names, literals, messages) is
taken here; the templates only print it.
"""
import json
import os
import re
import math

from ..errors import Diagnostic, GenError
from ..load.uri import pointer_escape
from . import cnames, polymorph
from .regex import check_pcre2, ecma_to_pcre2, simple_matcher

TYPES = ("null", "boolean", "object", "array", "number", "string", "integer")
TYPE_TEST = {
    "null": "json_is_null(j)",
    "boolean": "json_is_boolean(j)",
    "object": "json_is_object(j)",
    "array": "json_is_array(j)",
    "number": "json_is_number(j)",
    "string": "json_is_string(j)",
    "integer": "tb_json_is_integer(j)",
}
FORMATS = {
    "date-time": "tb_format_date_time", "date": "tb_format_date", "time": "tb_format_time",
    "email": "tb_format_email", "uuid": "tb_format_uuid", "ipv4": "tb_format_ipv4",
    "ipv6": "tb_format_ipv6", "uri": "tb_format_uri", "uri-reference": "tb_format_uri_reference",
    "hostname": "tb_format_hostname", "byte": "tb_format_byte",
}
# the OpenAPI Format Registry's integer formats: ranges, asserted as the string formats are
INT_FORMATS = {
    "int8": (-2 ** 7, 2 ** 7 - 1), "uint8": (0, 2 ** 8 - 1),
    "int16": (-2 ** 15, 2 ** 15 - 1), "uint16": (0, 2 ** 16 - 1),
    "int32": (-2 ** 31, 2 ** 31 - 1), "uint32": (0, 2 ** 32 - 1),
    "uint64": (0, 2 ** 64 - 1),
}


class Sub:
    """A reference to a subschema from a check: always true, always false, or a function."""

    def __init__(self, kind, func=None):
        self.kind = kind  # "true" | "false" | "fn"
        self.func = func

    @property
    def fn(self):
        return self.func.name


class Check:
    def __init__(self, kind, **kw):
        self.kind = kind
        self.__dict__.update(kw)


class VFunc:
    def __init__(self, name, where, resource):
        self.name = name
        self.where = where
        self.resource = resource
        self.checks = []
        self.has_uneval = False
        self.calls = False
        self.description = None
        self.users = [where]  # where the schemas it validates are (several once merged)
        self.exported = False  # an entry of the unit's shared schema files: extern, declared
        self.external = None   # compiled (for its IR) but emitted by that shared unit


class KeyMatcher:
    """Maps a member name to its index in a `properties` list: a switch on length + memcmp."""

    def __init__(self, name, keys):
        self.name = name
        self.keys = keys  # list of str
        by_len = {}
        for i, k in enumerate(keys):
            b = k.encode("utf-8")
            by_len.setdefault(len(b), []).append((cstr_bytes(b), i))
        self.by_len = sorted(by_len.items())


class ValidatorUnit:
    def __init__(self):
        self.funcs = []
        self.regexes = []   # (pcre2 C literal, original pattern comment)
        self.consts = []    # C literals of JSON text
        self.keymatchers = []
        self.matchers = []  # (name, comment, nfixed, [(bit, count)], last, table rows): C patterns
        self.resources = []  # URIs, index = resource id
        self.dyn_tables = []  # (table name, [(resource id, func name)])
        self.uses_dynamic = False
        self.uses_uneval = False  # annotations are tracked only when some schema needs them
        self.entries = []   # (public name, Sub)
        self.kept = []      # Subs the codec tables name (union branches): kept, not emitted
        self.externals = []  # shared units whose functions this unit calls


def _subs_of(obj):
    """Every function Sub referenced from a check tree."""
    if isinstance(obj, Sub):
        if obj.kind == "fn":
            yield obj
    elif isinstance(obj, (list, tuple)):
        for x in obj:
            yield from _subs_of(x)
    elif isinstance(obj, Check):
        for v in obj.__dict__.values():
            yield from _subs_of(v)


def cstr_bytes(b):
    """C string literal for bytes (octal escapes; '?' escaped against trigraphs)."""
    out = ['"']
    for ch in b:
        c = chr(ch)
        if c == '"' or c == "\\":
            out.append("\\" + c)
        elif c == "?":
            out.append("\\?")
        elif 0x20 <= ch < 0x7F:
            out.append(c)
        else:
            out.append("\\%03o" % ch)
    out.append('"')
    return "".join(out)


def comment_safe(s):
    """Text that can sit inside a C block comment."""
    return (s.replace("*/", "*\\/").replace("/*", "/\\*").replace("\0", "\\u0000")
            .replace("\n", " "))


def access_mode(loader, node):
    """"readOnly" or "writeOnly" when a property's schema says so (itself, or through its
    $ref and allOf parts), else None. OpenAPI: a readOnly member's `required` applies to
    responses only, a writeOnly one's to requests only (3.0.3, Schema Object; kept for 3.1,
    whose JSON Schema makes both annotations, as tools do)."""
    stack, seen = [node], 0
    while stack and seen < 64:
        x = stack.pop()
        seen += 1
        if not isinstance(x, dict):
            continue
        if x.get("readOnly") is True:
            return "readOnly"
        if x.get("writeOnly") is True:
            return "writeOnly"
        if isinstance(x.get("$ref"), str):
            try:
                stack.append(loader.resolve(x["$ref"], x))
            except GenError:
                pass  # reported where the $ref is compiled
        if isinstance(x.get("allOf"), list):
            stack.extend(x["allOf"])
    return None


# the validation flag under which a member's `required` does not apply
UNLESS = {"readOnly": "TB_VALIDATE_REQUEST", "writeOnly": "TB_VALIDATE_RESPONSE"}


def cstr(s):
    return cstr_bytes(s.encode("utf-8"))


def cmsg(s):
    """C literal usable as a printf format with no arguments."""
    return cstr(s.replace("%", "%%").replace("\0", "\\u0000"))


def num_literal(v):
    if isinstance(v, bool):
        raise TypeError
    if isinstance(v, int):
        if abs(v) < 2 ** 63:
            return "%d.0L" % v
        return "%sL" % repr(float(v))
    if math.isinf(v) or math.isnan(v):
        raise ValueError("non-finite number")
    r = repr(v)
    if "e" not in r and "." not in r:
        r += ".0"
    # a double, like the instance: 1.1 must equal the 1.1 the JSON parser produced
    return "(long double)" + r


def num_text(v):
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e16:
        return str(int(v))
    return repr(v) if isinstance(v, float) else str(v)


def short_json(v, limit=60):
    s = json.dumps(v, ensure_ascii=False)
    return s if len(s) <= limit else s[: limit - 3] + "..."


def nul_check():
    return Check("nul", msg=cmsg("must not contain NUL characters (U+0000)"))


# OpenAPI containers shortened in validator names (a name says where its schema is, briefly)
_LOC_SHORT = [
    (("components", "schemas"), []),
    (("requestBody", "content", None, "schema"), ["body"]),
    (("content", None, "schema"), ["content"]),
    (("$defs",), ["defs"]),
    (("definitions",), ["defs"]),
]
MAX_NAME = 96


def location_name(info):
    """The C name part of a schema's location: `Wallet_properties_amount` for
    #/components/schemas/Wallet/properties/amount, the file's stem for a file's root."""
    if info is None:
        return "schema"
    segs = [x.replace("~1", "/").replace("~0", "~") for x in info.pointer.split("/") if x]
    out = []
    i = 0
    while i < len(segs):
        for pat, repl in _LOC_SHORT:
            if len(segs) - i >= len(pat) and all(p is None or p == segs[i + k]
                                                  for k, p in enumerate(pat)):
                out += repl
                i += len(pat)
                break
        else:
            out.append(segs[i])
            i += 1
    if not segs or segs[0] not in ("components", "paths", "webhooks"):
        # a schema file: its stem says which one (several files share a unit)
        stem = os.path.basename(info.file or "schema")
        out.insert(0, stem.rsplit(".", 1)[0] if stem.endswith((".json", ".yaml", ".yml"))
                   else stem)
    name = "_".join(cnames.snake(x).strip("_") or "x" for x in out)
    if len(name) > MAX_NAME:
        name = name[:MAX_NAME].rstrip("_")
    return name


class ValidatorCompiler:
    """Compiles schema nodes into a ValidatorUnit. `loader` resolves references; `prefix`
    names the static functions; `dialect` is "2020-12" or "oas30" (OpenAPI 3.0 nullable and
    boolean exclusiveMinimum/Maximum)."""

    def __init__(self, loader, prefix="v", unit=None):
        self.loader = loader
        self.prefix = prefix
        self.unit_name = unit  # this unit's name, for schema files marked x-tablium-unit
        self.fnames = cnames.Namer()
        self.unit = ValidatorUnit()
        self.memo = {}
        self.res_ids = {}
        self.regex_ids = {}
        self.const_ids = {}
        self.dyn_used = {}  # anchor name -> table name
        self.errors = []
        self.nul_nodes = {}  # id -> node: strings that become C strings (no_nul)
        self.km_by_keys = {}  # property lists -> their KeyMatcher (one per list)

    # ---- public ----

    def add_entry(self, public_name, node):
        sub = self.sub(node)
        self.unit.entries.append((public_name, sub))
        return sub

    def keep(self, node):
        """A Sub for `node` that stays valid after finish() (codec tables call it)."""
        sub = self.sub(node)
        if sub is not None:
            self.unit.kept.append(sub)
        return sub

    def discriminator(self, node):
        """The OpenAPI discriminator of a oneOf/anyOf node: (property name, [(value, branch
        index)]) with the mapping's values first, then each $ref branch's schema name (the
        implicit mapping); None without one. Mapping entries that name no branch are errors."""
        d = node.get("discriminator") if isinstance(node, dict) else None
        kw = "oneOf" if isinstance(node.get("oneOf"), list) else (
            "anyOf" if isinstance(node.get("anyOf"), list) else None)
        if not isinstance(d, dict) or kw is None or not isinstance(d.get("propertyName"), str):
            return None
        branches = node[kw]

        def final(x):
            for _ in range(64):
                if isinstance(x, dict) and isinstance(x.get("$ref"), str):
                    x = self.loader.resolve(x["$ref"], x)
                else:
                    break
            return x

        try:
            targets = [final(b) for b in branches]
        except GenError:
            return None
        tags = []
        mapped = set()
        mapping = d.get("mapping") if isinstance(d.get("mapping"), dict) else {}
        for value, ref in mapping.items():
            if not isinstance(ref, str):
                self.err(node, ("discriminator", "mapping", str(value)),
                         "mapping values must be strings")
                continue
            if "#" not in ref and "/" not in ref and "." not in ref:
                ref = "#/components/schemas/" + ref  # a bare schema name
            at = ("discriminator", "mapping", str(value))  # YAML may make a key a number
            try:
                t = final(self.loader.resolve(ref, node))
            except GenError as e:  # said where the mapping names it, not at the schema's $ref
                self.err(node, at, e.diags[0].reason if e.diags else "cannot resolve %s" % ref)
                continue
            idx = next((i for i, x in enumerate(targets) if x is t), None)
            if idx is None:
                self.err(node, at,
                         "%s names a schema that is not one of the %s branches" % (ref, kw))
                continue
            tags.append((value, idx))
            mapped.add(idx)
        fallback = self.discriminator_default(node)
        for i, b in enumerate(branches):
            if (i in mapped or i == fallback or not isinstance(b, dict)
                    or not isinstance(b.get("$ref"), str)):
                continue
            name = b["$ref"].rsplit("/", 1)[-1]
            if name and name not in mapping:
                tags.append((name, i))
        return d["propertyName"], tags

    @staticmethod
    def discriminator_default(node):
        """The branch (index) a discriminated union reads a value no branch is tagged with
        against, or None (the value is refused): set on the unions polymorph.rewrite makes of
        allOf hierarchies, whose base takes the values no subtype names."""
        ref = node.get(polymorph.DEFAULT) if isinstance(node, dict) else None
        kw = "oneOf" if isinstance(node.get("oneOf"), list) else "anyOf"
        if not isinstance(ref, str) or not isinstance(node.get(kw), list):
            return None
        return next((i for i, b in enumerate(node[kw])
                     if isinstance(b, dict) and b.get("$ref") == ref), None)

    def no_nul(self, node):
        """The strings `node` accepts become C strings (char *), which end at the first NUL: a
        U+0000 would silently cut them, so it is refused (rule "nul"). The generated code's
        rule; plain JSON Schema validation (no C type) keeps the standard meaning."""
        if not isinstance(node, dict) or id(node) in self.nul_nodes:
            return
        self.nul_nodes[id(node)] = node
        f = self.memo.get(id(node))
        if f is not None:
            f.checks.append(nul_check())

    def finish(self):
        """Completes the dynamic-scope tables (compiling what they name) and returns the unit."""
        if self.errors:
            raise GenError(self.errors)
        done = False
        while not done:
            done = True
            for name in list(self.dyn_used):
                for (res, anchor), node in list(self.loader.dyn_anchors.items()):
                    if anchor == name and res in self.res_ids and id(node) not in self.memo:
                        self.sub(node)
                        done = False
        if self.errors:
            raise GenError(self.errors)
        for name, table in sorted(self.dyn_used.items(), key=lambda kv: kv[1]):
            rows = []
            for (res, anchor), node in self.loader.dyn_anchors.items():
                if anchor == name and res in self.res_ids:
                    rows.append((self.res_ids[res], self.memo[id(node)].name))
            self.unit.dyn_tables.append((table, sorted(rows)))
        self.unit.uses_dynamic = bool(self.dyn_used)
        if not self.unit.uses_dynamic:
            self._skip_ref_only()
            self._merge_identical()
        self._prune()
        self.unit.uses_uneval = any(f.has_uneval for f in self.unit.funcs)
        return self.unit

    def _skip_ref_only(self):
        """A function whose only check is a $ref (`{"$ref": ...}` plus annotations) is skipped:
        its callers call the target directly. Not done when $dynamicRef is in use, since then
        entering a function can change the dynamic scope."""
        def target(sub, depth=0):
            f = sub.func if sub.kind == "fn" else None
            if (f is not None and depth < 64 and len(f.checks) == 1
                    and f.checks[0].kind == "ref" and not f.has_uneval):
                return target(f.checks[0].sub, depth + 1)
            return sub

        def retarget(sub):
            t = target(sub)
            sub.kind, sub.func = t.kind, t.func

        for sub in self._unit_subs():
            retarget(sub)

    def _unit_subs(self):
        """Every function Sub of the unit: in its functions' checks, its entries, the kept."""
        for f in self.unit.funcs:
            yield from _subs_of(f.checks)
        for _, sub in self.unit.entries:
            yield from _subs_of(sub)
        for sub in self.unit.kept:
            yield from _subs_of(sub)

    def _merge_identical(self):
        """Functions with the same checks (their callees compared by what they merged into)
        become one: a spec that inlines one schema in many places (GitHub's repeats its pull
        request schema in every webhook: 43,000 schema objects, 6,600 distinct) gets one
        function for each. Decided on the compiled checks, so whatever made two schemas differ
        (a NUL rule one of them needs, a $ref resolved from another base) keeps them apart. The
        function's comment lists where its schemas are. Not with $dynamicRef (its tables name
        functions), as _skip_ref_only."""
        canon = {}  # name -> the function it merged into (itself when first of its kind)
        by_key = {}

        def key(obj):
            if isinstance(obj, Sub):
                if obj.kind != "fn":
                    return ("s", obj.kind)
                g = canon.get(obj.func.name)
                return ("f", (g or obj.func).name)  # not settled yet (a cycle): itself
            if isinstance(obj, Check):
                return ("c",) + tuple((k, key(v)) for k, v in sorted(obj.__dict__.items()))
            if isinstance(obj, (list, tuple)):
                return tuple(key(x) for x in obj)
            if isinstance(obj, dict):
                return tuple(sorted((k, key(v)) for k, v in obj.items()))
            return (type(obj).__name__, repr(obj))

        self._order()  # callees first, so that a caller's key names what its callees became
        for f in self.unit.funcs:
            if f.exported or f.external:
                canon[f.name] = f  # a public name: kept as it is
                continue
            k = (f.resource, f.has_uneval, f.calls, key(f.checks))
            g = by_key.setdefault(k, f)
            canon[f.name] = g
            if g is not f:
                g.users.extend(u for u in f.users if u not in g.users)
        for sub in self._unit_subs():
            sub.func = canon.get(sub.func.name, sub.func)
        self.unit.funcs = [f for f in self.unit.funcs if canon.get(f.name, f) is f]
        for f in self.unit.funcs:
            if len(f.users) > 1:  # the comment says where its schemas are (a few)
                more = len(f.users) - 4
                f.where = ", ".join(f.users[:4]) + (" and %d more" % more if more > 0 else "")

    def _prune(self):
        """Drops functions no entry point can reach (left by schemas that failed to compile)."""
        seen = set()
        stack = [s.func for _, s in self.unit.entries if s.kind == "fn"]
        stack += [s.func for s in self.unit.kept if s.kind == "fn"]
        stack += [self._by_name(fn) for _, rows in self.unit.dyn_tables for _, fn in rows]
        while stack:
            f = stack.pop()
            if f.name in seen:
                continue
            seen.add(f.name)
            if f.external:
                continue  # its unit emits it and what it calls
            for s in _subs_of(f.checks):
                if s.func.name not in seen:
                    stack.append(s.func)
        self.unit.externals = sorted({f.external for f in self.unit.funcs
                                      if f.name in seen and f.external})
        self.unit.funcs = [f for f in self.unit.funcs if f.name in seen and not f.external]
        self._order()
        used_km = {c.matcher for f in self.unit.funcs for c in f.checks
                   if c.kind == "object" and c.matcher}
        self.unit.keymatchers = [k for k in self.unit.keymatchers if k.name in used_km]

    def _order(self):
        """Functions in call order (callees first), so that only recursive ones and those the
        $dynamicRef tables name need a prototype (f.proto)."""
        emitted = {f.name: f for f in self.unit.funcs}
        state = {}  # name -> 1 visiting, 2 done
        order = []
        for f in self.unit.funcs:
            f.proto = False
        for _, rows in self.unit.dyn_tables:
            for _, fn in rows:
                if fn in emitted:
                    emitted[fn].proto = True

        def visit(root):
            stack = [(root, iter(_subs_of(root.checks)))]
            state[root.name] = 1
            while stack:
                f, it = stack[-1]
                for sub in it:
                    g = emitted.get(sub.func.name)
                    if g is None:
                        continue  # another unit's (declared by its header)
                    st = state.get(g.name)
                    if st == 1:
                        g.proto = True  # a cycle: called before it is defined
                    elif st is None:
                        state[g.name] = 1
                        stack.append((g, iter(_subs_of(g.checks))))
                        break
                else:
                    stack.pop()
                    state[f.name] = 2
                    order.append(f)

        for f in self.unit.funcs:
            if f.name not in state:
                visit(f)
        self.unit.funcs = order

    def prune_matchers(self, extra_text=""):
        """Drops the pattern matchers no emitted function calls (nor extra_text, the struct
        checks' C, mentions): those of schemas another unit emits."""
        used = {c.matcher for f in self.unit.funcs for c in f.checks
                if c.kind == "string" and c.matcher}
        self.unit.matchers = [m for m in self.unit.matchers
                              if m[0] in used or re.search(r"\b%s\b" % m[0], extra_text)]

    def _by_name(self, name):
        for f in self.unit.funcs:
            if f.name == name:
                return f
        raise KeyError(name)

    # ---- helpers ----

    def err(self, node, kw, reason):
        """An error at node's keyword kw (a tuple: a path of tokens under node)."""
        info = self.loader.info(node)
        toks = kw if isinstance(kw, tuple) else (kw,) if kw else ()
        ptr = (info.pointer if info else "") + "".join("/" + pointer_escape(k) for k in toks)
        self.errors.append(Diagnostic(info.file if info else None, ptr, reason))

    def resource_id(self, uri):
        if uri not in self.res_ids:
            self.res_ids[uri] = len(self.unit.resources)
            self.unit.resources.append(uri)
        return self.res_ids[uri]

    def regex(self, node, kw, pattern):
        if pattern in self.regex_ids:
            return self.regex_ids[pattern]
        try:
            pcre = ecma_to_pcre2(pattern)
        except ValueError as e:
            self.err(node, kw, "cannot compile pattern %r: %s" % (pattern, e))
            return 0
        problem = check_pcre2(pcre)
        if problem:
            self.err(node, kw, "cannot compile pattern %r: %s" % (pattern, problem))
            return 0
        idx = len(self.unit.regexes)
        self.unit.regexes.append((cstr(pcre), comment_safe(pattern)))
        self.regex_ids[pattern] = idx
        return idx

    def matcher(self, pattern):
        """Name of a generated C matcher for a simple anchored pattern, or None."""
        atoms = simple_matcher(pattern)
        if atoms is None:
            return None
        key = ("m", pattern)
        if key in self.regex_ids:
            return self.regex_ids[key]
        name = "%srx%d" % (self.prefix, len(self.unit.matchers))
        # One byte per character, one bit per distinct class: a table lookup per character
        # instead of a chain of range tests (branch-predictor friendly on random input).
        classes = list(dict.fromkeys(chars for chars, _, _ in atoms))
        if len(classes) > 8:
            return None
        table = [0] * 256
        for bit, chars in enumerate(classes):
            for ch in chars:
                table[ord(ch)] |= 1 << bit
        # the non-zero runs of the 256-entry class table, each from its index (zeros implied)
        rows = []
        i = 0
        while i < 256:
            if not table[i]:
                i += 1
                continue
            j = i
            while j < 256 and table[j]:
                j += 1
            for k in range(i, j, 16):
                vals = ", ".join("%d" % v for v in table[k:min(k + 16, j)])
                rows.append(("[%d] = " % k if k == i else "") + vals)
            i = j
        fixed = [(1 << classes.index(chars), lo) for chars, lo, hi in atoms[:-1]]
        lchars, llo, lhi = atoms[-1]
        nfixed = sum(cnt for _, cnt in fixed)
        last = (1 << classes.index(lchars), llo, lhi)
        self.unit.matchers.append((name, comment_safe(pattern), nfixed, fixed, last, rows))
        self.regex_ids[key] = name
        return name

    def const(self, value):
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
        if text not in self.const_ids:
            self.const_ids[text] = len(self.unit.consts)
            self.unit.consts.append(cstr(text))
        return self.const_ids[text]

    def eq_expr(self, v):
        if v is None:
            return "json_is_null(j)"
        if v is True:
            return "json_is_true(j)"
        if v is False:
            return "json_is_false(j)"
        if isinstance(v, (int, float)):
            return "(json_is_number(j) && tb_json_num(j) == %s)" % num_literal(v)
        if isinstance(v, str):
            b = v.encode("utf-8")
            return "tb_json_str_eq(j, %s, %d)" % (cstr_bytes(b), len(b))
        return "tb_vconst_eq(j, &K[%d])" % self.const(v)

    def sub(self, node):
        if node is True:
            return Sub("true")
        if node is False:
            return Sub("false")
        if not isinstance(node, dict):
            return None
        f = self.memo.get(id(node))
        if f is None:
            f = self.compile(node)
        return Sub("fn", f)

    def child(self, node, kw, value, what="a schema"):
        if isinstance(value, bool) or isinstance(value, dict):
            if isinstance(value, dict) and self.loader.info(value) is None:
                info = self.loader.info(node)
                self.loader.index(value, info.base, info.resource, info.file,
                                  info.pointer + "/" + kw, info.dialect)
            return self.sub(value)
        self.err(node, kw, "must be %s (object or boolean), got %s" % (what, short_json(value)))
        return Sub("true")

    # ---- compile one schema object ----

    def compile(self, node):
        info = self.loader.info(node)
        shared = self.loader.unit_of(info.file) if info else None
        entry = shared is not None and re.match(r"^(/\$defs/[^/]+)?$", info.pointer)
        if entry:
            # an entry of a shared unit's file: one name in every unit
            name = "%s__schema_%s" % (shared, location_name(info))
            if name in self.fnames.used and shared == self.unit_name:
                self.err(node, "", "two schemas of unit %s have the C name %s" % (shared, name))
            self.fnames.used.add(name)
        else:
            name = self.fnames.take(self.prefix + "schema_" + location_name(info))
        where = "%s#%s" % (cnames.short_path(info.file) if info and info.file else "?",
                           info.pointer if info else "")
        f = VFunc(name, comment_safe(where),
                  self.resource_id(info.resource) if info else 0)
        if isinstance(node.get("description"), str):
            f.description = comment_safe(node["description"])
        if entry:
            f.exported = shared == self.unit_name
            f.external = None if f.exported else shared
        self.memo[id(node)] = f
        self.unit.funcs.append(f)
        dialect = info.dialect if info else "2020-12"
        checks = f.checks
        n = node

        def want(kw, types, what):
            v = n.get(kw)
            if v is None and kw not in n:
                return None
            if not isinstance(v, types) or (isinstance(v, bool) and bool not in (
                    types if isinstance(types, tuple) else (types,))):
                self.err(n, kw, "%s must be %s, got %s" % (kw, what, short_json(v)))
                return None
            return v

        def nonneg(kw):
            v = want(kw, (int, float), "a non-negative integer")
            if v is None:
                return None
            if v < 0 or (isinstance(v, float) and not v.is_integer()):
                self.err(n, kw, "%s must be a non-negative integer, got %s" % (kw, short_json(v)))
                return None
            if int(v) == 0 and kw.startswith("min"):
                return None  # always satisfied
            return int(v)

        # -- OpenAPI 3.0's nullable beside $ref, allOf, oneOf or anyOf and no type: null is
        #    allowed (common practice, which the C types' <name>_is_null honour too) --
        if dialect == "oas30" and n.get("nullable") is True and "type" not in n and any(
                k in n for k in ("$ref", "allOf", "oneOf", "anyOf")):
            checks.append(Check("nullok"))

        # -- type, const, enum --
        t = n.get("type")
        if "type" in n:
            types = [t] if isinstance(t, str) else t
            if not isinstance(types, list) or not all(isinstance(x, str) and x in TYPES
                                                       for x in types):
                self.err(n, "type", "type must be one of %s or an array of them, got %s"
                         % ("/".join(TYPES), short_json(t)))
                types = []
            types = list(dict.fromkeys(types))
            if dialect == "oas30" and n.get("nullable") is True and "null" not in types:
                types.append("null")
            if types:
                if "number" in types and "integer" in types:
                    types.remove("integer")
                checks.append(Check("type", test=" || ".join(TYPE_TEST[x] for x in types),
                                    msg=cmsg("must be " + " or ".join(types)), types=types))
        if "const" in n:
            checks.append(Check("const", test=self.eq_expr(n["const"]),
                                msg=cmsg("must be equal to " + short_json(n["const"]))))
        if "enum" in n:
            e = n["enum"]
            if not isinstance(e, list):
                self.err(n, "enum", "enum must be an array, got %s" % short_json(e))
            else:
                vals = list(e)
                if dialect == "oas30" and n.get("nullable") is True and None not in vals:
                    vals.append(None)
                test = " || ".join(self.eq_expr(v) for v in vals) or "false"
                checks.append(Check("enum", test=test,
                                    msg=cmsg("must be one of " + short_json(vals, 120)),
                                    values=vals))

        # -- numbers --
        num = []
        for kw, op, word in (("minimum", ">=", ">="), ("maximum", "<=", "<=")):
            v = want(kw, (int, float), "a number")
            if v is not None:
                excl = "exclusiveM" + kw[1:]
                if dialect == "oas30" and n.get(excl) is True:
                    op = op[0]
                    word = word[0]
                    kw = excl
                num.append((kw, "x %s %s" % (op, num_literal(v)),
                            cmsg("must be %s %s" % (word, num_text(v)))))
        for kw, op in (("exclusiveMinimum", ">"), ("exclusiveMaximum", "<")):
            if kw in n and isinstance(n[kw], bool) and dialect == "oas30":
                continue
            v = want(kw, (int, float), "a number")
            if v is not None:
                num.append((kw, "x %s %s" % (op, num_literal(v)),
                            cmsg("must be %s %s" % (op, num_text(v)))))
        mult = want("multipleOf", (int, float), "a number > 0")
        if mult is not None and mult <= 0:
            self.err(n, "multipleOf", "multipleOf must be > 0, got %s" % short_json(mult))
            mult = None
        rng = INT_FORMATS.get(n.get("format")) if isinstance(n.get("format"), str) else None
        fmt_range = None
        if rng is not None and "enum" not in n and "const" not in n:
            fmt_range = ("x >= %s && x <= %s" % (num_literal(rng[0]), num_literal(rng[1])),
                         cmsg("must be a valid %s (%d to %d)" % (n["format"], rng[0], rng[1])))
        if num or mult is not None or fmt_range:
            checks.append(Check("number", limits=num,
                                mult=repr(float(mult)) if mult is not None else None,
                                mult_msg=cmsg("must be a multiple of %s" % num_text(mult))
                                if mult is not None else None,
                                fmt_range=fmt_range))

        # -- strings --
        minl, maxl = nonneg("minLength"), nonneg("maxLength")
        pat = want("pattern", str, "a string (ECMA-262 regular expression)")
        fmt = want("format", str, "a string")
        matcher = self.matcher(pat) if pat is not None else None
        # beside an enum or const, a format adds nothing but a refusal of values the schema
        # lists itself (ogen's sample.json: format time, enum ["15:04:05", ...] without the
        # RFC 3339 offset): the listed values win
        fmt_fn = FORMATS.get(fmt) if "enum" not in n and "const" not in n else None
        if minl is not None or maxl is not None or pat is not None or fmt_fn:
            checks.append(Check(
                "string", min=minl, max=maxl,
                min_msg=cmsg("must have at least %s characters" % minl),
                max_msg=cmsg("must have at most %s characters" % maxl),
                matcher=matcher,
                regex=self.regex(n, "pattern", pat) if pat is not None and not matcher else None,
                regex_msg=cmsg("must match pattern %s" % pat) if pat is not None else None,
                format_fn=fmt_fn,
                format_msg=cmsg("must be a valid %s" % fmt) if fmt else None))

        # -- arrays --
        arr = Check("array", min=nonneg("minItems"), max=nonneg("maxItems"),
                    unique=n.get("uniqueItems") is True, prefix=[], items=None,
                    contains=None)
        if "uniqueItems" in n and not isinstance(n["uniqueItems"], bool):
            self.err(n, "uniqueItems", "uniqueItems must be a boolean")
        arr.min_msg = cmsg("must have at least %s items" % arr.min)
        arr.max_msg = cmsg("must have at most %s items" % arr.max)
        prefix = n.get("prefixItems")
        items = n.get("items")
        if dialect == "oas30" and isinstance(items, list):
            self.err(n, "items", "items must be a schema in OpenAPI 3.0")
            items = None
        if "prefixItems" in n:
            if not isinstance(prefix, list):
                self.err(n, "prefixItems", "prefixItems must be an array of schemas")
            else:
                arr.prefix = [self.child(n, "prefixItems/%d" % i, s)
                              for i, s in enumerate(prefix)]
        if "items" in n and items is not None:
            arr.items = self.child(n, "items", items)
        if "contains" in n:
            mn = nonneg("minContains")
            if mn is None and "minContains" in n:
                mn = 0
            mx = nonneg("maxContains")
            arr.contains = self.child(n, "contains", n["contains"])
            arr.cmin = 1 if mn is None else mn
            arr.cmax = mx
            arr.cmin_msg = cmsg("must contain at least %d matching items" % arr.cmin)
            arr.cmax_msg = cmsg("must contain at most %s matching items" % mx)
            arr.cmin_rule = "contains" if mn is None else "minContains"
        if (arr.min is not None or arr.max is not None or arr.unique or arr.prefix
                or arr.items is not None or arr.contains is not None):
            checks.append(arr)

        # -- objects --
        obj = Check("object", props=[], required=[], patterns=[], additional=None,
                    names=None, min=nonneg("minProperties"), max=nonneg("maxProperties"),
                    dep_required=[], dep_schemas=[], matcher=None)
        obj.min_msg = cmsg("must have at least %s properties" % obj.min)
        obj.max_msg = cmsg("must have at most %s properties" % obj.max)
        props = want("properties", dict, "an object of schemas") or {}
        for k, s in props.items():
            b = k.encode("utf-8")
            obj.props.append(Check("prop", name=comment_safe(k), lit=cstr_bytes(b), len=len(b),
                                   sub=self.child(n, "properties/" + pointer_escape(k), s),
                                   bit=None))
        req = want("required", list, "an array of strings") or []
        if not all(isinstance(x, str) for x in req):
            self.err(n, "required", "required must be an array of strings")
            req = []
        prop_index = {p.name: i for i, p in enumerate(obj.props)}
        nbits = 0
        for r in dict.fromkeys(req):
            b = r.encode("utf-8")
            mode = access_mode(self.loader, props.get(r))
            entry = Check("req", name=r, lit=cstr_bytes(b), len=len(b), bit=None,
                          msg=cmsg("is required" if mode is None else
                                   "is required (in %s: it is %s)" % (
                                       "responses" if mode == "readOnly" else "requests",
                                       mode)),
                          unless=UNLESS.get(mode))
            i = prop_index.get(r)
            if i is not None and nbits < 64:
                p = obj.props[i]
                if p.bit is None:
                    p.bit = nbits
                    nbits += 1
                entry.bit = p.bit
            obj.required.append(entry)
        pp = want("patternProperties", dict, "an object of schemas") or {}
        for k, s in pp.items():
            obj.patterns.append(Check("pattern", regex=self.regex(n, "patternProperties", k),
                                      src=comment_safe(k),
                                      sub=self.child(n, "patternProperties/" + pointer_escape(k),
                                                     s)))
        if "additionalProperties" in n:
            obj.additional = self.child(n, "additionalProperties", n["additionalProperties"])
            if obj.additional.kind == "true" and not obj.props and not obj.patterns:
                obj.additional_all = True
        if "propertyNames" in n:
            obj.names = self.child(n, "propertyNames", n["propertyNames"])
        dr = want("dependentRequired", dict, "an object of string arrays") or {}
        for k, lst in dr.items():
            if not isinstance(lst, list) or not all(isinstance(x, str) for x in lst):
                self.err(n, "dependentRequired/" + pointer_escape(k), "must be an array of strings")
                continue
            b = k.encode("utf-8")
            obj.dep_required.append(Check(
                "depreq", lit=cstr_bytes(b), len=len(b),
                needs=[(cstr(x), len(x.encode("utf-8")), x, cmsg("is required when %s is present"
                                                                  % k)) for x in lst]))
        ds = want("dependentSchemas", dict, "an object of schemas") or {}
        for k, s in ds.items():
            b = k.encode("utf-8")
            obj.dep_schemas.append(Check("depschema", lit=cstr_bytes(b), len=len(b),
                                         sub=self.child(n, "dependentSchemas/" + pointer_escape(k),
                                                        s)))
        obj.iterate = bool(obj.props or obj.patterns or obj.additional is not None
                           or obj.names is not None)
        if obj.props and obj.iterate:
            keys = tuple(p.name for p in obj.props)
            km = self.km_by_keys.get(keys)
            if km is None:
                km = KeyMatcher("%skeys%d" % (self.prefix, len(self.unit.keymatchers)),
                                list(keys))
                self.unit.keymatchers.append(km)
                self.km_by_keys[keys] = km
            obj.matcher = km.name
        obj.nbits = nbits
        if (obj.iterate or obj.required or obj.min is not None or obj.max is not None
                or obj.dep_required or obj.dep_schemas):
            checks.append(obj)

        # -- in-place applicators --
        if "$ref" in n:
            ref = n["$ref"]
            if not isinstance(ref, str):
                self.err(n, "$ref", "$ref must be a string")
            else:
                try:
                    target = self.loader.resolve(ref, n)
                    checks.append(Check("ref", sub=self.child(n, "$ref", target), ref=ref))
                except GenError as e:
                    self.errors.extend(e.diags)
        if "$dynamicRef" in n and dialect != "oas30":
            ref = n["$dynamicRef"]
            if not isinstance(ref, str):
                self.err(n, "$dynamicRef", "$dynamicRef must be a string")
            else:
                try:
                    target = self.loader.resolve(ref, n)
                    sub = self.child(n, "$dynamicRef", target)
                    frag = ref.split("#", 1)[1] if "#" in ref else ""
                    table = None
                    if (frag and not frag.startswith("/") and isinstance(target, dict)
                            and target.get("$dynamicAnchor") == frag):
                        table = self.dyn_used.setdefault(frag, "DYN_%d" % len(self.dyn_used))
                    checks.append(Check("dynref", sub=sub, table=table, ref=ref))
                except GenError as e:
                    self.errors.extend(e.diags)
        for kw in ("allOf", "anyOf", "oneOf"):
            if kw in n:
                v = n[kw]
                if not isinstance(v, list) or not v:
                    self.err(n, kw, "%s must be a non-empty array of schemas" % kw)
                    continue
                subs = [self.child(n, "%s/%d" % (kw, i), s) for i, s in enumerate(v)]
                disc = self.discriminator(n) if kw in ("oneOf", "anyOf") else None
                if disc is not None and disc[1]:
                    # the value names its branch: only that one is checked, and an unknown or
                    # missing value is one error at the property naming the allowed values
                    prop, tags = disc
                    fb = self.discriminator_default(n)  # the base of an allOf hierarchy
                    allowed = ", ".join(json.dumps(t, ensure_ascii=False) for t, _ in tags)
                    pb = prop.encode("utf-8")
                    checks.append(Check(
                        "discriminator", lit=cstr_bytes(pb), len=len(pb), member=cstr(prop),
                        tags=[(cstr_bytes(t.encode("utf-8")), len(t.encode("utf-8")), subs[i])
                              for t, i in tags],
                        missing=cmsg("the discriminator %s is required (one of %s)"
                                     % (json.dumps(prop, ensure_ascii=False), allowed)),
                        unknown=cmsg("must be one of %s" % allowed),
                        fallback=None if fb is None else subs[fb],
                        notobj=cmsg("must be an object with the discriminator %s"
                                    % json.dumps(prop, ensure_ascii=False))))
                    continue
                msg = {"allOf": "must match all schemas in allOf",
                       "anyOf": "must match at least one schema in anyOf",
                       "oneOf": "must match exactly one schema in oneOf"}[kw]
                checks.append(Check(kw, subs=subs, msg=cmsg(msg)))
        if "not" in n:
            checks.append(Check("not", sub=self.child(n, "not", n["not"]),
                                msg=cmsg("must not match the schema in not")))
        if "if" in n and ("then" in n or "else" in n):
            checks.append(Check(
                "if", cond=self.child(n, "if", n["if"]),
                then=self.child(n, "then", n["then"]) if "then" in n else None,
                els=self.child(n, "else", n["else"]) if "else" in n else None))
        elif "if" in n:
            # `if` alone still produces annotations when it passes
            checks.append(Check("if", cond=self.child(n, "if", n["if"]), then=None, els=None))
        if obj.dep_schemas:
            pass  # rendered inside the object block, after the members

        # -- unevaluated --
        if "unevaluatedItems" in n:
            checks.append(Check("uneval_items", sub=self.child(n, "unevaluatedItems",
                                                               n["unevaluatedItems"])))
            f.has_uneval = True
        if "unevaluatedProperties" in n:
            checks.append(Check("uneval_props", sub=self.child(n, "unevaluatedProperties",
                                                               n["unevaluatedProperties"])))
            f.has_uneval = True
        if id(node) in self.nul_nodes:
            checks.append(nul_check())
        f.calls = any(c.kind in ("array", "object", "ref", "dynref", "allOf", "anyOf", "oneOf",
                                 "discriminator",
                                 "not", "if", "uneval_items", "uneval_props") for c in checks)
        return f
