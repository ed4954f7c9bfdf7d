"""Sample continuations of the prompts in params from the fine-tuned forward IMDb LM.

Usage: python stages/generate.py --params params.yaml LM_DIR OUT_MD --metrics M.json
"""
from pathlib import Path

from dlpipe.core.stage import arg, stage_main
from dlpipe.tasks.ulmfit.generate import generate_samples


def main(argv=None):
    return stage_main(__doc__, generate_samples, argv, params={"p": "imdb.generate", "rt": "runtime"},
               args=[arg("lm", type=Path, help="fine-tuned forward LM directory"), arg("out", type=Path, help="samples.md")])


if __name__ == "__main__":
    main()
