"""What the deploy checks need from a build folder: its fleetcore executables."""
import os


def binaries(build_dir, prefixes=("fleetcore-",), names=()):
    """{file name: path} of the executables built under build_dir whose name starts with
    one of `prefixes` or is one of `names` (the first found of each)."""
    found = {}
    for dirpath, _, files in os.walk(build_dir):
        if "CMakeFiles" in dirpath:
            continue
        for f in files:
            path = os.path.join(dirpath, f)
            if (f.startswith(prefixes) or f in names) and os.access(path, os.X_OK):
                found.setdefault(f, path)
    return found
