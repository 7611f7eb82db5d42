"""Issue 15 items 5 and 7: sizes refused before allocating (memory measured in a real process), the
analytic chain at T = 1e-12 answered at once, and a read-only install with a read-only HOME."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import spinsim as ss
from spinsim.limits import ResourceLimitError
from spinsim.solvers.analytic import heisenberg_chain

REPO = Path(__file__).resolve().parent.parent

_GROW = """
import resource, sys
base = None
import spinsim as ss
from spinsim.cli import main
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
{body}
print("grew_kib", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base)
"""


def _grown(body: str) -> tuple[list[str], str, int]:
    r = subprocess.run([sys.executable, "-c", _GROW.format(body=body)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    out = r.stdout.splitlines()
    return out, r.stderr, int(out[-1].split()[1]) * 1024


def test_a_huge_lattice_is_refused_before_allocating():
    out, _, grew = _grown("try:\n    ss.lattice('ising', (100000, 100000))\nexcept ValueError as e:\n"
                          "    print(type(e).__name__, e)")
    assert out[0].startswith("ResourceLimitError lattice (100000, 100000) (1e+10 sites) needs about"), out
    assert "available; the largest that fits: about" in out[0] and "per side in 2 dimensions" in out[0]
    assert grew < 50 * 2 ** 20, f"grew by {grew / 2 ** 20:.0f} MiB"


def test_sweep_L_100000_is_a_usage_error_before_allocating(tmp_path):
    out, err, grew = _grown(f"rc = main(['sweep', '--system', 'ising2d', '--L', '100000', '--T', '1:2:3', '--field', "
                            f"'0', '--out', {str(tmp_path / 's.h5')!r}])\nprint('rc', rc)")
    assert "rc 2" in out, (out, err)
    line = err.strip().splitlines()[-1]
    assert "spinsim sweep: error:" in line and "(100000, 100000)" in line and "the largest that fits" in line
    assert grew < 50 * 2 ** 20, f"grew by {grew / 2 ** 20:.0f} MiB"


def test_dense_systems_name_the_largest_N(monkeypatch):
    monkeypatch.setenv("SPINSIM_MEMORY_LIMIT", "1G")
    with pytest.raises(ResourceLimitError, match=r"SK model with N = 100000 sites.*N <= 5792"):
        ss.sherrington_kirkpatrick(100_000)
    with pytest.raises(ResourceLimitError, match=r"complete graph with N = 100000.*N <= 6688"):
        ss.complete_graph("ising", 100_000)
    assert ss.sherrington_kirkpatrick(200).n_sites == 200


def test_the_analytic_chain_at_T_1e_12_is_answered_at_once():
    """At T -> 0 the open O(n) chain is in its ground state: <E> = -sum_b J_b, C = (n - 1)/2 per bond
    (equipartition of the n - 1 transverse modes of each bond; Ising: 0)."""
    t0 = time.process_time()
    for n in (1, 2, 3, 64):
        ch = heisenberg_chain(n, [1e-12], N=10)
        assert ch["energy"][0] == pytest.approx(-9.0, rel=1e-9)
        assert ch["heat_capacity"][0] == pytest.approx(9 * (n - 1) / 2, rel=1e-6, abs=1e-9)
        assert np.isfinite(ch["log_Z"][0])
    H = ss.chain("heisenberg", 10, periodic=False)
    r = ss.solve(H, [1e-12, 1e-6, 1.0], method="analytic")
    assert r.energy[0] == pytest.approx(-0.9, rel=1e-9)
    assert time.process_time() - t0 < 30               # not a Python loop of 1e7 terms per value


@pytest.fixture
def read_only(tmp_path):
    """A copy of the spinsim package and a HOME, both read-only (a read-only bind mount as root,
    permissions otherwise)."""
    site, home = tmp_path / "site", tmp_path / "home"
    shutil.copytree(REPO / "spinsim", site / "spinsim", ignore=shutil.ignore_patterns("__pycache__", "*.nbi", "*.nbc"))
    home.mkdir()
    mounted = []
    for d in (site, home):
        if os.geteuid() == 0:
            r = subprocess.run(["mount", "--bind", "-o", "ro", str(d), str(d)], capture_output=True)
            if r.returncode != 0:
                pytest.skip("cannot make a read-only bind mount here")
            mounted.append(d)
        else:
            for root, dirs, files in os.walk(d):
                for x in dirs + files:
                    os.chmod(os.path.join(root, x), 0o555)
            os.chmod(d, 0o555)
    yield site, home
    for d in mounted:
        subprocess.run(["umount", str(d)], capture_output=True)


# compiles cached kernels afresh in an empty cache: the exact-enumeration ones (seconds), not the
# Monte Carlo loop (minutes); any disk-cached kernel exercises the cache locator
@pytest.mark.slow
def test_a_read_only_install_and_home_run_with_a_temporary_cache(read_only):
    site, home = read_only
    with pytest.raises(OSError):
        (site / "spinsim" / "kernels" / "probe").write_text("x")
    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_CACHE_DIR", "XDG_CACHE_HOME")}
    env.update(HOME=str(home), PYTHONDONTWRITEBYTECODE="1")
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import spinsim as ss; assert ss.__file__.startswith(sys.argv[1])\n"
            "r = ss.solve(ss.chain('ising', 6, periodic=False), [1.0], method='exact')\n"
            "print('ok', r.energy[0])")
    r = subprocess.run([sys.executable, "-W", "always", "-c", code, str(site)], capture_output=True, text=True,
                       env=env, timeout=600)
    assert r.returncode == 0 and r.stdout.startswith("ok"), r.stderr[-2000:]
    assert r.stderr.count("NumbaCacheWarning") == 1 and "for this process only" in r.stderr
