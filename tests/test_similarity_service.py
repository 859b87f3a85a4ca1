"""The similarity service with the real MiniLM embedder: batching, one LRU cache, nearest-class snapping."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import numpy as np
import pytest

from reward_fns.similarity import Embedder, SimilarityService

PAIRS = [(f"the surgeon dissects tissue layer {i}", f"dissection of tissue plane {i % 7}") for i in range(64)]


class RecordingEmbedder:
    """The real embedder, recording what each encode call was given."""

    def __init__(self, inner: Embedder):
        self.inner = inner
        self.calls: list[list[str]] = []

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(list(texts))
        return self.inner.encode(texts)


def test_concurrent_calls_share_one_encode(embedder: Embedder) -> None:
    service = SimilarityService(embedder)

    async def body() -> list[float]:
        return list(await asyncio.gather(*(service.cosine(a, b) for a, b in PAIRS)))

    values = asyncio.run(body())
    assert service.encode_calls == 1
    left, right = embedder.encode([a for a, _ in PAIRS]), embedder.encode([b for _, b in PAIRS])
    expected = np.sum(left * right, axis=1)
    assert np.allclose(values, expected, atol=1e-5)


def test_max_batch_splits_and_flushes_without_waiting(embedder: Embedder) -> None:
    service = SimilarityService(embedder, max_batch=16, max_wait_ms=10_000)

    async def body() -> list[float]:
        return await service.cosines(PAIRS)

    start = time.monotonic()
    assert len(asyncio.run(body())) == 64
    assert service.encode_calls == 4 and time.monotonic() - start < 5


def test_repeated_texts_are_encoded_once(embedder: Embedder) -> None:
    recorder = RecordingEmbedder(embedder)
    service = SimilarityService(recorder)
    reference = "the grasper retracts the gallbladder"
    preds = ["grasper retracts gallbladder", "hook cauterizes", "grasper retracts gallbladder"]

    async def body() -> list[float]:
        return await service.cosines([(p, reference) for p in preds])

    values = asyncio.run(body())
    assert recorder.calls == [[preds[0], reference, preds[1]]]  # request order, each text once
    assert values[0] == pytest.approx(values[2]) and values[0] > values[1]


def test_lone_call_waits_at_most_the_window(embedder: Embedder) -> None:
    service = SimilarityService(embedder, max_wait_ms=5)

    async def body() -> float:
        start = time.monotonic()
        value = await service.cosine("clip the duct", "clip the duct")
        assert value == pytest.approx(1.0, abs=1e-4)
        return time.monotonic() - start

    assert asyncio.run(body()) < 1.0


def test_event_loop_keeps_running_while_encoding(embedder: Embedder) -> None:
    service = SimilarityService(embedder)
    long_pairs = [(" ".join(["suturing the mesh to the abdominal wall"] * 3) + str(i), "suture") for i in range(96)]

    async def body() -> int:
        ticks = 0
        done = False

        async def ticker() -> None:
            nonlocal ticks
            while not done:
                ticks += 1
                await asyncio.sleep(0.001)

        task = asyncio.create_task(ticker())
        await service.cosines(long_pairs)
        done = True
        await task
        return ticks

    assert asyncio.run(body()) >= 3 and service.encode_calls == 1


def test_created_outside_a_loop_and_used_from_several_loops(embedder: Embedder) -> None:
    service = SimilarityService(embedder)
    for loop_number in range(3):
        values = asyncio.run(service.cosines(PAIRS[8 * loop_number: 8 * loop_number + 8]))
        assert len(values) == 8
    assert service.encode_calls == 3


def test_seen_texts_are_not_encoded_again_and_cache_is_bounded(embedder: Embedder) -> None:
    recorder = RecordingEmbedder(embedder)
    service = SimilarityService(recorder, cache_size=20)
    first = asyncio.run(service.cosines(PAIRS[:8]))
    again = asyncio.run(service.cosines(PAIRS[:8]))
    assert again == pytest.approx(first, abs=1e-6) and service.encode_calls == 1
    asyncio.run(service.cosines(PAIRS[8:40]))  # 32 new left texts evict the oldest entries
    assert len(service._vectors) == 20
    asyncio.run(service.cosines(PAIRS[:1]))
    assert service.encode_calls == 3 and PAIRS[0][0] in recorder.calls[-1]


class BrokenEncoder:
    def encode(self, texts: Sequence[str]) -> np.ndarray:
        raise RuntimeError("encoder exploded")


def test_encoder_errors_reach_every_waiter() -> None:
    service = SimilarityService(BrokenEncoder())

    async def body() -> list[object]:
        return await asyncio.gather(*(service.cosine("a", "b") for _ in range(4)), return_exceptions=True)

    results = asyncio.run(body())
    assert all(isinstance(r, RuntimeError) for r in results)


def test_bad_settings_are_rejected(embedder: Embedder) -> None:
    with pytest.raises(ValueError):
        SimilarityService(embedder, max_batch=0)


def test_nearest_takes_the_most_similar_candidate_first_on_ties(embedder: Embedder) -> None:
    service = SimilarityService(embedder)
    classes = ("cutting", "tying", "suturing")

    async def body() -> list[int]:
        return list(await asyncio.gather(
            service.nearest("the surgeon is tying a knot", classes), service.nearest("cut", classes),
            service.nearest("tying", ("tying", "tying"))))

    assert asyncio.run(body()) == [1, 0, 0] and service.encode_calls == 1


def test_nearest_needs_candidates(embedder: Embedder) -> None:
    with pytest.raises(ValueError, match="candidate"):
        asyncio.run(SimilarityService(embedder).nearest("x", ()))


def test_model_loads_on_first_text_only() -> None:
    lazy = Embedder()
    SimilarityService(lazy)
    assert lazy._model is None
    assert lazy.encode(["clip"]).shape == (1, 384) and lazy._model is not None
