"""Generation is deterministic for a seed; detokenize undoes fastai's case and repeat markers."""
import pytest
import torch

from dlpipe.models.awd_lstm import AWDLSTMConfig, AWDLSTMLM
from dlpipe.text.generate import detokenize, generate


def lm():
    torch.manual_seed(0)
    return AWDLSTMLM(AWDLSTMConfig.make(40, 8, 16, 2, 1.0))


def test_same_seed_same_words_other_seed_other_words():
    m = lm()
    a = generate(m, [2, 5, 7], 20, 1.0, 0, seed=3)
    b = generate(m, [2, 5, 7], 20, 1.0, 0, seed=3)
    c = generate(m, [2, 5, 7], 20, 1.0, 0, seed=4)
    assert a == b and a != c and len(a) == 20
    assert m.training                                   # mode restored


def test_top_k_and_banned_restrict_choices():
    m = lm()
    out = generate(m, [2, 5], 30, 1.0, 1, seed=0, banned=(0, 1))
    greedy = generate(m, [2, 5], 30, 0.0, 0, seed=9, banned=(0, 1))
    assert out == greedy                                 # top-1 sampling is greedy decoding
    assert not {0, 1} & set(generate(m, [2], 50, 2.0, 0, seed=0, banned=(0, 1)))


@pytest.mark.parametrize("toks,text", [
    (["xxbos", "xxmaj", "this", "movie", "is", "xxup", "great", "!"], "This movie is GREAT!"),
    (["i", "did", "n't", "like", "it", ",", "xxrep", "3", "!"], "i didn't like it,!!!"),
    (["xxwrep", "3", "very", "good", "(", "really", ")", "."], "very very very good (really)."),
    (["it", "'s", "xxmaj", "bob", "'s", "film"], "it's Bob's film"),
    (["xxmaj", "xxmaj", "xxup", ".", "end", "xxmaj"], ". end"),        # markers with nothing to mark
])
def test_detokenize(toks, text):
    assert detokenize(toks) == text
