"""The command line: parse options, call one library function, render, map errors to exit codes.

Exit codes: 0 success, 1 a vendor or delivery failed, 2 bad input (config, arguments, page),
3 another check holds the database's run lock (nothing was checked; try again later).

Everything printed for people goes through ``render.for_terminal`` (page text cannot drive the
terminal); JSON is printed exact.
"""

from __future__ import annotations

import functools
import io
import json
import logging
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from policy_watch import __version__, pipeline, queries, render
from policy_watch import history as history_ops
from policy_watch.browser import BrowserOptions
from policy_watch.config import Config, load_config
from policy_watch.errors import ConfigError, FetchError, LockedError, ParseError, PolicyWatchError, StoreError
from policy_watch.fetch import FetchOptions
from policy_watch.models import VendorResult, VendorStatus
from policy_watch.outbox import deliver
from policy_watch.store import Store, run_lock

if TYPE_CHECKING:
    from rich.console import Console


@functools.cache
def _console(stderr: bool = False) -> Console:
    """rich, loaded on first use (a quiet `run` from cron never needs it). Piped or redirected output
    gets wide lines rather than rich's default 80 columns."""
    from rich.console import Console

    tty = (sys.stderr if stderr else sys.stdout).isatty()
    return Console(stderr=stderr, width=None if tty else 200, emoji=False)


MAX_CELL = 80  # table cells longer than this are cut (JSON and CSV output keep every character)
UNCUT = {"last_error"}  # columns shown whole: the cause of a failure is at the end of its message


def _now() -> datetime:
    return datetime.now(UTC)


EXIT_LOCKED = 3  # another check holds the run lock: apart from 1 (a vendor failed), documented in the README


def _echo(text: str) -> None:
    """One line for people: page text in it cannot drive the terminal."""
    click.echo(render.for_terminal(text))


class _TerminalSafe(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return render.for_terminal(super().format(record))


def _fail(message: str, code: int) -> None:
    _console(stderr=True).print(
        f"[red]error:[/red] {_cell(message, limit=None)}", markup=True, highlight=False, soft_wrap=True
    )
    sys.exit(code)


@contextmanager
def _errors() -> Iterator[None]:
    try:
        yield
    except ConfigError as e:
        _fail(str(e), 2)
    except ParseError as e:
        _fail(str(e), 2)
    except LockedError as e:
        _fail(str(e), EXIT_LOCKED)
    except StoreError as e:
        _fail(str(e), 1)
    except FetchError as e:
        _fail(str(e), 1)
    except PolicyWatchError as e:
        _fail(str(e), 2)


class _Ctx:
    def __init__(self, config_path: str) -> None:
        self.config_path = config_path
        self._config: Config | None = None

    @property
    def config(self) -> Config:
        if self._config is None:
            self._config = load_config(self.config_path)
        return self._config

    def store(self, create: bool = False, read_only: bool = False) -> Store:
        return Store.open(self.config.settings.database, create=create, read_only=read_only)


def _json(data: object) -> None:
    """JSON with every value exact; DEL, C1 and bidi controls written as ``\\u`` escapes (the same
    value to a JSON reader, inert in a terminal; json.dumps escapes the C0 controls itself)."""
    click.echo(render.json_for_terminal(json.dumps(data, indent=2, ensure_ascii=False, default=str)))


def _table(rows: Sequence[dict[str, Any]], columns: Sequence[str], title: str | None = None) -> None:
    from rich.table import Table

    t = Table(title=_cell(title, limit=None) if title else None, show_lines=False)
    for c in columns:
        t.add_column(c)
    for r in rows:
        t.add_row(*(_cell(r.get(c), limit=None if c in UNCUT else MAX_CELL) for c in columns))
    _console().print(t)


def _cell(v: object, limit: int | None = MAX_CELL) -> str:
    """Text for rich, with page text's square brackets escaped so they are never read as markup."""
    from rich.markup import escape

    if v is None:
        return ""
    if isinstance(v, bool):
        return "yes" if v else "no"
    text = render.for_terminal(str(v))
    if limit is not None and len(text) > limit:
        text = text[: limit - 1] + "…"
    return escape(text)


def _date(ctx: click.Context, param: click.Parameter, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"expected a date YYYY-MM-DD, got {value!r}") from None


def _config_after_command(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value is not None:
        ctx.find_object(_Ctx).config_path = value  # type: ignore[union-attr]


def _accept_config_after_command(group: click.Group) -> None:
    """``policy-watch run --config x.toml`` works as ``policy-watch --config x.toml run`` does."""
    for command in group.commands.values():
        command.params.append(
            click.Option(
                ["--config"],
                type=click.Path(dir_okay=False),
                expose_value=False,
                callback=_config_after_command,
                is_eager=True,
                help="Config file (also accepted before the command).",
            )
        )


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    default="config.toml",
    show_default=True,
    help="Config file.",
    type=click.Path(dir_okay=False),
)
@click.option("-v", "--verbose", is_flag=True, help="Log progress details to stderr.")
@click.version_option(__version__, prog_name="policy-watch")
@click.pass_context
def cli(ctx: click.Context, config_path: str, verbose: bool) -> None:
    """Watch vendors' subprocessor lists and alert on every change, with the objection deadline."""
    handler = logging.StreamHandler()
    handler.setFormatter(_TerminalSafe("%(levelname)s %(message)s"))
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, handlers=[handler])
    for noisy in ("apprise", "urllib3", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    ctx.obj = _Ctx(config_path)


@cli.command(short_help="What the parser reads from one page.")
@click.argument("source")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--vendor", help="Apply this configured vendor's parse rules.")
@click.pass_obj
def parse(obj: _Ctx, source: str, as_json: bool, vendor: str | None) -> None:
    """Show what the parser reads from one page (URL or file); stores nothing."""
    from policy_watch.sources import read_once

    with _errors():
        if vendor:
            cfg = obj.config
            reading = read_once(
                source, cfg.vendor(vendor), pipeline.fetch_options(cfg), pipeline.browser_options(cfg)
            )
        else:
            where = source if "://" in source else str(Path(source).resolve())
            reading = read_once(where, None, FetchOptions(), BrowserOptions())
    page = reading.page
    if as_json:
        _json({**page.to_json(), "reader": page.reader, "rendered": reading.rendered, "hint": reading.hint})
        return
    rows = [e.to_json() for e in page.entries]
    for r in rows:
        r["extra"] = "; ".join(f"{k}: {v}" for k, v in r["extra"].items())  # type: ignore[attr-defined]
    _table(
        rows,
        ["section", "entity", "purpose", "country", "extra"],
        title=f"{render.counted(len(rows), 'entry', 'entries')}; declared date: {page.last_modified or 'none found'}; "
        f"read by: {reading.how}",
    )
    if reading.hint:
        _console(stderr=True).print(f"hint: {reading.hint}", highlight=False, soft_wrap=True, markup=False)


def _print_result(r: VendorResult) -> None:
    if r.status.failed:
        _console(stderr=True).print(
            f"[red]{r.status}[/red] {_cell(r.error, limit=None)}", highlight=False, soft_wrap=True
        )
    if r.notice:
        _console(stderr=True).print(
            f"[yellow]note[/yellow] {_cell(r.notice, limit=None)}", highlight=False, soft_wrap=True
        )


@cli.command()
@click.option("--vendor", "vendor_names", multiple=True, help="Check only this vendor (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable summary.")
@click.pass_obj
def run(obj: _Ctx, vendor_names: tuple[str, ...], as_json: bool) -> None:
    """Check every vendor once; exit 1 when any vendor failed."""
    with _errors():
        cfg = obj.config
        cfg.require_notify()
        vendors = [cfg.vendor(n) for n in vendor_names] if vendor_names else list(cfg.vendors)
        with run_lock(cfg.settings.database):
            store = obj.store(create=True)
            try:
                report = _run_with_progress(cfg, store, vendors, quiet=as_json)
                fresh = queries.freshness(store)
            finally:
                store.close()
    if as_json:
        _json(
            {
                "run_id": report.run_id,
                "started": report.started.isoformat(),
                "checked": len(report.results),
                "failed": len(report.failed),
                "changed": len(report.changed),
                "alerts_sent": report.delivered,
                "alerts_pending": report.pending,
                "errors": report.errors,
                "vendors": [
                    {
                        "vendor": r.vendor,
                        "status": r.status,
                        "entries": r.entries,
                        "error": r.error,
                        "notice": r.notice,
                        "stale": r.status.failed,
                        "last_success": fresh.get(r.vendor, {}).get("last_success"),
                        "changes": [c.to_json() for c in r.changes],
                        "deadline": r.window.deadline.isoformat() if r.window else None,
                    }
                    for r in report.results
                ],
            }
        )
    else:
        for r in report.results:
            _print_result(r)
        for e in report.errors:
            _console(stderr=True).print(
                f"[red]error[/red] {_cell(e, limit=None)}", highlight=False, soft_wrap=True
            )
        counts: dict[str, int] = {}
        for r in report.results:
            counts[r.status] = counts.get(r.status, 0) + 1
        parts = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        _echo(
            f"checked {render.counted(len(report.results), 'vendor')}: {parts or 'none'}; alerts sent {report.delivered}, "
            f"pending {report.pending}"
        )
        for r in report.changed if sys.stdout.isatty() else ():
            deadline = f" (object by {r.window.deadline})" if r.window else ""
            _echo(f"  {r.vendor}: {render.counted(len(r.changes), 'change')}{deadline}")
        for r in report.failed:
            read = fresh.get(r.vendor, {}).get("last_success")
            if read:
                _echo(
                    f"  {r.vendor}: stale: its list as last read on {str(read)[:10]} stays the baseline "
                    f"(policy-watch show {json.dumps(r.vendor)})"
                )
    sys.exit(0 if report.ok else 1)


def _user() -> str:
    import getpass  # only for ack, object and accept

    return getpass.getuser()


def _run_with_progress(cfg: Config, store: Store, vendors: list[Any], quiet: bool) -> pipeline.RunReport:
    if quiet or not sys.stdout.isatty():
        return pipeline.run_check(cfg, store, vendors=vendors)
    from rich.progress import Progress

    with Progress(console=_console(), transient=True) as progress:
        task = progress.add_task("checking", total=len(vendors))
        tally = {"failed": 0, "changed": 0}

        def step(r: VendorResult) -> None:
            tally["failed"] += r.status.failed
            tally["changed"] += r.status is VendorStatus.CHANGED
            progress.update(
                task,
                advance=1,
                description=f"checking ({tally['changed']} changed, {tally['failed']} failed)",
            )

        return pipeline.run_check(cfg, store, vendors=vendors, on_result=step)


@cli.command()
@click.option("--vendor", help="Only this vendor.")
@click.option("--since", callback=_date, help="Only changes detected on or after this date (YYYY-MM-DD).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV.")
@click.pass_obj
def changes(obj: _Ctx, vendor: str | None, since: date | None, as_json: bool, as_csv: bool) -> None:
    """The change log, newest first."""
    with _errors():
        store = obj.store(read_only=True)
        if vendor:
            queries.require_vendor(store, vendor)
        rows = queries.changes(store, vendor, since)
        queries.with_transfers(store, rows, _transfer_rules(obj), text=not as_json)
    _emit(rows, [*_CHANGE_COLUMNS, *_TRANSFER_COLUMNS], as_json, as_csv)


_CHANGE_COLUMNS = [
    "id",
    "vendor",
    "kind",
    "section",
    "entity",
    "field",
    "old",
    "new",
    "detected_at",
    "window_opens",
    "deadline",
]
# What a change that adds or changes a location means: read at output time from the stored values.
_TRANSFER_COLUMNS = ["countries", "transfer_risk", "location_unrecognised"]


def _transfer_rules(obj: _Ctx) -> Any:
    from policy_watch.meaning import transfers

    return transfers.rules(obj.config.transfers)


def _emit(
    rows: list[dict[str, Any]], cols: list[str], as_json: bool, as_csv: bool, title: str | None = None
) -> None:
    if as_json:
        _json([{c: r.get(c) for c in cols} for r in rows])
    elif as_csv:
        buf = io.StringIO()
        import csv  # only here: every run would pay for its import

        w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        w.writerows({k: _csv_value(v) for k, v in r.items()} for r in rows)
        click.echo(buf.getvalue(), nl=False)
    else:
        _table(rows, cols, title)


def _csv_value(value: object) -> object:
    """A CSV cell: text inert in a spreadsheet (no formula) and in a terminal; numbers as they are."""
    if isinstance(value, dict | list):
        value = json.dumps(value, ensure_ascii=False)
    return render.csv_cell(value) if isinstance(value, str) else value


@cli.command(short_help="Open objection windows, soonest first, with their entities.")
@click.option("--all", "all_", is_flag=True, help="Include closed, decided and expired windows.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def deadlines(obj: _Ctx, all_: bool, as_json: bool) -> None:
    """Open objection windows, soonest first, with days left, the entities each covers and its decisions."""
    with _errors():
        rows = queries.windows(obj.store(read_only=True), _now().date(), all_=all_)
    cols = [
        "id",
        "vendor",
        "detected_at",
        "opens",
        "deadline",
        "days_left",
        "rule",
        "late",
        "status",
        "changes",
        "entities",
        "by",
        "note",
    ]
    if as_json:
        _json([{c: r.get(c) for c in [*cols, "decisions"]} for r in rows])
        return
    _table([{**r, "entities": "; ".join(r["entities"])} for r in rows], cols)


def _window_command(action: str) -> Callable[..., None]:
    @click.argument("window_id", type=int)
    @click.option("--note", help="A note recorded with the decision.")
    @click.option("--by", default=None, help="Who decided (default: the OS user).")
    @click.pass_obj
    def command(obj: _Ctx, window_id: int, note: str | None, by: str | None) -> None:
        with _errors():
            w = queries.set_window(obj.store(), window_id, action, by or _user(), note, _now())
        click.echo(f"window {w.id} ({w.vendor}, deadline {w.deadline}): {w.status} by {w.status_by}")

    return command


cli.command("ack", help="Acknowledge an objection window: seen, decision pending.")(_window_command("ack"))
cli.command("object", help="Record that you objected within the window.")(_window_command("object"))


def _is_vendor(config: Config, name: str) -> bool:
    return any(v.name.casefold() == name.casefold() for v in config.vendors)


@cli.command(short_help="Accept a window's changes or a suspect page.")
@click.argument("target")
@click.option("--note", help="A note recorded with the decision.")
@click.option("--by", default=None, help="Who decided (default: the OS user).")
@click.pass_obj
def accept(obj: _Ctx, target: str, note: str | None, by: str | None) -> None:
    """Accept a window's changes (ID) or a suspect page as real (VENDOR).

    \b
    accept 12                  the changes of objection window 12 are accepted
    accept "Zendesk Connect"   the page held as suspect becomes the baseline;
                               its changes are reported
    """
    with _errors():
        store = obj.store()
        if target.isdigit() and (
            store.windows.get(int(target)) is not None or not _is_vendor(obj.config, target)
        ):
            w = queries.set_window(store, int(target), "accept", by or _user(), note, _now())
            click.echo(f"window {w.id} ({w.vendor}, deadline {w.deadline}): accepted by {w.status_by}")
            return
        vendor = obj.config.vendor(target)
        with run_lock(obj.config.settings.database):
            found, window = history_ops.accept_suspect(obj.config, store, vendor, _now())
            sent, pending = deliver(obj.config, store, _now)
        click.echo(
            f"{vendor.name}: suspect page accepted as the new baseline; {len(found)} change(s) recorded"
            + (f", object by {window.deadline}" if window else "")
            + f"; alerts sent {sent}, pending {pending}"
        )


@cli.command(short_help="A vendor's entries, now or on a date, and its open windows.")
@click.argument("vendor")
@click.option("--at", "at", callback=_date, help="As the list stood on this date (YYYY-MM-DD).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def show(obj: _Ctx, vendor: str, at: date | None, as_json: bool) -> None:
    """The vendor's entries, now or as they stood on a date, and its open objection windows."""
    with _errors():
        store = obj.store(read_only=True)
        meta, rows = queries.entries_at(store, vendor, at)
        open_windows = queries.windows(store, _now().date(), vendor=vendor)
        fresh: dict[str, Any] = {"stale": False, "last_success": None, "stale_reason": None}
        fresh.update(next(iter(queries.freshness(store, vendor).values()), {}))
    if meta is None:
        _fail(f"{vendor}: no snapshot {'on or before ' + str(at) if at else 'yet'}", 1)
    windows = [
        {k: w[k] for k in ("id", "opens", "deadline", "days_left", "status", "entities", "decisions")}
        for w in open_windows
    ]
    if as_json:
        _json({"vendor": vendor, **(meta or {}), **fresh, "entries": rows, "windows": windows})
        return
    for r in rows:
        r["extra"] = "; ".join(f"{k}: {v}" for k, v in r["extra"].items())
    _table(
        rows,
        ["section", "entity", "purpose", "country", "extra"],
        title=f"{vendor}: snapshot {meta and meta['snapshot_id']} first seen {meta and meta['first_seen'][:10]}",
    )
    if fresh["stale"]:
        click.echo(
            _cell(
                f"Stale: {fresh['stale_reason']}; this is the last list read, on "
                f"{(fresh['last_success'] or '?')[:10]}.",
                limit=None,
            )
        )
    for w in windows:
        click.echo(
            _cell(
                f"objection window {w['id']}: deadline {w['deadline']} ({w['days_left']} days left), "
                f"{w['status']}; covers {', '.join(w['entities'])}",
                limit=None,
            )
        )


@cli.command()
@click.argument("vendor")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def history(obj: _Ctx, vendor: str, as_json: bool) -> None:
    """The vendor's snapshots with dates and counts."""
    with _errors():
        rows = queries.history(obj.store(read_only=True), vendor)
    _emit(
        rows,
        ["id", "status", "first_seen", "last_seen", "declared_date", "entries", "changes", "reading_of"],
        as_json,
        False,
    )


@cli.command(short_help="Which vendors list a company, under any of its names.")
@click.argument("entity")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def who(obj: _Ctx, entity: str, as_json: bool) -> None:
    """Which vendors currently list a company, under any of its names, and how each spells it.

    Matches the same name without legal suffixes or punctuation, names in brackets or after
    dba/aka, the alias table (AWS = Amazon Web Services; extend it with [aliases] in config.toml),
    and names that contain ENTITY as words (matched: text).
    """
    from policy_watch.meaning import entities

    with _errors():
        rules = _transfer_rules(obj)
        store = obj.store(read_only=True)
        found = entities.who(
            entity, queries.listings(store), entities.alias_table(obj.config.aliases), rules.gazetteer
        )
        fresh = queries.freshness(store)
    rows = [
        {
            "entity": m.listing.entity,
            "vendor": m.listing.vendor,
            "section": m.listing.section,
            "country": m.listing.country,
            "purpose": m.listing.purpose,
            "company": m.company,
            "matched": m.how,
            "stale": bool(fresh.get(m.listing.vendor, {}).get("stale")),
            "last_success": fresh.get(m.listing.vendor, {}).get("last_success"),
        }
        for m in found
    ]
    _emit(
        rows,
        ["entity", "vendor", "section", "country", "purpose", "company", "matched"]
        + (["stale", "last_success"] if as_json else []),
        as_json,
        False,
    )
    if not as_json:
        for name in sorted({str(r["vendor"]) for r in rows if r["stale"]}):
            f = fresh[name]
            click.echo(
                _cell(
                    f"Stale: {name}: {f['stale_reason']}; its list is as last read on "
                    f"{(f['last_success'] or '?')[:10]}.",
                    limit=None,
                )
            )


@cli.command(short_help="Third parties listed by the most vendors, with their countries.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV.")
@click.option(
    "--min-vendors",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="Only companies listed by at least this many vendors.",
)
@click.pass_obj
def entities(obj: _Ctx, as_json: bool, as_csv: bool, min_vendors: int) -> None:
    """The concentration report: each company across all vendors' current lists, most vendors first,
    under one name whatever each vendor calls it, with the countries they give for it."""
    from policy_watch.meaning import entities as meaning

    with _errors():
        rules = _transfer_rules(obj)
        companies = meaning.concentration(
            queries.listings(obj.store(read_only=True)),
            meaning.alias_table(obj.config.aliases),
            rules.gazetteer,
        )
    rows = [c.to_json() for c in companies if len(c.vendors) >= min_vendors]
    if not as_json:
        rows = [{k: "; ".join(v) if isinstance(v, list) else v for k, v in r.items()} for r in rows]
    _emit(
        rows,
        ["company", "vendor_count", "vendors", "countries", "spellings", "location_unrecognised"],
        as_json,
        as_csv,
        title=None if as_json or as_csv else f"{len(rows)} companies",
    )


@cli.command()
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True)
@click.option("--what", type=click.Choice(["entries", "changes"]), default="entries", show_default=True)
@click.pass_obj
def export(obj: _Ctx, fmt: str, what: str) -> None:
    """Export current entries or the change log as CSV or JSON."""
    with _errors():
        store = obj.store(read_only=True)
        if what == "entries":
            rows = queries.current_entries(store)
            cols = [
                "vendor",
                "section",
                "entity",
                "purpose",
                "country",
                "extra",
                "declared_date",
                "first_seen",
            ]
        else:
            rows = queries.changes(store)
            queries.with_transfers(store, rows, _transfer_rules(obj), text=fmt != "json")
            cols = [*_CHANGE_COLUMNS, *_TRANSFER_COLUMNS]
    _emit(rows, cols, fmt == "json", fmt == "csv")


@cli.command(short_help="Read the stored pages again with this parser and config.")
@click.pass_obj
def reparse(obj: _Ctx) -> None:
    """Read each vendor's stored page again with this parser and config; a different reading is
    added as the new baseline (what was recorded stays as it was); sends nothing."""
    with _errors(), run_lock(obj.config.settings.database):
        done = history_ops.reparse_history(obj.config, obj.store(), _now())
    for _, what in done:
        click.echo(_cell(what, limit=None))


@cli.command("outbox")
@click.option("--all", "all_", is_flag=True, help="Include sent alerts.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def outbox_cmd(obj: _Ctx, all_: bool, as_json: bool) -> None:
    """Alerts waiting to be sent (or failed), with their last error."""
    with _errors():
        rows = queries.outbox(obj.store(read_only=True), all_)
    _emit(
        rows,
        ["id", "created_at", "target", "vendor", "kind", "status", "attempts", "last_error"],
        as_json,
        False,
    )


@cli.command("notify-test")
@click.pass_obj
def notify_test(obj: _Ctx) -> None:
    """Send a test alert to every target and print each result."""
    from policy_watch import notify

    with _errors():
        targets = obj.config.notify
        obj.config.require_notify()
    if not targets:
        _fail(f"{obj.config_path}: notify: no [[notify]] targets configured", 2)
    failed = 0
    test = render.Message(
        "policy-watch test alert",
        "This is a *test* alert from policy-watch.",
        "<p>This is a <b>test</b> alert from policy-watch.</p>",
        "This is a test alert from policy-watch.",
    )
    for t in targets:
        r = notify.send(t, test)
        failed += not r.ok
        status = "ok" if r.ok else f"FAILED: {r.error}"
        _echo(f"{t.name} {notify.redact(t.url)}: {status}")
    sys.exit(1 if failed else 0)


@cli.command()
@click.option("--once-now", is_flag=True, help="Run once at start-up even if today's run already happened.")
@click.pass_obj
def daemon(obj: _Ctx, once_now: bool) -> None:
    """Run the check every day (settings.run_at, settings.timezone)."""
    from policy_watch import scheduler

    with _errors():
        obj.config.require_notify()
        web = None
        if obj.config.settings.web:  # the review page in a thread beside the daily loop
            from policy_watch.web import WebThread

            web = WebThread(obj.config, obj.config.settings.web, echo=_echo)
        try:
            scheduler.run_daemon(obj.config, force_first=once_now, echo=_echo)
        finally:
            if web is not None:
                web.stop()


@cli.command(short_help="The review web page: deadlines, decisions, evidence.")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on; any but loopback needs credentials from the environment.",
)
@click.option(
    "--port", default=8080, show_default=True, type=click.IntRange(0, 65535), help="0: any free port."
)
@click.pass_obj
def serve(obj: _Ctx, host: str, port: int) -> None:
    """Serve the review web page (deadlines, decisions, evidence) from the database."""
    from policy_watch import web

    with _errors():
        web.serve(obj.config, host, port, echo=_echo)


@cli.command(short_help="Offline demo on two bundled pages.")
@click.option(
    "--dir",
    "workdir",
    default="demo",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Folder for the demo config and database.",
)
def demo(workdir: str) -> None:
    """Offline demo: two bundled versions of the Zendesk Connect page."""
    from policy_watch import demo as demo_mod

    with _errors():
        demo_mod.run_demo(Path(workdir), echo=click.echo)


_accept_config_after_command(cli)


def main(argv: Sequence[str] | None = None) -> None:
    cli.main(args=list(argv) if argv is not None else None, prog_name="policy-watch")
