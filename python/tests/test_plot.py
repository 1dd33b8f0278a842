"""examples/plot_sweep.py on a cache of the demo sweep written in this run:
it runs headless, writes a PNG, and its means are the demo's own."""
import os
import struct
import subprocess
import sys

import pytest

pytest.importorskip("pandas")
pytest.importorskip("matplotlib")


def test_plot_sweep_writes_png(sweep, source_dir, tmp_path):
    env = dict(os.environ, JOBCACHE_PATH=str(tmp_path / "jobcache.db"))
    env.pop("DISPLAY", None)
    env.pop("MPLBACKEND", None)
    out = subprocess.run([sweep, "3", "1"], env=env, cwd=tmp_path, check=True,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True).stdout
    # The demo's own table: R0 and the mean final size, to 3 decimals.
    table = {float(r0): float(size) for r0, size, *_ in
             (line.split() for line in out.splitlines()[1:])}
    assert len(table) == 8
    png = tmp_path / "out.png"
    script = os.path.join(source_dir, "examples", "plot_sweep.py")
    r = subprocess.run([sys.executable, script, env["JOBCACHE_PATH"], "-o", str(png)], env=env,
                       check=True, stdout=subprocess.PIPE, text=True)
    assert r.stdout.endswith("wrote %s\n" % png)
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert width >= 600 and height >= 400 and len(data) > 20000

    sys.path.insert(0, os.path.join(source_dir, "examples"))
    try:
        import plot_sweep
    finally:
        sys.path.pop(0)
    import jobcache
    with jobcache.open(env["JOBCACHE_PATH"]) as c:
        s = plot_sweep.summarize(c)
    assert list(s["count"]) == [3] * 8
    means = {round(r0, 2): m for r0, m in zip(s["R0"], s["mean"])}
    assert sorted(means) == sorted(table)
    for r0, m in means.items():  # the demo prints 3 decimals
        assert abs(m - table[r0]) <= 0.0005 + 1e-9, (r0, m, table[r0])
    assert plot_sweep.final_size(2.0) == pytest.approx(0.7968, abs=1e-4)
