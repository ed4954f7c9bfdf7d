"""DeViSE pieces: cosine loss, exact chunked nearest-neighbour search, class-name matching, the vocab stage."""
import dataclasses
import json
import warnings
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch

from dlpipe.core import params
from dlpipe.core.errors import DataError
from dlpipe.io.arrays import create_store
from dlpipe.core.stage import RunDirs
from dlpipe.tasks.devise import train as devise_train
from dlpipe.tasks.devise import vocab as devise_vocab
from dlpipe.tasks.devise.params import TrainParams, VocabParams
from dlpipe.vision.devise import (class_vectors, cosine_loss, explain_miss, match_class, topk_cosine, word_forms)


@pytest.mark.parametrize("pred,target,want", [
    ([1.0, 0.0], [3.0, 0.0], 0.0),        # identical direction, any length
    ([1.0, 0.0], [-2.0, 0.0], 2.0),       # opposite
    ([1.0, 0.0], [0.0, 5.0], 1.0),        # orthogonal
    ([1.0, 1.0], [1.0, 0.0], 1 - 2 ** -0.5),
])
def test_cosine_loss_values(pred, target, want):
    loss = cosine_loss(torch.tensor([pred]), torch.tensor([target]))
    assert loss.item() == pytest.approx(want, abs=1e-6)


def test_cosine_loss_gradient_matches_hand_derivation():
    # d/dp (1 - p.t/(|p||t|)) = -(t/(|p||t|) - (p.t) p/(|p|^3 |t|)); at p=(1,0), t=(1,1)/sqrt2: (0, -1/sqrt2)
    p = torch.tensor([[1.0, 0.0]], requires_grad=True)
    t = torch.tensor([[1.0, 1.0]]) / 2 ** 0.5
    cosine_loss(p, t).backward()
    assert torch.allclose(p.grad, torch.tensor([[0.0, -(2 ** -0.5)]]), atol=1e-6)


def test_cosine_loss_identical_has_zero_gradient_and_batch_mean():
    p = torch.tensor([[2.0, 1.0], [1.0, 0.0]], requires_grad=True)
    t = torch.tensor([[4.0, 2.0], [0.0, 1.0]])
    loss = cosine_loss(p, t)
    assert loss.item() == pytest.approx(0.5)     # mean of 0 and 1
    loss.backward()
    assert torch.allclose(p.grad[0], torch.zeros(2), atol=1e-6)


def test_topk_exact_on_hand_made_vectors():
    keys = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [1.0, 1.0], [10.0, 0.5]])
    q = torch.tensor([[1.0, 0.0], [0.0, -3.0]])
    s, i = topk_cosine(q, keys, k=3, chunk=2)
    assert i[0].tolist() == [0, 4, 3]
    assert s[0, 0].item() == pytest.approx(1.0)
    s, i = topk_cosine(q[1:], keys, k=5, chunk=2)
    assert set(i[0, :2].tolist()) == {0, 2} and i[0, 2:].tolist() == [4, 3, 1]   # (0,1) is opposite: last
    assert s[0, -1].item() == pytest.approx(-1.0)


@pytest.mark.parametrize("chunk", [1, 3, 7, 64, 1000])
def test_topk_chunked_equals_unchunked(chunk):
    g = torch.Generator().manual_seed(0)
    keys, q = torch.randn(200, 16, generator=g), torch.randn(9, 16, generator=g)
    s_full, i_full = topk_cosine(q, keys, k=5, chunk=10_000)
    s, i = topk_cosine(q, keys, k=5, chunk=chunk)
    assert torch.equal(i, i_full) and torch.allclose(s, s_full)
    brute = torch.nn.functional.normalize(q, dim=1) @ torch.nn.functional.normalize(keys, dim=1).T
    assert torch.equal(i_full, brute.argsort(dim=1, descending=True)[:, :5])


def test_topk_k_larger_than_keys():
    s, i = topk_cosine(torch.ones(1, 2), torch.eye(2), k=5, chunk=1)
    assert i.shape == (1, 2)


@pytest.mark.parametrize("word,forms", [
    ("Cats", ["cats", "cat"]),
    ("dog", ["dog", "dogs"]),
    ("puppies", ["puppies", "puppy"]),
    ("fox", ["fox", "foxes"]),
    ("boxes", ["boxes", "box"]),
    ("grass", ["grass", "grasses"]),
    ("bunny", ["bunny", "bunnies"]),
])
def test_word_forms(word, forms):
    assert word_forms(word) == forms


STOI = {"cat": 0, "dogs": 1, "golden": 2, "retriever": 3, "wolf": 4, "seven": 5}


@pytest.mark.parametrize("name,candidates,phrase,tokens", [
    ("Cat", [], "Cat", ("cat",)),                                     # lower-cased
    ("dog", [], "dog", ("dogs",)),                                    # plural form found
    ("golden_retriever", [], "golden_retriever", ("golden", "retriever")),   # multi-word
    ("wild", ["wild animal", "wolf"], "wolf", ("wolf",)),             # synonym after a failed phrase
    ("7", ["seven"], "seven", ("seven",)),
    ("zebra", [], None, ()),                                          # unmatched
    ("golden_eagle", [], None, ()),                                   # one word missing: no partial match
])
def test_match_class(name, candidates, phrase, tokens):
    m = match_class(name, candidates, STOI)
    assert (m.phrase, m.tokens, m.matched) == (phrase, tokens, bool(tokens))


def test_class_vectors_mean_of_words_and_unmatched_fails():
    emb = np.arange(12, dtype=np.float32).reshape(6, 2)
    ms = [match_class("golden retriever", [], STOI), match_class("cat", [], STOI)]
    v = class_vectors(ms, emb, STOI)
    assert np.allclose(v, [[5.0, 6.0], [0.0, 1.0]])
    with pytest.raises(ValueError, match="zebra"):
        class_vectors([match_class("zebra", [], STOI)], emb, STOI)


def test_explain_miss_lists_the_missing_words_of_each_candidate():
    m = match_class("golden_eagle", ["golden eagle", "raptor"], STOI)
    assert explain_miss(m, STOI) == "'golden eagle' (no eagle/eagles), 'raptor' (no raptor/raptors)"


# ---------------------------------------------------------------- the vocab stage: class words vs the LM vocabulary

fault = partial(pytest.mark.fault, "Params")
REPO = Path(__file__).resolve().parents[2]
AFHQ = ["cat", "dog", "wild"]


def vocab_run(tmp_path, itos, class_words=None):
    """Run the devise_vocab stage's function on a 2-row feature store of the AFHQ classes and ``itos``."""
    w = create_store(tmp_path / "features" / "train", row_shape=(2,), dtype="float32", meta={"classes": AFHQ})
    w.append(np.zeros((2, 2), np.float32))
    w.add_array("labels", np.array([0, 1]))
    w.close()
    (tmp_path / "itos.json").write_text(json.dumps(itos))
    np.save(tmp_path / "emb.npy", np.random.default_rng(0).normal(size=(len(itos), 4)).astype(np.float32))
    p = params.load(VocabParams, "vision.devise.vocab", REPO / "params.yaml")
    if class_words is not None:
        p = dataclasses.replace(p, class_words=class_words)
    m = devise_vocab.vocab(itos=tmp_path / "itos.json", emb=tmp_path / "emb.npy", features=tmp_path / "features",
                           out_dir=tmp_path / "out", report=tmp_path / "vocab_match.md", p=p)
    return m, json.loads((tmp_path / "out" / "classes.json").read_text())


@fault("DeViSE class words missing from the LM vocabulary (fewer than two classes matched): DataError naming "
       "each params key vision.devise.vocab.class_words.<class> and the words tried")
def test_vocab_missing_class_words_names_key_and_word(tmp_path):
    with pytest.raises(DataError) as e:
        vocab_run(tmp_path, ["xxunk", "xxpad", "the", "wild"], {"cat": ["cat"], "dog": ["dog", "puppy"]})
    msg = str(e.value)
    assert msg.startswith("params.yaml: vision.devise.vocab.class_words: only 1 of the 3 classes")
    assert "vision.devise.vocab.class_words.cat tried 'cat' (no cat/cats)" in msg
    assert "vision.devise.vocab.class_words.dog tried 'dog' (no dog/dogs), 'puppy' (no puppy/puppies)" in msg
    assert "(4 tokens)" in msg and "vision.devise.vocab.class_words.wild" not in msg   # wild matched
    assert "| cat | cat | — | — | **no** |" in (tmp_path / "vocab_match.md").read_text()   # the report says why
    assert not (tmp_path / "out").exists()


def test_vocab_unmatched_class_is_left_out_with_a_warning(tmp_path):
    with pytest.warns(UserWarning, match=r"class 'wild': vision.devise.vocab.class_words.wild tried "
                                         r"'wild animal' \(no wild/wilds, no animal/animals\)"):
        m, info = vocab_run(tmp_path, ["xxunk", "cats", "dog"], {"wild": ["wild animal"]})
    assert (m["n_matched"], m["n_unmatched"], m["vocab_size"], m["emb_sz"]) == (2, 1, 3, 4)
    assert info == {"classes": AFHQ, "matched": [True, True, False], "tokens": [["cats"], ["dog"], []]}
    vecs = np.load(tmp_path / "out" / "class_vectors.npy")
    emb = np.load(tmp_path / "emb.npy")
    assert np.allclose(vecs, [emb[1], emb[2], np.zeros(4)])   # each class: its word's LM vector


def test_vocab_all_matched_no_warning(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m, info = vocab_run(tmp_path, ["xxunk", "cat", "dog", "wildlife"],
                            {"cat": ["cat"], "dog": ["dog"], "wild": ["wild animal", "wildlife", "wild"]})
    assert m["n_matched"] == 3 and info["tokens"] == [["cat"], ["dog"], ["wildlife"]]


@fault("DeViSE class words: two classes mapped to the same words (identical vectors): DataError naming both")
def test_vocab_classes_sharing_words_fail(tmp_path):
    with pytest.raises(DataError, match=r"vision.devise.vocab.class_words: classes 'cat' and 'wild' both use the words 'cat'"):
        vocab_run(tmp_path, ["xxunk", "cat", "dog"], {"wild": ["wild animal", "cat"]})


@fault("DeViSE class words for a class the dataset does not have: DataError naming the key and the classes")
def test_vocab_unknown_class_in_params(tmp_path):
    with pytest.raises(DataError, match=r"vision.devise.vocab.class_words: \['zebra'\] are not classes of .*\['cat', 'dog', 'wild'\]"):
        vocab_run(tmp_path, ["xxunk", "cat", "dog"], {"zebra": ["zebra"]})


def feature_stores(root: Path, n_train: int, n_valid: int, width: int = 4) -> Path:
    """train/ and valid/ feature stores of the AFHQ classes (flat rows), as precompute writes them."""
    rng = np.random.default_rng(0)
    meta = {"classes": AFHQ, "backbone_sha256": "b" * 64, "layer": "pool"}
    for split, n in (("train", n_train), ("valid", n_valid)):
        w = create_store(root / split, row_shape=(width,), dtype="float32", meta=meta)
        w.append(rng.normal(size=(n, width)).astype(np.float32))
        w.add_array("labels", np.arange(n) % len(AFHQ))
        w.close()
    return root


def test_train_leaves_out_a_final_one_row_batch(tmp_path):
    """9 rows at bs 8 would end each epoch on a batch of one, which BatchNorm cannot train on."""
    from dlpipe.core.runtime import RuntimeParams

    features = feature_stores(tmp_path / "features", n_train=9, n_valid=4)
    vectors = tmp_path / "vectors"
    vectors.mkdir()
    np.save(vectors / "class_vectors.npy", np.eye(3, 5, dtype=np.float32))
    (vectors / "classes.json").write_text(json.dumps({"classes": AFHQ, "matched": [True] * 3,
                                                      "tokens": [["cat"], ["dog"], ["wild"]]}))
    p = dataclasses.replace(params.load(TrainParams, "vision.devise.train", REPO / "params.yaml"), bs=8, epochs=1)
    rt = params.load(RuntimeParams, "runtime", REPO / "params.yaml")
    m = devise_train.train(features=features, vectors=vectors, head_out=tmp_path / "head.pt", p=p, rt=rt,
                           dirs=RunDirs(log_dir=tmp_path / "log"))
    assert (m["n_train"], m["n_valid"]) == (9, 4)     # the split's rows; the loader skips the one-row batch
    assert 0.0 <= m["valid_cosine_loss"] <= 2.0 and (tmp_path / "head.pt").is_file()
