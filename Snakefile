# Reproduction of Yin et al., "Learning Transferrable Parameters for Long-tailed Sequential User Behavior
# Modeling" (KDD 2020): raw data -> prepared datasets -> training runs -> test metrics -> aggregated tables ->
# report. Rules are thin: each calls the `tp` command line (tplib); helpers are in workflow/rules/common.smk.
#
#   snakemake --cores 4                                  the paper's grid (config/config.yaml)
#   snakemake --cores 2 --configfile config/smoke.yaml   the whole DAG on the shipped slice, in minutes
#   snakemake --workflow-profile profiles/slurm          on a SLURM cluster (see that profile)
#
# Outputs: results/data/, results/runs/, results/aggregate/, results/figures/ and report/report.html; each job's
# log in logs/{rule}/... and its Snakemake benchmark (seconds, memory) in results/benchmarks/{rule}/...
# After a hard kill (kill -9, power cut): `snakemake --unlock`, then rerun; finished jobs are not redone.


from snakemake.utils import min_version

min_version("8.0")


configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/aggregate.smk"
include: "workflow/rules/report.smk"


localrules:
    all,
    download,
    aggregate,
    report,


wildcard_constraints:
    dataset="|".join(SOURCES),
    backbone="|".join(BACKBONES),
    spec=r"baseline|tp/k[0-9]+_lam[0-9][0-9.e+-]*",
    seed=r"[0-9]+",


# Every run's metrics.json is asked for here, not only through the aggregate: Snakemake does not rebuild a missing
# input of an output that exists and is up to date (it takes it for a deleted intermediate), and results/aggregate
# and the report are committed, written by `tp aggregate` outside Snakemake.
rule all:
    default_target: True
    input:
        run_files("metrics.json"),
        rules.aggregate.output,
        rules.report.output,
