#!/usr/bin/python3
"""Compiles every case of the official JSON Schema Test Suite (draft 2020-12, not optional/)
through tablium-gen, builds the cases with driver.c against libtablium and runs them.

Prints `jsonschema-suite: N passed, N failed, N skipped` and each skipped file with its reason.
The suite's folder comes from --suite (default: TB_JSON_SCHEMA_SUITE or
../shared/testdata/json-schema-test-suite beside the repository). Missing suite: a note and exit 0,
but under CI=true a failure.
"""
import argparse
import concurrent.futures
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "generator"))

from tablium_gen.errors import GenError  # noqa: E402
from tablium_gen.ir.validators import ValidatorCompiler  # noqa: E402
from tablium_gen.load import Loader  # noqa: E402
from tablium_gen.render import render  # noqa: E402

SKIP = {
    "vocabulary.json": "custom meta-schemas with $vocabulary are not supported: tablium compiles "
                       "every 2020-12 keyword regardless of the meta-schema's vocabularies",
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--suite", default=os.environ.get(
        "TB_JSON_SCHEMA_SUITE", os.path.join(ROOT, "..", "shared", "testdata",
                                             "json-schema-test-suite")))
    ap.add_argument("--out", required=True, help="build folder for the generated C")
    ap.add_argument("--cc", default=os.environ.get("CC", "cc"))
    ap.add_argument("--cflags", default="")
    ap.add_argument("--ldflags", default="", help="libtablium and its dependencies")
    ap.add_argument("--only", help="run one test file (e.g. ref.json)")
    ap.add_argument("-j", type=int, default=os.cpu_count() or 2)
    args = ap.parse_args()

    tests_dir = os.path.join(args.suite, "tests", "draft2020-12")
    if not os.path.isdir(tests_dir):
        print("jsonschema-suite: test suite not found at %s (set TB_JSON_SCHEMA_SUITE)"
              % os.path.abspath(args.suite))
        return 1 if os.environ.get("CI") == "true" else 0

    os.makedirs(args.out, exist_ok=True)
    files = sorted(f for f in os.listdir(tests_dir) if f.endswith(".json"))
    if args.only:
        files = [f for f in files if f == args.only]
    table = []
    skipped = 0
    sources = []
    for fi, fname in enumerate(files):
        with open(os.path.join(tests_dir, fname), encoding="utf-8") as fh:
            cases = json.load(fh)
        if fname in SKIP:
            n = sum(len(c["tests"]) for c in cases)
            skipped += n
            print("jsonschema-suite: skipped %s (%d tests): %s" % (fname, n, SKIP[fname]))
            continue
        stem = "s%02d" % fi
        loader = Loader()
        loader.map_prefix("http://localhost:1234/", os.path.join(args.suite, "remotes"))
        comp = ValidatorCompiler(loader, prefix="%s__" % stem)
        names = []
        for ci, case in enumerate(cases):
            uri = "https://tablium.invalid/suite/%s/%d.json" % (fname, ci)
            root = loader.add_document(case["schema"], uri, "%s#%d" % (fname, ci))
            before = len(comp.errors)
            name = "%s_case%d" % (stem, ci)
            try:
                comp.add_entry(name, root)
            except GenError as e:
                comp.errors.extend(e.diags)
            if len(comp.errors) > before:
                why = "; ".join(str(d) for d in comp.errors[before:])
                del comp.errors[before:]
                table.append((fname, ci, None, why))
                # drop the entry if it was added
                comp.unit.entries = [e for e in comp.unit.entries if e[0] != name]
            else:
                names.append(name)
                table.append((fname, ci, name, None))
        try:
            unit = comp.finish()
        except GenError as e:
            print("jsonschema-suite: %s: %s" % (fname, e))
            return 1
        src = render("unit.c.j2", unit=unit, source="%s (JSON Schema Test Suite)" % fname)
        path = os.path.join(args.out, stem + ".c")
        write_if_changed(path, src)
        sources.append(path)

    lines = ['#include "tablium/validate.h"', "typedef int (*case_fn)(const json_t *, unsigned, "
             "tb_error *);", "typedef struct { const char *file; int index; case_fn fn; "
             "const char *why; } suite_case;"]
    for fname, ci, name, why in table:
        if name:
            lines.append("int %s(const json_t *, unsigned, tb_error *);" % name)
    lines.append("const suite_case suite_cases[] = {")
    for fname, ci, name, why in table:
        lines.append("    {%s, %d, %s, %s}," % (json.dumps(fname), ci, name or "NULL",
                                               json.dumps(why) if why else "NULL"))
    lines.append("    {0, 0, 0, 0}};")
    lines.append("const int suite_ncases = %d;" % len(table))
    tpath = os.path.join(args.out, "table.c")
    write_if_changed(tpath, "\n".join(lines) + "\n")
    sources.append(tpath)

    cflags = args.cflags.split() + ["-I", os.path.join(ROOT, "runtime", "include")]
    objs = []

    # Objects are reused between runs only when neither their source, the runtime headers nor
    # the compiler flags changed.
    inc = os.path.join(ROOT, "runtime", "include", "tablium")
    newest_header = max(os.path.getmtime(os.path.join(inc, h)) for h in os.listdir(inc))
    stamp = os.path.join(args.out, "cflags.stamp")
    flags_text = " ".join([args.cc] + cflags)
    if not os.path.exists(stamp) or open(stamp).read() != flags_text:
        for f in os.listdir(args.out):
            if f.endswith(".o"):
                os.remove(os.path.join(args.out, f))
        with open(stamp, "w") as f:
            f.write(flags_text)

    def cc(src):
        obj = os.path.join(args.out, os.path.basename(src)[:-2] + ".o")
        if os.path.exists(obj) and os.path.getmtime(obj) >= max(os.path.getmtime(src),
                                                                 newest_header):
            return obj
        subprocess.run([args.cc, "-c", src, "-o", obj] + cflags, check=True)
        return obj

    sources.append(os.path.join(HERE, "driver.c"))
    with concurrent.futures.ThreadPoolExecutor(max_workers=args.j) as ex:
        try:
            objs = list(ex.map(cc, sources))
        except subprocess.CalledProcessError as e:
            print("jsonschema-suite: compile failed: %s" % e)
            return 1
    exe = os.path.join(args.out, "suite")
    subprocess.run([args.cc, "-o", exe] + objs + args.cflags.split() + args.ldflags.split(),
                   check=True)
    return subprocess.run([exe, tests_dir, str(skipped)]).returncode


def write_if_changed(path, text):
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            if f.read() == text:
                return
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


if __name__ == "__main__":
    sys.exit(main())
