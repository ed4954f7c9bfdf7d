"""Each text rule against a table of inputs and outputs (fastai 2.8's behaviour, quirks included)."""
import pytest

from dlpipe.text import rules as R
from dlpipe.text.corpora import normalize_wikitext


@pytest.mark.parametrize("text,expected", [
    ("a<br />b", "a\nb"),
    ("it#39;s", "it's"),
    ("Q&amp;A", "Q&&A"),            # fastai replaces 'amp;' before unescaping: a known quirk we keep
    ("a nbsp;b", "a  b"),
    ("x\\ny", "x\ny"),              # a literal backslash-n becomes a newline
    ("3 @.@ 5", "3.5"),
    ("well @-@ known", "well-known"),
    ("wait...", "wait …"),
    ("&lt;tag&gt;", "<tag>"),
    ('say \\"hi\\"', 'say "hi"'),
    ("<unk> word", "xxunk word"),
    ("#36;5", "$5"),
    ("quot;hi", "'hi"),
])
def test_fix_html(text, expected):
    assert R.fix_html(text) == expected


@pytest.mark.parametrize("text,expected", [
    ("aa", "aa"),
    ("aaa", " xxrep 3 a "),
    ("Wooofff!", "W xxrep 3 o  xxrep 3 f !"),
    ("Banzai!!!!", "Banzai xxrep 4 ! "),
    ("  ", "  "),                   # whitespace runs are not repetitions
])
def test_replace_rep(text, expected):
    assert R.replace_rep(text) == expected


@pytest.mark.parametrize("text,expected", [
    ("very very very good", " xxwrep 3 very  good"),
    ("no no", "no no"),
    ("ha ha ha ha!", " xxwrep 4 ha !"),
    ("the the the", " xxwrep 3 the "),
])
def test_replace_wrep(text, expected):
    assert R.replace_wrep(text) == expected


@pytest.mark.parametrize("text,expected", [
    ("and/or", "and / or"), ("#1", " # 1"), ("a\\b", "a \\ b"), ("plain", "plain"),
])
def test_spec_add_spaces(text, expected):
    assert R.spec_add_spaces(text) == expected


@pytest.mark.parametrize("text,expected", [
    ("a    b", "a b"), ("a \n  b", "a \n b"), ("a b", "a b"),
])
def test_rm_useless_spaces(text, expected):
    assert R.rm_useless_spaces(text) == expected


@pytest.mark.parametrize("text,expected", [
    ("I AM SHOUTING", "i xxup am xxup shouting"),
    ("GREAT!", "xxup great!"),
    ("A b", "a b"),                 # one capital letter: lower-cased, no marker
    ("HeLLo", "HeLLo"),
    ("TV's", "TV's"),
])
def test_replace_all_caps(text, expected):
    assert R.replace_all_caps(text) == expected


@pytest.mark.parametrize("text,expected", [
    ("Hello world", "xxmaj hello world"),
    ("Great,", "xxmaj great,"),
    ("McDonald", "McDonald"),       # a second capital: left to the final lower-casing
    ("I", "i"),
    ("US", "US"),
])
def test_replace_maj(text, expected):
    assert R.replace_maj(text) == expected


@pytest.mark.parametrize("text,expected", [(" Hi There ", "xxbos hi there"), ("", "xxbos ")])
def test_lowercase_adds_bos(text, expected):
    assert R.lowercase(text) == expected


@pytest.mark.parametrize("tok,expected", [(" ", "▁"), ("\n ", "\n▁"), ("word", "word")])
def test_replace_space(tok, expected):
    assert R.replace_space(tok) == expected


@pytest.mark.parametrize("fields,expected", [
    (["only"], "only"),
    (["title", "body"], "xxfld 1 title xxfld 2 body"),
    (["a", "b", "c"], "xxfld 1 a xxfld 2 b xxfld 3 c"),
])
def test_join_fields(fields, expected):
    assert R.join_fields(fields) == expected


def test_rules_run_in_fastai_order():
    # all-caps before maj before lowercase; rep before spec spaces
    assert R.apply_rules("THIS is Good!!! and/or") == "xxbos xxup this is xxmaj good xxrep 3 ! and / or"


@pytest.mark.parametrize("text,expected", [
    ("a 1 @,@ 000 b", "a 1,000 b"),
    ("3 @.@ 5 m", "3.5 m"),
    ("guest @-@ starring", "guest-starring"),
    ("Robert <unk> is", "Robert xxunk is"),
    ("no marks here", "no marks here"),
])
def test_normalize_wikitext(text, expected):
    assert normalize_wikitext(text) == expected
