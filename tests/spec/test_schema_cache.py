"""A spec the schema check found clean is not checked again; problems are always found anew, exactly."""

from __future__ import annotations

import ast
import os
import subprocess
import sys

from cli_runner import REPO, saxctl

from reconciler.spec import schema_cache

TUTORIAL = REPO / "specs" / "gptj-v5e-2x2.yaml"
GPTJ = {"GPTJ_CHECKPOINT": "/nonexistent"}


def _validate(*paths, cache) -> tuple:
    ran = saxctl("validate", *map(str, paths), env={**GPTJ, "SAXCTL_CACHE_DIR": str(cache)})
    return ran.code, ran.out, ran.err


def _entries(cache) -> list[str]:
    folder = cache / "schema-clean"
    return sorted(os.listdir(folder)) if folder.is_dir() else []


def test_a_clean_spec_is_remembered_and_a_changed_one_checked_again_with_the_same_problems(tmp_path):
    cache = tmp_path / "cache"
    spec = tmp_path / "spec.yaml"
    spec.write_text(TUTORIAL.read_text())
    assert _validate(spec, cache=cache)[0] == 0
    assert len(_entries(cache)) == 1
    assert _validate(spec, cache=cache)[0] == 0
    assert len(_entries(cache)) == 1, "the same content has the same key"

    # Wrong types, an unknown field, a value out of range: what the schema finds, as it finds it without a cache.
    spec.write_text(TUTORIAL.read_text().replace("count: 2", "count: 2.0").replace("replicas: 1\n", "replicas: 0\n", 1)
                    .replace("releaseChannel: RAPID", "releaseChanel: RAPID"))
    cached = _validate(spec, cache=cache)
    assert cached[0] == 3
    assert cached == _validate(spec, cache="off")
    assert "cluster.cpuNodes.count: expected an integer, got 2.0" in cached[1]
    assert "unknown field 'releaseChanel' (did you mean 'releaseChannel'?)" in cached[1]
    assert len(_entries(cache)) == 1, "a spec with problems is never remembered"


def test_a_remembered_spec_is_not_checked_again_by_jsonschema(tmp_path):
    cache = tmp_path / "cache"
    run = ("import atexit, runpy, sys\n"
           "atexit.register(lambda: print('jsonschema' in sys.modules))\n"
           f"sys.argv = ['saxctl', 'validate', {str(TUTORIAL)!r}]\n"
           "runpy.run_module('reconciler', run_name='__main__')\n")
    env = {**os.environ, **GPTJ, "SAXCTL_CACHE_DIR": str(cache)}
    loaded = [ast.literal_eval(subprocess.run([sys.executable, "-c", run], capture_output=True, text=True, env=env,
                                              timeout=60, check=True).stdout.strip().splitlines()[-1])
              for _ in range(2)]
    assert loaded == [True, False]


def test_keys_unused_for_a_month_are_forgotten_when_a_new_one_is_remembered(tmp_path, monkeypatch):
    monkeypatch.setenv("SAXCTL_CACHE_DIR", str(tmp_path))
    folder = tmp_path / "schema-clean"
    schema_cache.remember_clean("used")
    schema_cache.remember_clean("unused")
    month_ago = os.stat(folder / "used").st_mtime - (schema_cache.UNUSED_DAYS + 1) * 86400
    for name in ("used", "unused"):
        os.utime(folder / name, (month_ago, month_ago))
    assert schema_cache.known_clean("used"), "a hit marks the key used"
    schema_cache.remember_clean("new")
    assert sorted(os.listdir(folder)) == ["new", "used"]


def test_a_cache_that_cannot_be_written_only_means_checking_again(tmp_path):
    occupied = tmp_path / "a-file"
    occupied.write_text("")
    assert _validate(TUTORIAL, cache=occupied)[0] == 0
    assert _validate(TUTORIAL, cache=occupied)[0] == 0


def test_a_cache_that_cannot_be_looked_into_only_means_checking_again(tmp_path):
    """Looking a key up fails with ENAMETOOLONG here, as it fails with EACCES in another user's home (sudo keeping
    HOME): the spec is checked, never an internal error."""
    code, _, err = _validate(TUTORIAL, cache=tmp_path / ("x" * 300))
    assert (code, err.strip()) == (0, "1 spec(s) valid."), err


def test_the_key_keeps_apart_what_the_schema_keeps_apart():
    schema, code = b"{}", b"code"
    keys = {schema_cache.key({"nodes": value}, schema, code) for value in (1, 1.0, True, "1", None, [1], {"1": 1})}
    assert None not in keys and len(keys) == 7
    assert schema_cache.key({"a": 1}, schema, code) == schema_cache.key({"a": 1}, schema, code)
    assert schema_cache.key({"a": 1}, b"{ }", code) != schema_cache.key({"a": 1}, schema, code)
    assert schema_cache.key({"a": 1}, schema, b"other code") != schema_cache.key({"a": 1}, schema, code)
    # What canonical JSON would write like something else is never remembered.
    assert schema_cache.key({1: "a"}, schema, code) is None
    assert schema_cache.key({"a": (1, 2)}, schema, code) is None
    assert schema_cache.key({"a": float("nan")}, schema, code) is not None
