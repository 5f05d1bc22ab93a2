"""docs/control.md shows test_example_psu_driver.py whole: the two stay the same."""

import os
import re

HERE = os.path.dirname(os.path.abspath(__file__))
DOC = os.path.join(HERE, "..", "..", "docs", "control.md")
NAME = "python/tests/test_example_psu_driver.py"


def test_the_documented_example_is_the_tested_file():
    with open(DOC) as f:
        doc = f.read()
    m = re.search(r"<!-- begin %s -->\n```python\n(.*?)```\n<!-- end %s -->" % (NAME, NAME), doc,
                  re.S)
    assert m, f"docs/control.md has no block for {NAME}"
    with open(os.path.join(HERE, "test_example_psu_driver.py")) as f:
        assert m.group(1) == f.read(), f"docs/control.md shows another {NAME}: copy it again"
