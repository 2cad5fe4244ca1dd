"""Checkpoint search, verification and download (against a local HTTP server)."""

from __future__ import annotations

import hashlib
import http.server
import io
import shutil
import threading
from pathlib import Path

import pytest
import torch

from propainter_wire import weights
from propainter_wire.errors import WeightsError
from propainter_wire.tuning import Tuning
from propainter_wire.weights import (
    CHECKPOINT_FILES,
    FLOW_COMPLETION_FILE,
    INPAINTER_FILE,
    RAFT_FILE,
    download_file,
    find_weights_dir,
    require_weights_dir,
    search_dirs,
    verify_file,
    weights_command,
)


# ---------------------------------------------------------------------------
# a small HTTP server that honours Range (optionally not) and can cut a transfer short
# ---------------------------------------------------------------------------
class _Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep pytest output clean
        pass

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        srv = self.server
        name = self.path.rsplit("/", 1)[-1]
        srv.requests.append((name, self.headers.get("Range")))
        body = srv.files.get(name)
        if body is None:
            self.send_error(404, "no such file")
            return
        start = 0
        rng = self.headers.get("Range")
        if rng and srv.honour_range:
            start = int(rng.removeprefix("bytes=").split("-")[0])
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        cut = srv.cut_once.pop(name, None)
        payload = body[start:] if cut is None else body[start:cut]
        srv.sent[name] = srv.sent.get(name, 0) + len(payload)
        self.wfile.write(payload)
        if cut is not None:
            self.wfile.flush()
            self.close_connection = True


@pytest.fixture()
def server(monkeypatch):
    """Serves three small fake checkpoints; OFFICIAL_FILES is patched to their sizes and md5s."""
    files = {name: bytes((i * 7 + k * 13) % 251 for i in range(size))
             for k, (name, size) in enumerate(zip(CHECKPOINT_FILES, (70_001, 50_003, 90_007), strict=True))}
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.files, httpd.requests, httpd.sent, httpd.cut_once, httpd.honour_range = files, [], {}, {}, True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    official = {n: (None if n == RAFT_FILE else len(b), hashlib.md5(b).hexdigest()) for n, b in files.items()}
    monkeypatch.setattr(weights.download, "OFFICIAL_FILES", official)
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}/release/"
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def test_download_all_three(server, tmp_path):
    out = io.StringIO()
    code = weights_command("download", tmp_path / "w", url=server.url, quiet=True, stream=out)
    assert code == 0, out.getvalue()
    for name, body in server.files.items():
        assert (tmp_path / "w" / name).read_bytes() == body
        assert not (tmp_path / "w" / f"{name}.part").exists()
    assert out.getvalue().count("[ OK ]") == 3

    # a second run finds them in place and fetches nothing
    server.requests.clear()
    out = io.StringIO()
    assert weights_command("download", tmp_path / "w", url=server.url, quiet=True, stream=out) == 0
    assert server.requests == []
    assert out.getvalue().count("already present") == 3


def test_download_resumes_a_partial_file(server, tmp_path):
    body = server.files[INPAINTER_FILE]
    (tmp_path / f"{INPAINTER_FILE}.part").write_bytes(body[:12_345])
    dest = download_file(server.url + INPAINTER_FILE, tmp_path / INPAINTER_FILE, len(body),
                         hashlib.md5(body).hexdigest(), quiet=True)
    assert dest.read_bytes() == body
    assert server.requests == [(INPAINTER_FILE, "bytes=12345-")]
    assert server.sent[INPAINTER_FILE] == len(body) - 12_345
    assert not (tmp_path / f"{INPAINTER_FILE}.part").exists()


def test_download_restarts_when_server_ignores_range(server, tmp_path):
    server.honour_range = False
    body = server.files[FLOW_COMPLETION_FILE]
    (tmp_path / f"{FLOW_COMPLETION_FILE}.part").write_bytes(b"garbage" * 10)
    download_file(server.url + FLOW_COMPLETION_FILE, tmp_path / FLOW_COMPLETION_FILE, len(body),
                  hashlib.md5(body).hexdigest(), quiet=True)
    assert (tmp_path / FLOW_COMPLETION_FILE).read_bytes() == body


def test_interrupted_transfer_is_resumed(server, tmp_path):
    body = server.files[RAFT_FILE]  # size unknown to the checker: only the md5 protects it
    server.cut_once[RAFT_FILE] = 30_000
    download_file(server.url + RAFT_FILE, tmp_path / RAFT_FILE, None, hashlib.md5(body).hexdigest(), quiet=True,
                  retry_wait=0.0)
    assert (tmp_path / RAFT_FILE).read_bytes() == body
    assert server.requests == [(RAFT_FILE, None), (RAFT_FILE, "bytes=30000-")]


def test_md5_mismatch_leaves_no_file(server, tmp_path, monkeypatch):
    size, _ = weights.download.OFFICIAL_FILES[INPAINTER_FILE]
    monkeypatch.setitem(weights.download.OFFICIAL_FILES, INPAINTER_FILE, (size, "0" * 32))
    out = io.StringIO()
    code = weights_command("download", tmp_path, url=server.url, quiet=True, stream=out)
    assert code == 1
    assert not (tmp_path / INPAINTER_FILE).exists()
    assert not (tmp_path / f"{INPAINTER_FILE}.part").exists()
    fail = [line for line in out.getvalue().splitlines() if line.startswith("[FAIL]")]
    assert len(fail) == 1 and INPAINTER_FILE in fail[0] and "md5" in fail[0]
    # the other two were still fetched
    assert (tmp_path / RAFT_FILE).exists() and (tmp_path / FLOW_COMPLETION_FILE).exists()


def test_http_error_is_one_line(server, tmp_path):
    del server.files[RAFT_FILE]
    with pytest.raises(WeightsError, match="HTTP 404") as info:
        download_file(server.url + RAFT_FILE, tmp_path / RAFT_FILE, None, None, quiet=True)
    assert "\n" not in str(info.value) and RAFT_FILE in str(info.value)
    assert not (tmp_path / RAFT_FILE).exists()


# ---------------------------------------------------------------------------
# where the files are looked for
# ---------------------------------------------------------------------------
def _fill(folder: Path, names=CHECKPOINT_FILES) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(b"x")
    return folder


@pytest.fixture()
def isolated(tmp_path, monkeypatch):
    """cwd and HOME under tmp_path (the weights folder switch is handed in as ``env_dir``)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return tmp_path


def test_search_order(isolated):
    env_dir = Tuning.from_env({"PROPAINTER_WIRE_WEIGHTS": str(isolated / "env")}).weights_dir
    dirs = search_dirs(isolated / "explicit", env_dir=env_dir)
    assert dirs == [isolated / "explicit", isolated / "env", Path.cwd() / "weights",
                    isolated / "home" / ".cache" / "propainter-wire"]
    assert search_dirs(None, env_dir=env_dir)[0] == isolated / "env"
    assert search_dirs(None)[0] == Path.cwd() / "weights"  # nothing read from the environment


def test_find_weights_dir(isolated, monkeypatch):
    assert find_weights_dir(None) is None
    cache = _fill(isolated / "home" / ".cache" / "propainter-wire")
    assert find_weights_dir(None) == cache
    local = _fill(isolated / "weights")
    assert find_weights_dir(None) == Path.cwd() / "weights" == local.resolve()
    env_dir = _fill(isolated / "env", CHECKPOINT_FILES[:2])
    assert find_weights_dir(None, env_dir=env_dir) == Path.cwd() / "weights"  # incomplete env folder is passed over
    _fill(env_dir)
    assert find_weights_dir(None, env_dir=env_dir) == env_dir == require_weights_dir(None, env_dir=env_dir)
    # an explicit folder is never replaced by another one
    partial = _fill(isolated / "mine", [RAFT_FILE])
    assert find_weights_dir(partial) is None
    with pytest.raises(WeightsError) as info:
        require_weights_dir(partial)
    msg = str(info.value)
    assert str(partial / FLOW_COMPLETION_FILE) in msg and INPAINTER_FILE in msg and "\n" not in msg
    assert require_weights_dir(None) == Path.cwd() / "weights"


def test_require_weights_dir_lists_the_search(isolated):
    with pytest.raises(WeightsError, match="weights download") as info:
        require_weights_dir(None)
    assert "propainter-wire" in str(info.value) and str(Path.cwd() / "weights") in str(info.value)
    with pytest.raises(WeightsError, match="does not exist"):
        require_weights_dir(isolated / "nowhere")


def test_list_marks_the_folder_used(isolated):
    local = _fill(isolated / "weights")
    out = io.StringIO()
    assert weights_command("list", None, stream=out) == 0
    text = out.getvalue()
    assert "<- used" in text and str(local) in text and "(absent)" in text

    switch = _fill(isolated / "env")
    out = io.StringIO()
    assert weights_command("list", None, stream=out, env_dir=switch) == 0
    used = [line for line in out.getvalue().splitlines() if "<- used" in line]
    assert len(used) == 1 and str(switch) in used[0] and "weights switch" in used[0]


# ---------------------------------------------------------------------------
# verifying files
# ---------------------------------------------------------------------------
def _official_as_is(monkeypatch, path: Path, same_md5: bool) -> None:
    """Pretend ``path`` has the official size (and md5 when ``same_md5``)."""
    md5 = weights.file_md5(path) if same_md5 else "f" * 32
    monkeypatch.setitem(weights.download.OFFICIAL_FILES, path.name, (path.stat().st_size, md5))


def test_deterministic_weights_verify_as_unofficial(det_weights_dir):
    out = io.StringIO()
    assert weights_command("verify", det_weights_dir, stream=out) == 0
    lines = out.getvalue().splitlines()[1:]
    assert len(lines) == 3
    for name, line in zip(CHECKPOINT_FILES, lines, strict=True):
        assert line.startswith("[ OK ]") and f"{name}: unofficial" in line


def test_verify_ok_and_bad_hash(det_weights_dir, monkeypatch):
    path = det_weights_dir / FLOW_COMPLETION_FILE
    _official_as_is(monkeypatch, path, same_md5=True)
    check = verify_file(path)
    assert (check.ok, check.status) == (True, "ok")
    _official_as_is(monkeypatch, path, same_md5=False)
    check = verify_file(path)
    assert (check.ok, check.status) == (False, "bad-hash")
    assert verify_file(path, check_md5=False).status == "ok"


def test_verify_missing_truncated_foreign(det_weights_dir, tmp_path):
    folder = tmp_path / "bad"
    folder.mkdir()
    # truncated: the first half of a real checkpoint, smaller than the official size
    whole = (det_weights_dir / FLOW_COMPLETION_FILE).read_bytes()
    (folder / FLOW_COMPLETION_FILE).write_bytes(whole[: len(whole) // 2])
    # foreign: a readable state dict of another network
    torch.save({"conv.weight": torch.zeros(4, 3, 3, 3), "conv.bias": torch.zeros(4)}, folder / RAFT_FILE)
    out = io.StringIO()
    assert weights_command("verify", folder, stream=out) == 1
    lines = {line.split(":")[0].split()[-1]: line for line in out.getvalue().splitlines()[1:]}
    assert set(lines) == set(CHECKPOINT_FILES)
    assert lines[INPAINTER_FILE].startswith("[FAIL]") and "missing" in lines[INPAINTER_FILE]
    assert "truncated" in lines[FLOW_COMPLETION_FILE] and f"of {20_348_681:,}" in lines[FLOW_COMPLETION_FILE]
    assert "foreign" in lines[RAFT_FILE] and "not a RAFT checkpoint" in lines[RAFT_FILE]
    assert all(str(folder / name) in line for name, line in lines.items())


def test_verify_unreadable_and_wrong_size(tmp_path, monkeypatch):
    raft = tmp_path / RAFT_FILE  # official size unknown
    raft.write_bytes(b"<html>not found</html>")
    assert verify_file(raft).status == "unreadable"
    big = tmp_path / INPAINTER_FILE
    big.write_bytes(b"\0" * 1000)
    monkeypatch.setitem(weights.download.OFFICIAL_FILES, INPAINTER_FILE, (100, "0" * 32))
    check = verify_file(big)
    assert (check.ok, check.status) == (False, "wrong-size")


def test_load_into_still_names_the_problem(det_weights_dir, tmp_path):
    from propainter_wire.models.flow_completion import RecurrentFlowCompleteNet

    net = weights.load_flow_completion(det_weights_dir / FLOW_COMPLETION_FILE)
    assert isinstance(net, RecurrentFlowCompleteNet) and not net.training
    shutil.copy(det_weights_dir / RAFT_FILE, tmp_path / FLOW_COMPLETION_FILE)
    with pytest.raises(WeightsError, match="not a RecurrentFlowCompleteNet checkpoint"):
        weights.load_flow_completion(tmp_path / FLOW_COMPLETION_FILE)


def test_loaders_fill_networks_built_without_initialisation(det_weights_dir, monkeypatch):
    """The loaders build on the meta device (random initialisation, overwritten anyway, touches no
    memory) and the checkpoint fills every parameter and buffer: the state equals that of a network
    built the ordinary way and loaded from the same file."""
    import torch

    from propainter_wire import weights

    built = {}
    for name in (weights.RAFT_FILE, weights.FLOW_COMPLETION_FILE, weights.INPAINTER_FILE):
        net, prefix = weights.checkpoints._fresh_module(name)
        state = weights.read_state_dict(det_weights_dir / name)
        net.load_state_dict({k[len(prefix):] if k.startswith(prefix) else k: v for k, v in state.items()})
        built[name] = net.state_dict()

    def meta_only(tensor, *args, **kwargs):
        assert tensor.is_meta, "random initialisation of real memory while loading a checkpoint"
        return tensor

    monkeypatch.setattr(torch.nn.init, "kaiming_uniform_", meta_only)
    monkeypatch.setattr(torch.nn.init, "kaiming_normal_", meta_only)
    for loader, name in ((weights.load_raft, weights.RAFT_FILE),
                         (weights.load_flow_completion, weights.FLOW_COMPLETION_FILE),
                         (weights.load_inpainter, weights.INPAINTER_FILE)):
        loaded = loader(det_weights_dir / name).state_dict()
        assert set(loaded) == set(built[name])
        for key, value in built[name].items():
            assert not loaded[key].is_meta and torch.equal(loaded[key], value), key


def test_deferred_models_match_and_are_placed_on_first_use(det_weights_dir):
    """defer=True: RAFT at once, the other two read on a thread and placed (and prepared) when first asked for."""
    import torch

    from propainter_wire.engines.propainter import ProPainterModels

    prepared = []
    now = ProPainterModels.load(det_weights_dir, torch.device("cpu"))
    later = ProPainterModels.load(det_weights_dir, torch.device("cpu"), defer=True,
                                  prepare=lambda name, net: prepared.append(name))
    assert prepared == ["raft"]
    for name in ("inpainter", "flow_completion", "raft"):
        a, b = getattr(now, name).state_dict(), getattr(later, name).state_dict()
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
        assert not any(p.requires_grad for p in getattr(later, name).parameters())
    assert prepared == ["raft", "inpainter", "flow_completion"]
    assert later.inpainter is later.inpainter  # placed once


def test_deferred_checkpoint_errors_surface_as_weights_errors(det_weights_dir, tmp_path):
    """A missing file is refused at once; a corrupt one where its network is first asked for."""
    import shutil

    import torch

    from propainter_wire.engines.propainter import ProPainterModels
    from propainter_wire.errors import WeightsError
    from propainter_wire.weights import INPAINTER_FILE

    broken = tmp_path / "w"
    shutil.copytree(det_weights_dir, broken)
    (broken / INPAINTER_FILE).write_bytes(b"not a checkpoint")
    models = ProPainterModels.load(broken, torch.device("cpu"), defer=True)
    assert models.raft is not None
    with pytest.raises(WeightsError, match="ProPainter.pth"):
        _ = models.inpainter
    (broken / INPAINTER_FILE).unlink()
    with pytest.raises(WeightsError, match="ProPainter.pth"):
        ProPainterModels.load(broken, torch.device("cpu"), defer=True)


def test_deferred_models_survive_their_folder_going_away(det_weights_dir, tmp_path):
    """The deferred checkpoints are opened by ``load``: a temporary weights folder may be removed at once
    (benchmarks built engines inside ``TemporaryDirectory`` and lost the later reads)."""
    import shutil

    import torch

    from propainter_wire.engines.propainter import ProPainterModels

    copy = tmp_path / "w"
    shutil.copytree(det_weights_dir, copy)
    models = ProPainterModels.load(copy, torch.device("cpu"), defer=True)
    shutil.rmtree(copy)
    expected = ProPainterModels.load(det_weights_dir, torch.device("cpu"))
    for name in ("inpainter", "flow_completion"):
        a, b = getattr(expected, name).state_dict(), getattr(models, name).state_dict()
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
