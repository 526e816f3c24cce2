# results/index.html: one page linking every enabled paper's report with its claims' verdicts.


rule index:
    input:
        claims=expand("results/{paper}/claims.json", paper=enabled_papers()),
        reports=expand("results/{paper}/report.html", paper=enabled_papers()),
    output:
        "results/index.html",
    params:
        papers=enabled_papers(),
        global_settings=global_settings(),
    log:
        "logs/index.log",
    conda:
        f"{ENV_DIR}/report.yaml"
    script:
        "../scripts/index.py"
