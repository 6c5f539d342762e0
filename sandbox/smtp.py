"""An SMTP server that behaves like the SES SMTP interface plus the stack's receipt rule.

STARTTLS with a certificate made at start-up, AUTH (LOGIN/PLAIN) required after TLS, SES's 40 MB limit,
550 for recipients no rule accepts, and each accepted mail written to the incoming bucket under the rule's
prefix with the block SES prepends (Return-Path, Received, verdicts, Received-SPF, Authentication-Results,
X-SES-RECEIPT, X-SES-DKIM-SIGNATURE: same names, order and syntax). The S3 -> SQS notification in moto
does the rest, as it would in AWS.

The sandbox checks no DNS: a `From` domain listed as authenticated gets aligned `spf=pass`, `dkim=pass`
and `dmarc=pass` results, as a sensor whose domain is verified in SES with Easy DKIM would; any other
gets `none` for all three, as a sensor that cannot authenticate does.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import hmac
import ipaddress
import secrets
import ssl
import string
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.utils import format_datetime, getaddresses
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

MAX_MESSAGE_BYTES = 40 * 1024 * 1024  # SES receiving: 40 MB per mail, headers included
EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
SERVER_NAME = "inbound-smtp.sandbox.localhost"
DEFAULT_AUTHENTICATED_DOMAINS = ("plant.example.com",)  # the README's example sensor domain
_ID_ALPHABET = string.ascii_lowercase + string.digits


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str

    @classmethod
    def generate(cls) -> Credentials:
        return cls("sandbox", secrets.token_urlsafe(12))


@dataclass(frozen=True)
class Accepted:
    key: str
    mail_from: str
    recipients: tuple[str, ...]
    size: int
    virus_verdict: str


def tls_context(directory: Path, hostname: str = "localhost") -> ssl.SSLContext:
    """A server context with a fresh self-signed certificate for localhost and 127.0.0.1."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName(hostname),
                    x509.DNSName(SERVER_NAME),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                ]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    cert_file, key_file = directory / "smtp-cert.pem", directory / "smtp-key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    key_file.chmod(0o600)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return context


def virus_verdict(content: bytes) -> str:
    """SES scans every mail; the sandbox's scanner knows one virus, the EICAR test string."""
    return "FAIL" if EICAR in content else "PASS"


def matches_rule(address: str, recipients: tuple[str, ...]) -> bool:
    """SES rule matching: an address, a domain (not its subdomains), or `.domain` (subdomains only)."""
    address = address.lower()
    domain = address.rpartition("@")[2]
    for entry in recipients:
        if "@" in entry:
            if address == entry:
                return True
        elif domain.endswith(entry) if entry.startswith(".") else domain == entry:
            return True
    return False


def object_id() -> str:
    """SES names the object after its message id: 40 lower-case letters and digits."""
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(40))


def from_domain(raw: bytes) -> str | None:
    """The domain of the mail's single From address, as SES's DMARC check would see it."""
    headers = BytesHeaderParser().parsebytes(raw[: 256 * 1024])
    values = headers.get_all("From") or []
    addresses = getaddresses([str(value) for value in values])
    if len(values) != 1 or len(addresses) != 1 or "@" not in addresses[0][1]:
        return None
    return addresses[0][1].rpartition("@")[2].lower()


def authentication_results(mail_from: str, domain: str | None, authenticated: bool) -> str:
    """SES's Authentication-Results value: aligned passes for an authenticated domain, else none."""
    if authenticated and domain:
        return (
            f"amazonses.com;\r\n spf=pass (spfCheck: domain of {domain} designates 127.0.0.1 as permitted"
            f" sender) client-ip=127.0.0.1; envelope-from={mail_from};\r\n"
            f" dkim=pass header.i=@{domain};\r\n dmarc=pass header.from={domain};"
        )
    return "amazonses.com;\r\n spf=none; dkim=none; dmarc=none;"


def ses_headers(
    mail_from: str,
    recipient: str,
    helo: str,
    peer_ip: str,
    smtp_id: str,
    virus: str,
    when: datetime.datetime | None = None,
    domain: str | None = None,
    authenticated: bool = False,
) -> bytes:
    """The block SES prepends to the stored mail; the function reads verdicts and results only here."""
    when = when or datetime.datetime.now(datetime.UTC)
    spf = "pass" if authenticated and domain else "none"
    receipt = base64.b64encode(smtp_id.encode()).decode()
    lines = [
        f"Return-Path: <{mail_from}>",
        f"Received: from {helo or 'unknown'} ([{peer_ip}])",
        f" by {SERVER_NAME} with SMTP id {smtp_id}",
        f" for {recipient};",
        f" {format_datetime(when)}",
        "X-SES-Spam-Verdict: PASS",
        f"X-SES-Virus-Verdict: {virus}",
        f"Received-SPF: {spf} (spfCheck: sandbox, no DNS checked) client-ip={peer_ip};"
        f" envelope-from={mail_from}; helo={helo or 'unknown'};",
        f"Authentication-Results: {authentication_results(mail_from, domain, authenticated)}",
        f"X-SES-RECEIPT: {receipt}",
        f"X-SES-DKIM-SIGNATURE: a=rsa-sha256; q=dns/txt; c=relaxed/simple; s=sandbox; d={SERVER_NAME};",
    ]
    return ("\r\n".join(lines) + "\r\n").encode("ascii", "replace")


class ReceiptRuleHandler:
    """aiosmtpd handler: accepts recipients like the receipt rule, stores mail like its S3 action."""

    def __init__(
        self,
        recipients: tuple[str, ...],
        store: Callable[[str, bytes], None],
        prefix: str,
        on_accepted: Callable[[Accepted], None] = lambda accepted: None,
        authenticated_domains: tuple[str, ...] = DEFAULT_AUTHENTICATED_DOMAINS,
    ) -> None:
        self.recipients = recipients
        self.store = store
        self.prefix = prefix
        self.on_accepted = on_accepted
        self.authenticated_domains = tuple(domain.lower() for domain in authenticated_domains)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if not matches_rule(address, self.recipients):
            return f"550 5.1.1 <{address}>: Recipient address rejected: no receipt rule accepts it"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        raw = content if isinstance(content, bytes) else content.encode("utf-8")
        smtp_id = object_id()
        verdict = virus_verdict(raw)
        peer = session.peer[0] if isinstance(session.peer, tuple) else str(session.peer)
        domain = from_domain(raw)
        headers = ses_headers(
            envelope.mail_from or "",
            envelope.rcpt_tos[0],
            session.host_name or "",
            peer,
            smtp_id,
            verdict,
            domain=domain,
            authenticated=domain in self.authenticated_domains,
        )
        key = self.prefix + smtp_id
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(None, self.store, key, headers + raw)
        except Exception as e:  # the client retries a 451 later, as it would with SES
            return f"451 4.3.0 Could not store the mail: {type(e).__name__}"
        self.on_accepted(Accepted(key, envelope.mail_from or "", tuple(envelope.rcpt_tos), len(raw), verdict))
        return f"250 Ok {smtp_id}"


class Authenticator:
    """AUTH LOGIN / PLAIN against one user, like the SES SMTP credentials of an IAM user."""

    def __init__(self, credentials: Credentials) -> None:
        self.credentials = credentials

    def __call__(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if mechanism not in ("LOGIN", "PLAIN") or not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        user_ok = hmac.compare_digest(auth_data.login, self.credentials.username.encode())
        password_ok = hmac.compare_digest(auth_data.password, self.credentials.password.encode())
        # handled=False: aiosmtpd then answers 535 itself (True would leave the client waiting).
        return AuthResult(success=user_ok and password_ok, handled=False)


class ClosingController(Controller):
    """Stops even with clients still connected (Python 3.12's Server.wait_closed waits for them)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sessions: weakref.WeakSet[SMTP] = weakref.WeakSet()

    def factory(self) -> SMTP:
        server: SMTP = super().factory()  # type: ignore[no-untyped-call]
        self.sessions.add(server)
        return server

    def stop(self, no_assert: bool = False) -> None:
        def close_connections() -> None:
            for server in list(self.sessions):
                if isinstance(server.transport, asyncio.Transport):
                    server.transport.abort()  # close() would wait for the TLS goodbye of an idle client

        if self.loop.is_running():
            self.loop.call_soon_threadsafe(close_connections)
        super().stop(no_assert)


def controller(
    handler: ReceiptRuleHandler,
    credentials: Credentials,
    context: ssl.SSLContext,
    host: str,
    port: int,
) -> Controller:
    """Not started; `start()` listens, `stop()` closes. Mail is accepted only over TLS after AUTH."""
    return ClosingController(
        handler,
        hostname=host,
        port=port,
        server_hostname=SERVER_NAME,
        tls_context=context,
        require_starttls=True,
        auth_required=True,
        auth_require_tls=True,
        authenticator=Authenticator(credentials),
        data_size_limit=MAX_MESSAGE_BYTES,
        ident="Sandbox SES SMTP",
    )
