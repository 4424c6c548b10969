"""Realtime namespaces: the `x-tablium-namespace` extension of a schema file in schemas/realtime,
checked and turned into the IR the templates render as typed Socket.IO handlers and emitters in C
and as TypeScript event maps for socket.io-client.

    "x-tablium-namespace": {
      "name": "/games",
      "errorEvent": "error",                       (server->client event for refusals)
      "clientToServer": {"join-game": {"payload": {schema}, "ack": {schema}, "description": ".."}},
      "serverToClient": {"user-joined": {"payload": {schema}}}
    }

Every payload and ack is one JSON object (the event's single argument), given as a $ref to the
file's $defs ({"$ref": "#/$defs/join_game"}), whose types are named <namespace>_<def>.
"""
import re

from ..errors import Diagnostic
from . import cnames

NAME_RE = re.compile(r"^/[A-Za-z0-9_.~-]*(/[A-Za-z0-9_.~-]+)*$")
EVENT_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.:-]*$")
RESERVED = {"connect", "connect_error", "disconnect", "disconnecting", "newListener",
            "removeListener"}
KEYS = {"name", "errorEvent", "clientToServer", "serverToClient", "description"}
EVENT_KEYS = {"payload", "ack", "description"}


class RtEvent:
    def __init__(self, name, cname, payload, ack, description):
        self.name = name            # wire name: "join-game"
        self.cname = cname          # C identifier part: join_game
        self.payload = payload      # NamedType (struct)
        self.ack = ack              # NamedType (struct) or None
        self.description = description


class RtNamespace:
    def __init__(self, name, cname, where, description):
        self.name = name            # "/games"
        self.cname = cname          # games
        self.where = where
        self.description = description
        self.incoming = []          # client -> server
        self.outgoing = []          # server -> client
        self.error_event = None     # RtEvent of outgoing used for refusals

    @property
    def ts(self):
        return cnames.pascal(self.cname)


def is_namespace_file(root):
    return isinstance(root, dict) and "x-tablium-namespace" in root


def namespace_of(root, path, where, types, diags):
    """Builds the RtNamespace of schema file `root` (its $defs already named in `types`), or
    None with problems appended to diags."""
    x = root["x-tablium-namespace"]
    ptr = "/x-tablium-namespace"

    def err(sub, reason):
        diags.append(Diagnostic(path, ptr + sub, reason))

    if not isinstance(x, dict):
        err("", "must be an object with name, clientToServer and serverToClient")
        return None
    for k in sorted(set(x) - KEYS):
        err("/" + k, "unknown member (allowed: %s)" % ", ".join(sorted(KEYS)))
    name = x.get("name")
    if not isinstance(name, str) or not NAME_RE.match(name):
        err("/name", "must be a namespace name such as \"/games\"")
        return None
    base = "root" if name == "/" else cnames.snake(name.strip("/").replace("/", "_"))
    ns = RtNamespace(name, base, where, x.get("description") or root.get("description"))
    seen_c = set()
    for key, out in (("clientToServer", ns.incoming), ("serverToClient", ns.outgoing)):
        evs = x.get(key, {})
        if not isinstance(evs, dict):
            err("/" + key, "must be an object of event name -> {payload, ack}")
            continue
        for ename in sorted(evs):
            e = evs[ename]
            sub = "/%s/%s" % (key, ename.replace("~", "~0").replace("/", "~1"))
            if not EVENT_RE.match(ename) or ename in RESERVED:
                err(sub, "event names are letters, digits and _ . : - (and not Socket.IO's "
                         "reserved names)")
                continue
            if not isinstance(e, dict) or "payload" not in e:
                err(sub, "needs a payload schema")
                continue
            for k in sorted(set(e) - EVENT_KEYS):
                err(sub + "/" + k, "unknown member (allowed: %s)" % ", ".join(sorted(EVENT_KEYS)))
            ecname = cnames.snake(ename.replace(".", "_").replace(":", "_").replace("-", "_"))
            if (key, ecname) in seen_c:
                err(sub, "two events of one direction map to the same C name %s" % ecname)
                continue
            seen_c.add((key, ecname))
            payload = struct_type(root, types, e["payload"], path, ptr + sub + "/payload", diags)
            ack = None
            if "ack" in e:
                if key != "clientToServer":
                    err(sub + "/ack", "only client -> server events are acknowledged by the "
                                      "server here")
                    continue
                ack = struct_type(root, types, e["ack"], path, ptr + sub + "/ack", diags)
                if ack is None:
                    continue
            if payload is None:
                continue
            out.append(RtEvent(ename, ecname, payload, ack, e.get("description")))
    errname = x.get("errorEvent", "error")
    ns.error_event = next((e for e in ns.outgoing if e.name == errname), None)
    if ns.incoming and ns.error_event is None:
        err("/errorEvent", "the server -> client event \"%s\" that refusals are sent as must be "
                           "declared (its payload: {code, message, event, details})" % errname)
    return ns


def struct_type(root, types, schema, path, ptr, diags):
    """The struct NamedType of an event's payload or ack: {"$ref": "#/$defs/<name>"}."""
    ref = schema.get("$ref") if isinstance(schema, dict) else None
    defs = root.get("$defs") if isinstance(root.get("$defs"), dict) else {}
    if not isinstance(ref, str) or not ref.startswith("#/$defs/") or \
            ref[len("#/$defs/"):] not in defs:
        diags.append(Diagnostic(path, ptr, "must be {\"$ref\": \"#/$defs/<name>\"}, a schema of "
                                           "this file's $defs"))
        return None
    nt = types.by_node.get(id(defs[ref[len("#/$defs/"):]]))
    if nt is None or nt.kind != "struct":
        diags.append(Diagnostic(path, ptr, "a payload or ack must be an object schema (a "
                                           "struct in C)"))
        return None
    return nt


# ---------------------------------------------------------------- TypeScript

def ts_name(nt):
    return cnames.pascal(nt.cname)


def ts_of(schema, types, depth=0):
    """A TypeScript type for a JSON Schema (what socket.io-client users see)."""
    if depth > 20:
        return "unknown"
    if schema is True or schema == {}:
        return "unknown"
    if schema is False:
        return "never"
    if not isinstance(schema, dict):
        return "unknown"
    if "$ref" in schema and depth > 0:
        target = types._deref(schema)
        nt = types.by_node.get(id(target))
        if nt is not None and nt.kind in ("struct", "enum"):
            return ts_name(nt)
        return ts_of(target, types, depth + 1)
    if "$ref" in schema:
        return ts_of(types._deref(schema), types, depth + 1)
    if "const" in schema:
        return lit(schema["const"])
    if "enum" in schema:
        return " | ".join(lit(v) for v in schema["enum"]) or "never"
    for comb in ("oneOf", "anyOf"):
        if isinstance(schema.get(comb), list):
            return "(" + " | ".join(ts_of(s, types, depth + 1) for s in schema[comb]) + ")"
    if isinstance(schema.get("allOf"), list):
        return "(" + " & ".join(ts_of(s, types, depth + 1) for s in schema["allOf"]) + ")"
    t = schema.get("type")
    if isinstance(t, list):
        return " | ".join(ts_of(dict(schema, type=x), types, depth + 1) for x in t)
    if t == "string":
        return "string"
    if t in ("integer", "number"):
        return "number"
    if t == "boolean":
        return "boolean"
    if t == "null":
        return "null"
    if t == "array":
        items = schema.get("items", True)
        return "Array<%s>" % ts_of(items, types, depth + 1)
    if t == "object" or "properties" in schema:
        return ts_object(schema, types, depth)
    return "unknown"


def ts_object(schema, types, depth, indent="  "):
    props = schema.get("properties") or {}
    req = set(schema.get("required") or [])
    lines = []
    for k, v in props.items():
        doc = v.get("description") if isinstance(v, dict) else None
        if doc:
            lines.append("%s/** %s */" % (indent, doc.replace("*/", "* /").replace("\n", " ")))
        key = k if re.match(r"^[A-Za-z_$][A-Za-z0-9_$]*$", k) else lit(k)
        lines.append("%s%s%s: %s;" % (indent, key, "" if k in req else "?",
                                      ts_of(v, types, depth + 1)))
    ap = schema.get("additionalProperties")
    if isinstance(ap, dict):
        lines.append("%s[key: string]: %s;" % (indent, ts_of(ap, types, depth + 1)))
    if not lines:
        return "Record<string, unknown>"
    return "{\n" + "\n".join(lines) + "\n" + indent[:-2] + "}"


def lit(v):
    import json
    return json.dumps(v, ensure_ascii=False)


def ts_module(namespaces, types, source):
    """The TypeScript module: one interface per named struct used by the namespaces, and per
    namespace its ServerToClientEvents / ClientToServerEvents maps."""
    out = ["/* Generated by tablium-gen from %s. DO NOT EDIT. */" % source,
           "/* Socket.IO event maps for socket.io-client 4.x:",
           " *   const s: Socket<GamesServerToClientEvents, GamesClientToServerEvents> = io(url);",
           " */", ""]
    seen = []
    for ns in namespaces:
        for e in ns.incoming + ns.outgoing:
            for nt in (e.payload, e.ack):
                if nt is not None and nt not in seen:
                    seen.append(nt)
    # the structs the payloads refer to, too
    i = 0
    while i < len(seen):
        for f in getattr(seen[i], "fields", None) or []:
            sub = f.ctype.value.ref if f.ctype.value.kind == "struct" else None
            if sub is not None and sub not in seen:
                seen.append(sub)
        i += 1
    for nt in seen:
        if nt.description:
            out.append("/** %s */" % nt.description.replace("*/", "* /"))
        out.append("export interface %s %s" % (ts_name(nt), ts_object(types._deref(nt.node),
                                                                       types, 0)))
        out.append("")
    errs = []  # each namespace's refusal payload, once
    for ns in namespaces:
        t = ts_name(ns.error_event.payload) if ns.error_event else "unknown"
        if t not in errs:
            errs.append(t)
    out.append("/** What the server answers an event it refuses (its ack, too, as {error}), in any")
    out.append(" *  namespace; <Namespace>Refusal says which payload one namespace sends. */")
    out.append("export interface RealtimeRefusal {\n  error: %s;\n}" % (
        " | ".join(errs) if errs else "unknown"))
    out.append("")
    for ns in namespaces:
        out.append("/** %s: what the server answers an event it refuses. */" % ns.name)
        out.append("export interface %sRefusal {\n  error: %s;\n}" % (
            ns.ts, ts_name(ns.error_event.payload) if ns.error_event else "unknown"))
        out.append("")
        out.append("/** %s: server -> client events. */" % ns.name)
        out.append("export interface %sServerToClientEvents {" % ns.ts)
        for e in ns.outgoing:
            if e.description:
                out.append("  /** %s */" % e.description.replace("*/", "* /").replace("\n", " "))
            out.append("  %s: (payload: %s) => void;" % (lit(e.name), ts_name(e.payload)))
        out.append("}")
        out.append("")
        out.append("/** %s: client -> server events. */" % ns.name)
        out.append("export interface %sClientToServerEvents {" % ns.ts)
        for e in ns.incoming:
            if e.description:
                out.append("  /** %s */" % e.description.replace("*/", "* /").replace("\n", " "))
            if e.ack is not None:
                err = ts_name(ns.error_event.payload) if ns.error_event else "unknown"
                out.append("  %s: (payload: %s, ack: (res: %s | { error: %s }) => void) => void;"
                           % (lit(e.name), ts_name(e.payload), ts_name(e.ack), err))
            else:
                out.append("  %s: (payload: %s) => void;" % (lit(e.name), ts_name(e.payload)))
        out.append("}")
        out.append("")
        out.append("export const %sNamespace = %s;" % (ns.ts, lit(ns.name)))
        out.append("")
    return "\n".join(out)
