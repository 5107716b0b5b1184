"""Text from users and servers made safe for where mpr shows it.

An S3 key, a bucket name, a sidecar's content or a server's error message may hold anything:
a newline that forges a line in the cron log or the e-mail, an ESC that drives the terminal,
rich markup (`[bold]`, `[/]`) that the console would interpret or choke on, characters that
XML 1.0 cannot hold. Every such text goes through one of these on its way out:

- `visible(text)`: control characters (C0, DEL, C1, and the Unicode line and paragraph
  separators) written as Python escapes (`\\n`, `\\x1b`, `\\u2028`), a backslash doubled only
  where it would make an escape ambiguous. For logs, e-mail, plain text.
- `for_console(text)`: `visible`, then rich markup escaped. For anything printed with rich.
- `for_xml(text)`: `visible` (XML 1.0 has no way to carry most control characters; the
  serializer escapes `<`, `&` and quotes).

The JSON report keeps the exact text: JSON escapes control characters itself.
"""

from __future__ import annotations

import re

from rich.markup import escape

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]|\\(?=[xuU]|[ntr0abfv]|\\)")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\"}


def _escape(match: re.Match[str]) -> str:
    char = match.group(0)
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def visible(text: str) -> str:
    """`text` on one line, every control character shown as an escape."""
    return _CONTROL.sub(_escape, text)


def for_console(text: str) -> str:
    """`text` for rich: one line, control characters shown, markup shown as written."""
    return escape(visible(text))


def for_xml(text: str) -> str:
    """`text` as XML 1.0 can hold it (the serializer escapes markup characters)."""
    return visible(text)
