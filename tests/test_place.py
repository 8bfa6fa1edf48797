"""Export never deletes what it did not write: --force replaces only bundles, never the source; the swap leaves
no window without a bundle that the next run cannot repair; dead exports' work directories are cleaned."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from edgert.bundle import FORMAT, MANIFEST  # noqa: E402
from edgert.errors import ExportError  # noqa: E402
from edgert.export import place  # noqa: E402


def _bundle(path: Path, tag: str) -> Path:
    path.mkdir(parents=True)
    files = {"model.onnx": {"bytes": len(tag), "sha256": "0" * 64}}
    (path / MANIFEST).write_text(json.dumps({"format": FORMAT, "tag": tag, "files": files}))
    (path / "model.onnx").write_text(tag)
    return path


def _tag(path: Path) -> str:
    return json.loads((path / MANIFEST).read_text())["tag"]


def _dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(proc.stdout)


def test_force_refuses_a_directory_that_is_not_a_bundle(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    (project / "notes.txt").write_text("mine")
    with pytest.raises(ExportError, match="is not an edgert bundle .* nothing was touched"):
        place.check_output(project, None, force=True)
    assert (project / "notes.txt").read_text() == "mine"


def test_force_refuses_the_source_and_its_parents(tmp_path):
    source = tmp_path / "models" / "mine"
    source.mkdir(parents=True)
    (source / MANIFEST).write_text(json.dumps({"format": FORMAT}))  # even if it looks like a bundle
    for out in (source, source.parent, tmp_path):
        with pytest.raises(ExportError, match="is the export's source or holds it"):
            place.check_output(out, source, force=True)


def test_force_refuses_a_file_or_a_symlink(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    target = _bundle(tmp_path / "real", "a")
    link = tmp_path / "link"
    link.symlink_to(target)
    for out in (f, link):
        with pytest.raises(ExportError, match="not a bundle directory"):
            place.check_output(out, None, force=True)


def test_without_force_an_existing_output_is_refused(tmp_path):
    out = _bundle(tmp_path / "b", "a")
    with pytest.raises(ExportError, match="already exists; pass --force"):
        place.check_output(out, None, force=False)
    place.check_output(out, None, force=True)  # a bundle may be replaced
    empty = tmp_path / "empty"
    empty.mkdir()
    place.check_output(empty, None, force=True)


def test_force_never_deletes_files_the_manifest_does_not_list(tmp_path):
    """--force replaces what edgert wrote; a user's notes or results inside the bundle folder refuse it, unless
    discard_unlisted (the CLI's --discard-unlisted) says so."""
    out = _bundle(tmp_path / "b", "a")
    (out / "NOTES.md").write_text("mine")
    (out / "my_results").mkdir()
    (out / "my_results" / "run.json").write_text("{}")
    with pytest.raises(ExportError, match=r"holds 2 file\(s\) its manifest does not list \(NOTES.md, my_results\)"):
        place.check_output(out, None, force=True)
    assert (out / "NOTES.md").read_text() == "mine"
    place.check_output(out, None, force=True, discard_unlisted=True)
    nested = _bundle(tmp_path / "n", "a")  # a listed file in a subfolder is not "unlisted"
    data = json.loads((nested / MANIFEST).read_text())
    (nested / "onnx").mkdir()
    (nested / "onnx" / "w.bin").write_text("w")
    data["files"]["onnx/w.bin"] = {"bytes": 1, "sha256": "0" * 64}
    (nested / MANIFEST).write_text(json.dumps(data))
    assert place.unlisted(nested) == []
    (nested / "onnx" / "extra.bin").write_text("x")
    assert place.unlisted(nested) == ["onnx/extra.bin"]


def test_place_swaps_atomically_and_leaves_nothing_behind(tmp_path):
    out = _bundle(tmp_path / "b", "old")
    new = _bundle(place.work_dir(out), "new")
    place.place(new, out)
    assert _tag(out) == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]


def test_place_without_exchange_still_ends_with_the_new_bundle(tmp_path, monkeypatch):
    monkeypatch.setattr(place, "_exchange", lambda a, b: False)  # a filesystem without RENAME_EXCHANGE
    out = _bundle(tmp_path / "b", "old")
    place.place(_bundle(place.work_dir(out), "new"), out)
    assert _tag(out) == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]


def test_an_interrupted_swap_is_repaired_by_the_next_run(tmp_path):
    """The state a kill between the two renames leaves: the old bundle aside, the new one gone, no OUT."""
    out = tmp_path / "b"
    _bundle(tmp_path / f".b.old-{_dead_pid()}", "old")
    messages = []
    place.recover(out, messages.append)
    assert _tag(out) == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]
    assert "restored" in messages[0]


def test_a_killed_exports_work_directory_is_cleaned(tmp_path):
    code = (
        "import os, signal, sys\n"
        "d = os.path.join(sys.argv[1], f'.b.partial-{os.getpid()}')\n"
        "os.makedirs(d)\n"
        "open(os.path.join(d, 'model.onnx'), 'wb').write(os.urandom(1 << 20))\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path)])
    assert proc.returncode == -signal.SIGKILL
    (left,) = tmp_path.iterdir()
    assert left.name.startswith(".b.partial-")
    live = tmp_path / f".b.partial-{os.getpid()}"  # a running export's directory is left alone
    live.mkdir()
    other = tmp_path / f".c.partial-{_dead_pid()}"  # and so is another output's
    other.mkdir()
    place.recover(tmp_path / "b", lambda s: None)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, other.name])


def test_cli_force_on_a_project_folder_is_one_line_and_touches_nothing(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    (project / "main.py").write_text("print('mine')")
    proc = subprocess.run(
        [sys.executable, "-m", "edgert.cli.main", "export", "minilm", "-o", str(project), "--force"],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    if "pip install 'edgert[export]'" in proc.stderr:
        pytest.skip("the export extra is not installed")
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "is not an edgert bundle" in proc.stderr
    assert (project / "main.py").read_text() == "print('mine')"
