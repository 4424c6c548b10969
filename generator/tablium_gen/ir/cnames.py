"""C naming, decided once here: snake_case identifiers, keyword and collision handling."""
import os
import re

C_KEYWORDS = set("""auto break case char const continue default do double else enum extern float
for goto if inline int long register restrict return short signed sizeof static struct switch
typedef union unsigned void volatile while _Bool _Complex _Imaginary _Alignas _Alignof _Atomic
_Generic _Noreturn _Static_assert _Thread_local bool true false NULL errno""".split())
# Not keywords of C11, but of the dialects users compile with: GNU C's asm and typeof (gcc's
# default, -std=gnu17), C23's new keywords, and the macros gcc predefines in GNU modes (a member
# named linux would read `1`). SendGrid's mail body has a member "asm".
C_KEYWORDS |= set("""asm typeof typeof_unqual alignas alignof constexpr nullptr static_assert
thread_local unix linux i386""".split())


def snake(name):
    """'userId' -> 'user_id', 'user.registered' -> 'user_registered', '2fa' -> '_2fa'."""
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", s)
    s = re.sub(r"[^A-Za-z0-9]+", "_", s).strip("_").lower()
    if not s:
        s = "x"
    if s[0].isdigit():
        s = "_" + s
    if s in C_KEYWORDS:
        s += "_"
    return s


def upper(name):
    s = snake(name).upper().lstrip("_") or "X"
    return "_" + s if s[0].isdigit() else s  # '1forge' -> _1FORGE, not 1FORGE


class Namer:
    """Hands out unique C names within one scope."""

    def __init__(self, reserved=()):
        self.used = set(reserved)

    def take(self, want):
        name = want
        i = 2
        while name in self.used:
            name = "%s_%d" % (want, i)
            i += 1
        self.used.add(name)
        return name


def short_path(path):
    """A path as shown in generated comments: relative to the current directory when inside it
    (stable across machines), else the file name."""
    if path is None:
        return "?"
    ap = os.path.abspath(path)
    cwd = os.getcwd()
    if ap.startswith(cwd + os.sep):
        return os.path.relpath(ap, cwd)
    return os.path.basename(ap)


def pascal(name):
    """games_join_game -> GamesJoinGame (TypeScript type names)."""
    return "".join(p[:1].upper() + p[1:] for p in snake(name).split("_") if p)
