# The project's HTML report from the aggregated tables only (tp report; never models, checkpoints or run folders:
# the runs' settings come from configs.jsonl), with its figures as PNG and PDF in results/figures/; and the results
# block of the README named by `readme` (if any), rewritten from the same tables.


rule report:
    input:
        runs="results/aggregate/runs.csv",
        summary="results/aggregate/summary.csv",
        costs="results/aggregate/costs.csv",
        diagnostics="results/aggregate/diagnostics.csv",
        stats="results/aggregate/stats.csv",
        configs="results/aggregate/configs.jsonl",
        config="results/aggregate/config.yaml",
        trials="results/tuning/trials.csv",
    output:
        html="report/report.html",
        figures=directory("results/figures"),
    log:
        "logs/report/report.log",
    conda:
        "../../environment.yml"
    params:
        readme=f"--readme {shlex.quote(config['readme'])}" if config["readme"] else "",
    shell:
        "tp report --aggregate results/aggregate --out {output.html} --figures {output.figures}"
        " --trials {input.trials} {params.readme} > {log} 2>&1"
