"""Token stores -> id corpora (ids.npy/offsets.npy/labels.npy) with one vocabulary (itos.json).

Usage: python stages/numericalize.py --params params.yaml (--split NAME=TOK_DIR ... | --tok-dir DIR)
           [--vocab-from ITOS_JSON] OUT_DIR [--metrics FILE]
--tok-dir: every token store in DIR is a split named after its folder.
Without --vocab-from, builds OUT_DIR/itos.json from the train split (params `imdb.numericalize`);
with it (the classifier reusing the LM's vocabulary), reads no params.
"""
from pathlib import Path

from dlpipe.core.stage import arg, stage_main
from dlpipe.text.vocab import numericalize_splits


def _split(s: str) -> tuple[str, Path]:
    name, _, path = s.partition("=")
    return name, Path(path)


def main(argv=None):
    return stage_main(__doc__, numericalize_splits, argv, params=lambda a: {} if a.vocab_from else {"p": "imdb.numericalize"},
               args=[arg("out", type=Path, help="output directory: itos.json (if built) and one corpus per split"),
                     arg("--split", dest="splits", type=_split, action="append", default=[], help="NAME=TOKEN_DIR"),
                     arg("--tok-dir", type=Path, help="every token store in it is a split"),
                     arg("--vocab-from", type=Path, help="reuse this itos.json instead of building one")])


if __name__ == "__main__":
    main()
