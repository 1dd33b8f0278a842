"""cmake/python_sitedir.py, which `cmake --install` asks where the package
goes: the site directory this Python searches for a prefix it knows, else
PREFIX/lib/python3.X/site-packages with status 3 (the install then says to
set PYTHONPATH)."""
import os
import subprocess
import sys


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
