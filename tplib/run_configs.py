"""Each run's settings for the report (``configs.jsonl`` beside the aggregate's tables): one line per finished
run with its ``config.json`` as recorded, and one line per cell the studies declare (study × dataset × backbone ×
variant) with the config the workflow builds for its runs, so that a report reads every setting it shows from the
aggregate folder, run or not yet run. The declared configs are built by tplib.grid, as the workflow builds its
runs' ones."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from tplib.grid import Run, run_config, tuned_sets
from tplib.io import ConfigError

__all__ = ["CONFIGS", "CONFIG_FIELDS", "ID_KEYS", "configs_lines", "declared_configs"]

CONFIGS = "configs.jsonl"  # each run's settings and each declared cell's, beside the tables
CONFIG_FIELDS = ["study", "dataset", "backbone", "variant", "method", "seed", "source", "config", "error"]
ID_KEYS = ["study", "dataset", "backbone", "variant", "method", "seed"]  # a run's identity


def _sorted(value: Any) -> Any:
    """``value`` with every mapping's keys in sorted order (the same bytes whatever order a config was built in)."""
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, (list, tuple)):
        return [_sorted(v) for v in value]
    return value


def declared_configs(studies: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per cell the studies declare (study × dataset × backbone × variant, in the config's order): the
    resolved config the workflow gives its runs (tplib.grid.run_config at the study's first seed; the settings are
    the same for every seed), or the error that says why there is none: settings that do not build a config, or a
    study that starts from a search whose best settings for the cell are not there yet (the workflow makes no run
    of it before). ``studies``: the studies as configured (the workflow config's ``studies`` and ``overrides``, as
    config.yaml holds them); a search's best settings are read where the workflow reads them."""
    rows = []
    for name, st in (studies.get("studies") or {}).items():
        seed = int((st.get("seeds") or [0])[0])
        for dataset, backbones in (st.get("cells") or {}).items():
            for backbone in backbones:
                for variant, spec in (st.get("variants") or {}).items():
                    row = {"study": name, "dataset": dataset, "backbone": backbone, "variant": variant,
                           "method": str(spec.get("method")), "seed": None, "source": "declared", "config": None,
                           "error": None}
                    run = Run(name, dataset, backbone, variant, seed)
                    try:
                        if tuned_sets(studies, run) is None:
                            row["error"] = f"not built yet: search {st['tuned_from']} has no best settings here"
                        else:
                            row["config"] = run_config(studies, run).to_dict()
                    except ConfigError as e:
                        row["error"] = str(e)
                    rows.append(row)
    return rows


def configs_lines(loaded: Sequence[dict[str, Any]], declared: Sequence[dict[str, Any]] = ()) -> str:
    """configs.jsonl: one JSON object a line with :data:`CONFIG_FIELDS`: every run of ``loaded`` (source "run":
    its keys and its config.json as recorded) and every row of ``declared`` (source "declared", seed null: see
    :func:`declared_configs`); sorted by study, dataset, backbone and variant, a cell's declared row before its
    runs, the runs by seed, so the file does not depend on the order the runs were read in."""
    rows = [{**{k: r["keys"][k] for k in ID_KEYS}, "source": "run", "config": r["config"], "error": None}
            for r in loaded]
    rows += [{k: row.get(k) for k in CONFIG_FIELDS} for row in declared]
    lines = [json.dumps({k: _sorted(row.get(k)) for k in CONFIG_FIELDS}) for row in rows]
    order = sorted(range(len(rows)), key=lambda i: (
        *(str(rows[i][k]) for k in ("study", "dataset", "backbone", "variant")),
        rows[i]["source"] == "run", rows[i]["seed"] if rows[i]["seed"] is not None else -1, lines[i]))
    return "".join(lines[i] + "\n" for i in order)
