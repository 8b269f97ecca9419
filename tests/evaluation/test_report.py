"""evaluation_report.md: every table from metrics.json, rows that match its figures."""

from __future__ import annotations

import pytest
from support.evaluation_cases import EDGES, linear_model, make_store

from tml_cloudremoval.evaluation.evaluate import evaluate_store
from tml_cloudremoval.evaluation.literature import RunFacts, comparison
from tml_cloudremoval.evaluation.report import report_markdown

FACTS = RunFacts(32, 6, True, "carl", 10, "seeded", "seed 42", True, 6)


@pytest.fixture(scope="module")
def metrics(tmp_path_factory):
    store = make_store(tmp_path_factory.mktemp("report") / "test")
    metrics, _ = evaluate_store(linear_model(), store, batch_size=6, coverage_bins=EDGES)
    return metrics | {"literature_comparison": comparison(metrics["per_image"], FACTS)}


def _section(text: str, heading: str) -> str:
    start = text.index(heading)
    end = text.find("\n## ", start + 1)
    return text[start : end if end > 0 else None]


def test_report_has_pooled_per_image_binned_and_literature_tables(metrics):
    text = report_markdown(metrics)
    assert text.startswith("# Evaluation report\n\n6 test patches of 16 x 16 px")
    pooled = _section(text, "## Pooled over pixels")
    m = metrics["model"]["covered"]
    assert f"| model | covered | {m['mae']:.4f} | {m['rmse']:.4f} | {m['psnr']:.2f} |" in pooled
    per_image = _section(text, "## Per image (the published protocol)")
    p = metrics["per_image"]["baseline_cloudy_input"]["clear"]
    row = f"| cloudy input | clear | {p['mae']:.4f} ± {p['mae_std']:.4f} |"
    assert row in per_image and per_image.count("\n| ") == 1 + 6  # heading + 6 rows
    binned = _section(text, "## Per image by cloud cover of the patch: covered pixels")
    assert "| [30, 50) % | model | no test patch |" in binned
    assert binned.rstrip().endswith("|")
    b = metrics["per_image_by_cloud_cover"][5]["model"]["covered"]
    assert f"| [90, 100] % | model | {b['mae']:.4f} ± {b['mae_std']:.4f} |" in binned
    clear = _section(text, "## Per image by cloud cover of the patch: clear pixels")
    assert "| [90, 100] % | model | no clear pixel |" in clear
    literature = _section(text, "## Next to the published results")
    assert "| DSen2-CR, this run (CARL, F=32, B=6, 10 bands) |" in literature
    assert "model size: F=32, B=6 vs F=256, B=16" in literature
    for table in (pooled, per_image, binned, literature):
        rows = [line for line in table.splitlines() if line.startswith("|")]
        assert len({line.count("|") for line in rows}) == 1, table  # every row complete
    notes = _section(text, "## Notes")
    assert "- cloud cover [30, 50) %: no test patch in this bin, its figures are null" in notes
    assert "- per_image: each metric computed on each test patch" in text
