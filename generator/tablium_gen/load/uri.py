"""RFC 3986 reference resolution (section 5.2), for any scheme (urn:, file:, http:)."""
import re
from urllib.parse import unquote

_URI_RE = re.compile(r"^(?:([A-Za-z][A-Za-z0-9+.-]*):)?(?://([^/?#]*))?([^?#]*)(?:\?([^#]*))?(?:#(.*))?$")


def split(uri):
    m = _URI_RE.match(uri)
    return m.group(1), m.group(2), m.group(3), m.group(4), m.group(5)


def unsplit(scheme, authority, path, query, fragment):
    out = ""
    if scheme is not None:
        out += scheme + ":"
    if authority is not None:
        out += "//" + authority
    out += path
    if query is not None:
        out += "?" + query
    if fragment is not None:
        out += "#" + fragment
    return out


def _remove_dot_segments(path):
    out = []
    while path:
        if path.startswith("../"):
            path = path[3:]
        elif path.startswith("./"):
            path = path[2:]
        elif path.startswith("/./"):
            path = path[2:]
        elif path == "/.":
            path = "/"
        elif path.startswith("/../"):
            path = path[3:]
            if out:
                out.pop()
        elif path == "/..":
            path = "/"
            if out:
                out.pop()
        elif path in (".", ".."):
            path = ""
        else:
            i = path.find("/", 1 if path.startswith("/") else 0)
            if i < 0:
                out.append(path)
                path = ""
            else:
                out.append(path[:i])
                path = path[i:]
    return "".join(out)


def join(base, ref):
    """Resolves `ref` against `base` (RFC 3986 5.2.2)."""
    if base is None:
        return ref
    rs, ra, rp, rq, rf = split(ref)
    bs, ba, bp, bq, _ = split(base)
    if rs is not None:
        s, a, p, q = rs, ra, _remove_dot_segments(rp), rq
    else:
        if ra is not None:
            a, p, q = ra, _remove_dot_segments(rp), rq
        else:
            if rp == "":
                p = bp
                q = rq if rq is not None else bq
            else:
                if rp.startswith("/"):
                    p = _remove_dot_segments(rp)
                else:
                    if ba is not None and bp == "":
                        merged = "/" + rp
                    else:
                        i = bp.rfind("/")
                        merged = bp[: i + 1] + rp if i >= 0 else rp
                    p = _remove_dot_segments(merged)
                q = rq
            a = ba
        s = bs
    return unsplit(s, a, p, q, rf)


def defrag(uri):
    """(uri without fragment, fragment or '')."""
    i = uri.find("#")
    if i < 0:
        return uri, ""
    return uri[:i], uri[i + 1:]


def pointer_tokens(fragment):
    """JSON pointer tokens of a URI fragment ("/a~1b/0" -> ["a/b", "0"])."""
    ptr = unquote(fragment)
    if ptr == "":
        return []
    if not ptr.startswith("/"):
        raise ValueError("not a JSON pointer: %r" % fragment)
    return [t.replace("~1", "/").replace("~0", "~") for t in ptr[1:].split("/")]


def pointer_escape(token):
    return str(token).replace("~", "~0").replace("/", "~1")
