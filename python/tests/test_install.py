"""cmake/python_sitedir.py, which `cmake --install` asks where the package
goes: the site directory this Python searches for a prefix it knows, else
PREFIX/lib/python3.X/site-packages with status 3 (the install then says to
set PYTHONPATH)."""
import importlib.util
import os
import shutil
import subprocess
import sys

import pytest


def sitedir(source_dir, prefix):
    r = subprocess.run([sys.executable, os.path.join(source_dir, "cmake", "python_sitedir.py"), prefix],
                       stdout=subprocess.PIPE, text=True)
    return r.returncode, r.stdout.strip()


def test_known_prefix_gives_a_directory_on_sys_path(source_dir):
    rc, d = sitedir(source_dir, sys.prefix)
    assert rc == 0 and d in sys.path and d.startswith(os.path.join(sys.prefix, "lib"))
    if sys.prefix == "/usr" and os.path.exists("/usr/lib/python3/dist-packages"):  # Debian
        assert d == "/usr/lib/python3/dist-packages"
        rc, d = sitedir(source_dir, "/usr/local")
        assert rc == 0 and d == "/usr/local/lib/python3.%d/dist-packages" % sys.version_info[1]


def test_other_prefix_says_so(source_dir, tmp_path):
    rc, d = sitedir(source_dir, str(tmp_path))
    assert rc == 3
    assert d == str(tmp_path / "lib" / ("python3.%d" % sys.version_info[1]) / "site-packages")


def test_version_is_the_librarys():
    """The package's version is the release's (0.2.0's said 0.1.0)."""
    want = os.environ.get("JC_VERSION")
    if not want:
        pytest.skip("JC_VERSION is not set (run the tests from ctest)")
    import jobcache
    assert jobcache.__version__ == want


def test_pip_installs_it_offline_into_a_venv(source_dir, all_cache, tmp_path):
    """`pip install ./python` (issue 25), proved offline: into a venv made
    with --system-site-packages, --no-index --no-build-isolation, from a
    copy of the source (pip builds in the tree it is given). The installed
    package is the one imported outside the source tree, has its version
    and dependencies, reads a cache, and uninstalls."""
    for mod in ("venv", "pip", "setuptools", "wheel"):
        if importlib.util.find_spec(mod) is None:
            pytest.skip("%s is not installed (Debian: python3-pip python3-setuptools python3-wheel)" % mod)
    src = tmp_path / "src"
    shutil.copytree(os.path.join(source_dir, "python"), src, ignore=shutil.ignore_patterns("__pycache__"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", "--system-site-packages", str(venv)], check=True)
    py = str(venv / "bin" / "python")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PIP_INDEX_URL", "PIP_FIND_LINKS")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"

    def run(*args):
        r = subprocess.run(args, cwd=str(tmp_path), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True)
        assert r.returncode == 0, "%s: %s" % (" ".join(args), r.stdout)
        return r.stdout

    run(py, "-m", "pip", "install", "--no-index", "--no-build-isolation", str(src))
    probe = ("import jobcache, sys; c = jobcache.open(sys.argv[1]); "
             "print(jobcache.__file__); print(jobcache.__version__); print(len(list(c.entries())))")
    file, version, n = run(py, "-c", probe, all_cache).split()
    assert file.startswith(str(venv)), file  # the installed copy, not the source tree
    import jobcache
    assert version == jobcache.__version__
    assert int(n) > 0
    show = run(py, "-m", "pip", "show", "jobcache")
    assert "Name: jobcache" in show and "Requires: msgpack" in show, show
    run(py, "-m", "pip", "uninstall", "-y", "jobcache")
    r = subprocess.run([py, "-c", "import jobcache"], cwd=str(tmp_path), env=env, stderr=subprocess.PIPE)
    assert r.returncode != 0
