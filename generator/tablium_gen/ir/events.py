"""Events: the `x-tablium-event` extension of an event schema, checked and turned into the IR the
templates render as typed publish/subscribe functions.

    "x-tablium-event": {"type": "user.registered", "version": "1.0",
                        "transport": "rabbitmq" | "redis", "key": "userId",
                        "producer": "auth-service"}

`key` names a required property of the event's data whose value orders delivery (events with the
same key are handled in publish order); `producer` is documentation and the default producer.
"""
import re

from ..errors import Diagnostic

TYPE_RE = re.compile(r"^[a-z][a-z0-9]*(\.[a-z][a-z0-9_]*)+$")
VERSION_RE = re.compile(r"^[0-9]+\.[0-9]+$")
TRANSPORTS = {"rabbitmq": "TB_TRANSPORT_RABBITMQ", "redis": "TB_TRANSPORT_REDIS"}
KEYS = {"type", "version", "transport", "key", "producer"}


class Event:
    def __init__(self, cname, where, type_, version, transport, key, producer):
        self.cname = cname          # C name of the data type: user_registered_v1
        self.where = where          # schema file, for comments and messages
        self.type = type_
        self.version = version
        self.transport = transport  # "rabbitmq" | "redis"
        self.transport_c = TRANSPORTS[transport]
        self.key = key
        self.producer = producer
        self.check_fn = None   # struct check of the data (ir/structcheck.py), or None
        self.key_field = None  # C member holding the key
        self.key_kind = None   # "string" | "integer"

    def attach_struct_check(self, nt, checks):
        """Publishers with a struct check write the data straight from the struct (no jansson
        value) when the check passes; they need the key as a string or an integer member."""
        if self.key is not None:
            f = next((f for f in nt.fields if f.json_name == self.key), None)
            if f is None or not f.required or f.nullable or f.ctype.kind not in ("string",
                                                                                  "integer"):
                return
            self.key_field, self.key_kind = f.cname, f.ctype.kind
        self.check_fn = checks.for_type(nt)


def event_of(root, nt, path, where, diags):
    """The Event declared by schema `root` (compiled as named type `nt`), or None when it
    declares none. Problems are appended to diags (a list of Diagnostic)."""
    if not isinstance(root, dict) or "x-tablium-event" not in root:
        return None
    x = root["x-tablium-event"]
    ptr = "/x-tablium-event"

    def err(sub, reason):
        diags.append(Diagnostic(path, ptr + sub, reason))

    if not isinstance(x, dict):
        err("", "must be an object with type, version and transport")
        return None
    for k in sorted(set(x) - KEYS):
        err("/" + k, "unknown member (allowed: %s)" % ", ".join(sorted(KEYS)))
    t, v, tr = x.get("type"), x.get("version"), x.get("transport")
    if not isinstance(t, str) or not TYPE_RE.match(t):
        err("/type", "must be a dotted lowercase event type such as user.registered")
    if not isinstance(v, str) or not VERSION_RE.match(v):
        err("/version", "must be a major.minor string such as \"1.0\"")
    if tr not in TRANSPORTS:
        err("/transport", "must be one of: %s" % ", ".join(sorted(TRANSPORTS)))
    key = x.get("key")
    if key is not None:
        props = root.get("properties") if isinstance(root.get("properties"), dict) else {}
        if not isinstance(key, str) or key not in props:
            err("/key", "must name a property of the event (one of: %s)"
                % (", ".join(sorted(props)) or "none"))
        elif key not in (root.get("required") or []):
            err("/key", "the key property '%s' must be required" % key)
    prod = x.get("producer")
    if prod is not None and (not isinstance(prod, str) or not prod):
        err("/producer", "must be a non-empty string")
    if nt is None or nt.kind != "struct":
        err("", "an event schema must describe an object with properties")
    if any(d.file == path for d in diags):
        return None
    return Event(nt.cname, where, t, v, tr, key, prod)


def check_unique(events, paths, diags):
    seen = {}
    for ev, path in zip(events, paths):
        k = (ev.type, ev.version)
        if k in seen:
            diags.append(Diagnostic(path, "/x-tablium-event",
                                    "%s %s is already declared by %s" % (ev.type, ev.version,
                                                                          seen[k])))
        else:
            seen[k] = path
