"""The type stubs list exactly what the extension exports, so editors and type checkers see
the real native API."""

from __future__ import annotations

import ast
import os

from grpo_fast import _native

STUB = os.path.join(os.path.dirname(_native.__file__), "_native.pyi")


def test_every_export_has_a_stub_and_every_stub_exists():
    tree = ast.parse(open(STUB).read())
    stubbed = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            stubbed.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            stubbed.add(node.target.id)
    exported = {n for n in dir(_native) if not n.startswith("_")} | {"__version__"}
    helper_types = {n for n in stubbed if n.endswith("Dict")}
    assert exported - stubbed == set(), "exported but not in _native.pyi"
    assert stubbed - helper_types - exported == set(), "stubbed but not exported"


def test_version_is_the_installed_package_version():
    from importlib.metadata import version

    import grpo_fast

    assert grpo_fast.__version__ == version("grpo-fast")
