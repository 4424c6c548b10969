"""Shared helpers of the generator tests (also used by update_golden.py).

Puts <repo>/generator on sys.path so `tablium_gen` imports without installing anything.
"""
import contextlib
import difflib
import io
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
GENERATOR = os.path.join(REPO, "generator")
if GENERATOR not in sys.path:
    sys.path.insert(0, GENERATOR)

from tablium_gen import cli  # noqa: E402

PYTHON = "/usr/bin/python3"
GEN_SCRIPT = os.path.join(GENERATOR, "tablium-gen")
RUNTIME_INCLUDE = os.path.join(REPO, "runtime", "include")
FIXTURES_DIR = os.path.join(HERE, "fixtures")
GOLDEN_DIR = os.path.join(HERE, "golden")
UPDATE_HINT = "run: /usr/bin/python3 tests/generator/update_golden.py"

# Golden fixtures: name of the generated set -> input, relative to the repository root (the
# generator writes input paths into comments relative to the current directory, so golden
# output is always produced with the repository root as the current directory).
FIXTURES = [
    ("order", "tests/generator/fixtures/order.json"),
    ("palette", "tests/generator/fixtures/palette.yaml"),
    ("library", "tests/generator/fixtures/library"),
    ("shapes", "tests/generator/fixtures/shapes.yaml"),
    # an OpenAPI spec (tablium-gen openapi): multipart with part types, a body in three media
    # types, content / cookie-object / deepObject-map parameters
    ("uploads", "tests/specs/uploads.yaml"),
]
OPENAPI_FIXTURES = {"uploads"}

CFLAGS = ["-std=c11", "-D_GNU_SOURCE", "-Wall", "-Wextra", "-Werror", "-Wshadow",
          "-Wstrict-prototypes", "-Wmissing-prototypes"]


@contextlib.contextmanager
def cwd(path):
    """Temporarily changes the current directory."""
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def run_cli(args):
    """Runs tablium_gen.cli.main(args) in-process; returns (exit code, stderr text)."""
    err = io.StringIO()
    out = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            rc = cli.main(list(args))
        except SystemExit as e:  # argparse errors
            rc = e.code
    return rc, err.getvalue()


def cli_args(name, rel_input, outdir):
    """tablium-gen's arguments for golden fixture `name`."""
    if name in OPENAPI_FIXTURES:
        return ["openapi", rel_input, "-o", outdir, "--name", name]
    return ["schemas", rel_input, "-o", outdir]


def generate(name, rel_input, outroot):
    """Generates golden fixture `name` into outroot/name (cwd = repository root).
    Returns {file name: bytes} of what was written."""
    outdir = os.path.join(outroot, name)
    with cwd(REPO):
        rc, err = run_cli(cli_args(name, rel_input, outdir))
    if rc != 0:
        raise AssertionError("tablium-gen failed on %s (exit %r):\n%s" % (rel_input, rc, err))
    return read_tree(outdir)


def read_tree(folder):
    files = {}
    for n in sorted(os.listdir(folder)):
        with open(os.path.join(folder, n), "rb") as f:
            files[n] = f.read()
    return files


def golden_files(name):
    files = {"%s.h" % name: os.path.join(GOLDEN_DIR, name, "%s.h" % name),
             "%s.c" % name: os.path.join(GOLDEN_DIR, name, "%s.c" % name)}
    if name in OPENAPI_FIXTURES:
        files["%s_server.c" % name] = os.path.join(GOLDEN_DIR, name, "%s_server.c" % name)
    return files


def unified_diff(expected, actual, expected_name, actual_name, limit=200):
    lines = list(difflib.unified_diff(
        expected.decode("utf-8", "replace").splitlines(keepends=True),
        actual.decode("utf-8", "replace").splitlines(keepends=True),
        expected_name, actual_name))
    if len(lines) > limit:
        lines = lines[:limit] + ["... (%d more diff lines)\n" % (len(lines) - limit)]
    return "".join(lines)


def gcc():
    return shutil.which("gcc")


def compile_c(cfile, include_dir, extra=()):
    """Compiles cfile (no link) with the project's strict flags; returns (exit code, output)."""
    obj = os.path.splitext(cfile)[0] + ".o"
    cmd = [gcc()] + CFLAGS + list(extra) + ["-c", "-I", RUNTIME_INCLUDE, "-I", include_dir,
                                            cfile, "-o", obj]
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
    return p.returncode, p.stdout.decode("utf-8", "replace")


def write_file(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path
