"""Project hooks: every parameter section is validated before a run does any work.

Each pipeline's first node validates its own section, but a ``kedro run`` of several pipelines
would otherwise meet a misspelt ``training.*`` key only after data processing ran. This hook
checks every section of the run's parameters (:data:`tml_cloudremoval.config.SECTIONS`) before
the first node starts, whatever pipeline or nodes were asked for.
"""

from __future__ import annotations

from typing import Any

from kedro.framework.hooks import hook_impl

from tml_cloudremoval.config import validate_sections


class ValidateParameters:
    """Reject bad parameters before the first node runs."""

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        validate_sections(catalog.load("parameters"))
