"""A real SMTP server for the tests of the digest e-mail: aiosmtpd on a free loopback port,
keeping every message it accepts (and the login it was given)."""

from __future__ import annotations

import contextlib
import email
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from mpr_cli.dev.devservices import free_port


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes
    login: bytes | None

    @property
    def message(self) -> EmailMessage:
        parsed = email.message_from_bytes(self.raw, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed

    def body(self) -> str:
        part = self.message.get_body(("plain",))
        assert part is not None
        return str(part.get_content()).replace("\r\n", "\n")

    def attachments(self) -> list[EmailMessage]:
        return list(self.message.iter_attachments())  # type: ignore[arg-type]

    def decoded_parts(self) -> list[bytes]:
        """Every part's payload as the reader sees it (base64 and QP undone)."""
        return [part.get_payload(decode=True) or b"" for part in self.message.walk()
                if not part.is_multipart()]


@dataclass
class Mailbox:
    """An aiosmtpd handler keeping every message it accepts."""

    messages: list[Received] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        auth = session.auth_data
        login = auth.login if session.authenticated and isinstance(auth, LoginPassword) else None
        self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos),
                                      bytes(envelope.content), login))
        return "250 Message accepted for delivery"


@contextlib.contextmanager
def smtp_server(user: str | None = None,
                password: str | None = None) -> Iterator[tuple[int, Mailbox]]:
    """A real SMTP server on 127.0.0.1 and a free port; with `user`, AUTH is required and
    only `user`/`password` is accepted."""
    mailbox = Mailbox()
    options: dict[str, Any] = {}
    if user is not None:
        expected = LoginPassword(user.encode(), (password or "").encode())

        def authenticator(server: Any, session: Any, envelope: Any, mechanism: str,
                          auth_data: Any) -> AuthResult:
            return AuthResult(success=auth_data == expected, auth_data=auth_data)

        options = {"auth_required": True, "auth_require_tls": False,
                   "authenticator": authenticator}
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port(), **options)
    controller.start()
    try:
        yield controller.port, mailbox
    finally:
        controller.stop()
