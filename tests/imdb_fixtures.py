"""Small archives in aclImdb's and the Gutenberg repack's layouts, built by the tests that need them."""
from __future__ import annotations

import csv
import io
import tarfile
from pathlib import Path


BOOK = ("The Project Gutenberg EBook of Emma\r\nHeader text\r\n"
        "*** START OF THIS PROJECT GUTENBERG EBOOK EMMA ***\r\n\r\nCHAPTER I\r\n\r\nEmma Woodhouse, handsome,\r\n"
        "clever, and rich.\r\n\r\nShe had lived nearly\r\ntwenty-one years.\r\n"
        "*** END OF THIS PROJECT GUTENBERG EBOOK EMMA ***\r\nLicence text\r\n")


def tar_gz(path: Path, members: dict[str, str]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, text in members.items():
            data = text.encode("utf-8")
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def acl_archive(path: Path) -> Path:
    """A tiny aclImdb tree: 12 train reviews per class, 12 test per class, 6 unsup; train/pos/0 repeats a test text."""
    m = {"aclImdb/README": "Large Movie Review Dataset v1.0", "aclImdb/train/labeledBow.feat": "0:1"}
    for split in ("train", "test"):
        for label, rating in (("pos", 9), ("neg", 2)):
            for i in range(12):
                m[f"aclImdb/{split}/{label}/{i}_{rating}.txt"] = f"{split} {label} review {i} " + "word " * 5
    for i in range(6):
        m[f"aclImdb/train/unsup/{i}_0.txt"] = f"unlabelled review {i} " + "word " * 20
    m["aclImdb/train/pos/0_9.txt"] = "test  pos review 0 " + "word " * 5      # = test/pos/0 up to whitespace
    return tar_gz(path, m)


def sample_dir(path: Path, acl_texts: list[str]) -> Path:
    path.mkdir()
    (path / "classes.txt").write_text("negative\npositive\n")
    with open(path / "valid.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow([1, acl_texts[0]])                  # an imdb_sample review that is also in aclImdb train
        w.writerow([0, "a sample-only review"])
    return path


def books_archive(path: Path) -> Path:
    book = lambda title: BOOK.replace("EMMA", title).replace("Emma", title).replace("twenty-one", title)  # noqa: E731
    return tar_gz(path, {"Austen, Jane/Emma.txt": book("Emma"), "Austen, Jane/Persuasion.txt": book("Persuasion"),
                         "Shelley, Mary/Frankenstein.txt": book("Frankenstein")})
