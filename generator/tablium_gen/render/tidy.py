"""Tidies one generated C function: drops `(void)x;` lines for variables the function does use,
an unused `tb_eval *E = ev;`, a `goto out;` right before `out:`, and the `out:` label when
nothing jumps to it.

Templates emit every `(void)x;` a function might need, since which variables a schema's checks
use is only known once the function is written. Removing a `(void)x;` or an unreferenced label
changes no behaviour: a mistake here could only make the C compiler warn, and the generator's
tests compile everything with -Werror -Wunused.
"""
import re

_VOID = re.compile(r"^(\s*)\(void\)(\w+);\s*$")
_LABEL = re.compile(r"^\w+:\s*$")


_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|/\*.*?\*/')


def _code(line):
    """The line without string and character literals and comments (a name in a message or a
    schema's text is no use of a variable)."""
    return _STRINGS.sub('""', line)


def _indent(line):
    return len(line) - len(line.lstrip(" "))


def _scope(lines, i):
    """The lines of the block that holds line i (labels and blank lines do not end it)."""
    d = _indent(lines[i])
    lo = i
    while lo > 0 and (not lines[lo - 1].strip() or _LABEL.match(lines[lo - 1])
                      or _indent(lines[lo - 1]) >= d):
        lo -= 1
    hi = i
    while hi + 1 < len(lines) and (not lines[hi + 1].strip() or _LABEL.match(lines[hi + 1])
                                   or _indent(lines[hi + 1]) >= d):
        hi += 1
    return lo, hi


def _uses(lines, lo, hi, skip, name):
    word = re.compile(r"\b%s\b" % re.escape(name))
    decl = re.compile(r"^\s*[A-Za-z_][\w \*]*?[\s\*]%s\s*(=[^=]|;)" % re.escape(name))
    assign = re.compile(r"^\s*%s\s*=[^=]" % re.escape(name))
    for k in range(lo, hi + 1):
        if k == skip:
            continue
        ln = _code(lines[k])
        if name == "c" and "TB_V_" in ln:
            return True  # the TB_V_* macros use c (and ok)
        if not word.search(ln):
            continue
        if decl.match(ln) or assign.match(ln) or _VOID.match(ln):
            # a declaration or plain assignment is no use; count the rest of the line
            rest = ln.split("=", 1)[1] if "=" in ln else ""
            if word.search(rest):
                return True
            continue
        return True
    return False


def tidy_function(text):
    lines = text.split("\n")
    # tb_eval *E = ev; kept only when E is used
    for i, ln in enumerate(lines):
        if ln.strip() == "tb_eval *E = ev;":
            lo, hi = _scope(lines, i)
            users = [k for k in range(lo, hi + 1) if k != i and re.search(r"\bE\b", _code(lines[k]))
                     and lines[k].strip() != "(void)E;"]
            if not users:
                lines = [x for k, x in enumerate(lines)
                         if k != i and not (lo <= k <= hi and x.strip() == "(void)E;")]
            break
    changed = True
    while changed:
        changed = False
        for i, ln in enumerate(lines):
            m = _VOID.match(ln)
            if not m:
                continue
            lo, hi = _scope(lines, i)
            if _uses(lines, lo, hi, i, m.group(2)):
                del lines[i]
                changed = True
                break
    # a validator that ignores its annotations: the parameter says so, not a (void) line
    if "    (void)ev;" in lines:
        for i, ln in enumerate(lines):
            if ln.endswith("tb_eval *ev)") and not ln.startswith(" "):
                lines[i] = ln[:-1] + " TB_UNUSED)"
                lines.remove("    (void)ev;")
                break
    out = []
    for i, ln in enumerate(lines):
        if ln.strip() == "goto out;" and i + 1 < len(lines) and lines[i + 1] == "out:":
            continue
        out.append(ln)
    body = "\n".join(out)
    if "out:" in out and not re.search(r"\bgoto out\b|TB_V_", body):
        out = [x for x in out if x != "out:"]
    return "\n".join(out)
