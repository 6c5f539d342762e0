"""`python -m sandbox [options]` runs the sandbox in the foreground; `python -m sandbox status` reports on
a running one."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from sandbox.claim import Claim, Unavailable, claim

EXIT_NOT_STARTED = 1  # a port or the data directory taken, a failed start-up, a signal while starting
EXIT_USAGE = 2  # like argparse: the options or the template are wrong


class Interrupted(BaseException):
    """SIGINT or SIGTERM arrived while the sandbox was starting. A BaseException, like
    KeyboardInterrupt: libraries on the start-up path (botocore's HTTP retries among them) catch
    Exception, and would otherwise swallow the signal and go on starting."""


class StopSignals:
    """SIGINT and SIGTERM always stop the sandbox. While it starts, the handler raises `Interrupted` in
    the main thread (wherever start-up is, even in a blocking call), and `Sandbox.start` stops what it had
    started; once it runs, the handler only asks for the orderly stop the main thread waits for. A second
    signal while stopping ends the process at once: the kernel then releases its ports and its lock."""

    def __init__(self) -> None:
        self.requested = threading.Event()
        self._starting = True

    def install(self) -> None:
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, self._on_signal)

    def started(self) -> None:
        self._starting = False

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if self.requested.is_set():
            os._exit(1)
        self.requested.set()
        if self._starting:
            raise Interrupted(signal.Signals(signum).name)


def _param(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected Name=Value, got {text!r}")
    return name, value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    p.add_argument("command", nargs="?", choices=["run", "status"], default="run")
    p.add_argument("--template", type=Path, default=Path("template.yaml"))
    p.add_argument("--data-dir", type=Path, default=Path("sandbox-data"), help="outbox, notices, state")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--smtp-port", type=int, default=2525, help="0 picks a free port (default 2525)")
    p.add_argument("--aws-port", type=int, default=4566, help="moto's port; 0: a free one (default 4566)")
    p.add_argument(
        "--download-port",
        type=int,
        default=8480,
        help="the download links' port; 0: a free one (default 8480)",
    )
    p.add_argument("--web-port", type=int, default=8025, help="the web view's; 0: a free one (default 8025)")
    p.add_argument("--no-web", action="store_true", help="no web view")
    p.add_argument("--smtp-user", default="sandbox")
    p.add_argument("--smtp-password", help="default: a random one, printed at start")
    p.add_argument(
        "--param",
        type=_param,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="template parameter override, like sam deploy --parameter-overrides (repeatable)",
    )
    p.add_argument(
        "--authenticated-domain",
        action="append",
        metavar="DOMAIN",
        help="a From domain SES authenticates (aligned dkim/spf/dmarc=pass); repeatable"
        " (default: plant.example.com, the README's example sensor)",
    )
    p.add_argument(
        "--recipients-config",
        type=Path,
        metavar="FILE",
        help="a recipient groups and routes document (JSON) to load at start",
    )
    p.add_argument("--stack-name", default="sandbox", help="resource names derive from it (default sandbox)")
    p.add_argument("--visibility-timeout", type=int, help="override the inbound queue's (faster redelivery)")
    p.add_argument("--batch-window", type=float, help="override MaximumBatchingWindowInSeconds")
    p.add_argument("--status-interval", type=float, default=30.0, help="seconds between status lines; 0: off")
    p.add_argument("-v", "--verbose", action="store_true", help="the function's and the sandbox's logs")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "status":
        from sandbox import status
        from sandbox.runner import STATUS_FILE

        print(status.show(args.data_dir / STATUS_FILE))
        return 0
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    signals = StopSignals()
    signals.install()
    # The claim comes before the seconds of importing moto and the SAM translator: a start that cannot
    # have its directory or ports says so at once.
    try:
        claimed = claim(
            args.data_dir,
            args.host,
            args.smtp_port,
            args.aws_port,
            None if args.no_web else args.web_port,
            args.download_port,
        )
    except Unavailable as e:  # another sandbox has the directory, or a port is taken
        print(f"sandbox: {e}", file=sys.stderr)
        return EXIT_NOT_STARTED
    except Interrupted as e:
        print(f"sandbox: stopped by {e} while starting", file=sys.stderr)
        return EXIT_NOT_STARTED
    try:
        return run(args, claimed, signals)
    finally:
        claimed.release()  # already done by Sandbox.stop when it got that far


def run(args: argparse.Namespace, claimed: Claim, signals: StopSignals) -> int:
    def echo(line: str) -> None:
        print(line, flush=True)

    try:
        from localaws.blueprint import TemplateError
        from sandbox import smtp
        from sandbox.runner import Options, Sandbox

        credentials = smtp.Credentials.generate()
        if args.smtp_password:
            credentials = smtp.Credentials(args.smtp_user, args.smtp_password)
        elif args.smtp_user != credentials.username:
            credentials = smtp.Credentials(args.smtp_user, credentials.password)
        options = Options(
            template=args.template,
            data_dir=args.data_dir,
            host=args.host,
            smtp_port=claimed.smtp_port,
            aws_port=claimed.aws_port,
            download_port=claimed.download_port,
            web_port=claimed.web_port,
            credentials=credentials,
            params=dict(args.param),
            stack_name=args.stack_name,
            visibility_timeout=args.visibility_timeout,
            batch_window=args.batch_window,
            status_interval=args.status_interval,
            authenticated_domains=tuple(args.authenticated_domain or smtp.DEFAULT_AUTHENTICATED_DOMAINS),
            recipients_config=args.recipients_config,
        )
        try:
            sandbox = Sandbox(options, echo, claimed)
        except (TemplateError, OSError) as e:
            print(f"sandbox: {e}", file=sys.stderr)
            return EXIT_USAGE
    except Interrupted as e:
        print(f"sandbox: stopped by {e} while starting", file=sys.stderr)
        return EXIT_NOT_STARTED
    try:
        sandbox.start()
        signals.started()
        echo(sandbox.banner())
        signals.requested.wait()
        echo("stopping ...")
    except Unavailable as e:  # a port taken in the instant between the claim and its server's bind
        print(f"sandbox: {e}", file=sys.stderr)
        return EXIT_NOT_STARTED
    except Interrupted as e:
        print(f"sandbox: stopped by {e} while starting", file=sys.stderr)
        return EXIT_NOT_STARTED
    except Exception as e:
        logging.getLogger("sandbox").debug("start-up failed", exc_info=True)  # the traceback with -v
        print(f"sandbox: could not start: {type(e).__name__}: {e}", file=sys.stderr)
        return EXIT_NOT_STARTED
    finally:
        sandbox.stop()  # also after a failed start: Sandbox.start stopped its pieces, this is a no-op
    echo("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
