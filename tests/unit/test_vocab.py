"""Vocabulary: specials first, min_freq/max_vocab, deterministic ties, unknowns, itos.json round trip."""
import json

import numpy as np
import pytest

from dlpipe.core.errors import DataError
from dlpipe.text.rules import SPECIALS
from dlpipe.text.vocab import Vocab

DOCS = [["xxbos", "b", "a", "c", "a"], ["xxbos", "b", "d", "c", "\n"], ["xxbos", "e", "\n"]]


def test_specials_first_then_count_desc_token_asc():
    v = Vocab.build(DOCS, max_vocab=100, min_freq=1)
    assert v.itos[:len(SPECIALS)] == list(SPECIALS) and v.stoi["xxunk"] == 0 and v.stoi["xxpad"] == 1
    # counts: \\n 2, a 2, b 2, c 2, d 1, e 1 ; ties by token
    assert v.itos[len(SPECIALS):] == ["\n", "a", "b", "c", "d", "e"]


@pytest.mark.parametrize("max_vocab,min_freq,expected", [
    (100, 2, ["\n", "a", "b", "c"]),
    (len(SPECIALS) + 2, 1, ["\n", "a"]),
    (len(SPECIALS), 1, []),
    (100, 3, []),
])
def test_min_freq_and_max_vocab(max_vocab, min_freq, expected):
    v = Vocab.build(DOCS, max_vocab=max_vocab, min_freq=min_freq)
    assert v.itos[len(SPECIALS):] == expected and len(v) <= max_vocab


def test_unknown_tokens_map_to_xxunk():
    v = Vocab.build(DOCS, max_vocab=100, min_freq=2)
    ids = v.numericalize(["a", "never-seen", "xxbos", "e"])
    assert ids.dtype == np.int32 and ids.tolist() == [v.stoi["a"], 0, v.stoi["xxbos"], 0]


def test_itos_json_round_trip_keeps_newlines(tmp_path):
    v = Vocab.build(DOCS, max_vocab=100, min_freq=1)
    v.save(tmp_path / "itos.json")
    assert json.loads((tmp_path / "itos.json").read_text(encoding="utf-8")) == v.itos
    assert Vocab.load(tmp_path / "itos.json").itos == v.itos


@pytest.mark.parametrize("itos,match", [
    (["xxunk", "xxpad", "a"], r"missing special token"),
    (["xxpad", "xxunk"] + list(SPECIALS[2:]), r"'xxunk' at id 0"),
    (list(SPECIALS) + ["a", "a"], r"'a' appears more than once"),
])
@pytest.mark.fault("Bad data", "vocabulary missing/misplacing special tokens or with duplicates: DataError naming itos.json")
def test_bad_itos_is_a_data_error(tmp_path, itos, match):
    (tmp_path / "itos.json").write_text(json.dumps(itos))
    with pytest.raises(DataError, match=match) as e:
        Vocab.load(tmp_path / "itos.json")
    assert "itos.json" in str(e.value)


@pytest.mark.fault("Bad data", "itos.json not a JSON list: DataError saying what was expected")
def test_itos_that_is_not_a_list(tmp_path):
    (tmp_path / "itos.json").write_text('{"a": 1}')
    with pytest.raises(DataError, match="JSON list of strings"):
        Vocab.load(tmp_path / "itos.json")
