"""Email over SMTP (aiosmtplib, through app.infra.mailer.deliver): one message per post to
the account's recipients, with a plain-text part and an HTML part.

The HTML part is built only from escaped text: the preheader (the preview line mail
clients show after the subject) as hidden text first, then the body's paragraphs. The
Message-ID is derived from the target's idempotency key, so a message sent twice is the
same message to clients that de-duplicate by it; SMTP offers no lookup, so a connection
lost during DATA is `OutcomeUnknown`.

Credentials.extra: `from_address`, `recipients` (comma-separated), and optionally the
account's own server: `smtp_host`, `smtp_port`, `smtp_username`, `smtp_password`,
`smtp_starttls`, `smtp_tls` ("true"/"false"); without `smtp_host` the instance's SMTP_*
settings are used. The account's own server is checked against private, loopback and
link-local addresses again at each send (after DNS resolution, unless
OUTBOUND_ALLOW_PRIVATE_NETWORKS=true), and the connection goes to the checked address.
"""

from __future__ import annotations

import hashlib
import html
from dataclasses import replace
from email.message import EmailMessage
from email.utils import formatdate, getaddresses, parseaddr

import httpcore
import httpx

from app.infra import outbound
from app.infra.mailer import SmtpFailure, SmtpServer, deliver
from app.models.vocabulary import Platform
from app.platforms.adapters.base import check_post, safe_message, secrets_of, unchanged_tokens
from app.platforms.publishing import (
    AuthError,
    Credentials,
    Metrics,
    OutcomeUnknown,
    PermanentError,
    Post,
    Published,
    RetryableError,
    TokenSet,
)
from app.settings import Settings


def _flag(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


def recipients_of(credentials: Credentials) -> list[str]:
    raw = credentials.extra.get("recipients", "")
    return [addr for _, addr in getaddresses([raw.replace(";", ",")]) if "@" in addr]


def html_body(text: str, preheader: str | None) -> str:
    """The HTML part: every piece of it escaped text (no markup from the content)."""
    paragraphs = [p for p in text.replace("\r\n", "\n").split("\n\n") if p.strip()]
    body = "\n".join(
        "<p>" + "<br>\n".join(html.escape(line) for line in p.split("\n")) + "</p>"
        for p in paragraphs
    )
    hidden = ""
    if preheader:
        # Shown by clients as the preview, hidden in the message itself.
        hidden = (
            '<div style="display:none;font-size:1px;line-height:1px;max-height:0;'
            'max-width:0;opacity:0;overflow:hidden;mso-hide:all">'
            f"{html.escape(preheader)}</div>\n"
        )
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8"></head><body>\n'
        f"{hidden}{body}\n</body></html>\n"
    )


class EmailPublisher:
    platform = Platform.EMAIL
    supports_idempotency_key = False
    can_look_up = False
    supports_first_comment = False

    def __init__(self, http: httpx.AsyncClient, settings: Settings) -> None:
        self.settings = settings

    def _server(self, credentials: Credentials) -> SmtpServer:
        extra = credentials.extra
        host = extra.get("smtp_host")
        if not host:
            if not self.settings.smtp_host:
                raise PermanentError("no SMTP server: set the account's or the instance's")
            return SmtpServer.from_settings(self.settings)
        port = extra.get("smtp_port", "")
        tls = _flag(extra.get("smtp_tls"), False)
        return SmtpServer(
            host=host,
            port=int(port) if port.isdigit() else (465 if tls else 587),
            username=extra.get("smtp_username") or None,
            password=extra.get("smtp_password") or None,
            starttls=_flag(extra.get("smtp_starttls"), True) and not tls,
            tls=tls,
            timeout=self.settings.smtp_timeout_seconds,
        )

    async def _checked(self, server: SmtpServer, credentials: Credentials) -> SmtpServer:
        """The account's own server is user-chosen: resolved and checked now, at send time
        (it was checked at connect, but DNS may have changed since), and connected to at
        the checked address. The instance's SMTP_HOST is the operator's and is trusted."""
        if not credentials.extra.get("smtp_host"):
            return server
        try:
            addresses = await outbound.resolve(
                server.host,
                server.port,
                allow_private=self.settings.outbound_allow_private_networks,
            )
        except outbound.OutboundBlocked as exc:
            raise PermanentError(f"the SMTP server is not allowed: {exc.message}") from None
        except httpcore.ConnectError:
            raise RetryableError(f"cannot resolve the SMTP server {server.host}") from None
        return replace(server, addresses=tuple(addresses))

    def _sender(self, credentials: Credentials) -> str:
        return credentials.extra.get("from_address") or self.settings.smtp_from

    def validate(self, post: Post, credentials: Credentials) -> list[str]:
        problems = check_post(self.platform, post, max_parts=1)
        if not (post.subject or "").strip():
            problems.append("An email needs a subject.")
        if not recipients_of(credentials):
            problems.append("The email account has no recipients.")
        if not credentials.extra.get("smtp_host") and not self.settings.smtp_host:
            problems.append("No SMTP server: set the account's or the instance's SMTP_HOST.")
        if "@" not in parseaddr(self._sender(credentials))[1]:
            problems.append("The email account's from address is not an address.")
        return problems

    def message(self, post: Post, credentials: Credentials) -> EmailMessage:
        sender = self._sender(credentials)
        domain = parseaddr(sender)[1].rpartition("@")[2] or "localhost"
        key = post.idempotency_key or str(post.target_id)
        digest = hashlib.sha256(key.encode()).hexdigest()[:32]
        message = EmailMessage()
        message["From"] = sender
        message["To"] = ", ".join(recipients_of(credentials))
        message["Subject"] = post.subject or post.title or ""
        message["Date"] = formatdate(localtime=False)
        message["Message-ID"] = f"<{digest}@{domain}>"
        message.set_content(post.text)
        message.add_alternative(html_body(post.text, post.preheader), subtype="html")
        return message

    async def publish(self, post: Post, credentials: Credentials) -> Published:
        recipients = recipients_of(credentials)
        if not recipients:
            raise PermanentError("the email account has no recipients")
        message = self.message(post, credentials)
        envelope_from = parseaddr(self._sender(credentials))[1]
        secrets = secrets_of(credentials)
        server = await self._checked(self._server(credentials), credentials)
        try:
            refused = await deliver(server, message, sender=envelope_from, recipients=recipients)
        except SmtpFailure as exc:
            text = safe_message(exc.message, secrets)
            if exc.stage == "data" and exc.code is None:
                raise OutcomeUnknown(
                    f"SMTP connection lost while sending; the message may have gone: {text}"
                ) from None
            if exc.stage == "auth" and exc.code is not None:
                raise AuthError(f"the SMTP server refused the login: {text}") from None
            if exc.code is not None and exc.code >= 500:
                raise PermanentError(text, status=exc.code) from None
            raise RetryableError(text, status=exc.code) from None
        # Recipients the server refused (others got it) are not retried: that would resend
        # to everyone else.
        del refused
        message_id = str(message["Message-ID"])
        return Published(message_id, None, (message_id,))

    async def find_existing(self, post: Post, credentials: Credentials) -> Published | None:
        return None

    async def comment(self, published: Published, text: str, credentials: Credentials) -> Published:
        raise PermanentError("email has no comments")

    async def delete(self, published: Published, credentials: Credentials) -> None:
        raise PermanentError("a sent email cannot be deleted")

    async def fetch_metrics(self, published: Published, credentials: Credentials) -> Metrics:
        return Metrics()  # SMTP reports nothing back (no tracking pixels by design)

    async def refresh_token(self, credentials: Credentials) -> TokenSet:
        return unchanged_tokens(credentials)  # SMTP passwords do not expire
