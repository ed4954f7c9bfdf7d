"""Linear probe of an LM encoder: features are the classifier head's input, the probe finds real signal."""
import json

import numpy as np
import pytest
import torch

from dlpipe.cli import main as dlpipe_main
from dlpipe.core.errors import DataError
from dlpipe.io.checkpoint import save_model
from dlpipe.models.awd_lstm import AWDLSTMConfig, AWDLSTMEncoder
from dlpipe.models.text_classifier import MultiBatchEncoder, masked_concat_pool
from dlpipe.tasks.ulmfit.probe import encoder_features, linear_probe, load_encoder, probe_encoder
from dlpipe.text.corpus import Corpus, save_corpus

VOCAB, PAD = 40, 1


def lm_dir(tmp_path):
    """An LM directory as save_lm writes it: encoder.pt + itos.json (random weights)."""
    torch.manual_seed(0)
    cfg = AWDLSTMConfig.make(VOCAB, 6, 10, 2, 0.0)
    d = tmp_path / "lm"
    save_model(d / "encoder.pt", AWDLSTMEncoder(cfg), cfg.to_dict(), {})
    (d / "itos.json").write_text(json.dumps([f"w{i}" for i in range(VOCAB)]))
    return d


def corpus(lengths, seed=0, labels=None):
    rng = np.random.default_rng(seed)
    docs = [rng.integers(2, VOCAB, n) for n in lengths]
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    return Corpus(np.concatenate(docs).astype(np.int32), offsets,
                  np.zeros(len(lengths), np.int64) if labels is None else labels)


@pytest.mark.parametrize("backwards", [False, True])
def test_features_are_each_document_read_alone_in_corpus_order(tmp_path, backwards):
    enc = load_encoder(lm_dir(tmp_path), bptt=4)
    c = corpus([3, 11, 7, 1, 9])
    feats = encoder_features(enc, c, backwards, bs=2)       # batches of sorted lengths, mixed padding
    assert feats.shape == (5, 18)
    for i in range(len(c)):
        ids = torch.as_tensor(c.doc(i).astype(np.int64))[None]
        alone = masked_concat_pool(*enc(ids.flip(1) if backwards else ids))[0].detach().numpy()
        np.testing.assert_allclose(feats[i], alone, atol=1e-5)


def test_encoder_is_frozen_and_in_eval_mode(tmp_path):
    enc = load_encoder(lm_dir(tmp_path), bptt=4)
    assert isinstance(enc, MultiBatchEncoder) and not enc.training
    c = corpus([5, 6])
    np.testing.assert_array_equal(encoder_features(enc, c, False), encoder_features(enc, c, False))


def test_probe_finds_a_signal_and_not_noise():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    x = rng.normal(size=(400, 30))
    signal = x.copy()
    signal[:, 7] += 2.0 * (2 * y - 1)                        # one informative feature among 30
    found = linear_probe(signal[:300], y[:300], signal[300:], y[300:])
    noise = linear_probe(x[:300], y[:300], x[300:], y[300:])
    assert found["cv_accuracy"] > 0.9 and found["valid_accuracy"] > 0.9
    assert noise["cv_accuracy"] < 0.65 and noise["valid_accuracy"] < 0.7
    assert found["n_train"] == 300 and found["n_valid"] == 100


def test_probe_encoder_end_to_end_and_cli(tmp_path, capsys):
    d = lm_dir(tmp_path)
    rng = np.random.default_rng(1)
    for split, n in (("train", 60), ("valid", 20)):
        lengths = rng.integers(3, 15, n)
        labels = rng.integers(0, 2, n)
        docs = [np.concatenate([[2 + 30 * int(lab)], rng.integers(3, VOCAB, k - 1)]) for k, lab in zip(lengths, labels)]
        save_corpus(tmp_path / "clas" / split, docs, labels)
    res = probe_encoder(d, tmp_path / "clas", d / "itos.json", "fwd", bptt=4)
    assert 0 <= res["cv_accuracy"] <= 1 and res["n_train"] == 60 and res["n_valid"] == 20
    assert dlpipe_main(["probe", str(d), "--data", str(tmp_path / "clas"), "--itos", str(d / "itos.json"),
                        "--bptt", "4"]) == 0
    assert json.loads(capsys.readouterr().out) == res


def test_probe_refuses_an_lm_of_another_vocabulary(tmp_path):
    d = lm_dir(tmp_path)
    other = tmp_path / "other_itos.json"
    other.write_text(json.dumps(["xxunk", "xxpad"]))
    with pytest.raises(DataError, match="not the vocabulary of"):
        probe_encoder(d, tmp_path / "clas", other, "fwd")
