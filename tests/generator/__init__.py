"""Unit tests of the code generator (generator/tablium_gen).

Run from the repository root:
    /usr/bin/python3 -m unittest discover -s tests/generator -t . -q
Refresh the golden files after an intended change of the generated code:
    /usr/bin/python3 tests/generator/update_golden.py
"""
