"""Prints the directory where the running Python finds pure-Python packages
installed under PREFIX (argv[1]): for Debian's python3, /usr/local gives
/usr/local/lib/python3.X/dist-packages and /usr gives
/usr/lib/python3/dist-packages. For a prefix this Python does not search
(/opt/jobcache), prints PREFIX/lib/python3.X/site-packages and exits with
status 3, so that the installer can say PYTHONPATH is needed."""
import os
import site
import sys
import sysconfig

prefix = os.path.normpath(os.path.abspath(sys.argv[1]))
for d in site.getsitepackages():
    # The site directory of exactly this prefix: /usr's is /usr/lib/...,
    # never /usr/local/lib/...
    if os.path.normpath(d).startswith(os.path.join(prefix, "lib") + os.sep):
        print(d)
        sys.exit(0)
print(sysconfig.get_path("purelib", "posix_prefix", vars={"base": prefix, "platbase": prefix}))
sys.exit(3)
