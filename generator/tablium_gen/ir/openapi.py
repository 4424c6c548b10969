"""IR of an OpenAPI 3.0 / 3.1 service: operations, parameters, bodies, responses, routes.

Builds on the schema IR: every schema the spec uses (components, parameters, bodies, responses)
is compiled by the same ValidatorCompiler and TypeBuilder as plain JSON Schemas, so request
decoding and response encoding reuse the generated validators and codecs.

Conventions (documented in README "Writing a service"):
- A response schema that is an object whose one property is a required `data` is the success
  envelope: the handler fills the type of `data`, the runtime writes `{"data": ...}`. With other
  properties beside `data` (a page's has_more, JSON:API's meta) it is the whole body.
- A failure answer (default, 4XX, 5XX) whose schema is `{error: {...}}`, the inner object's
  members among code, message, requestId, details and detailsOmitted with code and message
  strings, is the error envelope: the handler fills a tb_api_error, the runtime writes
  `{"error": {code, message, requestId, details}}`. Any other error object (Stripe's `type`,
  Google's integer `code`) is the answer's own type, and the runtime's own errors take its
  shape where they can (see error_shape and error_shapes).
- Any other schema is the whole body (kind "raw"); no content is kind "none".
"""
import json
import os
import re
import urllib.parse

from ..errors import Diagnostic, GenError
from ..load.loader import INSTANCE_KEYS, parse_text
from ..load.uri import pointer_escape
from . import cnames, polymorph
from .types import TYPE_SUFFIXES, CType, TypeBuilder
from .validators import ValidatorCompiler, comment_safe, cstr

# an HTTP authentication scheme name (RFC 9110 token)
HTTP_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
METHOD_ENUM = {m: "TB_HTTP_" + m.upper() for m in METHODS}
METHOD_NUMBER = {METHOD_ENUM[m]: i for i, m in enumerate(METHODS)}  # tb_http_method's values
PARAM_IN = ("path", "query", "header", "cookie")
# what the service templates name NAME_<x> (a schema called Api or Client was a redefinition)
SERVICE_SYMBOLS = set("""api client client_free client_http client_new deps deps_of examples
n_examples server service service_fini service_init service_main""".split())
# what an operation named N declares besides N (the handler)
# security schemes whose credentials travel in the Authorization header
AUTHORIZATION_KINDS = ("TB_SEC_HTTP_BEARER", "TB_SEC_HTTP_BASIC", "TB_SEC_HTTP_DIGEST",
                       "TB_SEC_OAUTH2", "TB_SEC_OPENID", "TB_SEC_HTTP_OTHER")
OP_SUFFIXES = ("", "_req", "_resp", "_call", "_status", "_resp_error")
# headers that frame the message (RFC 9110/9112): the HTTP stack writes them, never a parameter;
# a Content-Length parameter of 1 on a GET made the client announce a body it never sent
FRAMING_HEADERS = ("content-length", "transfer-encoding", "connection", "host", "te", "trailer",
                   "upgrade", "keep-alive", "proxy-connection")
SCALAR_KIND = {"string": "TB_PARAM_STRING", "integer": "TB_PARAM_INTEGER",
               "number": "TB_PARAM_NUMBER", "boolean": "TB_PARAM_BOOLEAN",
               "enum": "TB_PARAM_STRING"}




# The error statuses the runtime answers by itself (validation, auth, routing, limits, policies,
# deadlines, failures): an error schema of another status only ever carries a handler's answer.
RUNTIME_ERROR_STATUSES = frozenset((400, 401, 403, 404, 405, 406, 408, 411, 413, 414, 415, 417,
                                    429, 431, 500, 501, 503, 504))

class ErrShape:
    """A tb_err_shape row: how the runtime writes its own errors for a status."""

    def __init__(self, style):
        self.style = style
        self.content_type = None
        self.code_is_status = False
        self.type = self.title = self.status_m = self.code = None
        self.message = self.details = self.request_id = None
        self.wrap = None  # the member the object sits under ({"error": {...}})

    def key(self):
        return (self.style, self.content_type, self.code_is_status, self.type, self.title,
                self.status_m, self.code, self.message, self.details, self.request_id,
                self.wrap)

    def c(self, status):
        def lit(x):
            return cstr(x) if x else "NULL"
        return "{%d, %s, %d, %s, %s, %s, %s, %s, %s, %s, %s, %s}" % (
            status, self.style, 1 if self.code_is_status else 0, lit(self.content_type),
            lit(self.type), lit(self.title), lit(self.status_m), lit(self.code),
            lit(self.message), lit(self.details), lit(self.request_id), lit(self.wrap))

# the members of tablium's error object (schemas/common/api.json's Error; a tb_api_error)
ENVELOPE_ERROR = {"code", "message", "requestId", "details", "detailsOmitted"}


class Param:
    pass


class Body:
    pass


class Response:
    pass


class Operation:
    pass


class Scheme:
    pass


class Example:
    pass


def is_json_type(base):
    """application/json or a +json type (a lower-case media type without parameters)."""
    return base == "application/json" or (base.startswith("application/") and
                                          base.endswith("+json"))


def _pct(s):
    from urllib.parse import quote
    return quote(s, safe="-._~")


def _encode_path_literals(tmpl):
    """A path template whose literal text is as a request carries it (RFC 3986 pchar): a
    space, '#', non-ASCII letters and the like percent-encoded (UTF-8), a '%' not starting an
    escape too; the server matches the raw path and the client sends these bytes."""
    from urllib.parse import quote
    out = []
    for piece in re.split(r"(\{[^{}]*\})", tmpl):
        if piece.startswith("{") and piece.endswith("}"):
            out.append(piece)
        else:
            piece = re.sub(r"%(?![0-9A-Fa-f]{2})", "%25", piece)
            out.append(quote(piece, safe="/!$&'()*+,;=:@-._~%"))
    return "".join(out)


def _c_comment(s):
    return comment_safe(s.strip()) if isinstance(s, str) and s.strip() else None


class ServiceBuilder:
    def __init__(self, path, loader, name=None):
        self.path = path
        self.loader = loader
        self.where = cnames.short_path(path)
        self.errors = []
        self.foreign = {}  # id(object of another file) -> (its file's info, its pointer)
        try:
            with open(path, encoding="utf-8") as f:
                peek = parse_text(f.read(), path)
        except OSError as e:
            raise GenError(Diagnostic(path, None, "cannot read: %s" % e.strerror))
        if not isinstance(peek, dict) or not isinstance(peek.get("openapi"), str):
            raise GenError(Diagnostic(path, "", "not an OpenAPI document (no 'openapi' version)"))
        ver = peek["openapi"]
        if re.match(r"^3\.0\.\d+", ver):
            self.dialect = "oas30"
        elif re.match(r"^3\.[12]\.\d+", ver):
            self.dialect = "2020-12"
        else:
            raise GenError(Diagnostic(path, "/openapi",
                                      "unsupported OpenAPI version %r (3.0.x, 3.1.x and 3.2.x "
                                      "are)" % ver))
        loader.dialect = self.dialect
        self.root = loader.load_file(path, prepare=polymorph.rewrite)
        self.own_warnings = []
        self.shapeless = {}  # error schemas the runtime's errors cannot take: one warning each
        self.tuple_items(self.root, "")
        info = self.loader.info(self.root)
        self.base = info.base
        svc = self.root.get("x-tablium-service")
        self.name = cnames.snake(name or (svc if isinstance(svc, str) else None) or
                                 os.path.basename(path).rsplit(".", 1)[0])
        self.prefix = self.name + "_"
        self.vcomp = ValidatorCompiler(loader, prefix="%s__" % self.name, unit=self.name)
        self.types = TypeBuilder(loader, self.vcomp, prefix=self.prefix, unit=self.name)
        # the service's own symbols (NAME_api, NAME_client...): no type or operation takes them
        own = {self.prefix + x for x in SERVICE_SYMBOLS}
        self.types.namer.used |= own
        self.fnames = cnames.Namer(reserved=set(cnames.C_KEYWORDS) | own)
        self.ops = []
        self.examples = []
        self.vnames = cnames.Namer()

    # ---- helpers ----

    def err(self, pointer, reason):
        self.errors.append(Diagnostic(self.path, pointer, reason))

    def deref(self, node, pointer):
        """Follows a non-schema $ref (parameter, response, requestBody, path item)."""
        seen = 0
        while isinstance(node, dict) and isinstance(node.get("$ref"), str):
            ref = node["$ref"]
            # relative to the document the $ref is in (another file's objects may $ref their
            # own file, or back into the spec)
            at = node if self.loader.info(node) is not None else self.root
            try:
                node = self.loader.resolve(ref, at)
                info = self.loader.info(node) if isinstance(node, dict) else None
                if info is not None and info.file != self.loader.info(self.root).file:
                    self._adopt(node, info)
                pointer = info.pointer if info is not None and info.file == self.loader.info(
                    self.root).file else (ref[1:] if ref.startswith("#") else ref)
            except GenError as e:
                if at is self.root:  # said at the document's root: where the $ref is instead
                    for d in e.diags:
                        if d.pointer == "/$ref" and pointer:
                            d.pointer = pointer + "/$ref"
                self.errors.extend(e.diags)
                return None, pointer
            seen += 1
            if seen > 16:
                self.err(pointer, "$ref cycle")
                return None, pointer
        return node, pointer

    def _adopt(self, node, info, pointer=None, depth=0):
        """Objects of another file (reached by a $ref to a path item, a response...): their
        inline schemas resolve $refs against that file, not the spec."""
        if depth > 64:
            return
        pointer = info.pointer if pointer is None else pointer
        if isinstance(node, dict):
            self.foreign[id(node)] = (info, pointer)
            for k, v in node.items():
                self._adopt(v, info, "%s/%s" % (pointer, pointer_escape(str(k))), depth + 1)
        elif isinstance(node, list):
            for i, v in enumerate(node):
                self._adopt(v, info, "%s/%d" % (pointer, i), depth + 1)

    def schema_at(self, node, pointer):
        """Indexes an inline schema so $refs inside it resolve against the spec (or, for a
        schema of another file's object, against that file)."""
        if isinstance(node, dict) and self.loader.info(node) is None:
            f = self.foreign.get(id(node))
            if f is not None:
                info, fptr = f
                self.loader.index(node, info.base, info.resource, info.file, fptr, self.dialect)
            else:
                self.loader.index(node, self.base, self.base, self.loader.info(self.root).file,
                                  pointer, self.dialect)
        return node

    def validator(self, node, hint):
        return self.vcomp.add_entry(self.vnames.take(hint), node)

    def example_of(self, op, where, name, value, sub):
        ex = Example()
        ex.op = op
        ex.where = where
        ex.name = name
        ex.name_lit = cstr(name)
        ex.where_lit = cstr(where)
        ex.json = cstr(json.dumps(value, ensure_ascii=False, separators=(",", ":")))
        ex.sub = sub
        self.examples.append(ex)

    # ---- build ----

    # ---- security ----

    def security_schemes(self, comps):
        """components.securitySchemes -> self.schemes: name -> scheme (C kind, param)."""
        self.schemes = {}
        self.scheme_list = []
        raw = comps.get("securitySchemes") or {}
        if not isinstance(raw, dict):
            self.err("/components/securitySchemes", "must be an object")
            return
        for name, node in raw.items():
            ptr = "/components/securitySchemes/" + pointer_escape(name)
            node, ptr = self.deref(node, ptr)
            if not isinstance(node, dict):
                continue
            t = node.get("type")
            sch = Scheme()
            sch.name = name
            sch.name_lit = cstr(name)
            sch.param_lit = "NULL"
            if t == "http" and str(node.get("scheme", "")).lower() == "bearer":
                sch.kind = "TB_SEC_HTTP_BEARER"
            elif t == "http" and str(node.get("scheme", "")).lower() == "basic":
                sch.kind = "TB_SEC_HTTP_BASIC"  # users from TB_BASIC_USERS_<SCHEME>
            elif t == "http" and str(node.get("scheme", "")).lower() == "digest":
                sch.kind = "TB_SEC_HTTP_DIGEST"  # users from TB_DIGEST_USERS_<SCHEME>
            elif t == "apiKey":
                where = node.get("in")
                kinds = {"header": "TB_SEC_API_KEY_HEADER", "query": "TB_SEC_API_KEY_QUERY",
                         "cookie": "TB_SEC_API_KEY_COOKIE"}
                if where not in kinds or not isinstance(node.get("name"), str) \
                        or not node["name"]:
                    self.err(ptr, "an apiKey scheme needs 'in' (header, query or cookie) and "
                                  "a 'name'")
                    continue
                sch.kind = kinds[where]
                sch.param_lit = cstr(node["name"])
            elif t == "oauth2":
                sch.kind = "TB_SEC_OAUTH2"
                # the scopes its flows declare: a requirement naming another is a typo that
                # refuses every call (403), said at generation time
                flows = node.get("flows")
                sch.scopes = set()
                for f in (flows.values() if isinstance(flows, dict) else []):
                    sc = f.get("scopes") if isinstance(f, dict) else None
                    if isinstance(sc, dict):
                        sch.scopes.update(k for k in sc if isinstance(k, str))
            elif t == "openIdConnect":
                sch.kind = "TB_SEC_OPENID"
            elif t == "mutualTLS":
                # OpenAPI 3.1: the client certificate of the connection (TB_TLS_CLIENT_CA_FILE)
                sch.kind = "TB_SEC_MUTUAL_TLS"
            elif t == "http":
                # Negotiate, OAuth, a vendor's Token...: "Authorization: <scheme> <credentials>",
                # checked by tb_server_set_http_auth's function or TB_HTTP_AUTH_<SCHEME>
                token = node.get("scheme")
                if not isinstance(token, str) or not HTTP_TOKEN.fullmatch(token):
                    self.err(ptr + "/scheme", "an http security scheme needs a 'scheme' that is "
                             "an HTTP authentication scheme name (RFC 9110 token): got %r"
                             % token)
                    continue
                sch.kind = "TB_SEC_HTTP_OTHER"
                sch.param_lit = cstr(token)
            else:
                self.err(ptr + "/type", "security scheme type %r is not supported (http, apiKey, "
                                        "oauth2, openIdConnect and mutualTLS are)" % t)
                continue
            sch.index = len(self.scheme_list)
            self.schemes[name] = sch
            self.scheme_list.append(sch)

    def security(self, node, ptr):
        """A security requirement list -> alternatives [[(scheme, [scope])]], or None when
        absent; [] (open) stays []."""
        if node is None:
            return None
        if not isinstance(node, list):
            self.err(ptr, "security must be an array of requirement objects")
            return None
        alts = []
        for i, req in enumerate(node):
            rptr = "%s/%d" % (ptr, i)
            if not isinstance(req, dict):
                self.err(rptr, "a security requirement must be an object")
                continue
            alt = []
            for name, scopes in req.items():
                if name not in self.schemes:
                    self.err(rptr + "/" + pointer_escape(name),
                             "no security scheme %r in components.securitySchemes" % name)
                    continue
                if not isinstance(scopes, list) or not all(isinstance(x, str) for x in scopes):
                    self.err(rptr + "/" + pointer_escape(name), "scopes must be strings")
                    continue
                declared = getattr(self.schemes[name], "scopes", None)
                unknown = [x for x in scopes if declared is not None and x not in declared]
                if unknown:
                    self.warn(rptr + "/" + pointer_escape(name), "undeclared-scope",
                              "scope%s %s %s not among the scopes oauth2 scheme %r declares in "
                              "its flows (%s): a token cannot be granted %s, so every call "
                              "is refused (403)" % (
                                  "s" if len(unknown) > 1 else "",
                                  ", ".join(repr(x) for x in unknown),
                                  "are" if len(unknown) > 1 else "is", name,
                                  ", ".join(sorted(declared)) or "none",
                                  "them" if len(unknown) > 1 else "it"))
                alt.append((self.schemes[name], [cstr(x) for x in scopes]))
            alts.append(alt)
        return alts

    # ---- x-tablium-* policies ----

    def timeout_ext(self, node, ptr):
        """x-tablium-timeout: milliseconds (1..600000) or "500ms" / "2s"; None when absent."""
        v = node.get("x-tablium-timeout")
        if v is None:
            return None
        ms = None
        if isinstance(v, int) and not isinstance(v, bool):
            ms = v
        elif isinstance(v, str):
            m = re.match(r"^(\d+)(ms|s)$", v.strip())
            if m:
                ms = int(m.group(1)) * (1 if m.group(2) == "ms" else 1000)
        if ms is None or not 1 <= ms <= 600000:
            self.err(ptr + "/x-tablium-timeout", "want milliseconds in 1..600000 or a string such "
                                                  "as \"500ms\" or \"2s\" (got %r)" % (v,))
            return None
        return ms

    RETRY_ON = {"connect-failure": "TB_RETRY_ON_CONNECT_FAILURE", "reset": "TB_RETRY_ON_RESET",
                "timeout": "TB_RETRY_ON_TIMEOUT", "429": "TB_RETRY_ON_429",
                "502": "TB_RETRY_ON_502", "503": "TB_RETRY_ON_503", "504": "TB_RETRY_ON_504",
                "gateway-error": "TB_RETRY_ON_GATEWAY_ERROR", "5xx": "TB_RETRY_ON_5XX"}
    RETRY_DEFAULT = {"maxAttempts": 3, "initialBackoff": 100, "maxBackoff": 1000,
                     "backoffMultiplier": 2.0, "perTryTimeout": 0,
                     "retryOn": ["connect-failure", "reset", "timeout", "429", "gateway-error"]}

    def _duration_ms(self, v, eptr, lo, hi):
        ms = None
        if isinstance(v, int) and not isinstance(v, bool):
            ms = v
        elif isinstance(v, str):
            m = re.match(r"^(\d+)(ms|s)$", v.strip())
            if m:
                ms = int(m.group(1)) * (1 if m.group(2) == "ms" else 1000)
        if ms is None or not lo <= ms <= hi:
            self.err(eptr, "want milliseconds in %d..%d or a string such as \"100ms\" or \"2s\" "
                           "(got %r)" % (lo, hi, v))
            return None
        return ms

    def retry_ext(self, node, ptr, base=None):
        """x-tablium-retry: false / "off" (one attempt) or {maxAttempts, initialBackoff,
        maxBackoff, backoffMultiplier, perTryTimeout, retryOn}, the fields not given taken from
        `base` (the top level's) or gRPC's defaults. None when absent; else a dict with those
        keys plus "c" (the C initializer of a tb_retry_policy)."""
        v = node.get("x-tablium-retry")
        if v is None:
            return None
        eptr = ptr + "/x-tablium-retry"
        pol = dict(base or self.RETRY_DEFAULT)
        if v is False or v == "off":
            pol["maxAttempts"] = 1
        elif not isinstance(v, dict):
            self.err(eptr, "want an object {maxAttempts, initialBackoff, maxBackoff, "
                           "backoffMultiplier, perTryTimeout, retryOn} or false (got %r)" % (v,))
            return None
        else:
            extra = set(v) - set(self.RETRY_DEFAULT)
            if extra:
                self.err(eptr, "unknown member(s) %s (known: %s)"
                         % (", ".join(sorted(extra)), ", ".join(self.RETRY_DEFAULT)))
                return None
            if "maxAttempts" in v:
                n = v["maxAttempts"]
                if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 10:
                    self.err(eptr + "/maxAttempts", "want an integer in 1..10 (got %r)" % (n,))
                    return None
                pol["maxAttempts"] = n
            for k, lo, hi in (("initialBackoff", 0, 3600000), ("maxBackoff", 0, 3600000),
                              ("perTryTimeout", 0, 86400000)):
                if k in v:
                    ms = self._duration_ms(v[k], eptr + "/" + k, lo, hi)
                    if ms is None:
                        return None
                    pol[k] = ms
            if "backoffMultiplier" in v:
                m = v["backoffMultiplier"]
                if isinstance(m, bool) or not isinstance(m, (int, float)) or not 1 <= m <= 100:
                    self.err(eptr + "/backoffMultiplier", "want a number in 1..100 (got %r)" % (m,))
                    return None
                pol["backoffMultiplier"] = float(m)
            if "retryOn" in v:
                ro = v["retryOn"]
                names = [x.strip() for x in ro.split(",")] if isinstance(ro, str) else ro
                if not isinstance(names, list) or not all(isinstance(x, str) for x in names):
                    self.err(eptr + "/retryOn", "want a list of names (got %r)" % (ro,))
                    return None
                bad = [x for x in names if x not in self.RETRY_ON]
                if bad:
                    self.err(eptr + "/retryOn", "unknown condition(s) %s (known: %s)"
                             % (", ".join(bad), ", ".join(self.RETRY_ON)))
                    return None
                pol["retryOn"] = names
            if pol["maxBackoff"] < pol["initialBackoff"]:
                self.err(eptr + "/maxBackoff", "is under initialBackoff (%d < %d ms)"
                         % (pol["maxBackoff"], pol["initialBackoff"]))
                return None
        on = " | ".join(self.RETRY_ON[x] for x in pol["retryOn"]) or "0u"
        pol["c"] = "{%d, %d, %d, %r, %d, %s}" % (pol["maxAttempts"], pol["initialBackoff"],
                                                 pol["maxBackoff"], pol["backoffMultiplier"],
                                                 pol["perTryTimeout"], on)
        pol["doc"] = "%d attempts, backoff %d..%d ms x%g, per try %s, on %s" % (
            pol["maxAttempts"], pol["initialBackoff"], pol["maxBackoff"],
            pol["backoffMultiplier"], ("%d ms" % pol["perTryTimeout"]) if pol["perTryTimeout"]
            else "the call's budget", ", ".join(pol["retryOn"]) or "nothing")
        return pol

    def rate_ext(self, node, ptr):
        """x-tablium-rate-limit: "N/PERIOD" or {limit: "N/PERIOD", burst: B}; None when absent;
        else (limit, period_ms, burst)."""
        v = node.get("x-tablium-rate-limit")
        if v is None:
            return None
        eptr = ptr + "/x-tablium-rate-limit"
        burst = 0
        if isinstance(v, dict):
            extra = set(v) - {"limit", "burst"}
            if extra:
                self.err(eptr, "unknown member(s) %s (limit and burst are known)"
                         % ", ".join(sorted(extra)))
                return None
            burst = v.get("burst", 0)
            if isinstance(burst, bool) or not isinstance(burst, int) or not 0 <= burst <= 10 ** 8:
                self.err(eptr + "/burst", "want an integer in 0..100000000 (got %r)" % (burst,))
                return None
            v = v.get("limit")
        m = re.match(r"^(\d+)/(\d*)(ms|s|m|h)$", v.strip()) if isinstance(v, str) else None
        n = int(m.group(1)) if m else 0
        k = int(m.group(2) or 1) if m else 0
        if not m or not 1 <= n <= 10 ** 8 or not 1 <= k <= 86400 * 365:
            self.err(eptr, "want \"N/PERIOD\" such as \"100/s\", \"600/1m\", \"10/30s\" "
                           "(got %r)" % (v,))
            return None
        unit = {"ms": 1, "s": 1000, "m": 60000, "h": 3600000}[m.group(3)]
        return (n, k * unit, burst)

    def build(self):
        comps = self.root.get("components") or {}
        self.timeout_ms = self.timeout_ext(self.root, "")
        self.retry = self.retry_ext(self.root, "")
        self.rate = self.rate_ext(self.root, "")
        if self.rate:
            n, per, b = self.rate
            self.rate_spec = cstr("%d/%dms" % (n, per))
            self.rate_burst = b
        self.security_schemes(comps)
        self.default_security = self.security(self.root.get("security"), "/security")
        schemas = comps.get("schemas") or {}
        for sname, snode in schemas.items():
            self.schema_at(snode, "/components/schemas/" + pointer_escape(sname))
            self.types.named(snode, sname, "%s#/components/schemas/%s" % (self.where, sname))
        paths = self.root.get("paths") or {}
        if not isinstance(paths, dict):
            self.err("/paths", "must be an object")
            paths = {}
        for tmpl, item in paths.items():
            ptr = "/paths/" + pointer_escape(tmpl)
            item, iptr = self.deref(item, ptr)
            if not isinstance(item, dict):
                continue
            if not tmpl.startswith("/"):
                self.err(ptr, "a path must start with '/'")
                continue
            label = None
            if "#" in tmpl:
                tmpl, label = self.path_fragment(tmpl, ptr)
            query = None
            if "?" in tmpl:
                tmpl, query = self.path_query(tmpl, ptr)
                if query is None:
                    continue
            tmpl = _encode_path_literals(tmpl)
            common = item.get("parameters") or []
            for m in METHODS:
                if m in item:
                    self.operation(tmpl, m, item[m], common, ptr + "/" + m, iptr, query, label)
            # OpenAPI 3.2: the QUERY method, and methods of any name
            if "query" in item:
                self.operation(tmpl, "QUERY", item["query"], common, ptr + "/query", iptr,
                               query, label)
            extra = item.get("additionalOperations")
            if isinstance(extra, dict):
                for m, node in extra.items():
                    xptr = "%s/additionalOperations/%s" % (ptr, pointer_escape(m))
                    if not re.match(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$", m):
                        self.err(xptr, "%r is not an HTTP method name (a token)" % m)
                    elif m.lower() in METHODS or m.lower() == "query":
                        self.err(xptr, "%s belongs in the path item's own field, not in "
                                 "additionalOperations" % m)
                    else:
                        self.operation(tmpl, m, node, common, xptr, iptr, query, label)
        if self.errors:
            raise GenError(self.errors)
        self.routes = self.build_routes()
        self.unit = self.vcomp.finish()
        self.vcomp.prune_matchers()
        self.unit.externals = sorted(set(self.unit.externals) |
                                     {t.external for t in self.types.types if t.external})
        deps = self.root.get("x-tablium-depends") or []
        self.deps = [cnames.snake(d) for d in deps if isinstance(d, str)]
        # servers[0]: the documented default URL of the service (clients) and its default port
        self.default_url = None
        self.default_port = 0
        self.base_path = None
        servers = self.root.get("servers")
        if isinstance(servers, list) and servers and isinstance(servers[0], dict):
            self.server_url(servers[0])
        info = self.root.get("info") or {}
        self.title = cstr(str(info.get("title", self.name)))
        self.version = cstr(str(info.get("version", "")))
        self.heading = comment_safe(("%s %s" % (info.get("title", self.name),
                                                info.get("version", ""))).strip())
        self.description = _c_comment(info.get("description"))
        if self.errors:
            raise GenError(self.errors)
        self.error_shapes()
        for (rptr, status, n) in self.shapeless.values():
            self.warn(rptr, "error-shape", "the runtime's own errors with status %s (400 "
                      "validation, 401, 404, 413, 415, 429, 500...) cannot take this schema's "
                      "shape: they keep tablium's envelope%s" % (
                          status, " (so do %d other answers with this schema)" % (n - 1)
                          if n > 1 else ""))
        self.ref_siblings_warning()
        from .lint import Linter
        self.warnings = (self.own_warnings + self.types.warnings +
                         Linter(self.loader, self.root, self.path).run())
        return self

    def ref_siblings_warning(self):
        """One warning for the keywords an OpenAPI 3.0 spec wrote beside its schemas' $refs,
        which the loader dropped (load/loader.py REF_KEEPS), as OpenAPI 3.0 says."""
        dropped = self.loader.ref_siblings
        if not dropped:
            return
        keys = sorted({k for _, _, ks in dropped for k in ks})
        file, ptr, ks = dropped[0]
        where = "" if os.path.abspath(file) == os.path.abspath(self.path) else " (in %s)" % file
        self.own_warnings.append(Diagnostic(
            self.path, ptr + where,
            "ref-siblings: %d $ref%s carr%s other keywords (%s), which OpenAPI 3.0 ignores "
            "beside a $ref: ignored (wrap them as allOf: [{$ref: ...}, {...}] to apply them)"
            % (len(dropped), "" if len(dropped) == 1 else "s",
               "ies" if len(dropped) == 1 else "y", ", ".join(keys)), severity="warning"))

    def tuple_items(self, node, ptr):
        """`items: [schemas]` is draft-04's tuple form, which OpenAPI 3.x does not allow (items
        is one schema there). Specs written that way mean a tuple: read as prefixItems (and
        additionalItems as items), with a warning."""
        if isinstance(node, dict):
            it = node.get("items")
            if isinstance(it, list) and it and all(isinstance(x, (dict, bool)) for x in it) \
                    and "prefixItems" not in node:
                node["prefixItems"] = it
                if "additionalItems" in node:
                    node["items"] = node.pop("additionalItems")
                else:
                    del node["items"]
                self.warn(ptr + "/items", "items-array", "items as an array is the draft-04 "
                          "tuple form, not OpenAPI 3.x: read as prefixItems")
            for k, v in list(node.items()):
                if k not in INSTANCE_KEYS:
                    self.tuple_items(v, "%s/%s" % (ptr, pointer_escape(str(k))))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                self.tuple_items(v, "%s/%d" % (ptr, i))

    def warn(self, pointer, code, reason):
        self.own_warnings.append(Diagnostic(self.path, pointer, "%s: %s" % (code, reason),
                                            severity="warning"))

    def error_shapes(self):
        """Per operation, the tb_err_shape rows of its error statuses (when one is not tablium's
        envelope); for the API (errors outside an operation: 404, 405, 413), the shape most
        operations give their default / 4XX / 400 answer."""
        votes = {}
        for op in self.ops:
            rows = [(r.code, r.errshape) for r in op.responses if r.errshape is not None]
            op.err_rows = []
            if any(sh.style != "TB_ERR_ENVELOPE" for _, sh in rows):
                # exact statuses first, then classes, then the default (tb_err_shape_for)
                rows.sort(key=lambda cs: (cs[0] < 10, -cs[0]))
                op.err_rows = [sh.c(code) for code, sh in rows]
            for code, sh in rows:
                if code in (0, 4, 400):
                    votes.setdefault(sh.key(), [sh, 0])[1] += 1
                    break
        self.api_err_rows = []
        if votes:
            sh, n = max(votes.values(), key=lambda v: v[1])
            if sh.style != "TB_ERR_ENVELOPE" and n * 2 >= len(self.ops):
                self.api_err_rows = [sh.c(0)]
        # the runtime's errors of a status an operation does not declare (a 415 or a 500 where
        # it declares a 400 alone) take its own 400 (else 4XX) shape, as its validation errors
        # do; an operation whose error answers say nothing of a 400 (a 404 alone) the API's
        # usual shape: never the envelope beside a declared shape (a form operation's 415 was)
        for op in self.ops:
            rows = {r.code: r.errshape for r in op.responses if r.errshape is not None}
            if not op.err_rows or 0 in rows:
                continue
            own = rows.get(400) or rows.get(4)
            if own is not None and own.style != "TB_ERR_ENVELOPE":
                op.err_rows = op.err_rows + [own.c(0)]
            elif own is None and self.api_err_rows:
                op.err_rows = op.err_rows + self.api_err_rows

    def server_url(self, server):
        """servers[0]: its variables replaced by their defaults, the documented default URL of
        the service (clients), its default port, and the base path routes are mounted under."""
        u = server.get("url")
        if not isinstance(u, str):
            return
        variables = server.get("variables") if isinstance(server.get("variables"), dict) else {}

        def var(m):
            v = variables.get(m.group(1))
            d = v.get("default") if isinstance(v, dict) else None
            if not isinstance(d, str):
                self.err("/servers/0/url", "server variable {%s} has no default" % m.group(1))
                return ""
            return d
        u = re.sub(r"\{([^}]+)\}", var, u)
        m = re.match(r"^(?:(https?)://([^/:?#]+)(?::(\d+))?)?(/[^?#]*)?$", u)
        if not m:
            return  # another scheme, or a relative URL like "v1": no default URL, no base path
        if m.group(1):
            self.default_url = cstr(u.rstrip("/"))
            self.default_port = int(m.group(3) or (443 if m.group(1) == "https" else 80))
        base = (m.group(4) or "").rstrip("/")
        if base:
            self.base_path = cstr(base)

    def op_name(self, tmpl, method, node, label=None):
        oid = node.get("operationId")
        if isinstance(oid, str) and oid:
            return oid, cnames.snake(oid)
        parts = [method]
        for seg in tmpl.strip("/").split("/"):
            if seg.startswith("{") and seg.endswith("}"):
                parts.append("by_" + seg[1:-1])
            elif seg:
                parts.append(seg)
        if label:  # the path's fragment names the overload: /files/{id}#add_shared_link
            parts.append(label)
        return None, cnames.snake("_".join(parts))

    def operation(self, tmpl, method, node, common, ptr, iptr, query=None, label=None):
        if not isinstance(node, dict):
            self.err(ptr, "an operation must be an object")
            return
        op = Operation()
        op.operation_id, base = self.op_name(tmpl, method, node, label)
        def clashes(n):  # a type's name, or one of a type's functions (T_validate...)
            used = self.types.namer.used
            return n in used or any(n.endswith(x) and n[:-len(x)] in used for x in TYPE_SUFFIXES)

        # the handler is named cname, its client cname_call, its structs cname_req/_resp: none
        # may be a type's name (the type keeps it) nor another operation's (CreateX beside
        # CreateXCall: x_call was both the first's client and the second's handler)
        cname = self.fnames.take(self.prefix + base)
        while any(clashes(cname + x) or (x and cname + x in self.fnames.used)
                  for x in OP_SUFFIXES):
            cname = self.fnames.take(cname + "_op")
        self.fnames.used.update(cname + x for x in OP_SUFFIXES)
        self.types.namer.used.update({cname + s for s in ("", "_req", "_resp")})
        self.types.avoid.update(cname + x for x in OP_SUFFIXES)
        if cname != self.prefix + base:
            # said, since the name depends on the order of the operations: adding one can
            # rename another's handler
            self.warn(ptr, "name-collision", "the handler %s is taken (by another operation or "
                      "a type): this operation's is %s, which adding or moving operations may "
                      "change; an operationId no other name takes keeps it" % (
                          self.prefix + base, cname))
        op.cname = cname
        op.id_lit = cstr(op.operation_id or base)
        if method in METHOD_ENUM:
            op.method = method.upper()
            op.method_enum = METHOD_ENUM[method]
        else:  # another method (OpenAPI 3.2): sent as written, routed by tb_http_xop
            op.method = method
            op.method_enum = "-1"
        op.path = tmpl
        op.path_lit = cstr(tmpl)
        op.timeout_ms = self.timeout_ext(node, ptr)
        op.retry = self.retry_ext(node, ptr, self.retry)
        op.rate = self.rate_ext(node, ptr)
        idem = node.get("x-tablium-idempotent", False)
        if not isinstance(idem, bool):
            self.err(ptr + "/x-tablium-idempotent", "want true or false (got %r)" % (idem,))
            idem = False
        op.idempotent = idem and method in ("post", "patch")
        sec = self.security(node.get("security"), ptr + "/security") \
            if "security" in node else self.default_security
        # an empty list, or a list with an empty alternative ({}), lets anyone in
        op.security = sec if sec and all(sec) else None
        op.summary = _c_comment(node.get("summary"))
        op.description = _c_comment(node.get("description"))
        op.ptr = ptr
        # parameters: path-level ones, overridden by operation-level ones (name, in)
        plist = {}
        for src, sptr in ((common, iptr + "/parameters"), (node.get("parameters") or [],
                                                           ptr + "/parameters")):
            for i, p in enumerate(src):
                pp, pptr = self.deref(p, "%s/%d" % (sptr, i))
                if not isinstance(pp, dict):
                    continue
                key = (pp.get("name"), pp.get("in"))
                plist[key] = (pp, pptr)
        op.query_fixed = [(name, value) for name, var, value in query or () if var is None]
        if query:
            self.query_in_path(query, plist, ptr)
        op.params = []
        fnamer = cnames.Namer(reserved={"body", "has_body", "n"})
        seg_names = re.findall(r"\{([^}/]+)\}", tmpl)
        for (pname, pin), (pp, pptr) in plist.items():
            prm = self.param(op, pp, pptr, fnamer)
            if prm:
                op.params.append(prm)
        order = {n: i for i, n in enumerate(seg_names)}
        path_params = [p for p in op.params if p.in_ == "path"]
        for n in seg_names:
            if n not in [p.name for p in path_params]:
                self.err(ptr, "path parameter {%s} of %s is not declared" % (n, tmpl))
        for p in path_params:
            if p.name not in order:
                self.err(p.ptr, "path parameter %r is not in the path %s" % (p.name, tmpl))
            else:
                p.index = order[p.name]
        op.params.sort(key=lambda p: (PARAM_IN.index(p.in_), getattr(p, "index", 0)))
        op.body = self.body(op, node.get("requestBody"), ptr + "/requestBody")
        op.responses = []
        resps = node.get("responses")
        if not isinstance(resps, dict) or not resps:
            self.err(ptr + "/responses", "an operation needs at least one response")
            return
        hnamer = cnames.Namer()
        op.headers = []
        seen_h = {}
        for status, r in resps.items():
            rr = self.response(op, str(status), r, ptr + "/responses/" + pointer_escape(str(status)))
            if rr is None:
                continue
            for h in rr.headers:
                key = h.name.lower()
                if key not in seen_h:
                    h.cname = hnamer.take(cnames.snake(h.name))
                    seen_h[key] = h
                    op.headers.append(h)
                else:
                    h.cname = seen_h[key].cname
            op.responses.append(rr)
        op.responses.sort(key=lambda r: (r.code == 0, r.code))
        op.default = next((r for r in op.responses if r.code == 0), None)
        # the server's own check that a JSON body is JSON (tb_op_parse reads alternatives)
        json_body = op.body is not None and op.body.media == "json" and not op.body.alts
        op.flags = " | ".join(f for f, on in (("TB_OP_BODY", json_body),
                                               ("TB_OP_BODY_REQUIRED",
                                                json_body and op.body.required),
                                               ("TB_OP_SECURED", op.security is not None),
                                               ("TB_OP_NEEDS_AUTHORIZATION",
                                                op.security is not None and all(
                                                    any(sch.kind in AUTHORIZATION_KINDS
                                                        for sch, _ in alt)
                                                    for alt in op.security)))
                              if on) or "0"
        op.upper = cnames.upper(op.cname)
        by_name = {p.name: p for p in op.params if p.in_ == "path"}
        op.url_parts = []
        lit = ""
        for piece in re.split(r"(\{[^}/]+\})", tmpl):
            if piece.startswith("{") and piece.endswith("}") and piece[1:-1] in by_name:
                if lit:
                    op.url_parts.append({"lit": cstr(lit), "len": len(lit.encode("utf-8"))})
                    lit = ""
                op.url_parts.append({"lit": None, "param": by_name[piece[1:-1]]})
            else:
                lit += piece
        if lit:
            op.url_parts.append({"lit": cstr(lit), "len": len(lit.encode("utf-8"))})
        self.ops.append(op)

    def path_fragment(self, tmpl, ptr):
        """A path key with a fragment, which no request carries: APIs.guru's AWS specs
        (/#X-Amz-Target=Svc.Op, /#Action=AssumeRole, /tags#resourceArn&tagKeys), Azure's
        overloads (/detect#overload=stream, /{roleId}#disambiguation_dummy), Box's
        /files/{file_id}#add_shared_link. The fragment only names the overload: the path before
        it is the route, and operations of one path and method are told apart by what they
        need of a request (required query and header parameters, a value where the schema
        allows only one, the request's media type; query_routes). Returns (path, fragment)."""
        path, _, frag = tmpl.partition("#")
        if "/" in frag or "{" in frag or "}" in frag:
            # not a label: a '#' inside the path (Mastercard's /send/#env/v1/partners/{id}),
            # kept as a literal character of its segment (a request sends it as %23)
            self.warn(ptr, "path-fragment", "the path %r holds '#' before more of the path: "
                      "read as a character of its segment" % tmpl)
            return tmpl, None
        self.warn(ptr, "path-fragment", "the path %r ends in a fragment, which no request "
                  "carries: routed as %s, told apart from the path's other operations by their "
                  "required query and header values and media types" % (tmpl, path))
        return path, frag

    def path_query(self, tmpl, ptr):
        """A path key with a query string (ClickSend's /uploads?convert={convert}, Medium's
        /search/articles?query={query}, FreeTV's /services?funcs=X&mobile=1): the path alone is
        the route, each `name={var}` is the query parameter var (declared in: query, or in:
        path as most such specs do), each `name=value` a required query parameter that must be
        exactly that value. Returns the path and the pairs, (path, None) when the query string
        cannot be read."""
        path, _, q = tmpl.partition("?")
        pairs = []
        for piece in q.split("&") if q else []:
            name, eq, value = piece.partition("=")
            if not name or not eq or "{" in name or "}" in name:
                self.err(ptr, "the query string %r of a path is read as name={param} or "
                         "name=value pairs, not %r" % ("?" + q, piece))
                return path, None
            m = re.fullmatch(r"\{([^{}]+)\}", value)
            if m:
                pairs.append((name, m.group(1), None))
            elif "{" in value or "}" in value:
                self.err(ptr, "the query string %r of a path: %r is neither {param} nor a "
                         "fixed value" % ("?" + q, piece))
                return path, None
            else:
                pairs.append((name, None, urllib.parse.unquote(value)))
        if not pairs:
            self.err(ptr, "the path %r ends in an empty query string" % tmpl)
            return path, None
        self.warn(ptr, "query-in-path", "the path %r holds a query string: routed as %s, its "
                  "pairs read as query parameters" % (tmpl, path))
        return path, pairs

    def query_in_path(self, pairs, plist, ptr):
        """Makes plist's parameters agree with a path's query pairs (path_query): a {var}
        declared in: path moves to the query (one declared nowhere is a string); a fixed
        value becomes a required query parameter whose only value it is."""
        for name, var, value in pairs:
            if var is not None:
                found = plist.pop((var, "path"), None) or plist.pop((var, "query"), None)
                if found is None:  # the query string is its declaration: a string
                    self.warn(ptr, "query-in-path", "{%s} of the path's query string is not "
                              "declared: a required string query parameter %s" % (var, name))
                    found = ({"name": name, "in": "query", "schema": {"type": "string"}}, ptr)
                pp, pptr = found
                pp = dict(pp, name=name, required=True)
                pp["in"] = "query"
                if pp.get("style") not in (None, "form"):
                    del pp["style"]
                plist[(name, "query")] = (pp, pptr)
            elif (name, "query") not in plist:
                plist[(name, "query")] = ({"name": name, "in": "query", "required": True,
                                           "description": "%s=%s, fixed by the path" % (
                                               name, value),
                                           "schema": {"type": "string", "enum": [value]}},
                                          ptr)

    def content_param(self, op, p, pp, schema, fnamer):
        """A parameter whose value is JSON text (content: application/json): any type."""
        ct = self.types.ctype(schema, op.cname + "_" + cnames.snake(p.name))
        if ct.kind == "array" and ct.item.kind == "bytes":
            ct = CType("array", item=CType("string"))
        elif ct.kind == "bytes":
            ct = CType("string")
        p.kind = ct.kind
        p.item_kind = "TB_PARAM_STRING"
        p.default = None
        return self.param_common(op, p, pp, schema, ct, fnamer)

    def bracket_param(self, op, p, pp, schema, fnamer):
        """A deepObject parameter that is not a flat object: name[key][0]=value, any type."""
        p.brackets, p.explode = True, False
        return self.content_param(op, p, pp, schema, fnamer)

    def param_common(self, op, p, pp, schema, ct, fnamer):
        """The member name, literals and validator every parameter has."""
        if ct.kind == "array" and ct.null_items and not p.content:
            # no null in a path, query, header or cookie value: plain items
            ct = CType("array", item=CType(ct.item.kind, ref=ct.item.ref))
        p.ctype = ct
        p.cname = TypeBuilder._field_name(fnamer, cnames.snake(p.name), not p.required, False,
                                          ct.kind == "array")
        p.lit = cstr(p.name)
        q = _pct(p.name) + "="
        p.qlit = cstr(q)
        p.qlen = len(q)
        p.in_lit = cstr(p.in_)
        p.len = len(p.name.encode("utf-8"))
        p.description = _c_comment(pp.get("description"))
        p.validator = self.validator(schema, "%s__%s_%s" % (op.cname, p.in_, cnames.snake(p.name)))
        return p

    def param(self, op, pp, pptr, fnamer):
        p = Param()
        p.name = pp.get("name")
        p.in_ = pp.get("in")
        p.ptr = pptr
        if not isinstance(p.name, str) or p.in_ not in PARAM_IN:
            self.err(pptr, "a parameter needs a name and 'in' (path, query, header or cookie)")
            return None
        if p.in_ == "header" and p.name.lower() in ("accept", "content-type", "authorization"):
            return None  # OpenAPI: ignored
        if p.in_ == "header" and p.name.lower() in FRAMING_HEADERS:
            self.warn(pptr, "framing-header", "header parameter %s frames the message: the "
                      "HTTP stack sets it, so it is ignored as a parameter" % p.name)
            return None
        p.required = bool(pp.get("required")) or p.in_ == "path"
        schema = pp.get("schema")
        p.content = p.brackets = False
        sptr = pptr + "/schema"
        if schema is None and isinstance(pp.get("content"), dict) and pp["content"]:
            # `content`: one media type; a JSON one means the value is JSON text of its schema
            mt, media = next(iter(pp["content"].items()))
            media = media if isinstance(media, dict) else {}
            base = mt.split(";")[0].strip().lower()
            schema = media.get("schema", {})
            sptr = "%s/content/%s/schema" % (pptr, pointer_escape(mt))
            p.content = is_json_type(base)
        if schema is None:
            schema = {}
        self.schema_at(schema, sptr)
        p.style = pp.get("style") or ("form" if p.in_ in ("query", "cookie") else "simple")
        p.explode = pp.get("explode", p.style == "form") and not p.content
        p.schema = schema
        if p.content:
            return self.content_param(op, p, pp, schema, fnamer)
        styles = {"query": ("form", "spaceDelimited", "pipeDelimited", "deepObject"),
                  "path": ("simple",), "header": ("simple",), "cookie": ("form",)}[p.in_]
        if p.style not in styles:
            self.err(pptr + "/style", "style %r is not supported in the %s (%s are)"
                     % (p.style, p.in_, ", ".join(styles)))
            return None
        kind = self.types._kind(schema)
        tgt = self.types._deref(schema)
        if (p.style == "deepObject" and p.in_ == "query" and kind == "json"
                and isinstance(tgt, dict) and tgt.get("type", "object") == "object"
                and not tgt.get("properties") and not tgt.get("patternProperties")
                and tgt.get("additionalProperties", True) in (True, {})):
            # a free-form object (Impala's start[lte]=...&start[gte]=...): any key, each value
            # its text, a map of strings; still validated by its own schema
            ct = self.types.ctype(self.schema_at(
                {"type": "object", "additionalProperties": {"type": "string"}}, pptr + "/schema"),
                op.cname + "_" + cnames.snake(p.name))
        else:
            ct = self.types.ctype(schema, op.cname + "_" + cnames.snake(p.name))
        deep_map = (ct.kind == "map" and p.style == "deepObject" and p.in_ == "query"
                    and ct.ref.value.kind in SCALAR_KIND and not ct.ref.value_nullable)
        flat = ct.kind == "struct" and not any(f.ctype.kind not in SCALAR_KIND or f.nullable
                                                for f in ct.ref.fields)
        if p.style == "deepObject" and p.in_ == "query" and not deep_map and not flat:
            # anything else in deepObject (arrays, nested objects, unions: Stripe's expand[0]=,
            # created[gt]=): the bracket form qs and Rails read and write, typed as it is
            return self.bracket_param(op, p, pp, schema, fnamer)
        scalar_union = ct.kind == "union" and all(
            b.ctype.kind in SCALAR_KIND for b in ct.ref.branches)
        if deep_map:
            pass  # obj[key]=value for any key: a typed map
        elif ct.kind in ("union", "map") or (ct.kind == "array" and ct.item.kind in (
                "list", "union", "map")):
            ct = CType("json")  # in a parameter: its JSON text (or form members), validated
        elif (ct.kind == "array" and ct.item.kind in ("struct", "apierror")) or (
                ct.kind == "struct" and any(f.ctype.kind not in SCALAR_KIND or f.nullable
                                            for f in ct.ref.fields)):
            # objects in an array, or an object with members that are not scalars: OpenAPI
            # gives them no serialization (AWS's query protocol writes Attributes.entry.1.key=
            # ...); carried as JSON text, as a content: application/json parameter is
            self.warn(pptr + "/schema", "param-json", "parameter %s: OpenAPI defines no "
                      "serialization for %s: it is sent and read as JSON text" % (
                          p.name, "an array of objects" if ct.kind == "array" else
                          "an object whose members are not all scalars"))
            p.content, p.explode = True, False
            return self.content_param(op, p, pp, schema, fnamer)
        elif ct.kind == "bytes":
            ct = CType("string")  # format: binary in a parameter: its text
        elif ct.kind == "array" and ct.item.kind == "bytes":
            ct = CType("array", item=CType("string"))
        p.kind = ct.kind
        if p.style in ("spaceDelimited", "pipeDelimited") and ct.kind != "array":
            self.err(pptr + "/style", "style %s is for arrays" % p.style)
            return None
        if ct.kind == "struct" and p.in_ == "cookie" and p.explode:
            self.err(pptr + "/explode", "an object cookie is one cookie (k,v,k,v): explode: false")
            return None
        if ct.kind == "struct":
            # an object: its members are scalars, each typed by its own schema
            bad = [f.json_name for f in ct.ref.fields
                   if f.ctype.kind not in SCALAR_KIND or f.nullable]
            if bad:
                self.err(pptr + "/schema", "object parameter %r: members must be scalars or enums "
                         "(not %s)" % (p.name, ", ".join(repr(x) for x in bad[:3])))
                return None
            p.item_kind = "TB_PARAM_STRING"
        elif ct.kind == "array":
            item = ct.item
            if item.kind not in SCALAR_KIND and item.kind != "json":
                self.err(pptr + "/schema", "array parameters need scalar or free-form items")
                return None
            # free-form items: an object or array travels as its JSON text (mastodon's
            # timeline[]), which the server reads back
            p.item_kind = SCALAR_KIND.get(item.kind, "TB_PARAM_JSON")
        elif ct.kind in SCALAR_KIND:
            p.item_kind = SCALAR_KIND[ct.kind]
        elif ct.kind == "json":
            # free-form ({}): an object or array as its JSON text, else the text as a string; a
            # union of scalars: typed by its look
            p.item_kind = "TB_PARAM_ANY" if scalar_union else "TB_PARAM_JSON"
        elif ct.kind == "map":
            p.item_kind = "TB_PARAM_STRING"  # deepObject: each value typed by the map's
        else:
            self.err(pptr + "/schema", "parameter %r: only scalar, enum, array and free-form "
                     "schemas are supported yet (got %s)" % (p.name, kind))
            return None
        self.param_common(op, p, pp, schema, ct, fnamer)
        d = schema.get("default") if isinstance(schema, dict) else None
        p.default = None
        if d is not None and not p.required:
            if ct.kind == "integer" and isinstance(d, int) and not isinstance(d, bool):
                p.default = "%d" % d
            elif ct.kind == "number" and isinstance(d, (int, float)) and not isinstance(d, bool):
                p.default = repr(float(d))
            elif ct.kind == "boolean" and isinstance(d, bool):
                p.default = "true" if d else "false"
            elif ct.kind == "string" and isinstance(d, str):
                p.default = "(char *)" + cstr(d)
            elif ct.kind == "enum" and isinstance(d, str):
                for v, const, _, _, _ in ct.ref.values:
                    if v == d:
                        p.default = const
        for ename, ev in self.examples_in(pp):
            self.example_of(op, "parameter %s %s" % (p.in_, p.name), ename, ev, p.validator)
        return p

    def examples_in(self, node):
        out = []
        if "example" in node:
            out.append(("example", node["example"]))
        exs = node.get("examples")
        if isinstance(exs, dict):
            for k, v in exs.items():
                v, _ = self.deref(v, "")
                if isinstance(v, dict) and "value" in v:
                    out.append((k, v["value"]))
        return out

    def pick_media(self, content, ptr, request):
        """(kind, media type, media object) of a content map, or None: JSON (application/json
        or a +json type) first, then (requests) application/x-www-form-urlencoded, then bytes
        of any other type (octet-stream, text, images, ranges like image/x or the wildcard)."""
        if not isinstance(content, dict) or not content:
            return None
        picks = {}
        for mt, media in content.items():
            picks.setdefault(media_kind(mt, request), (mt, media if isinstance(media, dict)
                                                       else {}))
        for kind in ("json", "form", "multipart", "bytes"):
            if kind in picks:
                return (kind,) + picks[kind]
        return None

    def body(self, op, rb, ptr):
        if rb is None:
            return None
        rb, ptr = self.deref(rb, ptr)
        if not isinstance(rb, dict):
            return None
        picked = self.pick_media(rb.get("content"), ptr + "/content", True)
        if picked is None:
            return None
        kind, mt, media = picked
        sptr = "%s/content/%s/schema" % (ptr, pointer_escape(mt))
        schema = self.schema_at(media.get("schema", {}), sptr)
        if kind in ("form", "multipart") and self.types._kind(schema) != "struct":
            # a form of no object with properties (Swagger 2's file, {type: string, format:
            # binary}; a oneOf of forms): the body's bytes, as for any other media type. The
            # spec's other media type when it lists one (octet-stream beside multipart).
            others = [(m, v) for m, v in rb["content"].items()
                      if isinstance(v, dict) and media_kind(m, True) == "bytes"]
            self.warn(sptr, "form-not-object",
                      "a %s body whose schema is not an object with properties reaches the "
                      "handler as its bytes (tb_bytes)%s" % (
                          mt, ", sent as %s" % others[0][0] if others else ""))
            if others:
                mt, media = others[0]
                sptr = "%s/content/%s/schema" % (ptr, pointer_escape(mt))
                schema = self.schema_at(media.get("schema", {}), sptr)
            kind = "bytes"
        b = Body()
        b.required = bool(rb.get("required"))
        b.media = kind
        b.media_type = mt.split(";")[0].strip().replace("/*", "/ *").replace("*/", "* /")
        b.media_lit = cstr(mt.split(";")[0].strip())
        b.media_types = [m.split(";")[0].strip().lower() for m in rb["content"]]
        if kind == "bytes":
            b.ctype = CType("bytes")
        else:
            b.ctype = self.types.ctype(schema, op.cname + "_body")
            if kind in ("form", "multipart") and b.ctype.kind != "struct":
                self.err(sptr, "a form body (%s) needs an object schema with properties" % mt)
                return None
        # other media types of the same schema: the server reads them too, by Content-Type
        b.alts = []
        if kind in ("json", "form", "multipart") and b.ctype.kind == "struct":
            mine = self.types._deref(schema)
            for mt2, m2 in (rb.get("content") or {}).items():
                if mt2 == mt or not isinstance(m2, dict):
                    continue
                base2 = mt2.split(";")[0].strip().lower()
                k2 = ("json" if is_json_type(base2) else
                      "form" if base2 == "application/x-www-form-urlencoded" else
                      "multipart" if base2 == "multipart/form-data" else None)
                other = m2.get("schema", {})
                self.schema_at(other, "%s/content/%s/schema" % (ptr, pointer_escape(mt2)))
                same = self.types._deref(other) is mine or json.dumps(
                    other, sort_keys=True, default=str) == json.dumps(schema, sort_keys=True,
                                                                       default=str)
                if k2 and k2 != kind and same and k2 not in [a[0] for a in b.alts]:
                    b.alts.append((k2, cstr(mt2.split(";")[0].strip())))
        b.deep = None
        form = next((m for t, m in (rb.get("content") or {}).items() if isinstance(m, dict) and
                     t.split(";")[0].strip().lower() == "application/x-www-form-urlencoded"), None)
        fenc = form.get("encoding") if form else None
        if b.ctype.kind == "struct" and isinstance(fenc, dict) and (
                kind == "form" or "form" in [a[0] for a in b.alts]):
            # members whose encoding says deepObject travel in the bracket form qs and Rails
            # read (Stripe's metadata[key]=, expand[0]=, items[0][price]=), not as JSON text
            deep = [int(isinstance(fenc.get(f.json_name), dict)
                        and fenc[f.json_name].get("style") == "deepObject"
                        and f.ctype.kind not in SCALAR_KIND) for f in b.ctype.ref.fields]
            if any(deep):
                b.deep = deep
        b.part_types = None
        enc = media.get("encoding")
        if kind == "multipart" and isinstance(enc, dict) and enc:
            # the encoding object's contentType per member (the first of a list)
            names = [f.json_name for f in b.ctype.ref.fields]
            types = []
            for n in names:
                e = enc.get(n)
                ct = e.get("contentType") if isinstance(e, dict) else None
                ct = ct.split(",")[0].strip() if isinstance(ct, str) and ct.strip() else None
                types.append(cstr(ct) if ct and "*" not in ct else "NULL")
            if any(t != "NULL" for t in types):
                b.part_types = types
        b.schema = schema
        b.examples = [v for _, v in self.examples_in(media)]
        if kind == "bytes" and self.types._kind(schema) not in ("string", "bytes", "enum"):
            # bytes of any type under a schema for something else (an object under */*): the
            # schema describes what the bytes encode, which the runtime does not parse
            from .validators import Sub
            b.validator = Sub("true")
        else:
            b.validator = self.validator(schema, op.cname + "__body")
        b.description = _c_comment(rb.get("description"))
        for ename, ev in self.examples_in(media):
            self.example_of(op, "request body", ename, ev, b.validator)
        return b

    def response(self, op, status, r, ptr):
        r, rptr = self.deref(r, ptr)
        if not isinstance(r, dict):
            return None
        rr = Response()
        if status == "default":
            rr.code = 0
            rr.member = "sdefault"
        elif re.match(r"^[1-5][0-9][0-9]$", status):
            rr.code = int(status)
            rr.member = "s" + status
        elif re.match(r"^[1-5][xX][xX]$", status):
            rr.code = int(status[0])  # a range: 1..5 in the status table
            rr.member = "s%sxx" % status[0]
        else:
            self.err(ptr, "response status %r is not an HTTP status, a range like 2XX, or "
                     "default" % status)
            return None
        rr.range = 0 < rr.code < 10
        # an error answer: default, 4XX, 5XX (what may carry tablium's error envelope)
        rr.failure = rr.code == 0 or rr.code >= 400 or rr.code in (4, 5)
        rr.description = _c_comment(r.get("description"))
        rr.headers = []
        hdrs = r.get("headers") or {}
        for hname, h in hdrs.items():
            if hname.lower() in ("content-type", "x-request-id"):
                continue
            if hname.lower() in FRAMING_HEADERS:
                self.warn(rptr + "/headers/" + pointer_escape(hname), "framing-header",
                          "response header %s frames the message: the HTTP stack sets it, so "
                          "it is not a member a handler sets" % hname)
                continue
            hh = Param()
            hh.name = hname
            hh.lit = cstr(hname)
            h, _ = self.deref(h, rptr + "/headers/" + pointer_escape(hname))
            hh.description = _c_comment(h.get("description")) if isinstance(h, dict) else None
            rr.headers.append(hh)
        content = r.get("content")
        if (rr.code in (204, 205, 304) or op.method == "HEAD") and content:
            # RFC 9110: these carry no content (PeerTube's feeds declare JSON and XML for 204,
            # Jellyfin's HEAD operations their GET's image or playlist); a server never sends
            # it and a client could never read it
            self.warn(rptr + "/content", "no-content-status", "%s has no content (RFC 9110): "
                      "its content is ignored" % ("a response to HEAD" if op.method == "HEAD"
                                                  else "a %d response" % rr.code))
            content = None
        picked = self.pick_media(content, rptr + "/content", False)
        media = picked[2] if picked else None
        rr.kind = "none"
        rr.validator = None
        rr.ctype = None
        rr.media_lit = "NULL"
        if picked and picked[0] == "bytes":
            rr.kind = "bytes"
            rr.ctype = CType("bytes")
            rr.media_lit = cstr(picked[1].split(";")[0].strip())
        elif media is not None and "schema" in media:
            schema = media["schema"]
            self.schema_at(schema, "%s/content/%s/schema" % (rptr, pointer_escape(picked[1])))
            rr.validator = self.validator(schema, "%s__r%s" % (op.cname, status))
            target = self.types._deref(schema)
            props = target.get("properties") if isinstance(target, dict) else None
            req = target.get("required") if isinstance(target, dict) else None
            if isinstance(props, dict) and list(props) == ["data"] and isinstance(req, list) \
                    and "data" in req:
                # tablium's envelope: `data` and nothing else. A list with has_more, url and
                # object beside its data (Stripe's), or JSON:API's data, meta and links, is the
                # answer's whole body, every member the handler's and the client's
                rr.kind = "data"
                self.schema_at(props["data"], "")
                rr.ctype = self.types.ctype(props["data"], op.cname + "_" + rr.member)
            elif isinstance(props, dict) and "error" in props and self._error_object(
                    props["error"]) and rr.failure and self._envelope_error(props):
                # (not an answer that succeeded: Google's long-running Operation carries an
                # `error` object beside name, done and response, and is a 200's whole body)
                rr.kind = "error"
            else:
                rr.kind = "raw"
                rr.ctype = self.types.ctype(schema, op.cname + "_" + rr.member)
            for ename, ev in self.examples_in(media):
                self.example_of(op, "response %s" % status, ename, ev, rr.validator)
        elif media is not None:
            rr.kind = "raw"
            rr.ctype = CType("json")
        # the other media types of this answer: sent instead when the request's Accept prefers
        # them (the same schema for JSON types; any other byte type for bytes)
        rr.alts = []
        rr.json_lit = "NULL"
        if picked:
            mine = media.get("schema") if isinstance(media, dict) else None
            for mt2, m2 in (r.get("content") or {}).items():
                if mt2 == picked[1] or not isinstance(m2, dict):
                    continue
                base2 = mt2.split(";")[0].strip().lower()
                j2 = is_json_type(base2)
                if rr.kind == "bytes" and not j2:
                    rr.alts.append(cstr(mt2.split(";")[0].strip()))
                elif rr.kind in ("data", "raw") and j2 and mine is not None and json.dumps(
                        m2.get("schema"), sort_keys=True, default=str) == json.dumps(
                        mine, sort_keys=True, default=str):
                    rr.alts.append(cstr(mt2.split(";")[0].strip()))
            base1 = picked[1].split(";")[0].strip()
            if rr.kind in ("data", "raw") and (rr.alts or base1.lower() != "application/json"):
                rr.json_lit = cstr(base1)
        rr.schema = media.get("schema") if isinstance(media, dict) else None
        rr.examples = [v for _, v in self.examples_in(media)] if isinstance(media, dict) else []
        rr.errshape = None
        if rr.failure:
            if rr.kind == "error":
                rr.errshape = ErrShape("TB_ERR_ENVELOPE")
            elif rr.kind == "raw" and media is not None and "schema" in media:
                rr.errshape = self.error_shape(media["schema"], picked[1])
                # warned once per schema (Stripe: 452 answers, one); not for a status the
                # runtime never answers itself (402, 409, 422...: only the handler sends them)
                if rr.errshape is None and (rr.code in (0, 4, 5) or
                                            rr.code in RUNTIME_ERROR_STATUSES):
                    key = id(self.types._deref(media["schema"]))
                    seen = self.shapeless.setdefault(key, [rptr, status, 0])
                    seen[2] += 1
        return rr

    def _envelope_error(self, props):
        """Whether an answer {error: {...}} is tablium's error envelope, which a tb_api_error
        holds whole: `error` alone, its members among code, message, requestId, details and
        detailsOmitted, code and message strings. Else (Stripe's error.type, param and
        decline_code, Google's integer code and status) it is the answer's own type, so that
        neither a handler nor a client loses a member."""
        if set(props) != {"error"}:
            return False
        e = self.types._deref(props["error"])
        if not isinstance(e, dict):
            return False
        if e.get("x-tablium-c-type") == "tb_api_error":
            return True
        eprops, _ = self.types._merged(e)
        if not set(eprops) <= ENVELOPE_ERROR:
            return False
        for name in ("code", "message"):
            d = self.types._deref(eprops[name][0]) if eprops.get(name) else {}
            t = d.get("type") if isinstance(d, dict) else None
            if t is not None and t != "string" and not (isinstance(t, list) and "string" in t):
                return False
        return True

    def _error_object(self, node):
        """Whether an `error` member is tablium's error object (an object), not, say, a
        message string."""
        t = self.types._deref(node)
        if not isinstance(t, dict):
            return False
        types = t.get("type")
        types = [types] if isinstance(types, str) else types or []
        return "object" in types or isinstance(t.get("properties"), dict) or \
            t.get("x-tablium-c-type") == "tb_api_error"

    # ---- the runtime's errors in the spec's shapes ----

    def error_shape(self, schema, media_type, wrapped=False):
        """How the runtime renders its own errors where the spec declares `schema`: an ErrShape
        (RFC 9457 problem details, or a flat {code, message} object), or None when its
        required members are not ones the runtime can fill."""
        tb = self.types
        target = tb._deref(schema)
        if not isinstance(target, dict) or tb._kind(target) != "struct":
            return None
        props, required = tb._merged(target)
        if "error" in props and props["error"] and set(required) <= {"error"} and \
                self._error_object(props["error"][0]) and not wrapped:
            # {"error": {...}} that is not tablium's envelope (Google's {code: 400, message,
            # status}): the shape of the object inside, under "error"
            sh = self.error_shape(props["error"][0], media_type, wrapped=True)
            if sh is not None:
                sh.wrap = "error"
            return sh
        parts = tb._parts(target) or [target]
        closed = any(p.get("additionalProperties") is False or
                     p.get("unevaluatedProperties") is False for p in parts)

        def types_of(name):
            d = tb._deref(props[name][0]) if props[name] else {}
            t = d.get("type") if isinstance(d, dict) else None
            return [t] if isinstance(t, str) else (t if isinstance(t, list) else [])

        def pick(cands, want):
            for c in cands:
                if c in props:
                    ts = types_of(c)
                    if not ts or any(t in want for t in ts):
                        return c
            return None

        sh = ErrShape("TB_ERR_FLAT")
        problem = media_type.split(";")[0].strip().lower().endswith("problem+json") or len(
            set(props) & {"type", "title", "status", "detail", "instance"}) >= 2
        if problem:
            sh.style = "TB_ERR_PROBLEM"
            sh.content_type = "application/problem+json" if media_type.split(";")[0].strip(
            ).lower().endswith("problem+json") else None
            for slot, name, want in (("type", "type", ("string",)), ("title", "title", ("string",)),
                                     ("status_m", "status", ("integer", "number")),
                                     ("message", "detail", ("string",))):
                if (name in props and pick([name], want)) or (name not in props and not closed):
                    setattr(sh, slot, name)
            sh.code = pick(["code"], ("string",))
            sh.details = pick(["errors", "invalid_params", "invalidParams"], ("array",))
        elif "error_description" in props and pick(["error"], ("string",)) and \
                pick(["error_description"], ("string",)):
            # RFC 6749 section 5.2 ({"error": "invalid_request", "error_description"}): the
            # runtime writes OAuth's code for the status and puts its own in the description
            sh.style = "TB_ERR_OAUTH"
            sh.code, sh.message = "error", "error_description"
        else:
            code = pick(["code", "errorCode", "error_code"], ("string",))
            if code is None:
                code = pick(["code", "errorCode", "error_code", "status", "statusCode"],
                            ("integer", "number"))
                sh.code_is_status = code is not None
            sh.code = code
            sh.message = pick(["message", "msg", "detail", "error", "description",
                               "error_description", "title", "reason"], ("string",))
            sh.details = pick(["details", "errors"], ("array",))
            if sh.code is None and sh.message is None:
                return None
        sh.request_id = pick(["requestId", "request_id", "traceId", "trace_id"], ("string",))
        written = {x for x in (sh.type, sh.title, sh.status_m, sh.code, sh.message, sh.details,
                               sh.request_id) if x}
        if not set(required) <= written:
            return None
        if sh.details:  # its items must take our members
            d = tb._deref(props[sh.details][0])
            items = tb._deref(d.get("items")) if isinstance(d, dict) else None
            keys = {"pointer", "detail", "rule"} if sh.style == "TB_ERR_PROBLEM" else {
                "path", "rule", "message"}
            if isinstance(items, dict):
                iprops, ireq = tb._merged(items)
                iclosed = items.get("additionalProperties") is False
                if not set(ireq) <= keys or (iclosed and not keys <= set(iprops)):
                    if sh.details in required:
                        return None
                    sh.details = None
        return sh

    # ---- routing ----

    def one_value(self, schema):
        """The only value a parameter's schema allows (an enum of one, a const), as its text in
        a request, or None."""
        s = self.types._deref(schema) if isinstance(schema, dict) else None
        if not isinstance(s, dict):
            return None
        vals = [s["const"]] if "const" in s else s.get("enum")
        if not isinstance(vals, list) or len(vals) != 1:
            return None
        v = vals[0]
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (str, int)):
            return str(v)
        return None

    @staticmethod
    def media_of(op):
        """The request media types op takes (lower case, no parameters; "" for no body when its
        body is optional), or None for any (no body declared, or */*)."""
        b = op.body
        if b is None or "*/*" in b.media_types:
            return None
        return tuple(sorted(set(b.media_types) | (set() if b.required else {""})))

    @staticmethod
    def media_covers(mine, other):
        """Whether every request of media types `other` fits media types `mine` (None: any)."""
        if mine is None:
            return True
        if other is None:
            return False
        def fits(t):
            return t in mine or ("/" in t and t.split("/")[0] + "/*" in mine) or (
                is_json_type(t) and "application/json" in mine)
        return all(fits(t) for t in other)

    @staticmethod
    def spread_names(p):
        """For a query parameter a request carries under other names than its own (an object
        with form explode, k=v; deepObject, name[k]=v; the bracket form), the names every such
        request has: its required members' (none for a map or the bracket form, whose names are
        not known). None for a parameter sent under its own name."""
        if p.in_ != "query" or p.content:
            return None
        if p.brackets:
            return []
        kind = p.ctype.kind
        if kind not in ("struct", "map") or not (p.style == "deepObject" or p.explode):
            return None
        if kind == "map":
            return []
        return [p.name + "[" + f.json_name + "]" if p.style == "deepObject" else f.json_name
                for f in p.ctype.ref.fields if f.required]

    def query_routes(self, order):
        """Operations of one route and method (paths no request path tells apart: a query string
        or a fragment in their path keys) are told apart by what they need of a request where
        they can be: the path key's fixed query values, their required query and header
        parameters (with the one value their schema allows, if so), and, when the group's
        operations differ in it, the media type of the request's body. Tried the most demanding
        first (the first that fits wins, the spec's first takes the rest). One that needs what
        an operation tried before it needs is never reached: a route-shadowed warning, as when
        nothing tells them apart."""
        qops = []
        for rt in order:
            # by the method's number: the runtime finds a route's entries by binary search
            for key, group in sorted((rt.get("groups") or {}).items(),
                                     key=lambda kv: METHOD_NUMBER[kv[0]]):
                needs = {}  # op -> its (in, name, value or None) conditions, sorted
                for op in group:
                    fixed = dict(op.query_fixed)
                    conds = set()
                    for p in op.params:
                        if p.in_ not in ("query", "header") or not p.required:
                            continue
                        spread = self.spread_names(p)
                        if spread is not None:  # an object spread over the query
                            conds |= {("query", n, fixed.pop(n, None)) for n in spread}
                            continue
                        v = fixed.pop(p.name, None) if p.in_ == "query" else None
                        if v is None:
                            v = self.one_value(p.schema)
                        conds.add((p.in_, p.name.lower() if p.in_ == "header" else p.name, v))
                    conds |= {("query", n, v) for n, v in fixed.items()}
                    needs[op] = tuple(sorted(conds, key=lambda c: (c[0], c[1], c[2] or "")))
                medias = {op: self.media_of(op) for op in group}
                if len(set(medias.values())) < 2:
                    medias = dict.fromkeys(group)  # the same for all: nothing to tell apart
                def needs_cover(mine, other):  # a request meeting other meets mine too
                    return all(any(c[:2] == o[:2] and c[2] in (None, o[2]) for o in other)
                               for c in mine)
                def valued(op):
                    return sum(1 for c in needs[op] if c[2] is not None)
                tried = sorted(group, key=lambda op: (-valued(op), -len(needs[op]),
                                                      medias[op] is None, group.index(op)))
                kept = []
                for op in tried:
                    before = next((o for o, n in kept if needs_cover(n, needs[op]) and
                                   self.media_covers(medias[o], medias[op])), None)
                    if before is not None:
                        op.shadowed = True
                        self.warn(op.ptr, "route-shadowed",
                                  "%s %s matches the same requests as %s %s%s: the server "
                                  "routes them to %s; %s's handler is never called (its client "
                                  "calls work)" % (
                                      op.method, op.path, before.method, before.path,
                                      "" if not needs[before] and medias[before] is None
                                      else " with the same query, headers and media type",
                                      before.operation_id or before.cname,
                                      op.operation_id or op.cname))
                        continue
                    kept.append((op, needs[op]))
                if len(kept) < 2:
                    continue
                for op, n in kept:
                    q = [c for c in n if c[0] == "query"]
                    h = [c for c in n if c[0] == "header"]
                    qops.append({"route": rt["index"], "method": key, "op": op,
                                 "names": [cstr(x) for _, x, _ in q],
                                 "vals": [cstr(v) if v is not None else "NULL" for _, _, v in q],
                                 "hnames": [cstr(x) for _, x, _ in h],
                                 "hvals": [cstr(v) if v is not None else "NULL" for _, _, v in h],
                                 "media": [cstr(t) for t in medias[op] or ()]})
        return qops

    def build_routes(self):
        """Routes (one per path template) and the segment trie the matcher is generated from."""
        # Paths of one shape (parameters by position, not by name) share a route when their
        # methods differ: /carts/{cartId}/items GET beside /carts/{quoteId}/items POST, as
        # specs generated from code often have. The same method twice cannot be routed.
        routes = {}
        for op in self.ops:
            shape = re.sub(r"\{[^{}/]+\}", "{}", op.path)
            rt = routes.get(shape)
            if rt is None:
                rt = {"path": op.path, "ops": {}, "xm": set(), "index": len(routes)}
                routes[shape] = rt
            key = op.method_enum if op.method_enum != "-1" else op.method
            op.shape = shape
            if key in rt["ops"] and op.method_enum != "-1":
                rt.setdefault("groups", {}).setdefault(key, [rt["ops"][key]]).append(op)
                continue
            if key in rt["xm"]:
                op.shadowed = True
                self.warn(op.ptr, "route-shadowed",
                          "%s %s matches the same requests as another %s of the same path: the "
                          "server routes them to the first; %s's handler is never called (its "
                          "client calls work)" % (op.method, op.path, op.method,
                                                  op.operation_id or op.cname))
                continue
            if op.method_enum != "-1":
                rt["ops"][key] = op
            else:
                rt["xm"].add(key)
        for i, op in enumerate(self.ops):
            op.index = i
        order = sorted(routes.values(), key=lambda r: r["index"])
        self.qops = self.query_routes(order)
        self.xops = []
        for rt in order:
            rt["cells"] = []
            for m in METHODS:
                op = rt["ops"].get(METHOD_ENUM[m])
                rt["cells"].append(str(op.index) if op else "-1")
            rt["lit"] = cstr(rt["path"])
        for op in self.ops:
            if op.method_enum == "-1":
                self.xops.append((routes[op.shape]["index"], op.index, cstr(op.method)))
        # trie of segments: literal children, segments that mix literals and parameters
        # ({stem}.{ext}, {name}:cancel), one parameter child
        def node():
            nodes.append({"lits": {}, "mixed": {}, "param": None, "route": None})
            return len(nodes) - 1
        nodes = []
        node()
        for rt in order:
            n = 0
            # "/a/" is not "/a": its last segment is the empty one
            segs = rt["path"][1:].split("/") if rt["path"] != "/" else []
            for seg in segs:
                if re.fullmatch(r"\{[^{}/]+\}", seg):
                    if nodes[n]["param"] is None:
                        nodes[n]["param"] = node()
                    n = nodes[n]["param"]
                elif re.search(r"\{[^{}/]+\}", seg):
                    pieces = tuple(None if x.startswith("{") else x
                                   for x in re.split(r"(\{[^{}/]+\})", seg) if x)
                    if any(a is None and b is None for a, b in zip(pieces, pieces[1:])):
                        self.err("/paths/" + pointer_escape(rt["path"]),
                                 "segment %s has two parameters with nothing between them: "
                                 "no request could tell where one ends" % seg)
                        raise GenError(self.errors)
                    if pieces not in nodes[n]["mixed"]:
                        nodes[n]["mixed"][pieces] = node()
                    n = nodes[n]["mixed"][pieces]
                else:
                    if seg not in nodes[n]["lits"]:
                        nodes[n]["lits"][seg] = node()
                    n = nodes[n]["lits"][seg]
            if nodes[n]["route"] is not None:
                self.err("/paths/" + pointer_escape(rt["path"]),
                         "path %s matches the same requests as another path" % rt["path"])
                raise GenError(self.errors)
            nodes[n]["route"] = rt["index"]
        self.seg_templates = []
        for nd in nodes:
            # the template with the most literal bytes first, then in the spec's order
            ms = sorted(enumerate(nd["mixed"].items()),
                        key=lambda e: (-sum(len(x.encode("utf-8")) for x in e[1][0] if x), e[0]))
            nd["mixed_list"] = []
            for _, (pieces, child) in ms:
                self.seg_templates.append(
                    ["{%s, %d}" % (cstr(x), len(x.encode("utf-8"))) if x else "{NULL, 0}"
                     for x in pieces])
                nd["mixed_list"].append((len(self.seg_templates) - 1, len(pieces), child))
        for nd in nodes:
            by_len = {}
            for seg, child in sorted(nd["lits"].items()):
                b = seg.encode("utf-8")
                by_len.setdefault(len(b), []).append((cstr(seg), len(b), child))
            nd["by_len"] = sorted(by_len.items())
        # Backtracking: a segment that matched a literal (or a mixed template) whose subtree
        # then fails goes on to the node's next choice, as if the literal had not matched
        # (/a/_repository/x.rpm under /a/_repository and /a/{package}/{file}). Each choice that
        # can be resumed gets a number; the matcher stacks (resume, segment, parameters).
        self.resumes = 0
        for nd in nodes:
            steps = len(nd["mixed_list"]) + (nd["param"] is not None)
            rid = [None] * steps  # the resume number of step j, where something comes back
            def target(j):
                if j >= steps:
                    return None
                if rid[j] is None:
                    rid[j] = self.resumes
                    self.resumes += 1
                return rid[j]
            nd["lit_resume"] = target(0) if nd["lits"] else None
            nexts = [target(j + 1) for j in range(len(nd["mixed_list"]))]
            nd["mixed_list"] = [(t, np_, child, rid[j], nexts[j])
                                for j, (t, np_, child) in enumerate(nd["mixed_list"])]
            nd["param_resume"] = rid[steps - 1] if nd["param"] is not None else None
        self.trie = nodes
        self.max_segments = max([len(r["path"][1:].split("/")) for r in order] or [1])
        return order


def media_kind(mt, request):
    """How a body of media type mt is read: json (application/json, +json types), form and
    multipart (requests only), else bytes."""
    base = mt.split(";")[0].strip().lower()
    if is_json_type(base):
        return "json"
    if request and base == "application/x-www-form-urlencoded":
        return "form"
    if request and base.startswith("multipart/"):
        return "multipart"
    return "bytes"


def build_service(path, loader, name=None):
    return ServiceBuilder(path, loader, name).build()
