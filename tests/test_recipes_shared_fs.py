"""Multi-node runs share OUTPUT_DIR and the judge cache over a shared filesystem (NFS): the SQLite
judge cache must not use WAL (its shared-memory index does not work across NFS clients); with the
rollback journal, concurrent writers from several processes only wait on file locks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from reward_fns.judge.cache import JudgeCache

WRITER = """
import sys
from reward_fns.judge.cache import JudgeCache
cache = JudgeCache(sys.argv[1])
for i in range(150):
    cache.put(f"{sys.argv[2]}-{i}", {"score": i})
cache.close()
"""


def test_judge_cache_uses_no_wal(tmp_path):
    cache = JudgeCache(tmp_path / "judge.sqlite")
    cache.put("k", {"score": 3})
    assert cache._conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    assert not Path(f"{cache.path}-wal").exists() and not Path(f"{cache.path}-shm").exists()
    cache.close()


def test_concurrent_processes_share_the_cache(tmp_path):
    path = tmp_path / "judge.sqlite"
    repo = Path(__file__).resolve().parents[1]
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), f"w{n}"], cwd=repo,
                              stderr=subprocess.PIPE, text=True) for n in range(3)]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert "database is locked" not in err
    cache = JudgeCache(path)
    assert len(cache) == 450 and cache.get("w2-149") == {"score": 149}
    cache.close()
