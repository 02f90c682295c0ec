"""The README's usage example runs and prints what its comments say."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

README = Path(__file__).parent.parent / "README.md"


def test_readme__usage_example_runs_as_documented() -> None:
    text = README.read_text("utf-8")
    engine_part = text[text.index("## The engine alone") :]  # the client's examples need a service
    match = re.search(r"```python\n(.*?)```", engine_part, re.DOTALL)
    assert match is not None
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(match.group(1), str(README), "exec"), {})
    result, fields = printed.getvalue().splitlines()
    assert result.startswith("{'flag_key': 'checkout-redesign', 'variant': 'on', 'value': True,")
    assert "'reason': 'RULE_MATCH', 'rule_id': 'beta'" in result
    assert "'bucket': 0.5176603947766125, 'flag_version': 3" in result
    assert fields == "['key', 'rules[0].serve', 'rules[0].when.op']"
