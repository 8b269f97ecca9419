"""Kedro project settings: https://docs.kedro.org/en/stable/kedro_project_setup/settings.html"""

from kedro.config import OmegaConfigLoader

# kedro-viz writes .viz/ event files on every run through a hook; keep runs free of side files.
DISABLE_HOOKS_FOR_PLUGINS = ("kedro-viz",)

CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # An env (e.g. conf/demo) overrides single keys such as training.epochs, not whole sections.
    "merge_strategy": {"parameters": "soft"},
}

from tml_cloudremoval.hooks import RecordRunConfig, ValidateParameters  # noqa: E402

# Every parameter section is validated before the first node of any run; the run's config is
# kept for the pipelines registered from parameters (the ablation variants): hooks.py.
HOOKS = (ValidateParameters(), RecordRunConfig())
