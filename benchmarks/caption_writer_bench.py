"""Benchmark the caption stage against two local fake models with fixed latency.

    python benchmarks/caption_writer_bench.py [--items 320] [--latency 0.5] [--concurrency 32] [--variants gpt,gemini]

Each fake model (testbed.fake_caption_models, the project's OpenAI-compatible test server)
runs in its own process and answers every request after `--latency` seconds; every caption is
accepted in round 1, so a job (one record, one variant) is one write and one review. The bound:
each model serves `concurrency` requests at a time, a job needs one request on each model, so at
most 2 * concurrency / (2 * latency) jobs/s. The stage runs in-process through its CLI (no cache);
the figure reported is jobs/s and its fraction of that bound, with the stage's own CPU time per
job and the host's load average (on a shared 2-core host the neighbours' load moves the wall time).
"""

from __future__ import annotations

import argparse
import copy
import json
import multiprocessing as mp
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from data_preprocess.caption_writer import cli
from testbed.toy_caption_facts import mixed_records, write_facts


def _serve(model: str, latency: float, ports: mp.Queue) -> None:  # type: ignore[type-arg]
    import asyncio

    from testbed.fake_caption_models import FakeCaptionModel

    async def main() -> None:
        async with FakeCaptionModel(model, latency_s=latency) as server:
            ports.put(server.port)
            await asyncio.Event().wait()

    asyncio.run(main())


def _records(root: Path, n: int) -> list[dict]:
    base = mixed_records(root)
    out = []
    for k in range(n):
        record = copy.deepcopy(base[k % len(base)])
        record["metadata"]["video_id"] += f"-{k}"  # distinct facts -> distinct requests
        record["caption_facts"]["clip"]["end"] += k * 1e-3
        out.append(record)
    return out


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--items", type=int, default=320)
    p.add_argument("--latency", type=float, default=0.5)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--variants", default="gpt,gemini")
    args = p.parse_args(argv)
    ctx = mp.get_context("spawn")
    ports: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
    servers = [ctx.Process(target=_serve, args=(name, args.latency, ports), daemon=True)
               for name in ("bench-a", "bench-b")]
    for proc in servers:
        proc.start()
    try:
        port_a, port_b = ports.get(timeout=60), ports.get(timeout=60)
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            facts = write_facts(root, _records(root, args.items))
            start, cpu_start = time.perf_counter(), time.process_time()
            outcomes = cli.run(["--input", str(facts), "--out", str(root / "out.json"),
                                "--gen-url", f"http://127.0.0.1:{port_a}/v1", "--gen-model", "bench-a",
                                "--val-url", f"http://127.0.0.1:{port_b}/v1", "--val-model", "bench-b",
                                "--variants", args.variants, "--concurrency", str(args.concurrency),
                                "--no-progress"])
            wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    finally:
        for proc in servers:
            proc.terminate()
            proc.join(timeout=10)
    jobs = len(outcomes)
    bound = args.concurrency / args.latency  # 2 models x C in flight / (2 requests x latency) per job
    result = {"items": args.items, "jobs": jobs, "accepted": sum(o.status == "accepted" for o in outcomes),
              "latency_s": args.latency, "concurrency": args.concurrency, "wall_s": round(wall, 2),
              "jobs_per_s": round(jobs / wall, 2), "bound_jobs_per_s": bound,
              "fraction_of_bound": round(jobs / wall / bound, 3),
              "client_cpu_s": round(cpu, 2), "client_cpu_ms_per_job": round(1000 * cpu / max(jobs, 1), 2),
              "load_average_1min": round(os.getloadavg()[0], 2)}
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
