"""Loading and validating ``orchestration.json``: messages, secrets, overrides, shipped files."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from interlock import secrets
from interlock.config.loader import load_config, parse_config, shipped_config
from interlock.config.model import OVERRIDE_FLAGS, Config
from interlock.config.schema import schema
from interlock.errors import ConfigError
from tests.conftest import component

REPO = Path(__file__).resolve().parents[1]
SECRET_KEY = re.compile(r"(api_?key|password|passwd|secret|token|devid|webhook|signature)", re.I)

pytestmark = pytest.mark.timeout(30)


@pytest.fixture(autouse=True)
def _forget_test_secrets() -> Iterator[None]:
    """Drop secrets resolved here from the process-wide registry the log redactor reads."""
    known = secrets.known_secrets()
    yield
    secrets.forget_all_but(known)


def doc(components: dict[str, Any], **sections: Any) -> dict[str, Any]:
    """A config document with the given components and sections."""
    return {"components": components, **sections}


def problems(document: Any, env: dict[str, str] | None = None) -> list[str]:
    """The problems ``parse_config`` reports for ``document`` (fails if it is valid)."""
    with pytest.raises(ConfigError) as info:
        parse_config(document, "<test>", env=env or {})
    return info.value.problems


def one_problem(document: Any) -> str:
    """The single problem reported for ``document``."""
    found = problems(document)
    assert len(found) == 1, found
    return found[0]


# --- shipped files -------------------------------------------------------------------


def test_shipped_schema_is_a_valid_draft_2020_12_schema() -> None:
    """The schema shipped beside the configs is itself a valid JSON Schema."""
    jsonschema.Draft202012Validator.check_schema(schema())
    shipped = json.loads((REPO / "config" / "orchestration.schema.json").read_text())
    assert schema() == shipped


def test_shipped_config_is_valid() -> None:
    """The shipped orchestration.json loads without a problem and keeps its topology."""
    config = load_config(shipped_config("orchestration.json"), env={})
    assert set(config.components) == {
        "gtfs_schedule",
        "gtfs_realtime",
        "ptv_timetable",
        "datavic_station_patronage",
        "datavic_temporal_patronage",
    }
    assert next(iter(config.components)) == "gtfs_schedule"  # dependency order
    assert config.components["gtfs_realtime"].groups == frozenset({"realtime"})


def test_shipped_config_holds_no_literal_secret() -> None:
    """Every secret-looking value in the shipped config is a placeholder."""
    document = json.loads(shipped_config("orchestration.json").read_text())
    placeholder = re.compile(r"^\$\{(credential:)?[A-Za-z_][A-Za-z0-9_.-]*\}$")

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if SECRET_KEY.search(key) and isinstance(value, str):
                    assert placeholder.match(value), (key, value)
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(document)


def test_a_minimal_config_gets_defaults() -> None:
    """A config with one component gets the documented defaults."""
    config = parse_config(doc({"a": component("Publishes")}), "<test>", env={})
    assert config.runtime.max_concurrent == 4
    assert config.runtime.global_timeout_s == 120 * 60
    assert config.runtime.timezone.key == "Australia/Melbourne"
    assert config.components["a"].timeout_s == 30 * 60
    assert config.components["a"].enabled


# --- messages: path, bad value, what is allowed ----------------------------------------

MESSAGES = [
    (
        "wrong type",
        doc({"a": component("Publishes", retries="three")}),
        ["$.components.a.retries", "'three'", "integer"],
    ),
    (
        "below minimum",
        doc({"a": component("Publishes")}, runtime_settings={"max_concurrent_components": 0}),
        ["$.runtime_settings.max_concurrent_components", "0", "minimum of 1"],
    ),
    (
        "bad frequency",
        doc({"a": component("Publishes", frequency="every 5 minutes")}),
        ["$.components.a.frequency", "'every 5 minutes'", "'15m'", "'daily@03:30'"],
    ),
    (
        "bad timezone",
        doc({"a": component("Publishes")}, runtime_settings={"timezone": "Mars/Olympus"}),
        ["$.runtime_settings.timezone", "'Mars/Olympus'", "'Australia/Melbourne'"],
    ),
    (
        "component timeout above global",
        doc(
            {"a": component("Publishes", timeout_minutes=200)},
            runtime_settings={"global_timeout_minutes": 60},
        ),
        ["$.components.a.timeout_minutes", "200", "60 minutes", "global_timeout_minutes"],
    ),
    (
        "default timeout above global",
        doc(
            {"a": component("Publishes", timeout_minutes=5)},
            runtime_settings={"global_timeout_minutes": 10},
        ),
        ["$.runtime_settings.default_component_timeout_minutes", "30", "10"],
    ),
    (
        "unknown dependency",
        doc(
            {
                "gtfs_schedule": component("Publishes"),
                "b": component("Publishes", deps=["gtfs_schedul"]),
            }
        ),
        [
            "$.components.b.dependencies",
            "'gtfs_schedul'",
            "did you mean 'gtfs_schedule'?",
            "known: gtfs_schedule, b",
        ],
    ),
    (
        "component in two parallel groups",
        doc(
            {"a": component("Publishes"), "b": component("Publishes")},
            dependency_management={"parallel_groups": {"g1": ["a"], "g2": ["a", "b"]}},
        ),
        ["$.dependency_management.parallel_groups", "'a'", "g1, g2", "exactly one"],
    ),
    (
        "unknown group member",
        doc(
            {"a": component("Publishes")},
            dependency_management={"parallel_groups": {"g": ["zz"]}},
        ),
        ["$.dependency_management.parallel_groups.g", "'zz'", "known: a"],
    ),
    (
        "bad component name",
        doc({"Bad-Name": component("Publishes")}),
        ["$.components", "'Bad-Name'", "^[a-z][a-z0-9_]{0,63}$"],
    ),
    (
        "class that cannot be imported",
        doc({"a": {**component("Publishes"), "class": "tests.no_such_module:Thing"}}),
        ["$.components.a.class", "'tests.no_such_module:Thing'"],
    ),
    (
        "non-builtin name without a class",
        doc({"mystery": {"frequency": "1h"}}),
        ["$.components.mystery", "'mystery'", "package.module:ClassName"],
    ),
]


@pytest.mark.parametrize(
    ("document", "fragments"), [m[1:] for m in MESSAGES], ids=[m[0] for m in MESSAGES]
)
def test_each_problem_names_path_value_and_what_is_allowed(
    document: dict[str, Any], fragments: list[str]
) -> None:
    """A single problem is reported once with its JSON path, the bad value and the rule."""
    message = one_problem(document)
    for fragment in fragments:
        assert fragment in message, (fragment, message)


TYPOS = [
    ("top level", {"runtime_setings": {}}, None, "$", "runtime_setings", "runtime_settings"),
    ("component", {}, {"dependancies": []}, "$.components.a", "dependancies", "dependencies"),
    (
        "runtime",
        {"runtime_settings": {"max_concurent_components": 2}},
        None,
        "$.runtime_settings",
        "max_concurent_components",
        "max_concurrent_components",
    ),
    (
        "override",
        {"override_settings": {"dryrun": True}},
        None,
        "$.override_settings",
        "dryrun",
        "dry_run",
    ),
]


@pytest.mark.parametrize(
    ("sections", "extra", "where", "typo", "meant"),
    [t[1:] for t in TYPOS],
    ids=[t[0] for t in TYPOS],
)
def test_unknown_keys_are_errors_with_a_suggestion(
    sections: dict[str, Any], extra: dict[str, Any] | None, where: str, typo: str, meant: str
) -> None:
    """A misspelt key is an error naming where it is, the key, a suggestion and the allowed keys."""
    message = one_problem(doc({"a": {**component("Publishes"), **(extra or {})}}, **sections))
    assert message.startswith(f"{where}: unknown key {typo!r}")
    assert f"(did you mean {meant!r}?)" in message
    assert "allowed: " in message and meant in message.split("allowed: ")[1]


def test_dependency_cycle_is_printed() -> None:
    """A cycle is reported as the chain of components that closes it."""
    message = one_problem(
        doc(
            {
                "a": component("Publishes", deps=["c"]),
                "b": component("Publishes", deps=["a"]),
                "c": component("Publishes", deps=["b"]),
                "free": component("Publishes"),
            }
        )
    )
    assert message.startswith("$.components: dependency cycle: ")
    chain = message.split("dependency cycle: ")[1].split(" -> ")
    assert chain[0] == chain[-1] and set(chain) == {"a", "b", "c"} and len(chain) == 4
    deps = {"a": "c", "b": "a", "c": "b"}
    assert all(deps[x] == y for x, y in pairwise(chain))


def test_self_dependency_is_reported() -> None:
    """A component that lists itself as a dependency is told so."""
    found = problems(doc({"a": component("Publishes", deps=["a"])}))
    assert "$.components.a.dependencies: component 'a' depends on itself" in found


def test_all_problems_are_reported_together() -> None:
    """Problems in different sections and components come back in one error."""
    found = problems(
        doc(
            {
                "a": component("Publishes", frequency="bad", deps=["nope"]),
                "b": component("Publishes", timeout_minutes=500, retries=-1),
                "c": {**component("Publishes", deps=["d"]), "dependancies": []},
                "d": component("Publishes", deps=["c"]),
            },
            runtime_settings={"timezone": "Nope/Nope"},
        )
    )
    expected = [
        "$.components.a.frequency",
        "$.components.a.dependencies: component 'a' depends on unknown component 'nope'",
        "$.components.b.timeout_minutes: 500",
        "$.components.b.retries: -1",
        "$.components.c: unknown key 'dependancies'",
        "$.components: dependency cycle:",
        "$.runtime_settings.timezone: 'Nope/Nope'",
    ]
    for fragment in expected:
        assert any(p.startswith(fragment) for p in found), (fragment, found)
    assert len(found) == len(expected), found


def test_a_misspelt_required_key_does_not_hide_other_problems() -> None:
    """A component without 'frequency' does not stop other components' problems being reported."""
    found = problems(
        doc(
            {
                "a": {"class": "tests.testcomponents:Publishes", "frecuency": "1h"},
                "b": component("Publishes", deps=["gtfs_schedul"]),
            }
        )
    )
    assert any(p.startswith("$.components.a: unknown key 'frecuency'") for p in found)
    assert any("unknown component 'gtfs_schedul'" in p for p in found), found


WRONG_SHAPES = [
    pytest.param({"a": "not an object"}, {}, id="component"),
    pytest.param({}, {"runtime_settings": "not an object"}, id="runtime_settings"),
    pytest.param({}, {"dependency_management": {"parallel_groups": "rt"}}, id="parallel_groups"),
]


@pytest.mark.parametrize(("components", "sections"), WRONG_SHAPES)
def test_a_section_of_the_wrong_type_does_not_hide_other_problems(
    components: dict[str, Any], sections: dict[str, Any]
) -> None:
    """A section or component that is not an object still lets other problems be reported."""
    found = problems(
        doc({**components, "b": component("Publishes", deps=["gtfs_schedul"])}, **sections)
    )
    assert any("is not of type" in p for p in found), found
    assert any("unknown component 'gtfs_schedul'" in p for p in found), found


def test_a_class_whose_module_fails_to_import_is_a_config_problem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A component module that raises ImportError is reported at its class path, not raised."""
    (tmp_path / "interlock_broken_plugin.py").write_text("from json import does_not_exist\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    message = one_problem(
        doc({"a": {**component("Publishes"), "class": "interlock_broken_plugin:Thing"}})
    )
    assert message.startswith("$.components.a.class: ")
    assert "'interlock_broken_plugin:Thing'" in message


# --- files -----------------------------------------------------------------------------


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    """A config file that does not exist is one problem naming the file and what to do."""
    missing = tmp_path / "nope.json"
    with pytest.raises(ConfigError) as info:
        load_config(missing, env={})
    assert info.value.problems == [
        f"file not found: {str(missing)!r}; pass --config FILE or set INTERLOCK_CONFIG"
    ]


def test_invalid_json_gives_line_and_column(tmp_path: Path) -> None:
    """Broken JSON is reported with the line and column where parsing stopped."""
    path = tmp_path / "broken.json"
    path.write_text('{\n  "components": {\n    "a": 1,\n  }\n}\n')
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    (message,) = info.value.problems
    assert message == (
        "invalid JSON at line 3 column 11: a trailing comma before '}'; JSON allows none, remove it"
    )


@pytest.mark.parametrize(
    ("text", "start"),
    [
        (
            '{"components": {"a": {"dependencies": ["b", ]}}}',
            "invalid JSON at line 1 column 43: a trailing comma before ']'",
        ),
        (
            '{"components": {},\n\n}',
            "invalid JSON at line 1 column 18: a trailing comma before '}'",
        ),
        ("{\n  components: {}\n}", "invalid JSON at line 2 column 3: "),
        ('{"components": {}} ,', "invalid JSON at line 1 column 20: "),
    ],
)
def test_json_slips_are_placed_whatever_the_python_version(
    tmp_path: Path, text: str, start: str
) -> None:
    """The place (and, for a trailing comma, the words) do not depend on CPython's json
    messages, which changed in 3.13."""
    path = tmp_path / "broken.json"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    (message,) = info.value.problems
    assert message.startswith(start)


def test_relative_dirs_are_resolved_beside_the_config_file(tmp_path: Path) -> None:
    """Relative state_dir and data_dir are taken relative to the config file."""
    path = tmp_path / "orchestration.json"
    path.write_text(
        json.dumps(
            doc(
                {"a": component("Publishes")},
                runtime_settings={"state_dir": "state", "data_dir": "data"},
            )
        )
    )
    config = load_config(path, env={})
    assert config.runtime.state_dir == tmp_path / "state"
    assert config.runtime.data_dir == tmp_path / "data"


# --- secrets ---------------------------------------------------------------------------


def with_secrets() -> dict[str, Any]:
    """Three components: one needs an env var, one a credential, one nothing."""
    return doc(
        {
            "ptv": component(
                "Publishes", api_key="${PTV_API_KEY}", url="https://x/?d=${PTV_DEVID}"
            ),
            "cred": component("Publishes", password="${credential:smtp_password}"),
            "plain": component("Publishes"),
        }
    )


def test_env_and_credential_placeholders_are_resolved(tmp_path: Path) -> None:
    """${ENV} comes from the environment and ${credential:NAME} from $CREDENTIALS_DIRECTORY."""
    (tmp_path / "smtp_password").write_text("hunter2-from-file\n")
    env = {
        "PTV_API_KEY": "key-1234",
        "PTV_DEVID": "3001234",
        "CREDENTIALS_DIRECTORY": str(tmp_path),
    }
    config = parse_config(with_secrets(), "<test>", env=env)
    assert config.components["ptv"].settings["api_key"] == "key-1234"
    assert config.components["ptv"].settings["url"] == "https://x/?d=3001234"
    assert config.components["cred"].settings["password"] == "hunter2-from-file"
    assert all(spec.enabled for spec in config.components.values())


def test_missing_env_secret_disables_only_its_component(tmp_path: Path) -> None:
    """A missing environment variable disables its component only, and says how to fix it."""
    (tmp_path / "smtp_password").write_text("hunter2-from-file")
    env = {"PTV_API_KEY": "key-1234", "CREDENTIALS_DIRECTORY": str(tmp_path)}
    config = parse_config(with_secrets(), "<test>", env=env)
    ptv = config.components["ptv"]
    assert not ptv.enabled
    assert ptv.disabled_reason == (
        "missing secret: environment variable 'PTV_DEVID' is not set; "
        "set it (e.g. in an EnvironmentFile=)"
    )
    assert config.components["cred"].enabled and config.components["plain"].enabled


def test_a_secret_missing_in_several_settings_is_named_once() -> None:
    """One unset variable used by six feed URLs is one problem, said once."""
    urls = {f"feed{i}": f"${{STANDIN_URL}}/feed{i}" for i in range(6)}
    doc = {
        "components": {
            "rt": {
                "class": "tests.testcomponents:Publishes",
                "frequency": "1h",
                "settings": {**urls, "key": "${API_KEY}"},
            }
        }
    }
    reason = parse_config(doc, "<test>", env={}).components["rt"].disabled_reason or ""
    assert reason.count("'STANDIN_URL'") == 1 and reason.count("'API_KEY'") == 1, reason


def test_missing_credential_disables_only_its_component(tmp_path: Path) -> None:
    """A credential absent from $CREDENTIALS_DIRECTORY disables only the component using it."""
    env = {"PTV_API_KEY": "key-1234", "PTV_DEVID": "1", "CREDENTIALS_DIRECTORY": str(tmp_path)}
    config = parse_config(with_secrets(), "<test>", env=env)
    cred = config.components["cred"]
    assert not cred.enabled
    assert cred.disabled_reason is not None
    assert "credential 'smtp_password' was not found in $CREDENTIALS_DIRECTORY" in (
        cred.disabled_reason
    )
    assert "LoadCredential=smtp_password:" in cred.disabled_reason
    assert config.components["ptv"].enabled and config.components["plain"].enabled


def test_credential_without_credentials_directory_disables_the_component() -> None:
    """Without $CREDENTIALS_DIRECTORY a credential placeholder is missing, not an exception."""
    env = {"PTV_API_KEY": "key-1234", "PTV_DEVID": "1"}
    config = parse_config(with_secrets(), "<test>", env=env)
    assert not config.components["cred"].enabled
    assert config.components["ptv"].enabled


def test_disabled_component_keeps_its_configured_reason() -> None:
    """A component disabled in the file says so, even when its secret is missing too."""
    document = doc({"a": component("Publishes", enabled=False, api_key="${NOT_SET_ANYWHERE}")})
    spec = parse_config(document, "<test>", env={}).components["a"]
    assert (spec.enabled, spec.disabled_reason) == (False, "disabled in the configuration")


# --- overrides -------------------------------------------------------------------------


def file_overrides() -> Config:
    """A config whose file sets skip_data_quality and leaves dry_run off."""
    document = doc(
        {"a": component("Publishes")},
        override_settings={"skip_data_quality": True, "dry_run": False},
    )
    return parse_config(document, "<test>", env={})


def test_cli_override_flags_win_over_the_file() -> None:
    """A flag given on the command line replaces the file's value; absent flags keep it."""
    config = file_overrides()
    cli: dict[str, bool | None] = dict.fromkeys(OVERRIDE_FLAGS)
    cli["dry_run"] = True
    merged = config.with_overrides(cli).overrides
    assert merged.dry_run is True
    assert merged.skip_data_quality is True
    assert merged.force_run_all is False
    assert config.overrides.dry_run is False  # the original is untouched


def test_cli_false_also_wins_over_the_file() -> None:
    """An explicit False from the CLI turns off a switch the file turned on."""
    merged = file_overrides().with_overrides({"skip_data_quality": False}).overrides
    assert merged.skip_data_quality is False


def test_every_override_setting_is_a_cli_flag() -> None:
    """Each override_settings key in the schema has a matching override flag."""
    in_schema = set(schema()["properties"]["override_settings"]["properties"])
    assert in_schema == set(OVERRIDE_FLAGS)
