"""The offline subcommands of ``hive-server``, run while no server needs to: ``check-log``
(``core/logcheck.py``), ``export-session`` and ``import-session``
(``services/sessions/transfer.py``): their parsers and their runs. ``cli.py`` adds them to its
parser and hands them its home lock (``lock_home``: the fd of ``server.lock``, None while a
server holds it)."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hive_server.core.logcheck import check_log
from hive_server.core.redis_url import check_url
from hive_server.services.sessions.transfer import LockHome, export_session, import_session

COMMANDS = frozenset({"check-log", "export-session", "import-session"})


def add_check_log(sub: Any) -> None:
    check = sub.add_parser(
        "check-log", help="report (and with --fix repair) a session's events.jsonl",
        description="Report each line of a session's events.jsonl that is not a valid event "
                    "(offset, length, kind), a torn tail, and missing or duplicated seqs. Exit "
                    "code 0 when clean, 1 when problems were found, 2 when the log cannot be "
                    "checked. --fix writes a copy holding only the valid events, keeps the "
                    "original as events.jsonl.corrupt-<UTC timestamp> and renames the copy "
                    "over it; it refuses while a server runs on HIVE_HOME.")
    check.add_argument("session", metavar="SESSION",
                       help="a session id under $HIVE_HOME/sessions, or a path to events.jsonl")
    check.add_argument("--fix", action="store_true",
                       help="swap in a clean copy, keeping the original beside it")
    check.add_argument("--home", metavar="DIR",
                       help="state folder (default: ~/.hive; env HIVE_HOME)")


EXPORT_DESCRIPTION = """\
Write a session's events as a plain events.jsonl: the log's own line of every valid event, in
seq order. A line that is not a valid event (torn, corrupt, a stray duplicate) is left out and
reported on stderr with its offset, and so is a seq gap (import-session refuses such a file).
Only the events are exported: import-session rebuilds meta.json from them; the workspace
files and triggers.json stay behind. A server may run on HIVE_HOME meanwhile, but a session
that is live on it is refused (stop it first: DELETE /api/sessions/ID); a cold one is read up
to its end when the export starts. Exit code 0 when every event was written, 1 when lines
were left out (the file is written), 2 when refused or failed (FILE is left as it was).
--redis URL reads the session's stream in Redis instead, up to its last entry when the export
starts (a live session too); an entry that is not a valid event is left out and reported."""

IMPORT_DESCRIPTION = """\
Read a file written by export-session (or any events.jsonl) in as a new session of HIVE_HOME.
Every line must be an event, with seqs 1, 2, 3... without a gap and one session id (--as ID
stores it under another id, rewriting each event's session_id). meta.json is rebuilt from the
events (queen, model, colony, message counts, title, handoff notes; not a session's spend
limit), with status stopped: the session is cold, listed in the history, and resumes on POST
/api/sessions with its id. Refused while a server runs on HIVE_HOME, and for an id that
exists there. Exit code 0 when imported, 2 when refused (a one-line message naming the bad
line); a refused import leaves nothing behind. --redis URL imports into Redis instead: the
session's stream, meta and sessions index row, all committed at once (a server may run; an
id that exists in Redis is refused)."""


def add_transfer(sub: Any) -> None:
    home_help = "state folder (default: ~/.hive; env HIVE_HOME)"
    export = sub.add_parser(
        "export-session", help="write a session's events out as events.jsonl",
        description=EXPORT_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    export.add_argument("session", metavar="ID", help="a session id under $HIVE_HOME/sessions")
    export.add_argument("-o", "--output", metavar="FILE", default="-",
                        help="write to FILE (replaced once complete); - for stdout (default)")
    export.add_argument("--home", metavar="DIR", help=home_help)
    export.add_argument("--redis", metavar="URL", type=_redis_url,
                        help="read the session's stream from the Redis at URL instead")
    imp = sub.add_parser(
        "import-session", help="read a session in from an exported events.jsonl",
        description=IMPORT_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    imp.add_argument("file", metavar="FILE", help="the events.jsonl to import; - for stdin")
    imp.add_argument("--as", dest="as_id", metavar="ID",
                     help="import under this session id instead of the file's")
    imp.add_argument("--home", metavar="DIR", help=home_help)
    imp.add_argument("--redis", metavar="URL", type=_redis_url,
                     help="import into the Redis at URL (its stream, meta and index row) "
                          "instead")


def _redis_url(value: str) -> str:
    """A ``--redis`` value (argparse says what is wrong without echoing it: a password)."""
    try:
        return check_url(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def run(args: argparse.Namespace, home: Path, lock_home: LockHome) -> int:
    """Run one of ``COMMANDS``; its exit code."""
    if args.command == "check-log":
        return check_log(args.session, home=home, fix=args.fix, lock_home=lock_home,
                         out=sys.stdout, err=sys.stderr, now=lambda: datetime.now(UTC))
    if args.command in ("export-session", "import-session") and args.redis is not None:
        return _run_redis(args)
    if args.command == "export-session":
        return export_session(args.session, home=home, output=args.output,
                              lock_home=lock_home, stdout=sys.stdout.buffer, err=sys.stderr)
    return import_session(args.file, home=home, as_id=args.as_id, lock_home=lock_home,
                          stdin=sys.stdin.buffer, out=sys.stdout, err=sys.stderr,
                          now=_now_iso)


def _run_redis(args: argparse.Namespace) -> int:
    # Imported here, not at the top: redis-py takes about 160 ms to import, which only a
    # command given --redis pays (as in redis_check).
    from hive_server.services.sessions import transfer_redis

    if args.command == "export-session":
        return transfer_redis.export_session_redis(
            args.session, url=args.redis, output=args.output, stdout=sys.stdout.buffer,
            err=sys.stderr)
    return transfer_redis.import_session_redis(
        args.file, url=args.redis, as_id=args.as_id, stdin=sys.stdin.buffer, out=sys.stdout,
        err=sys.stderr, now=_now_iso)


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()
