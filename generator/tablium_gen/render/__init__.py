"""Stage 3: Jinja2 templates turn the IR into C."""
import os

import jinja2

TEMPLATES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "templates")

_env = None


def env():
    global _env
    if _env is None:
        _env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), trim_blocks=True,
                                  lstrip_blocks=True, keep_trailing_newline=True,
                                  undefined=jinja2.StrictUndefined, autoescape=False)
        from .tidy import tidy_function
        _env.filters["tidy"] = tidy_function
    return _env


def render(template, **ctx):
    from .. import GEN_ABI, VERSION
    ctx.setdefault("gen_abi", GEN_ABI)
    ctx.setdefault("gen_version", VERSION)
    return env().get_template(template).render(**ctx)
