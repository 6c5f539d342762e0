"""`python -m sandbox [options]` runs the sandbox in the foreground; `python -m sandbox status` reports on
a running one."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from sandbox import smtp, status
from sandbox.runner import STATUS_FILE, Options, Sandbox
from sandbox.template import TemplateError


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
    p.add_argument("--stack-name", default="sandbox", help="resource names derive from it (default sandbox)")
    p.add_argument("--visibility-timeout", type=int, help="override the inbound queue's (faster redelivery)")
    p.add_argument("--batch-window", type=float, help="override MaximumBatchingWindowInSeconds")
    p.add_argument("--status-interval", type=float, default=30.0, help="seconds between status lines; 0: off")
    p.add_argument("-v", "--verbose", action="store_true", help="the function's and the sandbox's logs")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "status":
        print(status.show(args.data_dir / STATUS_FILE))
        return 0
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    credentials = smtp.Credentials.generate()
    if args.smtp_password:
        credentials = smtp.Credentials(args.smtp_user, args.smtp_password)
    elif args.smtp_user != credentials.username:
        credentials = smtp.Credentials(args.smtp_user, credentials.password)
    options = Options(
        template=args.template,
        data_dir=args.data_dir,
        host=args.host,
        smtp_port=args.smtp_port,
        aws_port=args.aws_port,
        download_port=args.download_port,
        credentials=credentials,
        params=dict(args.param),
        stack_name=args.stack_name,
        visibility_timeout=args.visibility_timeout,
        batch_window=args.batch_window,
        status_interval=args.status_interval,
    )

    def echo(line: str) -> None:
        print(line, flush=True)

    try:
        sandbox = Sandbox(options, echo)
    except (TemplateError, OSError) as e:
        print(f"sandbox: {e}", file=sys.stderr)
        return 2
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        sandbox.start()
        echo(sandbox.banner())
        stop.wait()
        echo("stopping ...")
    except OSError as e:  # a port in use, most likely
        print(f"sandbox: {e}", file=sys.stderr)
        return 2
    finally:
        sandbox.stop()
    echo("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
