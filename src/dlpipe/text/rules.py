"""fastai's text rules as small pure functions (str -> str), applied in order before spaCy.

They replicate fastai 2.8 (``fastai/text/core.py``) regex for regex and in the same order, so
that our token streams are identical to ``fastai.text.core.Tokenizer``'s output:

    fix_html -> replace_rep -> replace_wrep -> spec_add_spaces -> rm_useless_spaces
             -> replace_all_caps -> replace_maj -> lowercase(+xxbos)      then spaCy, then
    replace_space on each token.

Two places where fastai 2 differs from fastai 1 (and from the 2018 lecture), kept as fastai 2:
``replace_rep`` fires on a character repeated 3+ times (v1: 4+), and the case rules run on the
whitespace-split *text* before tokenization followed by a full lower-casing (v1 ran them on tokens
and kept mixed-case words such as ``McDonald`` as they were).
"""
from __future__ import annotations

import html
import re

# Special tokens, in fastai's order; Vocab puts them first (xxunk = 0, xxpad = 1).
UNK, PAD, BOS, EOS, FLD, TK_REP, TK_WREP, TK_UP, TK_MAJ = (
    "xxunk xxpad xxbos xxeos xxfld xxrep xxwrep xxup xxmaj".split())
SPECIALS = (UNK, PAD, BOS, EOS, FLD, TK_REP, TK_WREP, TK_UP, TK_MAJ)

_re_spec = re.compile(r"([/#\\])")
_re_space = re.compile(" {2,}")
_re_rep = re.compile(r"(\S)(\1{2,})")
_re_wrep = re.compile(r"(?:\s|^)(\w+)\s+((?:\1\s+)+)\1(\s|\W|$)")
_re_all_caps = re.compile(r"(\s|^)([A-Z]+[^a-z\s]*)(?=(\s|$))")
_re_maj = re.compile(r"(\s|^)([A-Z][^A-Z\s]*)(?=(\s|$))")


def fix_html(x: str) -> str:
    """Undo the HTML and dataset oddities fastai has met (``<br />``, ``#39;``, `` @-@ ``...)."""
    x = (x.replace("#39;", "'").replace("amp;", "&").replace("#146;", "'").replace("nbsp;", " ")
         .replace("#36;", "$").replace("\\n", "\n").replace("quot;", "'").replace("<br />", "\n")
         .replace('\\"', '"').replace("<unk>", UNK).replace(" @.@ ", ".").replace(" @-@ ", "-")
         .replace("...", " …"))
    return html.unescape(x)


def _rep(m: re.Match) -> str:
    c, cc = m.groups()
    return f" {TK_REP} {len(cc) + 1} {c} "


def replace_rep(t: str) -> str:
    """A character repeated 3+ times: ``!!!!`` -> `` xxrep 4 ! ``."""
    return _re_rep.sub(_rep, t)


def _wrep(m: re.Match) -> str:
    c, cc, e = m.groups()
    return f" {TK_WREP} {len(cc.split()) + 2} {c} {e}"


def replace_wrep(t: str) -> str:
    """A word repeated 3+ times: ``very very very`` -> `` xxwrep 3 very ``."""
    return _re_wrep.sub(_wrep, t)


def spec_add_spaces(t: str) -> str:
    """Put spaces around ``/``, ``#`` and ``\\`` so they become tokens of their own."""
    return _re_spec.sub(r" \1 ", t)


def rm_useless_spaces(t: str) -> str:
    """Collapse runs of spaces (not newlines) to one."""
    return _re_space.sub(" ", t)


def _all_caps(m: re.Match) -> str:
    word = m.group(2)
    return f"{m.group(1)}{TK_UP + ' ' if len(word) > 1 else ''}{word.lower()}"


def replace_all_caps(t: str) -> str:
    """An all-caps word of 2+ characters: ``GREAT`` -> ``xxup great``."""
    return _re_all_caps.sub(_all_caps, t)


def _maj(m: re.Match) -> str:
    word = m.group(2)
    return f"{m.group(1)}{TK_MAJ + ' ' if len(word) > 1 else ''}{word.lower()}"


def replace_maj(t: str) -> str:
    """A capitalised word of 2+ characters: ``Great`` -> ``xxmaj great``."""
    return _re_maj.sub(_maj, t)


def lowercase(t: str) -> str:
    """Lower-case everything and mark the document start with ``xxbos``."""
    return f"{BOS} " + t.lower().strip()


def replace_space(tok: str) -> str:
    """Token post-rule: a space inside a token becomes ``▁`` so tokens can be joined by spaces."""
    return tok.replace(" ", "▁")


PRE_RULES = (fix_html, replace_rep, replace_wrep, spec_add_spaces, rm_useless_spaces,
             replace_all_caps, replace_maj, lowercase)


def apply_rules(text: str, rules=PRE_RULES) -> str:
    """Run ``rules`` in order over ``text``."""
    for rule in rules:
        text = rule(text)
    return text


def join_fields(fields: list[str]) -> str:
    """Several text fields of one row -> one text, each field marked ``xxfld i`` (1-based).

    A single field is returned unmarked, as fastai does (``mark_fields`` defaults to False then).
    """
    if len(fields) == 1:
        return fields[0]
    return f"{FLD} 1 " + fields[0] + "".join(f" {FLD} {i + 1} " + f for i, f in enumerate(fields[1:], 1))
