"""One scrubber for every secret that could reach a terminal, a log, a report or an e-mail.

Two kinds of secret get there. Values this process knows (the configured passwords and keys,
a presigned URL's signature) are replaced wherever they stand, also percent-encoded. Credentials
that a server or a library echoes back, which mpr may never have been told, are recognised by
their shape: the password in `scheme://user:password@host`, and `password=...` in a libpq
key=value string (quoted or not) or in a URL's query. `scrub` removes both kinds from free
text, `scrub_first_line` from the first line of a server's error; `mask_url` shows one DSN or
URL with its password as `****`; `redact_query` and `url_queries` hide presigned signatures in
the ffmpeg argv shown in logs.

Pure string work, no I/O, no imports of the rest of mpr: every module may use it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import quote, unquote, urlsplit, urlunsplit

MASK = "****"
REDACTED = "<redacted>"

# scheme://user:password@ -- the password runs to the last @ before the path, query or a space
_URL_PASSWORD = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^\s/?#@:]*:)[^\s/?#]*@")
# password=value in a libpq DSN (value quoted 'a b' with \' escapes, or bare) or a URL query
_KEY_PASSWORD = re.compile(
    r"(?i)(?P<head>\b(?:password|passwd|pwd|sslpassword)\s*=\s*)"
    r"(?:'(?:[^'\\\n]|\\.)*'?|(?:\\.|[^\s&#'\\])+)")


def scrub(text: str, secrets: Iterable[str | None] = (), *, mask: str = MASK) -> str:
    """`text` without any of `secrets` (nor their percent-encoded forms) and without any
    credentials it shows in a URL's userinfo or a `password=` setting."""
    for secret in _variants(secrets):
        text = text.replace(secret, mask)
    text = _URL_PASSWORD.sub(lambda m: m["head"] + mask + "@", text)
    return _KEY_PASSWORD.sub(lambda m: m["head"] + mask, text)


def scrub_first_line(text: str, secrets: Iterable[str | None] = ()) -> str:
    """The first line of `text` (a server's error runs over several lines), scrubbed as
    `scrub` does; "unknown error" when `text` is blank."""
    first = text.strip().splitlines()[0] if text.strip() else "unknown error"
    return scrub(first, secrets)


def _variants(secrets: Iterable[str | None]) -> list[str]:
    """Each secret as given, percent-encoded and percent-decoded; the longest first, so that
    a secret containing another is replaced whole."""
    found = {form for s in secrets if s for form in (s, quote(s, safe=""), unquote(s)) if form}
    return sorted(found, key=len, reverse=True)


def mask_url(url: str) -> str:
    """A DSN or URL as it may be shown: `postgresql://u:****@h/db`, `host=h password=****`.

    Anything that is neither a URL nor a key=value string may be a secret as a whole (a
    password pasted in the wrong place) and is shown as `****`."""
    scheme, sep, rest = url.partition("://")
    if not sep or not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*", scheme):
        return scrub(url) if "=" in url else MASK
    authority = re.split(r"[?#]", rest, maxsplit=1)[0]
    userinfo, at, _ = authority.rpartition("@")
    if at and ":" in userinfo:
        user = userinfo.split(":", 1)[0]
        rest = f"{user}:{MASK}@{rest[len(userinfo) + 1:]}"
    return scrub(f"{scheme}://{rest}")


def redact_query(arg: str) -> str:
    """An http(s) URL with its query (a presigned signature) replaced; other text unchanged."""
    if not arg.startswith(("http://", "https://")):
        return arg
    parts = urlsplit(arg)
    return urlunsplit(parts._replace(query=REDACTED)) if parts.query else arg


def url_queries(args: Iterable[str]) -> list[str]:
    """The queries of the http(s) URLs among `args`: secrets to scrub from their output."""
    return [urlsplit(a).query for a in args if a.startswith(("http://", "https://"))]
