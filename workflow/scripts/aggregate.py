"""The aggregate rule: one call to tplib.aggregate.aggregate, logging to the rule's log (the tables, and
configs.jsonl: every run's recorded config and every declared cell's resolved one, for the report); and the
studies as configured (titles, protocols, variants, searches, overrides; not the run-time keys) beside the tables,
for the report; and every search's trials in one table."""

import logging
import sys
from pathlib import Path

import yaml

from tplib.aggregate import aggregate
from tplib.io import atomic_write_text
from tplib.trials import gather_trials

with open(snakemake.log[0], "w") as log_file:  # noqa: F821 - `snakemake` is injected by Snakemake
    sys.stderr = log_file
    logging.basicConfig(level=logging.INFO, stream=log_file, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    aggregate(
        snakemake.params.runs,  # noqa: F821
        Path(snakemake.output.runs).parent,  # noqa: F821
        stats=list(snakemake.input.stats),  # noqa: F821
        studies=dict(snakemake.params.studies),  # noqa: F821
    )
    atomic_write_text(snakemake.output.config, yaml.safe_dump(dict(snakemake.params.studies), sort_keys=False))  # noqa: F821
    trials = gather_trials(snakemake.input.trials, snakemake.params.in_progress)  # noqa: F821
    atomic_write_text(snakemake.output.trials, trials.to_csv(index=False))  # noqa: F821
