"""The kinds' registry (signoff.kinds): every list of kinds comes from it, and a kind another
installed package registers through the `signoff.kinds` entry point group is a kind like the
others: in `--only`, in the claims file, in a suite, dispatched to its check."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from signoff import checks, kinds
from signoff.claims import ClaimsFile
from signoff.claims.model import ClaimRef
from signoff.cli import _parser

FAKE_MODULE = """
from pydantic import BaseModel

from signoff.kinds import Kind
from signoff.verdict import Verdict


class FakeClaim(BaseModel):
    name: str
    answer: int


def check(ctx, ref):
    return Verdict(ref.id, ref.kind, "holds", measured={"answer": ref.spec.answer})


KIND = Kind("fake", "fakes", "signoff_fake_kind:check", model=FakeClaim)
"""


@pytest.fixture
def fresh_registry() -> Iterator[None]:
    kinds.all_kinds.cache_clear()
    yield
    kinds.all_kinds.cache_clear()
    sys.modules.pop("signoff_fake_kind", None)
    sys.modules.pop("taken", None)


def _install_fake(folder: Path, monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    """An installed distribution as pip leaves one: a module and its dist-info."""
    (folder / "signoff_fake_kind.py").write_text(FAKE_MODULE)
    info = folder / "signoff_fake_kind-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: signoff-fake-kind\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[signoff.kinds]\nfake = {value}\n")
    monkeypatch.syspath_prepend(str(folder))


def _file(tmp_path: Path, extra: dict[str, Any]) -> ClaimsFile:
    data = {"path": str(tmp_path / "signoff.toml"), "target": {"name": "t"}, **extra}
    return ClaimsFile.model_validate(data, context={"base_dir": tmp_path})


def test_every_builtin_kind_has_its_field_in_the_claims_model() -> None:
    fields = set(ClaimsFile.model_fields)
    assert [k.section for k in kinds.BUILTIN if k.section not in fields] == []


def test_words_of_only_are_kinds_or_sections(fresh_registry: None) -> None:
    assert kinds.from_word("imports") == "import"
    assert kinds.from_word("timeout") == "timeout"
    assert kinds.from_word("sql") == "sql"
    with pytest.raises(ValueError, match="unknown claim kind 'grpc'; expected one of import,"):
        kinds.from_word("grpc")


def test_a_kind_without_a_probe_is_an_error_not_a_skip(
    fresh_registry: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    unprobed = kinds.Kind("grpc", "grpc", None)
    monkeypatch.setattr(kinds, "all_kinds", lambda: (*kinds.BUILTIN, unprobed))
    ref = ClaimRef("grpc:chat", "grpc", None, "grpc[0]")
    verdict = checks.check(None, ref)  # type: ignore[arg-type]  # no probe: ctx is never read
    assert (verdict.status, verdict.evidence) == (
        "error",
        "not checked: no grpc probe in this version",
    )


def test_a_kind_registered_by_an_entry_point_is_a_kind_like_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_registry: None
) -> None:
    assert "fake" not in kinds.names()
    kinds.all_kinds.cache_clear()
    _install_fake(tmp_path, monkeypatch, "signoff_fake_kind:KIND")

    assert kinds.names()[-1] == "fake"
    assert kinds.from_word("fakes") == "fake"
    assert "fake" in kinds.in_suite(kinds.OTHER_SUITE)
    run = _parser()._subparsers._group_actions[0].choices["run"]  # type: ignore[union-attr]
    only = next(a for a in run._actions if "--only" in a.option_strings)
    assert only.help is not None and only.help.endswith("load, websocket, call, sql, fake")

    claims = _file(tmp_path, {"fakes": [{"name": "life", "answer": 42}]})
    (ref,) = claims.claims()
    assert (ref.id, ref.kind, ref.section_key) == ("fake:life", "fake", "fakes[0]")
    verdict = checks.check(None, ref)  # type: ignore[arg-type]  # the fake's check ignores it
    assert (verdict.id, verdict.status, verdict.measured) == ("fake:life", "holds", {"answer": 42})


def test_an_entry_point_that_is_no_kind_or_takes_a_name_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_registry: None
) -> None:
    _install_fake(tmp_path, monkeypatch, "signoff_fake_kind:check")
    with pytest.raises(TypeError, match=r"is a function, not a signoff\.kinds\.Kind"):
        kinds.all_kinds()
    kinds.all_kinds.cache_clear()
    (tmp_path / "taken.py").write_text(
        "from signoff.kinds import Kind\nKIND = Kind('timeout', 'mine', None)\n"
    )
    (tmp_path / "signoff_fake_kind-1.0.dist-info" / "entry_points.txt").write_text(
        "[signoff.kinds]\ntaken = taken:KIND\n"
    )
    with pytest.raises(ValueError, match=r"the kind 'timeout' .* is taken"):
        kinds.all_kinds()
