"""The project's ``kedro run``: Kedro's own command, with a user's mistake reported plainly.

Kedro takes a project's ``cli.py`` commands over its own (``kedro run`` and
``python -m tml_cloudremoval`` both find :data:`run` here). The command keeps every option of
Kedro's ``run`` (``--pipelines``, ``--nodes``, ``--params``, ``--env``, ``--load-versions``, ...)
and calls Kedro's implementation. When the run fails with a
:class:`~tml_cloudremoval.errors.ProjectError` (a bad parameter, file or path), also one that
Kedro wrapped (e.g. ``DatasetError: Failed while saving data...`` caused by it), the project's
message is the last thing printed, with no traceback, and the exit code is 1. So is a dataset
that is not there when a node loads it (a file or a partitioned folder an earlier node writes,
e.g. ``--from-nodes`` before the first run): its name, its path and what to do. Any other
exception is a bug: it propagates with its traceback.
"""

from __future__ import annotations

from typing import Any

import click
from kedro.framework.cli.project import run as kedro_run
from kedro.io import DatasetError

from tml_cloudremoval.errors import ProjectError


def project_error(error: BaseException | None) -> ProjectError | None:
    """The :class:`ProjectError` that ``error`` is or was caused by (``__cause__`` or
    ``__context__``, however deep), or None when the failure is not a user's mistake."""
    return next((e for e in _chain(error) if isinstance(e, ProjectError)), None)


def _chain(error: BaseException | None) -> list[BaseException]:
    """``error`` and its causes (``__cause__`` or ``__context__``), outermost first."""
    chain: list[BaseException] = []
    while error is not None and all(error is not e for e in chain):
        chain.append(error)
        error = error.__cause__ or error.__context__
    return chain


def missing_dataset(error: BaseException | None) -> str | None:
    """The message for a dataset that failed to load because it is not there: Kedro's
    ``DatasetError`` ``"<name>: Failed while loading ..."`` over a ``FileNotFoundError``, or
    ``"<name>: No partitions found in '<path>'"``; None for any other failure."""
    chain = _chain(error)
    outer = next((e for e in chain if isinstance(e, DatasetError)), None)
    if outer is None or ": " not in str(outer):
        return None
    name, text = str(outer).split(": ", 1)
    absent = next((e for e in chain if isinstance(e, FileNotFoundError)), None)
    if text.startswith("Failed while loading") and absent is not None and absent.filename:
        where = absent.filename
    elif text.startswith("No partitions found in "):
        where = text.removeprefix("No partitions found in ").strip("'")
    else:
        return None
    return (
        f"{name}: {where} does not exist (nothing saved there yet): run the nodes that write "
        "it first, or fix its path in the catalog"
    )


def _run(**options: Any) -> Any:
    """Kedro's ``run`` with the same options; a user's mistake ends it with its message alone."""
    try:
        return kedro_run.callback(**options)
    except Exception as error:
        mistake = project_error(error) or missing_dataset(error)
        if mistake is None:
            raise
        click.secho(f"Error: {mistake}", fg="red", err=True)
        raise click.exceptions.Exit(1) from None


@click.group(name="tml_cloudremoval")
def cli() -> None:
    """Project commands of tml_cloudremoval (they replace Kedro's commands of the same name)."""


run = click.Command(
    name="run",
    params=list(kedro_run.params),
    callback=_run,
    help=kedro_run.help,
    short_help=kedro_run.short_help,
)
cli.add_command(run)
