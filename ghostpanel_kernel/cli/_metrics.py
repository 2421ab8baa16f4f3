"""``ghostpanel metrics``: sample containers into the history store, export history.

``collect`` runs the sampler in the foreground on one environment until Ctrl-C (or
SIGTERM), which stops it cleanly: the round under way is dropped, everything written
before stays. ``export`` writes stored history as CSV or Parquet (docs/metrics.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ._app import CliContext, one_env_option, pass_app
from ._output import CommandError

if TYPE_CHECKING:
    from ..metrics._alert_rules import RuleSet
    from ..metrics._store import MetricsStore

__all__ = ["metrics"]


def _open_store(store_dir: Path | None) -> MetricsStore:
    from ..metrics._store import MetricsStore

    return MetricsStore(store_dir)


_STORE_OPTION = click.option(
    "--store", "store_dir", type=click.Path(path_type=Path), default=None, metavar="DIR",
    help="The metrics store's folder. Default: metrics/ in GhostPanel's data directory.")


@click.group()
def metrics() -> None:
    """Container metrics history: collect samples, export them (docs/metrics.md)."""


async def _collect(app: CliContext, env_names: tuple[str, ...], store: MetricsStore,
                   interval: float, rounds: int | None, rules: RuleSet | None = None) -> int:
    from ..metrics._sampler import Sampler

    async with app.environment(env_names) as environment:
        sampler = Sampler(environment, store, interval)
        alerts = None
        if rules is not None:  # evaluated at the sampling interval (docs/alerts.md)
            from ..metrics._alerts import AlertEvaluator

            alerts = AlertEvaluator(environment, store, rules,
                                    environment=sampler.environment)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for number in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(number, stop.set)
        try:
            sampler.start()
            if alerts is not None:
                alerts.start(interval)
            click.echo(f"sampling {environment.name} every {interval:g} s into "
                       f"{store.file} (Ctrl-C to stop)", err=True)
            while not stop.is_set():
                if rounds is not None and sampler.rounds >= rounds:
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=min(interval, 0.2))
        finally:
            for number in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(number)
            await sampler.aclose()
            if alerts is not None:
                await alerts.aclose()
        return sampler.rounds


@metrics.command()
@click.option("--interval", type=click.FloatRange(min=0.05), default=10.0, show_default=True,
              metavar="SECONDS", help="Seconds between two sampling rounds.")
@click.option("--rounds", type=click.IntRange(min=1), default=None, metavar="N",
              help="Stop after N rounds (default: run until Ctrl-C).")
@_STORE_OPTION
@click.option("--alert-rules", "alert_rules",
              type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              metavar="FILE", help="Also evaluate these alert rules (a rules file or a "
                                   "Boltfile's [alerts]); see docs/alerts.md.")
@one_env_option
@pass_app
def collect(app: CliContext, interval: float, rounds: int | None, store_dir: Path | None,
            env_names: tuple[str, ...], alert_rules: Path | None = None) -> None:
    """Sample every running container of one environment into the history store, in
    the foreground, until Ctrl-C."""
    rules = None
    if alert_rules is not None:
        from ..metrics._alert_rules import RuleError, load_rules

        try:  # a bad rule stops the command before it samples, naming the rule
            rules = load_rules(alert_rules)
        except RuleError as error:
            raise click.UsageError(str(error)) from None
    with _open_store(store_dir) as store:
        done = asyncio.run(_collect(app, env_names, store, interval, rounds, rules))
        click.echo(f"stopped after {done} round{'s' if done != 1 else ''}", err=True)


@metrics.command()
@click.option("--since", default="1h", show_default=True, metavar="TIME",
              help="Start: 1h, 30m, 7d (ago), unix seconds or ISO 8601.")
@click.option("--until", default=None, metavar="TIME", help="End (excluded). Default: now.")
@click.option("--container", "containers", multiple=True, metavar="NAME",
              help="Only this container (repeatable).")
@click.option("--metric", "metric_names", multiple=True, metavar="NAME",
              help="Only this metric (repeatable), e.g. cpu_cores.")
@click.option("--step", default=None, metavar="DURATION",
              help="Bucket the samples: 1m, 1h... (mean per bucket).")
@click.option("--format", "fmt", type=click.Choice(["csv", "parquet"]), default="csv",
              show_default=True, help="Output format.")
@click.option("--output", "-o", type=click.Path(path_type=Path, dir_okay=False),
              default=None, metavar="FILE", help="Write here (default: CSV to stdout).")
@_STORE_OPTION
def export(since: str, until: str | None, containers: tuple[str, ...],
           metric_names: tuple[str, ...], step: str | None, fmt: str, output: Path | None,
           store_dir: Path | None) -> None:
    """Export stored history as tidy rows: time (ISO 8601, UTC), environment, container,
    metric, value."""
    if fmt == "parquet" and output is None:
        raise CommandError("Parquet is binary: give --output FILE")
    with _open_store(store_dir) as store:
        try:
            frame = store.samples(containers=containers or None,
                                  metrics=metric_names or None, since=since, until=until,
                                  step=step)
        except ValueError as error:
            raise click.BadParameter(str(error)) from error
        except ImportError as error:  # pandas: only notebooks and exports need it
            raise CommandError(f"metrics export needs pandas ({error}): pip install "
                               "'ghostpanel[parquet]'") from error
    if fmt == "parquet":
        assert output is not None
        try:
            frame.to_parquet(output, index=False)
        except ImportError as error:
            raise CommandError("Parquet needs pyarrow: pip install pyarrow") from error
    else:
        text = frame.to_csv(index=False, date_format="%Y-%m-%dT%H:%M:%S.%fZ")
        if output is None:
            sys.stdout.write(text)
        else:
            output.write_text(text, encoding="utf-8")
    if output is not None:
        click.echo(f"{len(frame)} rows written to {output}", err=True)
