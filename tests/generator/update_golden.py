#!/usr/bin/python3
"""Rewrites tests/generator/golden/<name>/<name>.{h,c} from the fixtures in support.FIXTURES.

Run after an intended change of the generated code, review the diff, commit:
    /usr/bin/python3 tests/generator/update_golden.py
"""
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import support  # noqa: E402


def main():
    changed = 0
    with tempfile.TemporaryDirectory(prefix="tablium-golden-") as tmp:
        for name, rel_input in support.FIXTURES:
            files = support.generate(name, rel_input, tmp)
            dest = os.path.join(support.GOLDEN_DIR, name)
            os.makedirs(dest, exist_ok=True)
            for fname, path in support.golden_files(name).items():
                new = files[fname]
                old = None
                if os.path.exists(path):
                    with open(path, "rb") as f:
                        old = f.read()
                if old != new:
                    with open(path, "wb") as f:
                        f.write(new)
                    changed += 1
                    print("updated %s" % os.path.relpath(path, support.REPO))
        # golden folders whose fixture is gone
        known = {name for name, _ in support.FIXTURES}
        if os.path.isdir(support.GOLDEN_DIR):
            for d in sorted(os.listdir(support.GOLDEN_DIR)):
                if d not in known and os.path.isdir(os.path.join(support.GOLDEN_DIR, d)):
                    shutil.rmtree(os.path.join(support.GOLDEN_DIR, d))
                    changed += 1
                    print("removed %s" % os.path.relpath(os.path.join(support.GOLDEN_DIR, d),
                                                         support.REPO))
    print("golden files: %d changed" % changed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
