"""The project's ``kedro run``: Kedro's own command, with a user's mistake reported plainly.

Kedro takes a project's ``cli.py`` commands over its own (``kedro run`` and
``python -m tml_cloudremoval`` both find :data:`run` here). The command keeps every option of
Kedro's ``run`` (``--pipelines``, ``--nodes``, ``--params``, ``--env``, ``--load-versions``, ...)
and calls Kedro's implementation. When the run fails with a
:class:`~tml_cloudremoval.errors.ProjectError` (a bad parameter, file or path), also one that
Kedro wrapped (e.g. ``DatasetError: Failed while saving data...`` caused by it), the project's
message is the last thing printed, with no traceback, and the exit code is 1. Any other
exception is a bug: it propagates with its traceback.
"""

from __future__ import annotations

from typing import Any

import click
from kedro.framework.cli.project import run as kedro_run

from tml_cloudremoval.errors import ProjectError


def project_error(error: BaseException | None) -> ProjectError | None:
    """The :class:`ProjectError` that ``error`` is or was caused by (``__cause__`` or
    ``__context__``, however deep), or None when the failure is not a user's mistake."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, ProjectError):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


def _run(**options: Any) -> Any:
    """Kedro's ``run`` with the same options; a user's mistake ends it with its message alone."""
    try:
        return kedro_run.callback(**options)
    except Exception as error:
        mistake = project_error(error)
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
