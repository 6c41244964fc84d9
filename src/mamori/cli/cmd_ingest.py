"""``mamori ingest``: read log files into canonical events (Parquet), quarantining lines that do not parse."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from mamori.cli.app import app, print_error
from mamori.errors import MamoriError, SchemaError
from mamori.events import READ_FORMATS, Quarantine, ReadSummary, empty_events, iter_event_batches
from mamori.events._source import is_zip

_FORMAT_HELP = "Input format: auto (detect from the first lines) or one of " + ", ".join(READ_FORMATS) + "."


def _compressed(path: Path) -> bool:
    with path.open("rb") as fh:
        return fh.read(2) == b"\x1f\x8b" or is_zip(path)


@app.command("ingest")
def ingest_command(
    files: list[Path] = typer.Argument(..., help="Log files: plain or .gz; a zip for CSIC 2010."),
    fmt: str = typer.Option("auto", "--format", "-f", help=_FORMAT_HELP),
    out: Path = typer.Option(Path("events.parquet"), "--out", "-o", help="Parquet file to write."),
    quarantine_path: Path = typer.Option(
        Path("quarantine.jsonl"), "--quarantine", "-q", help="JSON-lines file for lines that do not parse."
    ),
    mapping: Path | None = typer.Option(None, "--mapping", "-m", help="TOML column mapping (for --format csv)."),
    organization: str | None = typer.Option(
        None, "--organization", help="Fill organization.id (the member bank) where the log does not carry it."
    ),
) -> None:
    """Read log files into the canonical event table and write it as Parquet, batch by batch.

    Every line that does not parse goes to the quarantine file with its reason; the table printed at the end
    gives parsed and quarantined counts per file.
    """
    console = Console(stderr=True)
    if fmt != "auto" and fmt not in READ_FORMATS:
        print_error(f"unknown --format {fmt!r}; expected auto or one of {', '.join(READ_FORMATS)}.", console)
        raise typer.Exit(2)
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        print_error(f"no such file: {', '.join(missing)}.", console)
        raise typer.Exit(2)
    schema = empty_events().to_arrow(compat_level=pl.CompatLevel.oldest()).schema
    summaries: list[ReadSummary] = []
    failed: dict[int, MamoriError] = {}  # by the file's position among FILES (names may repeat)
    total_events = 0
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".partial")
    try:
        with Quarantine(quarantine_path) as quarantine, pq.ParquetWriter(tmp, schema) as writer:
            progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                DownloadColumn(),
                TextColumn("{task.fields[events]:,} events"),
                TimeElapsedColumn(),
                console=console,
            )
            with progress:
                for path in files:
                    size = None if _compressed(path) else path.stat().st_size
                    task = progress.add_task(path.name, total=size, events=0)
                    summary = ReadSummary(source=path.name, format=fmt)

                    def advance(n: int, task: int = task) -> None:
                        progress.advance(task, n)

                    # an error reading this file stops this file only (a truncated upload, a format that cannot
                    # be recognised): the events it gave before and every other file's are kept; errors writing
                    # the output stop the run (outer handlers)
                    errors: list[MamoriError] = []
                    for batch in iter_event_batches(
                        path,
                        fmt,
                        quarantine=quarantine,
                        mapping=mapping,
                        organization_id=organization,
                        summary=summary,
                        progress=advance,
                        errors=errors,
                    ):
                        table = batch.to_arrow(compat_level=pl.CompatLevel.oldest())
                        writer.write_table(table.cast(schema) if table.schema != schema else table)
                        total_events += batch.height
                        progress.update(task, events=summary.parsed)
                    if errors:
                        failed[len(summaries)] = errors[0]
                    if size is None:
                        progress.update(task, total=progress.tasks[task].completed)
                    summaries.append(summary)
        if failed and total_events == 0:  # nothing read: no output to keep, as for a usage error
            tmp.unlink(missing_ok=True)
            for exc in failed.values():
                print_error(exc, console)
            raise typer.Exit(2)
        tmp.replace(out)
    except MamoriError as exc:
        tmp.unlink(missing_ok=True)
        print_error(exc, console)
        raise typer.Exit(2) from exc
    except (pa.ArrowException, OSError) as exc:
        tmp.unlink(missing_ok=True)
        # the quarantine file or the output: an OSError names which
        target = getattr(exc, "filename", None) or out
        err = SchemaError(f"ingest: cannot write '{target}': {exc}")
        print_error(err, console)
        raise typer.Exit(2) from exc
    _print_summary(summaries, out, quarantine_path, total_events, failed)
    if failed:
        for exc in failed.values():
            print_error(exc, console)
        console.print(f"{len(failed)} of {len(files)} file(s) not read to the end; {out} holds every event read "
                      "before each error (exit status 1).")
        raise typer.Exit(1)


def _print_summary(summaries: list[ReadSummary], out: Path, quarantine_path: Path, total: int,
                   failed: dict[int, MamoriError]) -> None:
    console = Console()
    table = Table("file", "format", "lines", "parsed", "quarantined", "blank", "read", title="ingest")
    reasons: dict[str, int] = {}
    for i, s in enumerate(summaries):
        table.add_row(Text(s.source), s.format, f"{s.lines:,}", f"{s.parsed:,}", f"{s.quarantined:,}",
                      f"{s.blank:,}", "stopped: error below" if i in failed else "to the end")
        for reason, n in s.by_reason.items():
            reasons[reason] = reasons.get(reason, 0) + n
    if len(summaries) > 1:
        table.add_row(
            "total",
            "",
            f"{sum(s.lines for s in summaries):,}",
            f"{sum(s.parsed for s in summaries):,}",
            f"{sum(s.quarantined for s in summaries):,}",
            f"{sum(s.blank for s in summaries):,}",
            "",
        )
    console.print(table)
    if reasons:
        by_reason = Table("reason", "quarantined", title="quarantined by reason")
        for reason, n in sorted(reasons.items(), key=lambda kv: -kv[1]):
            by_reason.add_row(reason, f"{n:,}")
        console.print(by_reason)
    quarantined = sum(reasons.values())
    console.print(f"wrote {total:,} events to {out}; {quarantined:,} lines quarantined in {quarantine_path}")
