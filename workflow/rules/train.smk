# One training run: tp train. Its folder also receives metrics.json, ranks.csv and evaluate_config.json from
# the evaluate rule. OMP_NUM_THREADS and train.threads follow the rule's threads, so N parallel jobs on N
# cores do not oversubscribe (profiles: set-threads).


rule train:
    input:
        data="results/data/{dataset}/dataset.npz",
        stats="results/data/{dataset}/stats.json",
    output:
        model="results/runs/{dataset}/{backbone}/{spec}/seed{seed}/model.pt",
        config="results/runs/{dataset}/{backbone}/{spec}/seed{seed}/config.json",
        train_log="results/runs/{dataset}/{backbone}/{spec}/seed{seed}/train_log.csv",
        summary="results/runs/{dataset}/{backbone}/{spec}/seed{seed}/train_summary.json",
    log:
        "logs/train/{dataset}/{backbone}/{spec}/seed{seed}.log",
    benchmark:
        "results/benchmarks/train/{dataset}/{backbone}/{spec}/seed{seed}.tsv"
    conda:
        "../../environment.yml"
    threads: 1
    resources:
        mem_mb=4000,
        gpu=DEVICE_GPUS,
    params:
        method=spec_method,
        sets=train_sets,
    shell:
        "OMP_NUM_THREADS={threads} tp train --data results/data/{wildcards.dataset}"
        " --backbone {wildcards.backbone} --method {params.method} --seed {wildcards.seed}"
        " --out results/runs/{wildcards.dataset}/{wildcards.backbone}/{wildcards.spec}/seed{wildcards.seed}"
        " --set train.threads={threads} {params.sets} > {log} 2>&1"
