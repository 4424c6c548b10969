"""IR of struct checks: the schema's checks applied to a C struct, without building JSON.

A typed publisher holds its data as a C struct. Validating it used to mean building the jansson
value (T_to_json), validating that, and writing it out. A struct check answers the same question
on the struct itself, for the schemas whose checks map onto C values:

    T__fast_valid(v) == true   implies   T_validate(T_to_json(v), FORMATS) == 0

It is conservative: whatever it cannot decide on the C value (a null, a const, anyOf, a string
that is not UTF-8, ...) answers false, and the caller takes the JSON path, which decides and
words the errors. So a struct check never changes an answer or an error message; it only skips
work for data that is valid. A type whose schema uses a keyword this module does not model gets
no struct check at all (`Ineligible`), and its publishers keep the JSON path.

The C text is decided here; the template only prints each function's lines.
"""


class Ineligible(Exception):
    pass


# the JSON type of a C value of each CType kind
JSON_TYPE = {"string": "string", "integer": "integer", "number": "number",
             "boolean": "boolean", "enum": "string", "struct": "object", "array": "array"}
MAX_DEPTH = 24  # in-place applicators ($ref, allOf) followed on one value


class SCFunc:
    def __init__(self, name, ctype_decl):
        self.name = name
        self.decl = ctype_decl  # C type of the struct
        self.lines = []


class StructChecks:
    """Builds struct-check functions from a finished ValidatorUnit. `prefix` names them."""

    def __init__(self, prefix):
        self.prefix = prefix
        self.funcs = []  # SCFunc, in creation order (declared before use by the template)
        self.memo = {}   # (struct cname, validator func name) -> SCFunc, or None if ineligible
        self._obj_seen = False  # an object check was applied to the struct being built

    def for_type(self, nt):
        """Name of the struct check of named struct type nt against its own schema, or None."""
        try:
            return self._struct_fn(nt, nt.validator).name
        except Ineligible:
            return None

    # ---- functions ----

    def _struct_fn(self, nt, sub):
        key = (nt.cname, sub.func.name if sub.kind == "fn" else sub.kind)
        if key in self.memo:
            fn = self.memo[key]
            if fn is None:
                raise Ineligible()
            return fn
        fn = SCFunc("%s__sc%d" % (self.prefix, len(self.memo)), nt.cname)
        self.memo[key] = fn  # a recursive reference calls the function being built
        saved = self._obj_seen
        self._obj_seen = False
        try:
            out = []
            self._apply(nt_ctype(nt), sub, "v", out, 0, "    ")
            if not self._obj_seen:
                # no object keyword: the members must still be writable (UTF-8, finite)
                self._object(nt, EMPTY_OBJECT, out, "    ")
        except Ineligible:
            self.memo[key] = None
            raise
        finally:
            self._obj_seen = saved
        fn.lines = out
        self.funcs.append(fn)
        return fn

    # ---- values ----

    def _value(self, ct, sub, expr, out, ind):
        """Checks the C value `expr` of CType ct against sub; `return false` on doubt."""
        if getattr(ct, "pointer", False):
            raise Ineligible()  # a recursive member (a pointer)
        if sub.kind == "true" and ct.kind not in ("string", "number", "array", "struct"):
            return
        if ct.kind == "string":
            # NULL writes null; a string that is not UTF-8 cannot be written: the JSON path
            # reports both.
            out.append(ind + "{")
            i2 = ind + "    "
            out.append(i2 + "size_t sn;")
            out.append(i2 + "const char *s = tb_sc_string(%s, &sn);" % expr)
            out.append(i2 + "if (s == NULL)")
            out.append(i2 + "    return false;")
            self._apply(ct, sub, "s", out, 0, i2)
            out.append(ind + "}")
        elif ct.kind == "number":
            out.append(ind + "if (!isfinite(%s))" % expr)
            out.append(ind + "    return false;")
            self._apply(ct, sub, expr, out, 0, ind)
        elif ct.kind == "struct":
            fn = self._struct_fn(ct.ref, sub)
            out.append(ind + "if (!%s(&%s))" % (fn.name, expr))
            out.append(ind + "    return false;")
        elif ct.kind == "array":
            raise Ineligible()  # arrays are checked where their count is known (_array)
        elif ct.kind in ("integer", "boolean", "enum"):
            self._apply(ct, sub, expr, out, 0, ind)
        else:
            raise Ineligible()  # json_t members

    def _array(self, ct, sub, ptr, count, out, ind):
        """An array member: ptr[0..count) of ct.item."""
        if ct.item.kind == "array":
            raise Ineligible()
        out.append(ind + "{")
        i2 = ind + "    "
        out.append(i2 + "size_t an = %s;" % count)
        self._apply(ct, sub, (ptr, "an"), out, 0, i2)
        # items without an items keyword are still written: their values must be writable
        if not self._has_items(sub, 0):
            self._items(ct, None, ptr, out, i2)
        out.append(ind + "}")

    def _has_items(self, sub, depth):
        if sub.kind != "fn" or depth > MAX_DEPTH:
            return False
        for k in sub.func.checks:
            if k.kind == "array" and k.items is not None:
                return True
            if k.kind == "ref" and self._has_items(k.sub, depth + 1):
                return True
            if k.kind == "allOf" and any(self._has_items(s, depth + 1) for s in k.subs):
                return True
        return False

    def _items(self, ct, sub, ptr, out, ind):
        out.append(ind + "for (size_t i = 0; i < an; i++) {")
        self._value(ct.item, sub if sub is not None else TRUE, "%s[i]" % ptr, out, ind + "    ")
        out.append(ind + "}")

    # ---- checks of one schema on a bound value ----

    def _apply(self, ct, sub, x, out, depth, ind):
        if sub.kind == "true":
            return
        if sub.kind != "fn" or depth > MAX_DEPTH:
            raise Ineligible()
        f = sub.func
        if f.has_uneval:
            raise Ineligible()
        for k in f.checks:
            self._check(ct, k, x, out, depth, ind)

    def _check(self, ct, k, x, out, depth, ind):
        jt = JSON_TYPE.get(ct.kind)
        if jt is None:
            raise Ineligible()
        kind = k.kind
        if kind == "type":
            if not (jt in k.types or (jt == "integer" and "number" in k.types)):
                raise Ineligible()  # always fails: let the JSON path say so
        elif kind == "enum":
            if ct.kind != "enum":
                raise Ineligible()
            allowed = set(v for v in k.values if isinstance(v, str))
            if not all(v[0] in allowed for v in ct.ref.values):
                raise Ineligible()
            # the C enum can hold a value outside its constants: to_string says
            out.append(ind + "if (%s_to_string(%s) == NULL)" % (ct.ref.cname, x))
            out.append(ind + "    return false;")
        elif kind == "number":
            if ct.kind not in ("integer", "number"):
                return
            if k.mult is not None:
                raise Ineligible()
            tests = [test for _rule, test, _msg in k.limits]
            if getattr(k, "fmt_range", None):
                tests.append(k.fmt_range[0])  # formats are asserted where this runs, as below
            if tests:
                out.append(ind + "{")
                out.append(ind + "    long double x = (long double)(%s);" % x)
                for test in tests:
                    out.append(ind + "    if (!(%s))" % test)
                    out.append(ind + "        return false;")
                out.append(ind + "}")
        elif kind == "string":
            if ct.kind == "enum":
                raise Ineligible()
            if ct.kind != "string":
                return
            # x is "s"; its length in bytes is sn
            if k.min is not None:
                out.append(ind + "if (sn < %d && tb_utf8_len(s, sn) < %d)" % (k.min * 4, k.min))
                out.append(ind + "    return false;")
            if k.max is not None:
                out.append(ind + "if (sn > %d && tb_utf8_len(s, sn) > %d)" % (k.max, k.max))
                out.append(ind + "    return false;")
            if k.matcher:
                out.append(ind + "if (!%s(s, sn))" % k.matcher)
                out.append(ind + "    return false;")
            elif k.regex is not None:
                out.append(ind + "if (tb_regex_search(&RE[%d], s, sn) != 1)" % k.regex)
                out.append(ind + "    return false;")
            if k.format_fn:
                out.append(ind + "if (!%s(s, sn))" % k.format_fn)
                out.append(ind + "    return false;")
        elif kind == "array":
            if ct.kind != "array":
                return
            ptr, n = x
            if k.prefix or k.contains is not None:
                raise Ineligible()
            if k.unique:
                # JSON equality of strings and integers is equality of the C values
                if ct.item.kind == "string":
                    same = "strcmp(%s[i], %s[m]) == 0" % (ptr, ptr)
                elif ct.item.kind in ("integer", "boolean") or (
                        ct.item.kind == "enum"
                        and len(set(v[0] for v in ct.item.ref.values)) == len(ct.item.ref.values)):
                    # (an enum listing a value twice has two constants writing the same string)
                    same = "%s[i] == %s[m]" % (ptr, ptr)
                else:
                    raise Ineligible()
                out.append(ind + "for (size_t i = 1; i < %s; i++)" % n)
                out.append(ind + "    for (size_t m = 0; m < i; m++)")
                if ct.item.kind == "string":
                    out.append(ind + "        if (%s[i] && %s[m] && %s)" % (ptr, ptr, same))
                else:
                    out.append(ind + "        if (%s)" % same)
                out.append(ind + "            return false;")
            if k.min is not None:
                out.append(ind + "if (%s < %d)" % (n, k.min))
                out.append(ind + "    return false;")
            if k.max is not None:
                out.append(ind + "if (%s > %d)" % (n, k.max))
                out.append(ind + "    return false;")
            if k.items is not None:
                if k.items.kind == "false":
                    out.append(ind + "if (%s > 0)" % n)
                    out.append(ind + "    return false;")
                else:
                    self._items(ct, k.items, ptr, out, ind)
        elif kind == "nul":
            return  # a C string holds no NUL
        elif kind == "object":
            if ct.kind != "struct":
                return
            self._obj_seen = True
            self._object(ct.ref, k, out, ind)
        elif kind == "ref":
            self._apply(ct, k.sub, x, out, depth + 1, ind)
        elif kind == "allOf":
            for s in k.subs:
                self._apply(ct, s, x, out, depth + 1, ind)
        else:
            # const, anyOf, oneOf, not, if, $dynamicRef, unevaluated*: not modelled
            raise Ineligible()

    def _object(self, nt, k, out, ind):
        if nt.rest is not None:
            raise Ineligible()  # its extra members: the JSON path checks them
        if k.patterns or k.names is not None or k.dep_required or k.dep_schemas:
            raise Ineligible()
        if k.min is not None or k.max is not None:
            # members written: the required ones, and the optional ones present
            fixed = sum(1 for f in nt.fields if f.required)
            opt = ["v->has_%s" % f.cname for f in nt.fields if not f.required]
            out.append(ind + "{")
            out.append(ind + "    size_t np = %d%s;" % (fixed, "".join(
                " + (size_t)" + o for o in opt)))
            if k.min is not None:
                out.append(ind + "    if (np < %d)" % k.min)
                out.append(ind + "        return false;")
            if k.max is not None:
                out.append(ind + "    if (np > %d)" % k.max)
                out.append(ind + "        return false;")
            out.append(ind + "}")
        by_lit = {f.lit: f for f in nt.fields}
        for r in k.required:
            f = by_lit.get(r.lit)
            if f is None:
                raise Ineligible()  # a required member the struct cannot hold
            if not f.required:
                out.append(ind + "if (!v->has_%s)" % f.cname)
                out.append(ind + "    return false;")
        props = {p.lit: p for p in k.props}
        for f in nt.fields:
            p = props.get(f.lit)
            sub = p.sub if p is not None else k.additional
            if sub is None:
                sub = TRUE  # no constraint, but it must be writable
            if sub.kind == "false":
                if f.required:
                    raise Ineligible()
                out.append(ind + "if (v->has_%s)" % f.cname)
                out.append(ind + "    return false;")
                continue
            # a required member's checks stand at this level (each value opens its own block
            # where it declares locals); an optional one's go inside `if (v->has_x)`
            body = []
            i2 = ind if f.required else ind + "    "
            if f.nullable:
                body.append(i2 + "if (v->%s_is_null)" % f.cname)
                body.append(i2 + "    return false;")
            if f.ctype.kind == "array":
                self._array(f.ctype, sub, "v->" + f.cname, "v->n_" + f.cname, body, i2)
            else:
                self._value(f.ctype, sub, "v->" + f.cname, body, i2)
            if not body:
                continue
            if f.required:
                out.extend(body)
            else:
                out.append(ind + "if (v->has_%s) {" % f.cname)
                out.extend(body)
                out.append(ind + "}")


class _True:
    kind = "true"
    func = None


TRUE = _True()


class _EmptyObject:
    kind = "object"
    patterns = ()
    names = None
    min = None
    max = None
    dep_required = ()
    dep_schemas = ()
    required = ()
    props = ()
    additional = None


EMPTY_OBJECT = _EmptyObject()


def nt_ctype(nt):
    from .types import CType
    return CType("struct", ref=nt)
