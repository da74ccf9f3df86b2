# The project's HTML report from the aggregated tables only (tp report; never models or checkpoints), with its
# figures as PNG and PDF in results/figures/.


rule report:
    input:
        runs="results/aggregate/runs.csv",
        summary="results/aggregate/summary.csv",
        costs="results/aggregate/costs.csv",
        diagnostics="results/aggregate/diagnostics.csv",
        stats="results/aggregate/stats.csv",
        config="results/aggregate/config.yaml",
    output:
        html="report/report.html",
        figures=directory("results/figures"),
    log:
        "logs/report/report.log",
    conda:
        "../../environment.yml"
    shell:
        "tp report --aggregate results/aggregate --out {output.html} --figures {output.figures} > {log} 2>&1"
