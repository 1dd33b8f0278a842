"""Fixtures of the Python reader's tests. ctest (tests/CMakeLists.txt) sets
JC_PY_WRITER (tests/py_cache_writer.c), JC_SWEEP (examples/sweep.c),
JC_TEST_DATA_DIR and JC_SOURCE_DIR; run by hand, the tests that need them
are skipped with that reason. test_pg.py also needs JC_TEST_PG, the
directory of the tests' PostgreSQL server (tests/pg_server.sh)."""
import os
import shutil
import subprocess

import pytest


def _env_path(name):
    p = os.environ.get(name)
    if not p:
        pytest.skip("%s is not set (run the tests from ctest)" % name)
    return p


@pytest.fixture(scope="session")
def writer():
    return _env_path("JC_PY_WRITER")


@pytest.fixture(scope="session")
def all_cache(writer, tmp_path_factory):
    """A closed cache with every value type, written by the C library."""
    path = str(tmp_path_factory.mktemp("all") / "all.jobcache")
    subprocess.run([writer, "all", path], check=True)
    return path


@pytest.fixture
def all_copy(all_cache, tmp_path):
    """A private copy of all_cache, to be changed by a test."""
    path = str(tmp_path / "copy.jobcache")
    shutil.copyfile(all_cache, path)
    return path


@pytest.fixture(scope="session")
def v1_file():
    return os.path.join(_env_path("JC_TEST_DATA_DIR"), "v0.1.0.jobcache")


@pytest.fixture(scope="session")
def source_dir():
    return _env_path("JC_SOURCE_DIR")


@pytest.fixture(scope="session")
def sweep():
    return _env_path("JC_SWEEP")
