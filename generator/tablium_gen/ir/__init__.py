"""Stage 2: the intermediate representation (validators, C types, names)."""
