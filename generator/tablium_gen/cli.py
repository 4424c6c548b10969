"""Command line: tablium-gen schemas FILE_OR_DIR... -o OUTDIR [--name NAME]."""
import argparse
import os
import sys

from . import VERSION
from .errors import Diagnostic, GenError
from .ir import cnames
from .ir.events import check_unique, event_of
from .ir.realtime import is_namespace_file, namespace_of, ts_module
from .ir.structcheck import StructChecks
from .ir.types import TypeBuilder
from .ir.validators import ValidatorCompiler
from .load import Loader
from .render import render

SCHEMA_EXT = (".json", ".yaml", ".yml")


def expand(paths):
    files = []
    for p in paths:
        if os.path.isdir(p):
            for root, dirs, names in os.walk(p):
                dirs.sort()
                for n in sorted(names):
                    if n.endswith(SCHEMA_EXT):
                        files.append(os.path.join(root, n))
        else:
            files.append(p)
    return files


def compile_schemas(paths, name, dialect="2020-12", extra=None):
    """Compiles schema files into (header text, source text). Raises GenError. `extra` (a dict),
    when given, receives other files to write: NAME.ts for realtime namespaces."""
    loader = Loader(dialect=dialect)
    vcomp = ValidatorCompiler(loader, prefix="%s__" % name, unit=name)
    types = TypeBuilder(loader, vcomp, unit=name)
    files = expand(paths)
    if not files:
        raise GenError([])
    events, event_paths, diags, envelope = [], [], [], None
    namespaces = []
    for path in files:
        root = loader.load_file(path)
        stem = os.path.basename(path).rsplit(".", 1)[0]
        if isinstance(root, dict) and isinstance(root.get("x-tablium-name"), str):
            stem = root["x-tablium-name"]
        where = cnames.short_path(path)
        if is_namespace_file(root):
            # a realtime namespace: its $defs are its types, named <namespace>_<def>
            x = root["x-tablium-namespace"]
            nsname = x.get("name") if isinstance(x, dict) else None
            base = ("root" if nsname == "/" else cnames.snake(str(nsname).strip("/")))
            defs = root.get("$defs")
            if isinstance(defs, dict):
                for dname, d in defs.items():
                    types.named(d, "%s_%s" % (base, dname), "%s#/$defs/%s" % (where, dname))
            ns = namespace_of(root, path, where, types, diags)
            if ns is not None:
                namespaces.append(ns)
            continue
        if loader.unit_of(path) and isinstance(root, dict) and not [
                k for k in root if not k.startswith(("$", "x-")) and k not in (
                    "title", "description")]:
            nt = None  # a shared file that only holds $defs: no type of its own
        else:
            nt = types.named(root, stem, where)
        if stem == "event_envelope":
            envelope = nt
        ev = event_of(root, nt, path, where, diags)
        if ev is not None:
            events.append(ev)
            event_paths.append(path)
        defs = root.get("$defs") if isinstance(root, dict) else None
        if isinstance(defs, dict):
            for dname, d in defs.items():
                types.named(d, dname, "%s#/$defs/%s" % (where, dname))
    check_unique(events, event_paths, diags)
    if events and envelope is None:
        diags.append(Diagnostic(event_paths[0], "/x-tablium-event",
                                "event schemas need the envelope schema among the inputs (a schema "
                                "with \"x-tablium-name\": \"event_envelope\")"))
    if diags:
        raise GenError(diags)
    unit = vcomp.finish()
    checks = StructChecks(name)
    by_cname = {t.cname: t for t in types.types}
    for ev in events:
        ev.attach_struct_check(by_cname[ev.cname], checks)
    vcomp.prune_matchers("\n".join(ln for f in checks.funcs for ln in f.lines))
    unit.externals = sorted(set(unit.externals) | {t.external for t in types.types if t.external})
    source = " ".join(cnames.short_path(p) for p in paths)
    for w in types.warnings:
        print(w, file=sys.stderr)
    note_free_form(types, source)
    header = "%s.h" % name
    ctx = dict(source=source, types=types.types, unit=unit, header=header, events=events,
               envelope=envelope, struct_checks=checks.funcs, namespaces=namespaces,
               guard="TB_GEN_%s_H" % cnames.upper(name))
    if namespaces and extra is not None:
        extra[name + ".ts"] = ts_module(namespaces, types, source) + "\n"
    return render("schemas.h.j2", **ctx), render("schemas.c.j2", **ctx)


def compile_openapi(path, name=None):
    """Compiles one OpenAPI spec into {file name: text} (NAME.h, NAME.c, NAME_server.c)."""
    from .ir.openapi import build_service
    loader = Loader()
    svc = build_service(path, loader, name)
    header = "%s.h" % svc.name
    ctx = dict(source=cnames.short_path(path), svc=svc, types=svc.types.types, unit=svc.unit,
               header=header, guard="TB_GEN_%s_H" % cnames.upper(svc.name))
    from .load.loader import WARNINGS
    seen = set()
    for w in WARNINGS + svc.warnings:
        key = (os.path.abspath(w.file) if w.file else None, w.pointer, w.reason)
        if key not in seen:  # a file read twice warns once
            seen.add(key)
            print(w, file=sys.stderr)
    del WARNINGS[:]
    note_free_form(svc.types, cnames.short_path(path))
    return svc.name, {
        header: render("service.h.j2", **ctx),
        svc.name + ".c": render("service.c.j2", **ctx),
        svc.name + "_server.c": render("service_server.c.j2", **ctx),
    }


def note_free_form(types, what):
    """Says where a value has no static C type (carried as json_t *), so that a spec author sees
    what the generated code leaves to jansson."""
    if not types.free_form:
        return
    items = sorted(types.free_form.items())
    shown = "; ".join("%s (%s)" % kv for kv in items[:5])
    more = " and %d more" % (len(items) - 5) if len(items) > 5 else ""
    print("tablium-gen: note: %s: %d value%s without a static C type, carried as json_t *: %s%s"
          % (what, len(items), "" if len(items) == 1 else "s", shown, more), file=sys.stderr)


def report(e, what):
    if not e.diags:
        print("tablium-gen: no input in %s" % what, file=sys.stderr)
    for d in e.diags:
        print(d, file=sys.stderr)
    print("tablium-gen: nothing written", file=sys.stderr)
    return 1


def write(path, text):
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="tablium-gen",
                                 description="Compile JSON Schemas / OpenAPI specs into C.")
    ap.add_argument("--version", action="version", version="tablium-gen " + VERSION)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sp = sub.add_parser("schemas", help="JSON Schemas -> C types, validators, codecs")
    sp.add_argument("inputs", nargs="+", metavar="FILE_OR_DIR")
    sp.add_argument("-o", "--out", required=True, metavar="OUTDIR")
    sp.add_argument("--name", help="base name of the .h/.c (default: OUTDIR's name)")
    sp.add_argument("--dialect", choices=("2020-12", "oas30"), default="2020-12",
                    help="JSON Schema 2020-12 (default) or the OpenAPI 3.0 schema dialect")
    op = sub.add_parser("openapi", help="OpenAPI 3.0/3.1/3.2 spec -> C types, server, client")
    op.add_argument("spec", metavar="SPEC")
    op.add_argument("-o", "--out", required=True, metavar="OUTDIR",
                    help="folder for NAME.h, NAME.c and NAME_server.c")
    op.add_argument("--name", help="service name (default: x-tablium-service, else the file name)")
    args = ap.parse_args(argv)

    if args.cmd == "openapi":
        try:
            name, files = compile_openapi(args.spec, args.name)
        except GenError as e:
            return report(e, args.spec)
        for fname, text in files.items():
            write(os.path.join(args.out, fname), text)
        return 0

    if args.cmd == "schemas":
        name = cnames.snake(args.name or os.path.basename(os.path.normpath(args.out)))
        try:
            extra = {}
            h, c = compile_schemas(args.inputs, name, args.dialect, extra)
        except GenError as e:
            if not e.diags:
                print("tablium-gen: no schema files in %s" % " ".join(args.inputs),
                      file=sys.stderr)
            for d in e.diags:
                print(d, file=sys.stderr)
            print("tablium-gen: nothing written", file=sys.stderr)
            return 1
        write(os.path.join(args.out, name + ".h"), h)
        write(os.path.join(args.out, name + ".c"), c)
        for fname, text in extra.items():
            write(os.path.join(args.out, fname), text)
        return 0
    return 2
