"""tests/mutations.py stays runnable: every deliberate bug still applies to the code as it is, and every test named
to catch it exists. (Whether the tests do catch it is what `python tests/mutations.py` checks, in minutes.)"""

import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("mutation_list", ROOT / "tests" / "mutations.py")
mutation_list = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(mutation_list)
MUTATIONS = mutation_list.MUTATIONS


def test_mutation_names_are_unique():
    names = [m.name for m in MUTATIONS]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)


@pytest.mark.parametrize("m", MUTATIONS, ids=lambda m: m.name)
def test_each_mutation_applies_and_names_existing_tests(m):
    text = (ROOT / m.file).read_text()
    assert text.count(m.old) == 1, f"{m.name}: its old text occurs {text.count(m.old)} times in {m.file}, not once"
    assert m.tests, f"{m.name}: no test is named to catch it"
    for node in m.tests:
        path, _, rest = node.partition("::")
        func = re.split(r"[\[:]", rest, maxsplit=1)[0]
        assert re.search(rf"^def {re.escape(func)}\(", (ROOT / path).read_text(), re.M), f"{m.name}: no {node}"
