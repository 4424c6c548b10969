#!/usr/bin/python3
"""The OpenAPI corpus measurement, as a ratchet test.

For every spec under $TB_SHARED/testdata/openapi (TB_SHARED defaults to ../shared, relative to the
repository root), runs

    /usr/bin/python3 generator/tablium-gen openapi SPEC -o TMPDIR

and compiles every generated .c with the project's strict flags (support.CFLAGS, -I runtime/include,
-I TMPDIR). Outcome per spec:

    pass           the generated C compiles without a single diagnostic
    refused        the generator exited with diagnostics (first line recorded; the goal is that each
                   names file + JSON pointer and a real defect of the spec)
    crash          a Python traceback (exception + innermost generator frame recorded)
    compile-error  the generated C does not compile warning-free (first compiler error recorded)
    timeout        generation or compilation took longer than --timeout seconds

Files listed in tests/generator/corpus/ref-only.txt are only `$ref` targets of other specs and are
skipped. tests/generator/corpus/expected-pass.txt is the ratchet: the script exits 1 when a listed
spec no longer passes; new passes are reported (not an error) so they can be added with --update.

Always prints `openapi-corpus: N passed, N failed`, then the failures grouped by kind and reason.

    /usr/bin/python3 tests/generator/corpus.py [-v] [--update] [-j 2] [--timeout 60]
"""
import argparse
import collections
import concurrent.futures
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

REPO = support.REPO
MANIFEST_DIR = os.path.join(HERE, "corpus")
REF_ONLY = os.path.join(MANIFEST_DIR, "ref-only.txt")
EXPECTED = os.path.join(MANIFEST_DIR, "expected-pass.txt")
SPEC_EXTS = (".json", ".yaml", ".yml")

# file[:line:col]: #/pointer: error: reason   (tablium_gen.errors.Diagnostic.__str__)
DIAG_RE = re.compile(r"^(?P<file>.+?)(?::\d+:\d+)?: (?P<ptr>#\S*: )?(?P<sev>error|warning): "
                     r"(?P<reason>.*)$")
GCC_ERR_RE = re.compile(r"^(?P<file>[^:\s]+):\d+(?::\d+)?: (?:fatal )?error: (?P<msg>.*)$")
FRAME_RE = re.compile(r'^\s*File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<func>\S+)')


def shared_dir():
    return os.path.normpath(os.path.join(REPO, os.environ.get("TB_SHARED", "../shared")))


def read_list(path):
    """Lines of a manifest: the first field of each line, without '#' comments and blanks."""
    out = []
    if not os.path.exists(path):
        return out
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line:
                out.append(line.split()[0])
    return out


def discover(corpus):
    specs = []
    for root, dirs, files in os.walk(corpus):
        dirs.sort()
        for n in files:
            if n.endswith(SPEC_EXTS):
                specs.append(os.path.relpath(os.path.join(root, n), corpus).replace(os.sep, "/"))
    return sorted(specs)


def first_line(text):
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""


def classify_gen_failure(err):
    """(kind, detail) for a generator that exited non-zero with stderr `err`."""
    if "Traceback (most recent call last)" in err:
        lines = [ln for ln in err.splitlines() if ln.strip()]
        exc = lines[-1].strip() if lines else "?"
        frames = [m for m in (FRAME_RE.match(ln) for ln in lines) if m]
        gen_frames = [m for m in frames if "tablium_gen" in m.group("file")]
        where = ""
        if gen_frames:
            m = gen_frames[-1]
            where = " [at %s:%s %s]" % (os.path.relpath(m.group("file"), support.GENERATOR),
                                        m.group("line"), m.group("func"))
        if exc.startswith("RecursionError") and len(gen_frames) > 3:
            # the innermost frame of a recursion is incidental; name the recursing function
            counts = collections.Counter((m.group("file"), m.group("line"), m.group("func"))
                                         for m in gen_frames)
            (f, ln, fn), _ = counts.most_common(1)[0]
            where = " [recursing in %s:%s %s]" % (os.path.relpath(f, support.GENERATOR), ln, fn)
        return "crash", exc + where
    return "refused", first_line(err) or "(exit non-zero, no message)"


def run_spec(rel, corpus, timeout):
    """Generates and compiles one spec. Returns (rel, kind, detail, seconds)."""
    t0 = time.monotonic()
    spec = os.path.relpath(os.path.join(corpus, rel), REPO)
    tmp = tempfile.mkdtemp(prefix="tablium-corpus-")
    try:
        out = os.path.join(tmp, "out")
        try:
            p = subprocess.run([support.PYTHON, support.GEN_SCRIPT, "openapi", spec, "-o", out],
                               cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               timeout=timeout)
        except subprocess.TimeoutExpired:
            return rel, "timeout", "generator ran over %ss" % timeout, time.monotonic() - t0
        err = p.stderr.decode("utf-8", "replace")
        if p.returncode != 0:
            kind, detail = classify_gen_failure(err)
            return rel, kind, detail, time.monotonic() - t0
        cfiles = sorted(n for n in os.listdir(out) if n.endswith(".c")) if os.path.isdir(out) \
            else []
        if not cfiles:
            return rel, "crash", "exit 0 but no .c file written", time.monotonic() - t0
        left = timeout - (time.monotonic() - t0)
        for n in cfiles:
            try:
                rc, cout = compile_c(os.path.join(out, n), out, max(left, 5))
            except subprocess.TimeoutExpired:
                return rel, "timeout", "gcc ran over %ss on %s" % (timeout, n), \
                    time.monotonic() - t0
            if rc != 0 or cout.strip():
                return rel, "compile-error", gcc_first_error(cout, n), time.monotonic() - t0
        STATS[rel] = type_stats(out, err)
        return rel, "pass", "", time.monotonic() - t0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


STATS = {}  # spec -> Counter of the C types its header declares


def type_stats(out, err):
    """What the generated header declares: structs, tagged unions, maps, enums, and the values
    the generator said it carries as json_t * (its "note:" line)."""
    c = collections.Counter()
    for n in os.listdir(out):
        if n.endswith(".h"):
            with open(os.path.join(out, n), encoding="utf-8") as f:
                text = f.read()
            c["unions"] += len(re.findall(r"^    \w+_kind kind;$", text, re.M))
            c["maps"] += len(re.findall(r"_entry \*items;$", text, re.M))
            c["structs"] += len(re.findall(r"^typedef struct \w+ \{$", text, re.M))
            c["enums"] += len(re.findall(r"^#define \w+__COUNT ", text, re.M))
    m = re.search(r"(\d+) values? without a static C type", err)
    c["free"] += int(m.group(1)) if m else 0
    c["structs"] -= c["unions"] + 2 * c["maps"]  # unions and maps (and map entries) are structs
    return c


def compile_c(cfile, include_dir, timeout):
    """support.compile_c (same command: -c with the project's flags) with a timeout, plus
    -Wfatal-errors: stops at the first error (the only one recorded), which changes no outcome but
    saves ~90s on the 14 MB format_gen.c."""
    obj = os.path.splitext(cfile)[0] + ".o"
    cmd = [support.gcc()] + support.CFLAGS + ["-Wfatal-errors", "-c", "-I",
                                              support.RUNTIME_INCLUDE, "-I", include_dir, cfile,
                                              "-o", obj]
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)
    return p.returncode, p.stdout.decode("utf-8", "replace")


def gcc_first_error(out, cname):
    for line in out.splitlines():
        m = GCC_ERR_RE.match(line.strip())
        if m:
            return "%s: %s" % (os.path.basename(m.group("file")), m.group("msg"))
    return "%s: %s" % (cname, first_line(out) or "gcc failed without output")


def reason_key(kind, detail):
    """(reason, variant) a failure is grouped under: quoted names and numbers replaced by
    placeholders; a trailing "(got X)" becomes the variant, counted within the reason."""
    text = detail
    if kind == "refused":
        m = DIAG_RE.match(detail)
        text = m.group("reason") if m else detail
        if not (m and m.group("ptr")):
            text += " [NO JSON POINTER]"
    elif kind == "compile-error":
        text = detail.split(": ", 1)[1] if ": " in detail else detail
    variant = None
    m = re.match(r"^(.*?) \(got (.*)\)$", text)
    if m:
        text, variant = m.group(1), m.group(2)
    text = re.sub(r"‘[^’]*’|'[^']*'|\"[^\"]*\"|`[^`]*`", "'…'", text)
    if kind != "crash":
        text = re.sub(r"\b\d+(\.\d+)?\b", "N", text)
    return text, variant


def print_failures(results):
    fails = [r for r in results if r[1] != "pass"]
    if not fails:
        return
    by_kind = collections.defaultdict(list)
    for r in fails:
        by_kind[r[1]].append(r)
    print("failures by kind  (count  reason [variants]  e.g. spec):")
    for kind, rs in sorted(by_kind.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        print("  %s %d" % (kind, len(rs)))
        groups = collections.defaultdict(list)
        for r in rs:
            key, variant = reason_key(kind, r[2])
            groups[key].append((r[0], variant))
        for key, members in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0])):
            variants = collections.Counter(v for _, v in members if v is not None)
            if variants:
                key += " [got %s]" % ", ".join(
                    "%s ×%d" % (v, n) if n > 1 else v
                    for v, n in sorted(variants.items(), key=lambda kv: (-kv[1], kv[0])))
            specs = [rel for rel, _ in members]
            more = " +%d" % (len(specs) - 1) if len(specs) > 1 else ""
            print("    %3d  %s   e.g. %s%s" % (len(specs), key, specs[0], more))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-v", "--verbose", action="store_true", help="print every spec's outcome")
    ap.add_argument("--update", action="store_true", help="rewrite expected-pass.txt")
    ap.add_argument("-j", "--jobs", type=int, default=2, help="parallel specs (default 2)")
    ap.add_argument("--timeout", type=float, default=150,
                    help="seconds per spec for generation + compilation (default 150: gcc needs "
                         "~110s for format_gen.c once it has no error)")
    ap.add_argument("specs", nargs="*", help="only these specs (paths relative to the corpus); "
                                             "the ratchet then only checks these")
    args = ap.parse_args(argv)

    corpus = os.path.join(shared_dir(), "testdata", "openapi")
    if not os.path.isdir(corpus):
        print("openapi-corpus: no corpus at %s (set TB_SHARED to the folder holding "
              "testdata/openapi)" % corpus)
        return 1
    if not support.gcc():
        print("openapi-corpus: gcc not found on PATH")
        return 1

    t0 = time.monotonic()
    found = discover(corpus)
    ref_only = read_list(REF_ONLY)
    stale = [p for p in ref_only if p not in found]
    specs = [p for p in found if p not in set(ref_only)]
    if args.specs:
        unknown = [s for s in args.specs if s not in specs]
        if unknown:
            print("openapi-corpus: not specs of the corpus: %s" % " ".join(unknown))
            return 2
        specs = list(args.specs)
    expected = read_list(EXPECTED)

    # biggest specs first, so the slowest one (format_gen.json) overlaps with all the others
    order = sorted(specs, key=lambda rel: -os.path.getsize(os.path.join(corpus, rel)))
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as ex:
        futs = {rel: ex.submit(run_spec, rel, corpus, args.timeout) for rel in order}
        results = [futs[rel].result() for rel in specs]
    elapsed = time.monotonic() - t0
    outcome = {r[0]: r for r in results}

    if args.verbose:
        for rel, kind, detail, secs in results:
            print("%-13s %5.1fs  %s%s" % (kind, secs, rel, ("  " + detail) if detail else ""))

    rc = 0
    if stale:
        print("ref-only.txt lists files that are not in the corpus: %s" % " ".join(stale))
        rc = 1
    passing = sorted(r[0] for r in results if r[1] == "pass")
    checked = [e for e in expected if not args.specs or e in outcome]
    regressed = []
    for e in checked:
        r = outcome.get(e)
        if r is None:
            regressed.append("%s: no longer in the corpus (or now listed in ref-only.txt)" % e)
        elif r[1] != "pass":
            regressed.append("%s: %s: %s" % (e, r[1], r[2]))
    new = [p for p in passing if p not in set(expected)]

    if args.update:
        if args.specs:
            print("--update needs the whole corpus (no spec arguments)")
            return 2
        with open(EXPECTED, "w", encoding="utf-8") as f:
            f.write("# OpenAPI corpus specs (relative to $TB_SHARED/testdata/openapi) whose\n"
                    "# generated C compiles warning-free. A ratchet: tests/generator/corpus.py\n"
                    "# fails when one of these stops passing. Regenerate:\n"
                    "#   /usr/bin/python3 tests/generator/corpus.py --update\n")
            for p in passing:
                f.write(p + "\n")
        print("wrote %s (%d specs)" % (os.path.relpath(EXPECTED, REPO), len(passing)))
    else:
        if regressed:
            print("REGRESSED (listed in expected-pass.txt, no longer passing):")
            for line in regressed:
                print("  " + line)
            rc = 1
        if new:
            print("now passing (add to expected-pass.txt): %s" % " ".join(new))

    print("openapi-corpus: %d passed, %d failed" % (len(passing), len(results) - len(passing)))
    tot = sum(STATS.values(), collections.Counter())
    print("openapi-corpus types: %d structs, %d tagged unions, %d maps, %d enums; %d values "
          "carried as json_t *" % (tot["structs"], tot["unions"], tot["maps"], tot["enums"],
                                   tot["free"]))
    print_failures(results)
    print("(%d specs, %d ref-only skipped, %.1fs with -j %d)"
          % (len(results), len(ref_only), elapsed, args.jobs))
    return rc


if __name__ == "__main__":
    sys.exit(main())
