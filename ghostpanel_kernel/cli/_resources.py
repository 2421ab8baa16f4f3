"""Engine resources besides containers: ``images``, ``pull``, ``volumes``, ``networks``."""

from __future__ import annotations

import asyncio
import itertools
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import click

from ..engine import Environment, Image, Network, PullEvent, PullProgress, Volume
from ._app import (
    CliContext,
    env_option,
    filter_option,
    json_option,
    one_env_option,
    pass_app,
)
from ._output import echo_json, echo_json_line, human_age, human_size, render_table

if TYPE_CHECKING:
    # What click.progressbar returns; click exports only the function.
    from click._termui_impl import ProgressBar

__all__ = ["images", "networks", "pull", "volumes"]

Filters = Mapping[str, list[str]]
T = TypeVar("T")


async def _gather_listings(app: CliContext, env_names: Sequence[str],
                           listing: Callable[[Environment], Awaitable[list[T]]]) -> list[T]:
    """``listing`` of every selected environment, concatenated in environment order."""
    listings = await app.gather(env_names, listing)
    return list(itertools.chain.from_iterable(listings))


# -- images --------------------------------------------------------------------------

IMAGE_HEADERS = ("IMAGE", "ENVIRONMENT", "ID", "CREATED", "SIZE")


def image_record(image: Image) -> dict[str, Any]:
    """The ``images --json`` object (stable keys; ``created`` in seconds since the epoch)."""
    return {"environment": image.environment, "id": image.id, "tags": image.tags,
            "created": int(image.attrs.get("Created") or 0), "size": image.size,
            "labels": image.labels}


def image_rows(image: Image) -> list[list[str]]:
    """The ``images`` table rows of ``image``: one per tag, as docker prints them."""
    created = human_age(float(image.attrs.get("Created") or 0))
    return [[tag, image.environment, image.short_id, created, human_size(image.size)]
            for tag in image.tags or ["<none>"]]


@click.command()
@click.option("-a", "--all", "show_all", is_flag=True,
              help="Include intermediate images.")
@filter_option
@env_option
@json_option
@pass_app
def images(app: CliContext, show_all: bool, filters: Filters, env_names: tuple[str, ...],
           as_json: bool) -> None:
    """List images of the selected environments."""

    async def listing(environment: Environment) -> list[Image]:
        return await environment.images.list(all=show_all, filters=filters)

    found = asyncio.run(_gather_listings(app, env_names, listing))
    if as_json:
        echo_json([image_record(image) for image in found])
    else:
        rows = itertools.chain.from_iterable(image_rows(image) for image in found)
        click.echo(render_table(IMAGE_HEADERS, rows))


# -- pull ----------------------------------------------------------------------------


def pull_event_record(event: PullEvent) -> dict[str, Any]:
    """The ``pull --json`` object of one progress report."""
    return {"status": event.status, "layer": event.layer, "current": event.current,
            "total": event.total}


def _show(bar: ProgressBar[int], progress: PullProgress) -> None:
    # Layers announce their sizes as the pull goes, so the bar's length grows; the
    # position only ever grows too (PullProgress never moves back).
    bar.length = progress.total
    bar.finished = False
    bar.update(progress.current - bar.pos)


async def _pull_with_bar(environment: Environment, reference: str) -> PullProgress:
    progress = PullProgress()
    # On stderr, so that stdout carries only the image id; click draws the bar only on
    # a terminal and prints the label once otherwise.
    with click.progressbar(length=0, label=f"Pulling {reference}", file=sys.stderr) as bar:
        async for event in environment.images.pull(reference):
            progress.update(event)
            _show(bar, progress)
        # The stream ended without an error: every layer is in (an engine that does not
        # report extraction says nothing more), so the bar ends full.
        progress.finish()
        _show(bar, progress)
    return progress


async def _pull(app: CliContext, env_names: Sequence[str], reference: str, *,
                as_json: bool) -> str:
    async with app.environment(env_names) as environment:
        if as_json:
            async for event in environment.images.pull(reference):
                echo_json_line(pull_event_record(event))
        else:
            await _pull_with_bar(environment, reference)
        image = await environment.images.get(reference)
    return image.id


@click.command()
@click.argument("reference")
@one_env_option
@click.option("--json", "as_json", is_flag=True,
              help="Print each progress report as a JSON line, then {\"id\": ...}.")
@pass_app
def pull(app: CliContext, reference: str, env_names: tuple[str, ...], as_json: bool) -> None:
    """Pull the image REFERENCE with a progress bar; print the pulled image's id."""
    image_id = asyncio.run(_pull(app, env_names, reference, as_json=as_json))
    if as_json:
        echo_json_line({"id": image_id})
    else:
        click.echo(image_id)


# -- volumes -------------------------------------------------------------------------

VOLUME_HEADERS = ("NAME", "ENVIRONMENT", "DRIVER", "MOUNTPOINT")


def volume_record(volume: Volume) -> dict[str, Any]:
    """The ``volumes --json`` object (stable keys)."""
    return {"environment": volume.environment, "name": volume.name, "driver": volume.driver,
            "mountpoint": volume.mountpoint, "labels": volume.labels}


@click.command()
@filter_option
@env_option
@json_option
@pass_app
def volumes(app: CliContext, filters: Filters, env_names: tuple[str, ...],
            as_json: bool) -> None:
    """List volumes of the selected environments."""

    async def listing(environment: Environment) -> list[Volume]:
        return await environment.volumes.list(filters=filters)

    found = asyncio.run(_gather_listings(app, env_names, listing))
    if as_json:
        echo_json([volume_record(volume) for volume in found])
    else:
        rows = [[v.name, v.environment, v.driver, v.mountpoint] for v in found]
        click.echo(render_table(VOLUME_HEADERS, rows))


# -- networks ------------------------------------------------------------------------

NETWORK_HEADERS = ("NAME", "ENVIRONMENT", "ID", "DRIVER", "SUBNETS")


def network_record(network: Network) -> dict[str, Any]:
    """The ``networks --json`` object (stable keys)."""
    return {"environment": network.environment, "id": network.id, "name": network.name,
            "driver": network.driver, "subnets": network.subnets, "labels": network.labels}


@click.command()
@filter_option
@env_option
@json_option
@pass_app
def networks(app: CliContext, filters: Filters, env_names: tuple[str, ...],
             as_json: bool) -> None:
    """List networks of the selected environments."""

    async def listing(environment: Environment) -> list[Network]:
        return await environment.networks.list(filters=filters)

    found = asyncio.run(_gather_listings(app, env_names, listing))
    if as_json:
        echo_json([network_record(network) for network in found])
    else:
        rows = [[n.name, n.environment, n.short_id, n.driver, ", ".join(n.subnets)]
                for n in found]
        click.echo(render_table(NETWORK_HEADERS, rows))
