"""`atomic_write` / `replace_dir`: the final path holds the old content or the new, never half."""

from __future__ import annotations

import pytest

from admf_dask.dasktools import atomic_write, atomic_write_bytes, replace_dir


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_file_replaced_and_no_temporary_left(tmp_path):
    p = tmp_path / "a.json"
    atomic_write_bytes(p, b"one")
    atomic_write_bytes(p, b"two")
    assert p.read_bytes() == b"two" and _leftovers(tmp_path) == []


def test_failed_write_leaves_the_old_content(tmp_path):
    p = tmp_path / "a.bin"
    atomic_write_bytes(p, b"old")

    def write(tmp):
        tmp.write_bytes(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(p, write)
    assert p.read_bytes() == b"old" and _leftovers(tmp_path) == []


def test_folder_first_writer_wins(tmp_path):
    final = tmp_path / "entry"

    def fill(text):
        return lambda d: (d / "x").write_text(text)

    assert atomic_write(final, fill("first"), directory=True, replace=False)
    assert not atomic_write(final, fill("second"), directory=True, replace=False)
    assert (final / "x").read_text() == "first" and _leftovers(tmp_path) == []


def test_file_first_writer_wins_without_replace(tmp_path):
    p = tmp_path / "f"
    assert atomic_write(p, lambda t: t.write_text("1"), replace=False)
    assert not atomic_write(p, lambda t: t.write_text("2"), replace=False)
    assert p.read_text() == "1" and _leftovers(tmp_path) == []


def test_replace_dir_swaps_folders(tmp_path):
    out, new = tmp_path / "run", tmp_path / ".run.tmp"
    out.mkdir()
    (out / "old").write_text("o")
    new.mkdir()
    (new / "new").write_text("n")
    replace_dir(new, out)
    assert [p.name for p in out.iterdir()] == ["new"] and _leftovers(tmp_path) == []
    fresh = tmp_path / ".other"
    fresh.mkdir()
    replace_dir(fresh, tmp_path / "absent")
    assert (tmp_path / "absent").is_dir()
