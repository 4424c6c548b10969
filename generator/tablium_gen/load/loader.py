"""Reads JSON/YAML documents and indexes their schema resources ($id, $anchor, $dynamicAnchor).

A schema is any JSON value reachable from a document at a schema position. The loader keeps,
for each schema object it has seen, a NodeInfo (file, JSON pointer, base URI, resource URI), so
later stages can name where a problem is and resolve `$ref` relative to the right base.
"""
import json
import os
from urllib.parse import quote, unquote

import yaml

from ..errors import Diagnostic, GenError
from . import uri as U

HERE = os.path.dirname(os.path.abspath(__file__))
META_DIR = os.path.join(os.path.dirname(HERE), "metaschemas", "draft2020-12")
META_PREFIX = "https://json-schema.org/draft/2020-12/"

# Keywords whose value is a schema, an array of schemas, or a map of schemas.
SCHEMA_ONE = ("items", "contains", "additionalProperties", "propertyNames", "if", "then",
              "else", "not", "unevaluatedItems", "unevaluatedProperties", "contentSchema")
SCHEMA_ARRAY = ("prefixItems", "allOf", "anyOf", "oneOf")
SCHEMA_MAP = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
# Members whose values are instances (JSON values), not schemas: walks over a document skip them.
INSTANCE_KEYS = ("example", "examples", "default", "enum", "const")
# Members of a schema or an OpenAPI object whose keys are names (a property called "default",
# a path, a media type), not keywords: walks read their values, never their keys.
NAME_MAPS = SCHEMA_MAP + ("schemas", "paths", "responses", "parameters", "headers", "content",
                          "callbacks", "securitySchemes", "requestBodies", "links", "mapping",
                          "variables", "encoding")

# What a schema's $ref may keep beside it in OpenAPI 3.0, whose Reference Object's other members
# "SHALL be ignored": annotations, which change no value's validity (docs, read/write-only,
# examples, OpenAPI's nullable and discriminator) and x- extensions. A `type: string` beside a
# $ref to an object (britbox's request bodies) otherwise makes a schema no value meets.
REF_KEEPS = frozenset(("$ref", "description", "summary", "title", "$comment", "example",
                       "examples", "default", "readOnly", "writeOnly", "deprecated",
                       "externalDocs", "xml", "nullable", "discriminator"))


class NodeInfo:
    __slots__ = ("file", "pointer", "base", "resource", "dialect")

    def __init__(self, file, pointer, base, resource, dialect):
        self.file = file
        self.pointer = pointer
        self.base = base
        self.resource = resource
        self.dialect = dialect


class _YamlLoader(yaml.SafeLoader):
    """Safe YAML without implicit timestamps: '2024-01-01' stays a string, as in JSON."""


_YamlLoader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:timestamp"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _str_keys(obj):
    if isinstance(obj, dict):
        return {str(k): _str_keys(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_str_keys(v) for v in obj]
    return obj


# warnings of parse_text (file, pointer, reason), printed by the command line
WARNINGS = []


def _yaml_null_types(node, ptr, file):
    """`type: [string, null]` in YAML is a JSON null, not the type name "null" that was meant
    (JSON Schema wants the string): read as "null", with a warning."""
    if isinstance(node, dict):
        t = node.get("type")
        if isinstance(t, list) and None in t and all(x is None or isinstance(x, str) for x in t):
            node["type"] = ["null" if x is None else x for x in t]
            WARNINGS.append(Diagnostic(file, ptr + "/type", "yaml-null-type: an unquoted null in a "
                                       "type list is read as 'null' (quote it)", severity="warning"))
        for k, v in node.items():
            _yaml_null_types(v, "%s/%s" % (ptr, str(k).replace("~", "~0").replace("/", "~1")), file)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            _yaml_null_types(v, "%s/%d" % (ptr, i), file)


def parse_text(text, file):
    """Parses JSON or YAML text; raises GenError with line and column on a syntax error."""
    is_yaml = file is not None and file.endswith((".yaml", ".yml"))
    if is_yaml:
        try:
            doc = _str_keys(yaml.load(text, Loader=_YamlLoader))
            _yaml_null_types(doc, "", file)
            return doc
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            line = mark.line + 1 if mark else None
            col = mark.column + 1 if mark else None
            reason = "invalid YAML: %s" % (getattr(e, "problem", None) or e)
            raise GenError(Diagnostic(file, None, reason, line=line, column=col))
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise GenError(Diagnostic(file, None, "invalid JSON: %s" % e.msg,
                                  line=e.lineno, column=e.colno))


def file_uri(path):
    return "file://" + quote(os.path.abspath(path))


class Loader:
    def __init__(self, dialect="2020-12"):
        self.dialect = dialect
        self.resources = {}   # absolute URI (no fragment) -> schema node
        self.anchors = {}     # (resource URI, name) -> node
        self.dyn_anchors = {}  # (resource URI, name) -> node
        self.infos = {}       # id(node) -> NodeInfo
        self._keep = []       # keeps documents alive (ids stay unique)
        self.files = {}       # absolute path -> document, however it was reached
        self.mappings = [(META_PREFIX, META_DIR, ".json")]
        self.ref_siblings = []  # (file, pointer, [keys]) dropped beside an OpenAPI 3.0 $ref

    # ---- documents ----

    def map_prefix(self, prefix, directory, suffix=""):
        """Retrieve URIs under `prefix` from files under `directory` (e.g. test suite remotes)."""
        self.mappings.append((prefix, directory, suffix))

    def load_file(self, path, dialect=None, prepare=None):
        """Loads and indexes a file (once, however often asked). `prepare(doc)` may rewrite the
        document in place before it is indexed."""
        path = os.path.abspath(path)
        if path in self.files:
            return self.files[path]
        uri = file_uri(path)
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except OSError as e:
            raise GenError(Diagnostic(path, None, "cannot read: %s" % e.strerror))
        doc = parse_text(text, path)
        if prepare is not None:
            prepare(doc)
        self._map_id_to_folder(doc, path)
        self.files[path] = doc
        return self.add_document(doc, uri, path, dialect)

    def _map_id_to_folder(self, doc, path):
        """A file whose $id is https://host/a/b/c.json and that lives at /dir/a/b/c.json: other
        https://host/... references are looked up under /dir too, so relative $refs between
        sibling files work offline whatever their $id says."""
        sid = doc.get("$id") if isinstance(doc, dict) else None
        if not isinstance(sid, str):
            return
        base, _ = U.defrag(sid)
        scheme, auth, upath, _, _ = U.split(base)
        if scheme is None or auth is None:
            return
        id_parts = [p for p in upath.split("/") if p]
        file_parts = os.path.abspath(path).split(os.sep)
        k = 0
        while (k < len(id_parts) and k < len(file_parts) - 1
               and id_parts[-1 - k] == file_parts[-1 - k]):
            k += 1
        if k == 0:
            return
        prefix = U.unsplit(scheme, auth, "/" + "/".join(id_parts[:len(id_parts) - k]), None, None)
        if not prefix.endswith("/"):
            prefix += "/"
        folder = os.sep.join(file_parts[:len(file_parts) - k])
        if (prefix, folder, "") not in self.mappings:
            self.mappings.append((prefix, folder, ""))

    def add_document(self, doc, uri, file, dialect=None):
        """Registers an in-memory document under `uri` and indexes it. Returns the root."""
        self._keep.append(doc)
        base, _ = U.defrag(uri)
        self.resources[base] = doc
        self.index(doc, base, base, file, "", dialect or self.dialect)
        return doc

    def _retrieve(self, target):
        for prefix, directory, suffix in self.mappings:
            if target.startswith(prefix):
                rel = target[len(prefix):]
                path = os.path.join(directory, unquote(rel) + suffix)
                if suffix and not os.path.exists(path):
                    path = os.path.join(directory, unquote(rel))
                if os.path.isfile(path):
                    return path
        if target.startswith("file://"):
            path = unquote(target[len("file://"):])
            if os.path.isfile(path):
                return path
        return None

    def _fetch(self, target):
        """Loads the document behind an absolute URI that is not indexed yet, or None."""
        path = self._retrieve(target)
        if path is None:
            return None
        path = os.path.abspath(path)
        if path in self.files:
            doc = self.files[path]
            self.resources[target] = doc
            return doc
        try:
            with open(path, encoding="utf-8") as f:
                doc = parse_text(f.read(), path)
        except OSError:
            return None
        self._keep.append(doc)
        self.files[path] = doc
        self.resources[target] = doc
        self.index(doc, target, target, path, "", self.dialect)
        return doc

    # ---- indexing ----

    def index(self, node, base, resource, file, pointer, dialect):
        if not isinstance(node, dict):
            return
        if id(node) in self.infos:
            return
        sid = node.get("$id")
        if isinstance(sid, str):
            base = resource = U.defrag(U.join(base, sid))[0]
            self.resources.setdefault(base, node)
        self.infos[id(node)] = NodeInfo(file, pointer, base, resource, dialect)
        if dialect == "oas30" and isinstance(node.get("$ref"), str):
            dropped = [k for k in node if k not in REF_KEEPS and not str(k).startswith("x-")]
            if dropped:
                self.ref_siblings.append((file, pointer, dropped))
                for k in dropped:
                    del node[k]
        anchor = node.get("$anchor")
        if isinstance(anchor, str):
            self.anchors[(resource, anchor)] = node
        danchor = node.get("$dynamicAnchor")
        if isinstance(danchor, str):
            self.anchors.setdefault((resource, danchor), node)
            self.dyn_anchors[(resource, danchor)] = node
        for kw in SCHEMA_ONE:
            if kw in node:
                self.index(node[kw], base, resource, file, pointer + "/" + kw, dialect)
        for kw in SCHEMA_ARRAY:
            v = node.get(kw)
            if isinstance(v, list):
                for i, sub in enumerate(v):
                    self.index(sub, base, resource, file, "%s/%s/%d" % (pointer, kw, i), dialect)
        for kw in SCHEMA_MAP:
            v = node.get(kw)
            if isinstance(v, dict):
                for k, sub in v.items():
                    self.index(sub, base, resource, file,
                               "%s/%s/%s" % (pointer, kw, U.pointer_escape(k)), dialect)

    def unit_of(self, file):
        """The shared unit a schema file belongs to (its root's "x-tablium-unit"), or None:
        such a file is generated once, into that unit, and other units refer to it."""
        doc = self.files.get(os.path.abspath(file)) if file else None
        u = doc.get("x-tablium-unit") if isinstance(doc, dict) else None
        return u if isinstance(u, str) and u else None

    def info(self, node):
        return self.infos.get(id(node))

    # ---- resolution ----

    def resolve(self, ref, at):
        """Resolves reference `ref` found in schema node `at`. Returns the target node (a dict
        or a bool); raises GenError naming the file and pointer when it cannot."""
        info = self.info(at)
        target = U.join(info.base, ref)
        doc_uri, frag = U.defrag(target)
        root = self.resources.get(doc_uri)
        if root is None:
            root = self._fetch(doc_uri)
        if root is None:
            raise GenError(Diagnostic(info.file, info.pointer + "/$ref",
                                      "cannot resolve $ref %r: no schema at %s" % (ref, doc_uri)))
        if frag == "":
            return root
        if not frag.startswith("/"):
            node = self.anchors.get((doc_uri, unquote(frag)))
            if node is None:
                raise GenError(Diagnostic(info.file, info.pointer + "/$ref",
                                          "cannot resolve $ref %r: no anchor %r in %s"
                                          % (ref, frag, doc_uri)))
            return node
        node = root
        last = root
        try:
            for tok in U.pointer_tokens(frag):
                if isinstance(node, list):
                    node = node[int(tok)]
                elif isinstance(node, dict):
                    node = node[tok]
                else:
                    raise KeyError(tok)
                if isinstance(node, dict) and id(node) in self.infos:
                    last = node
        except (KeyError, IndexError, ValueError):
            raise GenError(Diagnostic(info.file, info.pointer + "/$ref",
                                      "cannot resolve $ref %r: %s has no %s" % (ref, doc_uri, frag)))
        if isinstance(node, dict) and id(node) not in self.infos:
            li = self.infos[id(last)]
            self.index(node, li.base, li.resource, li.file, unquote(frag), li.dialect)
        return node
