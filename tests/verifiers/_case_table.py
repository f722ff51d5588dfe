"""The harness of the math case tables: `(name, gold, response, expected)` rows, judged in one
batch by the module's `verifier` fixture, one test per row named by the row.

    verdicts, test_case_names_are_unique, test_case = case_table_tests(CASES)
"""

from __future__ import annotations

import pytest


def case_table_tests(cases: list[tuple[str, str, str, bool]]):
    @pytest.fixture(scope="module")
    def verdicts(verifier):
        out = verifier.verify_pairs([c[1] for c in cases], [c[2] for c in cases])
        return {c[0]: v for c, v in zip(cases, out, strict=True)}

    def test_case_names_are_unique():
        assert len({c[0] for c in cases}) == len(cases)

    @pytest.mark.parametrize(("gold", "response", "expected"), [c[1:] for c in cases], ids=[c[0] for c in cases])
    def test_case(verdicts, request, gold, response, expected):
        vd = verdicts[request.node.callspec.id]
        assert vd.correct is expected, f"{gold!r} vs {response!r}: {vd}"

    return verdicts, test_case_names_are_unique, test_case
