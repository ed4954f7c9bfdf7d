"""Vocabulary remap of a pretrained LM: matched rows copied, unseen tokens get the mean row."""
import pytest
import torch

from dlpipe.models.awd_lstm import AWDLSTMConfig, AWDLSTMLM, remap_lm_state, remap_rows

OLD = ["xxunk", "xxpad", "the", "movie", "film"]


@pytest.mark.parametrize("new,expect_src,matched", [
    (["xxunk", "xxpad", "film", "the"], [0, 1, 4, 2], 4),
    (["xxunk", "xxpad", "plot", "movie"], [0, 1, None, 3], 3),
    (["zzz", "yyy"], [None, None], 0),
])
def test_remap_rows(new, expect_src, matched):
    old = torch.arange(len(OLD) * 3, dtype=torch.float32).reshape(len(OLD), 3)
    out, n = remap_rows(old, OLD, new)
    assert out.shape == (len(new), 3) and n == matched
    for row, src in zip(out, expect_src):
        assert torch.equal(row, old.mean(0) if src is None else old[src])


def test_remap_bias_vector():
    bias = torch.tensor([0.0, 1.0, 2.0, 3.0, 4.0])
    out, n = remap_rows(bias, OLD, ["movie", "plot"])
    assert out.tolist() == [3.0, 2.0] and n == 1


def test_remap_lm_state_loads_into_new_vocab_model():
    old = AWDLSTMLM(AWDLSTMConfig.make(len(OLD), 4, 6, 2, 0.0))
    new_itos = ["xxunk", "xxpad", "movie", "great"]
    state, stats = remap_lm_state(old.state_dict(), OLD, new_itos)
    assert stats == {"vocab_matched": 3, "vocab_matched_frac": 0.75}
    new = AWDLSTMLM(AWDLSTMConfig.make(len(new_itos), 4, 6, 2, 0.0))
    new.load_state_dict(state)
    assert new.decoder.weight is new.encoder.encoder.weight     # still tied after loading
    assert torch.equal(new.encoder.encoder.weight[2], old.encoder.encoder.weight[3])
    assert torch.allclose(new.encoder.encoder.weight[3], old.encoder.encoder.weight.mean(0))


@pytest.mark.fault("Bad data", "pretrained LM weights with an itos of another length: error naming both sizes")
def test_remap_rejects_itos_of_wrong_length():
    old = AWDLSTMLM(AWDLSTMConfig.make(len(OLD), 4, 6, 2, 0.0))
    with pytest.raises(ValueError, match="5 rows but the pretrained itos has 3"):
        remap_lm_state(old.state_dict(), OLD[:3], OLD)
