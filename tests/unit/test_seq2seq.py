"""The translation task's pure pieces: model shapes, attention masks, teacher forcing, decoding, BLEU, pairs."""
from __future__ import annotations

import gzip
import math
from pathlib import Path

import numpy as np
import pytest
import sacrebleu
import torch

from dlpipe.core.errors import DataError
from dlpipe.models.seq2seq import Attention, Encoded, Seq2Seq, Seq2SeqConfig, load_embeddings, seq2seq_splitter
from dlpipe.tasks.seq2seq.evaluate import corpus_scores, retrieval_baseline, to_text
from dlpipe.tasks.seq2seq.params import PrepareParams
from dlpipe.tasks.seq2seq.prepare import (holdout_splits, keep_pairs, normalize, prepare_pairs, question_pairs,
                                           read_parallel)
from dlpipe.text.forcing import teacher_forcing_prob
from dlpipe.text.decode import beam_search, greedy
from dlpipe.text.pairs import pair_collate, pad_right, seq_loss, token_accuracy
from dlpipe.train import check_splitter

PAD, BOS, EOS = 1, 2, 3


def _model(bidir=True, attention=True, n_layers=1, seed=0, vocab=(30, 25)) -> Seq2Seq:
    torch.manual_seed(seed)
    return Seq2Seq(Seq2SeqConfig(src_vocab=vocab[0], tgt_vocab=vocab[1], emb_sz=8, n_hid=12, n_layers=n_layers,
                                 bidir=bidir, attention=attention, dropout=0.1)).eval()


def _src(seed=1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(4, 30, (4, 7), generator=g)
    x[:, 0] = BOS
    x[1, 5:], x[2, 3:], x[3, 6:] = PAD, PAD, PAD      # right padding of different lengths
    return x


# ---- model ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("bidir,attention,n_layers", [(False, False, 1), (True, False, 1), (False, True, 2), (True, True, 2)])
def test_shapes_and_splitter(bidir, attention, n_layers):
    m = _model(bidir, attention, n_layers)
    src, tgt = _src(), torch.randint(4, 25, (4, 5))
    enc, h = m.encode(src)
    assert enc.out.shape == (4, 7, 12 * (2 if bidir else 1)) and h.shape == (n_layers, 4, 12)
    logits, h2, w = m.step(tgt[:, 0], h, enc)
    assert logits.shape == (4, 25) and h2.shape == h.shape
    assert (w is None) == (not attention) and (w is None or w.shape == (4, 7))
    assert m(src, tgt).shape == (4, 5, 25)
    check_splitter(m, seq2seq_splitter(m))
    assert m.decoder.head.weight is m.decoder.emb.weight          # tied


def test_encoder_outputs_are_zero_at_padding_and_ignore_it():
    m, src = _model(), _src()
    enc, h = m.encode(src)
    assert torch.all(enc.out[~enc.mask] == 0)
    junk = src.clone()
    junk[~enc.mask] = 17                                       # what padding holds must not matter...
    enc2, h2 = m.encode(torch.where(enc.mask, src, torch.full_like(src, PAD)))
    assert torch.allclose(h, h2) and torch.allclose(enc.out, enc2.out)


def test_attention_masks_padding_and_sums_to_one():
    torch.manual_seed(0)
    att = Attention(6, 5, 4)
    out = torch.randn(3, 4, 6)
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0]], dtype=torch.bool)
    out = out * mask[..., None]
    ctx, w = att(Encoded(out, att.k(out), mask), torch.randn(3, 5))
    assert torch.all(w[~mask] == 0) and torch.allclose(w.sum(1), torch.ones(3))
    assert torch.allclose(w[2], torch.tensor([1.0, 0, 0, 0]))   # one real token: all the weight
    assert torch.allclose(ctx, torch.einsum("bs,bsd->bd", w, out), atol=1e-6)


def test_eval_forward_is_free_running_greedy():
    """Without teacher forcing the model feeds its argmax back: forward's argmaxes are greedy's tokens."""
    m, src = _model(), _src()
    g = greedy(m, src, 6, BOS, EOS)
    with torch.no_grad():
        logits = m(src, torch.full((4, 6), BOS))               # inputs after the first are never read in eval
    for row, toks in zip(logits.argmax(-1).tolist(), g.tokens):
        assert row[:len(toks)] == toks


def test_teacher_forcing_feeds_the_reference():
    m, src = _model(), _src()
    tgt = torch.randint(4, 25, (4, 6))
    tgt[:, 0] = BOS
    m.train()
    m.decoder.drop.p = m.encoder.drop.p = 0.0                   # dropout off: compare the two paths exactly
    m.pr_force = 1.0
    with torch.no_grad():
        forced = m(src, tgt)
        enc, h = m.encode(src)
        manual = []
        for t in range(6):
            lg, h, _ = m.step(tgt[:, t], h, enc)
            manual.append(lg)
    assert torch.allclose(forced, torch.stack(manual, 1), atol=1e-6)


@pytest.mark.parametrize("epoch,n,start,end,want", [(0, 5, 1.0, 0.0, 1.0), (4, 5, 1.0, 0.0, 0.0), (2, 5, 1.0, 0.0, 0.5),
                                                    (1, 3, 1.0, 0.25, 0.625), (0, 1, 0.8, 0.1, 0.8), (3, 4, 0.0, 0.0, 0.0)])
def test_teacher_forcing_schedule(epoch, n, start, end, want):
    assert teacher_forcing_prob(epoch, n, start, end) == pytest.approx(want)


def test_load_embeddings_copies_shared_tokens():
    emb = torch.nn.Embedding(4, 3)
    vecs = torch.arange(6.0).view(2, 3)
    n = load_embeddings(emb, ["xxunk", "xxpad", "the", "cat"], ["cat", "dog"], vecs)
    assert n == 1 and torch.equal(emb.weight[3], vecs[0])
    with pytest.raises(ValueError, match="2 dims"):
        load_embeddings(emb, ["cat"], ["cat"], torch.zeros(1, 2))


# ---- decoding -------------------------------------------------------------------------------------

def _rescore(m: Seq2Seq, src: torch.Tensor, toks: list[list[int]]) -> list[float]:
    """Sum of log-probs of each given hypothesis, teacher-forced through the model."""
    enc, h = m.encode(src)
    out = []
    for i, t in enumerate(toks):
        e, hh, y, s = enc.index(torch.tensor([i])), h[:, [i]], torch.tensor([BOS]), 0.0
        for tok in t:
            lg, hh, _ = m.step(y, hh, e)
            s += float(lg.log_softmax(-1)[0, tok])
            y = torch.tensor([tok])
        out.append(s)
    return out


@pytest.mark.parametrize("attention", [True, False])
def test_beam_1_is_greedy(attention):
    m, src = _model(attention=attention), _src()
    g, b = greedy(m, src, 9, BOS, EOS), beam_search(m, src, 1, 9, BOS, EOS, keep_greedy=False)
    assert b.tokens == g.tokens and torch.allclose(b.scores, g.scores, atol=1e-5)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("k", [2, 5])
def test_beam_never_scores_below_greedy_and_scores_are_model_log_probs(seed, k):
    m, src = _model(seed=seed), _src(seed + 10)
    g, b = greedy(m, src, 9, BOS, EOS), beam_search(m, src, k, 9, BOS, EOS)
    assert torch.all(b.scores >= g.scores - 1e-5)
    with torch.no_grad():
        assert np.allclose(_rescore(m, src, b.tokens), b.scores.numpy(), atol=1e-4)
        assert np.allclose(_rescore(m, src, g.tokens), g.scores.numpy(), atol=1e-4)
    for toks, att in zip(b.tokens, b.attention):
        assert att.shape == (len(toks), src.shape[1]) and (EOS not in toks[:-1])


def test_greedy_stops_at_eos_and_caps_length():
    m, src = _model(), _src()
    g = greedy(m, src, 4, BOS, EOS)
    assert all(len(t) <= 4 and (EOS not in t or t[-1] == EOS) for t in g.tokens)


# ---- BLEU, baseline, detokenization ---------------------------------------------------------------

def test_bleu_hand_computed():
    """'a b c d' vs 'a b c e': p1..p4 = 3/4, 2/3, 1/2 and 0/1, which sacrebleu's default 'exp' smoothing
    makes 1/2; BP = 1. BLEU = (3/4 * 2/3 * 1/2 * 1/2) ** (1/4) = 0.125 ** 0.25."""
    s = corpus_scores(["a b c d"], ["a b c e"])
    assert s["bleu"] == pytest.approx(100 * 0.125 ** 0.25, abs=0.01) and s["brevity_penalty"] == 1.0
    assert s["bleu_precisions"] == [75.0, 66.7, 50.0, 50.0]                  # p4 as smoothed
    assert corpus_scores(["The cat sat."], ["The cat sat."])["bleu"] == 100.0


def test_bleu_equals_sacrebleu_on_a_corpus():
    hyps = ["A man rides a bike.", "Two dogs play in the snow .", "A woman"]
    refs = ["A man is riding a bicycle.", "Two dogs are playing in the snow.", "A woman sings on stage."]
    s = corpus_scores(hyps, refs)
    assert s["bleu"] == round(sacrebleu.corpus_bleu(hyps, [refs]).score, 2)
    assert s["chrf"] == round(sacrebleu.corpus_chrf(hyps, [refs]).score, 2)
    assert s["brevity_penalty"] < 1.0                                   # the hypotheses are shorter


def test_retrieval_baseline_returns_the_nearest_training_translation():
    src = ["un chien court dans l'herbe .", "une femme chante sur scène .", "deux hommes jouent au football ."]
    tgt = ["a dog runs in the grass .", "a woman sings on stage .", "two men play football ."]
    assert retrieval_baseline(src, tgt, ["une femme chante .", "un chien court ."]) == [tgt[1], tgt[0]]


def test_to_text_restores_case_and_drops_eos():
    itos = ["xxunk", "xxpad", "xxbos", "xxeos", "xxfld", "xxrep", "xxwrep", "xxup", "xxmaj", "a", "dog", "runs", "."]
    assert to_text([8, 9, 10, 11, 12, 3], itos, 3) == "A dog runs."
    assert to_text([9, 10, 11, 12], itos, 3) == "A dog runs."        # "A" lost its case in fastai's rules


# ---- pairs ----------------------------------------------------------------------------------------

def test_pair_collate_shifts_targets():
    (src, tgt_in), tgt_out = pair_collate([(np.array([2, 5, 6]), np.array([2, 7, 3])),
                                           (np.array([2, 9]), np.array([2, 8, 9, 3]))])
    assert src.tolist() == [[2, 5, 6], [2, 9, 1]]
    assert tgt_in.tolist() == [[2, 7, 3], [2, 8, 9]] and tgt_out.tolist() == [[7, 3, 1], [8, 9, 3]]


def test_seq_loss_and_accuracy_ignore_padding():
    torch.manual_seed(0)
    logits, target = torch.randn(2, 3, 6), torch.tensor([[4, 5, 1], [3, 1, 1]])
    other = logits.clone()
    other[0, 2], other[1, 1:] = 9.0, -9.0                      # change only padded positions
    assert seq_loss(logits, target) == pytest.approx(float(seq_loss(other, target)))
    real = target != 1
    want = torch.nn.functional.cross_entropy(logits[real], target[real])
    assert seq_loss(logits, target) == pytest.approx(float(want))
    hit = torch.zeros(2, 3, 6)
    hit[0, 0, 4] = hit[0, 1, 0] = hit[1, 0, 3] = 1.0           # 2 of 3 real tokens right
    assert float(token_accuracy(hit, target)) == pytest.approx(2 / 3)


def test_pad_right():
    assert pad_right([np.array([5]), np.array([6, 7, 8])], 1).tolist() == [[5, 1, 1], [6, 7, 8]]


@pytest.mark.parametrize("raw,want", [("  Deux  hommes\t", "Deux hommes"), ("caf\u0065\u0301", "caf\u00e9"),
                                      ("a\u00a0b", "a b"), ("x", "x")])
def test_normalize(raw, want):
    assert normalize(raw) == want


def test_keep_pairs_caps_every_side():
    toks = {"fr": [["xxbos", "a"], ["xxbos"] + ["w"] * 4, ["xxbos", "b", "c"]],
            "en": [["xxbos"] + ["w"] * 5, ["xxbos", "a"], ["xxbos", "d"]]}
    assert keep_pairs(toks, 3).tolist() == [2] and keep_pairs(toks, None).tolist() == [0, 1, 2]


def _write(d: Path, stem: str, lang: str, data: bytes) -> None:
    with gzip.open(d / f"{stem}.{lang}.gz", "wb") as fh:
        fh.write(data)


def _pairs_dir(tmp_path: Path, fr: bytes = b"Un chien.\nDeux chats.\n", en: bytes = b"A dog.\nTwo cats.\n") -> Path:
    d = tmp_path / "raw"
    d.mkdir(exist_ok=True)
    for stem in ("train", "val", "test"):
        _write(d, stem, "fr", fr)
        _write(d, stem, "en", en)
    return d


P = PrepareParams(splits={"train": "train", "valid": "val", "test": "test"}, holdout=0.1, max_tokens=30, max_train=None,
                  max_eval=None, seed=0)


@pytest.mark.fault("Bad data", "prepare_pairs on parallel files that do not align (3 French lines, 2 English): "
                   "DataError naming both files and both counts; no output")
def test_misaligned_files(tmp_path):
    d = _pairs_dir(tmp_path)
    _write(d, "val", "fr", b"Un.\nDeux.\nTrois.\n")
    with pytest.raises(DataError, match=rf"{d / 'val.fr.gz'} has 3 lines but {d / 'val.en.gz'} has 2"):
        prepare_pairs(src=d, out=tmp_path / "out", p=P)
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".tmp-*"))


@pytest.mark.fault("Bad data", "prepare_pairs on a file with an empty (whitespace-only) line 2: DataError naming "
                   "the file and line; no output")
def test_empty_line(tmp_path):
    d = _pairs_dir(tmp_path, en=b"A dog.\n   \n")
    with pytest.raises(DataError, match=rf"{d / 'train.en.gz'}: line 2: empty sentence"):
        prepare_pairs(src=d, out=tmp_path / "out", p=P)
    assert not (tmp_path / "out").exists()


@pytest.mark.fault("Bad data", "prepare_pairs on a French file with Latin-1 bytes on line 2: DataError naming "
                   "the file, line and byte offset; no output")
def test_bad_encoding(tmp_path):
    d = _pairs_dir(tmp_path, fr="Un chien.\nDeux caf\u00e9s.\n".encode("latin-1"))
    with pytest.raises(DataError, match=rf"{d / 'train.fr.gz'}: line 2: not valid UTF-8 \(invalid continuation byte at byte 8\)"):
        prepare_pairs(src=d, out=tmp_path / "out", p=P)


@pytest.mark.fault("Bad data", "prepare_pairs with a split file missing (test.en.gz): DataError naming it")
def test_missing_file(tmp_path):
    d = _pairs_dir(tmp_path)
    (d / "test.en.gz").unlink()
    with pytest.raises(DataError, match=rf"{d / 'test.en.gz'}: file not found"):
        read_parallel(d, "test")


@pytest.mark.fault("Bad data", "prepare_pairs on a gzip file cut short: DataError naming the file; no output")
def test_truncated_gzip(tmp_path):
    d = _pairs_dir(tmp_path)
    blob = (d / "train.fr.gz").read_bytes()
    (d / "train.fr.gz").write_bytes(blob[:len(blob) // 2])
    with pytest.raises(DataError, match=rf"{d / 'train.fr.gz'}: cannot read"):
        prepare_pairs(src=d, out=tmp_path / "out", p=P)
    assert not (tmp_path / "out").exists()


@pytest.mark.fault("Params", "seq2seq.prepare.splits without a test split: DataError naming the key and the "
                   "splits expected")
def test_splits_must_be_complete(tmp_path):
    with pytest.raises(DataError, match=r"seq2seq.prepare.splits: expected exactly the keys \['train', 'valid', 'test'\]"):
        prepare_pairs(src=_pairs_dir(tmp_path), out=tmp_path / "out",
                      p=PrepareParams(splits={"train": "train", "valid": "val"}, holdout=0.1, max_tokens=30, max_train=None,
                                      max_eval=None, seed=0))


@pytest.mark.fault("Params", "seq2seq.prepare.max_tokens below every training pair's length: DataError naming the "
                   "split and the key; no output")
def test_cap_leaves_nothing(tmp_path):
    d = _pairs_dir(tmp_path)
    with pytest.raises(DataError, match=rf"{d}: split 'train' has no pair within seq2seq.prepare.max_tokens=1"):
        prepare_pairs(src=d, out=tmp_path / "out", p=PrepareParams(**{**P.__dict__, "max_tokens": 1}))
    assert not (tmp_path / "out").exists()


def test_prepare_pairs_layout(tmp_path):
    m = prepare_pairs(src=_pairs_dir(tmp_path), out=tmp_path / "out", p=P)
    assert m["train"] == {**m["train"], "pairs": 2, "dropped_over_cap": 0, "max_len_en": 4}   # xxmaj two cats .
    for lang in ("fr", "en"):
        for split in ("train", "valid", "test"):
            assert np.load(tmp_path / "out" / lang / split / "lengths.npy").tolist()[0] >= 3
    assert (tmp_path / "out" / "text" / "test.en").read_text() == "A dog.\nTwo cats.\n"
    assert math.isfinite(m["test"]["tokens_fr"])


# ---- giga-fren questions (full scale), on an archive the test builds -----------------------------

def _giga(tmp_path: Path, en: list[str], fr: list[str], names=("en", "fr")) -> Path:
    import io
    import tarfile

    archive = tmp_path / "giga-fren.tgz"
    with tarfile.open(archive, "w:gz") as tf:
        for lang, lines in zip(names, (en, fr)):
            data = "".join(x + "\n" for x in lines).encode()
            info = tarfile.TarInfo(f"giga-fren/giga-fren.release2.fixed.{lang}")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return archive


def test_giga_fren_keeps_the_lectures_questions(tmp_path):
    en = ["What is light?", "The sky is blue.", "Where are you going? Far.", "How are you?", "Which one is it?",
          "Who are they? They left."]
    fr = ["Qu'est-ce que la lumière?", "Le ciel est bleu.", "Où allez-vous? Loin.", "Comment allez-vous?",
          "C'est lequel. Vraiment?", "Qui sont-ils? Partis."]
    pairs = question_pairs(_giga(tmp_path, en, fr))
    # "How" is not Wh-; "Which one is it?" pairs with a French line whose first sentence is not a question
    assert pairs == {"fr": ["Qu'est-ce que la lumière?", "Où allez-vous?", "Qui sont-ils?"],
                     "en": ["What is light?", "Where are you going?", "Who are they?"]}


def test_giga_fren_holdout_is_seeded_and_disjoint():
    pairs = {"fr": [f"f{i}" for i in range(40)], "en": [f"e{i}" for i in range(40)]}
    a, b = holdout_splits(pairs, 0.1, 3), holdout_splits(pairs, 0.1, 3)
    assert a == b and [len(a[s]["en"]) for s in ("train", "valid", "test")] == [32, 4, 4]
    assert sorted(sum((a[s]["en"] for s in a), [])) == sorted(pairs["en"])
    assert all(a[s]["fr"] == [x.replace("e", "f") for x in a[s]["en"]] for s in a)   # still aligned


def test_prepare_pairs_from_the_giga_fren_archive(tmp_path):
    en = [f"Where is house {i}?" for i in range(20)]
    fr = [f"Où est la maison {i}?" for i in range(20)]
    m = prepare_pairs(src=_giga(tmp_path, en, fr), out=tmp_path / "out", p=P)
    assert (m["train"]["pairs"], m["valid"]["pairs"], m["test"]["pairs"]) == (16, 2, 2)
    assert len((tmp_path / "out" / "text" / "test.fr").read_text().splitlines()) == 2


@pytest.mark.fault("Bad data", "prepare_pairs on a giga-fren archive without its French file: DataError naming the "
                   "archive and the member expected; no output")
def test_giga_fren_member_missing(tmp_path):
    archive = _giga(tmp_path, ["What?"], ["Quoi?"], names=("en", "de"))
    with pytest.raises(DataError, match=rf"{archive}: no member ending in '.fr'"):
        prepare_pairs(src=archive, out=tmp_path / "out", p=P)
    assert not (tmp_path / "out").exists()


# ---- embedding initialisation from the pipeline's own vectors (the ULMFiT LM's layout) -------------

def _vectors_dir(tmp_path: Path, itos: list[str], dim: int) -> Path:
    import json

    d = tmp_path / "lm"
    d.mkdir()
    (d / "itos.json").write_text(json.dumps(itos))
    np.save(d / "embeddings.npy", np.arange(len(itos) * dim, dtype=np.float32).reshape(len(itos), dim))
    return d


def test_init_target_embedding_from_lm_vectors(tmp_path):
    from dlpipe.tasks.seq2seq.train import init_target_embedding
    from dlpipe.text.rules import SPECIALS
    from dlpipe.text.vocab import Vocab

    tgt = Vocab([*SPECIALS, "dog", "cat", "zebra"])
    m = _model(vocab=(30, len(tgt)))
    d = _vectors_dir(tmp_path, [*SPECIALS, "cat", "dog"], 8)
    info = init_target_embedding(m, tgt, d)
    assert info["emb_init_matched"] == len(SPECIALS) + 2
    vecs = np.load(d / "embeddings.npy")
    assert np.array_equal(m.decoder.emb.weight[tgt.stoi["dog"]].detach().numpy(), vecs[len(SPECIALS) + 1])
    assert np.array_equal(m.decoder.head.weight[tgt.stoi["cat"]].detach().numpy(), vecs[len(SPECIALS)])   # tied


@pytest.mark.fault("Params", "seq2seq.train.emb_init pointing at vectors of another width (16 vs emb_sz 8): "
                   "DataError naming the key, the file and both widths")
def test_init_target_embedding_width_mismatch(tmp_path):
    from dlpipe.tasks.seq2seq.train import init_target_embedding
    from dlpipe.text.rules import SPECIALS
    from dlpipe.text.vocab import Vocab

    d = _vectors_dir(tmp_path, list(SPECIALS), 16)
    with pytest.raises(DataError, match=rf"seq2seq.train.emb_init: {d / 'embeddings.npy'}: embedding vectors have 16 "
                                        r"dims, the model's embedding 8 \(set seq2seq.model.emb_sz to match\)"):
        init_target_embedding(_model(vocab=(30, len(SPECIALS))), Vocab(list(SPECIALS)), d)
    with pytest.raises(DataError, match=r"seq2seq.train.emb_init: .*nowhere/embeddings.npy not found"):
        init_target_embedding(_model(vocab=(30, len(SPECIALS))), Vocab(list(SPECIALS)), tmp_path / "nowhere")


def test_beam_reuses_a_given_greedy_result():
    m, src = _model(), _src()
    g = greedy(m, src, 9, BOS, EOS)
    a, b = beam_search(m, src, 3, 9, BOS, EOS), beam_search(m, src, 3, 9, BOS, EOS, greedy_result=g)
    assert a.tokens == b.tokens and torch.equal(a.scores, b.scores)
