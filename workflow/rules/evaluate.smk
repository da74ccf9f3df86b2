# Test metrics of one finished run: tp evaluate (full ranking, existing and new users, all/head/tail).


rule evaluate:
    input:
        data="results/data/{dataset}/dataset.npz",
        stats="results/data/{dataset}/stats.json",
        model="results/runs/{dataset}/{backbone}/{spec}/seed{seed}/model.pt",
        summary="results/runs/{dataset}/{backbone}/{spec}/seed{seed}/train_summary.json",
    output:
        metrics="results/runs/{dataset}/{backbone}/{spec}/seed{seed}/metrics.json",
        ranks="results/runs/{dataset}/{backbone}/{spec}/seed{seed}/ranks.csv",
        eval_config="results/runs/{dataset}/{backbone}/{spec}/seed{seed}/evaluate_config.json",
    log:
        "logs/evaluate/{dataset}/{backbone}/{spec}/seed{seed}.log",
    benchmark:
        "results/benchmarks/evaluate/{dataset}/{backbone}/{spec}/seed{seed}.tsv"
    conda:
        "../../environment.yml"
    threads: 1
    resources:
        mem_mb=4000,
        gpu=DEVICE_GPUS,
    params:
        device=config["device"],
    shell:
        "OMP_NUM_THREADS={threads} tp evaluate --data results/data/{wildcards.dataset}"
        " --run results/runs/{wildcards.dataset}/{wildcards.backbone}/{wildcards.spec}/seed{wildcards.seed}"
        " --out {output.metrics} --set train.device={params.device} > {log} 2>&1"
