"""reprolab: reproducible workflows for ten papers of a brain-inspired-intelligence lab.

Each paper is one Snakemake DAG (``workflow/rules/<id>.smk``) whose logic lives in this
package so that it can be unit-tested without Snakemake.
"""

__version__ = "0.1.0"

PAPER_IDS: tuple[str, ...] = (
    "mtt",
    "tet",
    "calib",
    "sdconv",
    "hebbff",
    "energy",
    "mman",
    "planes",
    "girnet",
    "mmcbm",
)
