# Reproduction of Yin et al., "Learning Transferrable Parameters for Long-tailed Sequential User Behavior
# Modeling" (KDD 2020): raw data -> prepared datasets -> training runs -> test metrics -> aggregated tables ->
# report. Rules are thin: each calls the `tp` command line (tplib); helpers are in workflow/rules/common.smk.
#
#   snakemake --cores 4                                  every study of config/config.yaml
#   snakemake --cores 2 --config 'run=[paper]'           one study (see config/config.yaml for more)
#   snakemake --cores 2 --config train=False             aggregate the finished runs, render the report
#   snakemake --cores 2 --configfile config/smoke.yaml   the whole DAG on the shipped slice, in minutes
#   snakemake --workflow-profile profiles/slurm          on a SLURM cluster (see that profile)
#
# Outputs: results/data/, results/runs/{study}/..., results/aggregate/, results/figures/ and report/report.html;
# each job's log in logs/{rule}/...; a training job's Snakemake benchmark (seconds, memory) in its run folder.
# After a hard kill (kill -9, power cut): `snakemake --unlock`, then rerun; finished jobs are not redone.


from snakemake.utils import min_version

min_version("8.0")


configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/tune.smk"
include: "workflow/rules/aggregate.smk"
include: "workflow/rules/report.smk"


localrules:
    all,
    download,
    aggregate,
    report,


wildcard_constraints:
    study="|".join(config["studies"]),
    dataset="|".join(SOURCES),
    backbone="|".join(BACKBONES),
    variant=r"[a-z][A-Za-z0-9.-]*",
    tuning="|".join(config["tunings"]) or "no-tuning",
    method="baseline|tp",
    seed=r"[0-9]+",


# The runs and searches this invocation makes (the studies and tunings in `run`, narrowed by `select`; none with
# train: False), then the aggregate of every finished run of those studies and the report. A study that starts
# from a search has its runs once that search has finished: run the workflow again after it. A committed run (its small files, without
# model.pt) counts as finished: its checkpoint is not needed again, and its data inputs are ancient.
rule all:
    default_target: True
    input:
        run_files("metrics.json"),
        search_files("best.json", all_searches()),
        rules.aggregate.output,
        rules.report.output,
