"""Overlapped host <-> device copies (runtime/transfer.py) and the feature cache's look-ahead."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from propainter_wire.runtime.transfer import HostReturns, Prefetcher

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


class _ListSource:
    """A disk-array stand-in: indexable by a list of ints, returns a new CPU tensor."""

    def __init__(self, data: torch.Tensor) -> None:
        self.data = data
        self.reads: list[list[int]] = []

    def __getitem__(self, index):
        self.reads.append(list(index))
        return self.data[list(index)].clone()


def _sources():
    gen = torch.Generator().manual_seed(0)
    frames = torch.rand(9, 3, 8, 10, generator=gen).half()
    masks = torch.rand(9, 1, 8, 10, generator=gen) > 0.5
    return frames, masks


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=CUDA)])
def test_prefetcher_returns_the_requested_rows(device):
    frames, masks = _sources()
    disk = _ListSource(frames.float())
    feeder = Prefetcher(torch.device(device))
    try:
        ticket = feeder.submit({"frames": (frames, [4, 1, 7]), "masks": (masks, [0, 8]), "disk": (disk, [2, 3]),
                                "none": (frames, [])})
        got = feeder.take(ticket)
    finally:
        feeder.close()
    assert set(got) == {"frames", "masks", "disk", "none"}
    assert all(t.device.type == device for t in got.values())
    assert torch.equal(got["frames"].cpu(), frames[[4, 1, 7]]) and got["frames"].dtype == torch.float16
    assert torch.equal(got["masks"].cpu(), masks[[0, 8]]) and got["masks"].dtype == torch.bool
    assert torch.equal(got["disk"].cpu(), frames[[2, 3]].float()) and disk.reads == [[2, 3]]
    assert got["none"].shape == (0, 3, 8, 10)


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=CUDA)])
@pytest.mark.parametrize("rows", [[3, 4, 5], [5, 2, 2, 8], [6], []])
def test_prefetcher_gathers_rows_of_a_source_on_the_device_as_new_tensors(device, rows):
    frames, _ = _sources()
    on_device = frames.to(device)
    feeder = Prefetcher(torch.device(device))
    try:
        got = feeder.take(feeder.submit({"frames": (on_device, rows)}))["frames"]
    finally:
        feeder.close()
    assert torch.equal(got.cpu(), frames[rows]) and got.is_contiguous()
    got.fill_(0)  # a copy: the source is untouched
    assert torch.equal(on_device.cpu(), frames)


@CUDA
def test_prefetcher_overlaps_and_the_rows_survive_later_allocations():
    """Rows fetched on the side stream stay valid while the compute stream allocates and writes."""
    frames, _ = _sources()
    feeder = Prefetcher(torch.device("cuda"))
    try:
        tickets = [feeder.submit({"x": (frames, [i, (i + 1) % 9])}) for i in range(5)]
        for i, ticket in enumerate(tickets):
            rows = feeder.take(ticket)["x"]
            scratch = torch.full((1 << 20,), 7.0, device="cuda")  # reuse pressure on the caching allocator
            assert torch.equal(rows.cpu(), frames[[i, (i + 1) % 9]])
            del scratch
        # a source already on the device is gathered there
        on_gpu = frames.cuda()
        assert torch.equal(feeder.take(feeder.submit({"x": (on_gpu, [3])}))["x"], on_gpu[[3]])
    finally:
        feeder.close()


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=CUDA)])
def test_host_returns_hand_over_every_copy_once(device):
    seen = {}
    returns = HostReturns(lambda key, tensor: seen.__setitem__(key, tensor.numpy().copy()))
    values = {i: torch.full((4, 5, 3), i, dtype=torch.uint8, device=device) for i in range(6)}
    for i, v in values.items():
        returns.put(i, v)
    returns.deliver()
    returns.deliver(wait=True)
    assert not returns.pending
    assert sorted(seen) == list(range(6))
    for i, array in seen.items():
        assert isinstance(array, np.ndarray) and array.dtype == np.uint8 and (array == i).all()


def test_feature_cache_keys_after_predicts_get():
    """The look-ahead that decides which frames to prefetch agrees with what ``get`` leaves cached."""
    from propainter_wire.engines.propainter.synthesis import _FeatureCache

    rng = np.random.default_rng(0)
    cache = _FeatureCache(max_bytes=5, bytes_per_frame=1)
    for _ in range(40):
        ids = [int(i) for i in rng.choice(12, size=int(rng.integers(1, 8)), replace=False)]
        predicted = cache.keys_after(ids)
        cache.get(ids, lambda missing: torch.zeros(len(missing), 1))
        assert set(cache.store) == predicted


def test_feature_cache_frames_do_not_pin_their_batch():
    """Each cached frame owns its memory: evicting the others of its encode batch frees theirs (a view
    would keep the whole batch alive, as reference frames did on long clips: GPU peak +13 % at 240 frames)."""
    from propainter_wire.engines.propainter.synthesis import _FeatureCache

    cache = _FeatureCache(max_bytes=2, bytes_per_frame=1)
    batch = torch.arange(4 * 3, dtype=torch.float32).view(4, 3)
    feats = cache.get([0, 1, 2, 3], lambda missing: batch[: len(missing)])
    assert torch.equal(feats, batch)
    assert sorted(cache.store) == [0, 1, 2, 3]  # (capacity yields to a window's own frames)
    cache.get([2, 5], lambda missing: torch.full((len(missing), 3), 9.0))
    assert sorted(cache.store) == [2, 5]
    for i, feat in cache.store.items():
        assert feat.untyped_storage().nbytes() == feat.nbytes, f"frame {i} holds more than its own features"
    assert torch.equal(cache.store[2], batch[2])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.uint8, torch.bool])
def test_take_rows_matches_index_select(dtype):
    from propainter_wire.runtime.transfer import take_rows

    source = (torch.rand(7, 3, 5, 4) * 200).to(dtype)
    rows = [5, 0, 5, 2]
    out = torch.empty((4, 3, 5, 4), dtype=dtype)
    assert take_rows(source, rows, out) is out
    assert torch.equal(out, source.index_select(0, torch.tensor(rows)))
    assert torch.equal(take_rows(source, [], torch.empty((0, 3, 5, 4), dtype=dtype)), source[:0])


def test_take_rows_refuses_bad_rows_and_layouts():
    from propainter_wire.runtime.transfer import take_rows

    source = torch.rand(4, 2, 3)
    with pytest.raises(IndexError):
        take_rows(source, [4], torch.empty(1, 2, 3))
    with pytest.raises(IndexError):
        take_rows(source, [-1], torch.empty(1, 2, 3))
    with pytest.raises(ValueError):
        take_rows(source.transpose(1, 2), [0], torch.empty(1, 3, 2))
    with pytest.raises(ValueError):
        take_rows(source, [0], torch.empty(1, 2, 3, dtype=torch.float16))


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=CUDA)])
def test_upload_and_upload_into_copy_the_values(device):
    from propainter_wire.runtime.transfer import upload, upload_into

    frames, masks = _sources()
    moved = upload(frames[2:5], torch.device(device))  # a view: copied as it is, not as its base
    assert moved.device.type == device and torch.equal(moved.cpu(), frames[2:5])
    target = torch.zeros(9, 1, 8, 10, dtype=torch.bool, device=device)
    upload_into(target[3:7], masks[3:7])
    if device == "cuda":
        torch.cuda.current_stream().synchronize()
    assert torch.equal(target[3:7].cpu(), masks[3:7]) and not target[:3].any() and not target[7:].any()
    assert upload(moved, torch.device(device)) is moved  # already there: nothing copied


@CUDA
def test_upload_does_not_wait_for_queued_work_and_the_staging_survives():
    from propainter_wire.runtime.transfer import upload

    frames = torch.arange(4 * 256 * 256, dtype=torch.float32).reshape(4, 256, 256)
    busy = torch.randn(4096, 4096, device="cuda")
    for _ in range(20):  # queued work the copy must be ordered after, not waited for by the host
        busy = busy @ busy / 4096
    moved = upload(frames, torch.device("cuda"))
    for _ in range(8):  # reuse pressure on the page-locked host cache while the copy may be pending
        upload(torch.full_like(frames, -1.0), torch.device("cuda"))
    assert torch.equal(moved.cpu(), frames)
