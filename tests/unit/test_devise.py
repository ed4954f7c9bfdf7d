"""DeViSE pieces: cosine loss, exact chunked nearest-neighbour search, class-name matching."""
import numpy as np
import pytest
import torch

from dlpipe.vision.devise import (class_vectors, cosine_loss, match_class, topk_cosine, word_forms)


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
