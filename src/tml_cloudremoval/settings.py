"""Kedro project settings: https://docs.kedro.org/en/stable/kedro_project_setup/settings.html"""

from kedro.config import OmegaConfigLoader
from omegaconf.resolvers import oc

# kedro-viz writes .viz/ event files on every run through a hook; keep runs free of side files.
DISABLE_HOOKS_FOR_PLUGINS = ("kedro-viz",)

CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # An env (e.g. conf/demo) overrides single keys such as training.epochs, not whole sections.
    "merge_strategy": {"parameters": "soft"},
    # ${oc.env:NAME,default} in any config file (Kedro allows it in credentials only): mlflow.yml
    # takes its tracking URI and artifact folder from the environment when set (the tests do).
    "custom_resolvers": {"oc.env": oc.env},
}

from tml_cloudremoval.hooks import RecordRunConfig, TrackRuns, ValidateParameters  # noqa: E402

# Every parameter section is validated before the first node of any run; the run's config is
# kept for the pipelines registered from parameters (the ablation variants); tracked runs record
# metrics, figures and the model into the mlflow run kedro-mlflow opens (hooks.py).
HOOKS = (ValidateParameters(), RecordRunConfig(), TrackRuns())
