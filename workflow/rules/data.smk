# Raw files -> prepared datasets (tp fetch, tp prepare).


rule download:
    output:
        raw="resources/raw/{rawpath}",
    log:
        "logs/download/{rawpath}.log",
    wildcard_constraints:
        rawpath=download_targets_regex(),
    conda:
        "../../environment.yml"
    params:
        dataset=dataset_of_download,
    shell:
        "tp fetch --dataset {params.dataset} --resources resources/raw > {log} 2>&1"


rule prepare:
    input:
        raw=raw_input,
    output:
        data="results/data/{dataset}/dataset.npz",
        stats="results/data/{dataset}/stats.json",
    log:
        "logs/prepare/{dataset}.log",
    benchmark:
        "results/benchmarks/prepare/{dataset}.tsv"
    conda:
        "../../environment.yml"
    params:
        raw=raw_arg,
    shell:
        "tp prepare --dataset {wildcards.dataset} {params.raw} --out results/data/{wildcards.dataset} > {log} 2>&1"
