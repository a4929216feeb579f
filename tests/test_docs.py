"""The README and docs/ checked against the code, so that a rename, a moved file or a dropped flag
fails here instead of misleading the next reader: dotted names resolve, paths exist, commands and
their flags are in the CLI's parsers, links land, the configuration reference lists every key of
`Config` with its default, and the README's test command is the one CI runs."""

from __future__ import annotations

import argparse
import dataclasses
import functools
import importlib
import inspect
import re
import subprocess
import sys
import typing
from pathlib import Path

import pytest

from tests.helpers import REPO

# What a reader is told; CHANGELOG.md is history, so only its links are checked.
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
ALL_DOCS = [*DOCS, REPO / "CHANGELOG.md"]

# Dotted strings that are not Python names: the card's metadata key in a model file, a key of the
# run report.
NOT_PYTHON = {"birdinfer.card", "models[].probe"}
# Names the docs' examples give to objects: `config.mel` is a Config's field.
VARIABLES = {
    "config": "birdinfer.Config",
    "ensemble": "birdinfer.Ensemble",
    "result": "birdinfer.RunResult",
    "card": "birdinfer.models.card.ModelCard",
}
# A file name, not an attribute: `errors.py` is checked as a module file, the others not at all.
FILE_SUFFIXES = {
    "md",
    "json",
    "png",
    "csv",
    "yaml",
    "onnx",
    "xml",
    "bin",
    "parquet",
    "npz",
    "journal",
}
# Keys the config loader reads besides the dataclass fields (a preset expands into mel and image).
LOADER_KEYS = {"extends", "mel.preset"}
# Flags of the other tools the docs show (pip, pytest, jupytext, Dask's own CLI).
OTHER_TOOLS_FLAGS = {
    *("--no-index", "--find-links", "--no-deps", "--only-binary", "--update", "--to"),
    *("--nthreads", "--resources", "--version"),
}


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _rel(path: Path) -> str:
    return str(path.relative_to(REPO))


def _code_spans(text: str) -> list[str]:
    """Inline code and the lines of fenced blocks (a `\\` continuation joined to its line)."""
    fence = r"^[ \t]*```[^\n]*\n(.*?)^[ \t]*```"
    fenced = re.findall(fence, text, flags=re.S | re.M)
    outside = re.sub(fence, "", text, flags=re.S | re.M)
    spans = re.findall(r"`([^`\n]+)`", outside)
    for block in fenced:
        spans.extend(block.replace("\\\n", " ").splitlines())
    return spans


# -- dotted names -------------------------------------------------------------------------------


def _resolves(dotted: str) -> bool:
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        return _attribute_path(obj, parts[cut:])
    return False


def _attribute_path(obj, names: list[str]) -> bool:
    """Attributes of a module or class; a dataclass's fields count, and a dict's keys are data."""
    for name in names:
        if dataclasses.is_dataclass(obj) and isinstance(obj, type):
            fields = _config_fields(obj)
            if name in fields:
                if (
                    typing.get_origin(fields[name]) in (dict, typing.Mapping)
                    or fields[name] is dict
                ):
                    return True
                obj = _dataclass_in(fields[name]) or getattr(obj, name, None)
                if obj is None:
                    return True  # a plain field: nothing further to walk
                continue
        if isinstance(obj, type) and not hasattr(obj, name):
            return re.search(rf"self\.{name}\s*[:=]", inspect.getsource(obj)) is not None
        if not hasattr(obj, name):
            return False
        obj = getattr(obj, name)
    return True


@functools.cache
def _short_names() -> dict[str, list[str]]:
    """Each module's last name -> its dotted names (`executors` -> birdinfer.inference.executors)."""
    found: dict[str, list[str]] = {}
    for path in sorted((REPO / "birdinfer").rglob("*.py")):
        parts = path.relative_to(REPO).with_suffix("").parts
        parts = parts[:-1] if parts[-1] == "__init__" else parts
        found.setdefault(parts[-1], []).append(".".join(parts))
    return found


def _config_fields(cls) -> dict[str, typing.Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _dataclass_in(hint) -> type | None:
    if dataclasses.is_dataclass(hint):
        return hint
    for arg in typing.get_args(hint):
        inner = _dataclass_in(arg)
        if inner is not None:
            return inner
    return None


def _is_config_key(dotted: str) -> bool:
    from birdinfer.config import Config

    if dotted in LOADER_KEYS:
        return True
    cls = Config
    for name in dotted.replace("[]", "").split("."):
        fields = _config_fields(cls) if cls is not None else {}
        if name not in fields:
            return False
        cls = _dataclass_in(fields[name])
    return True


def _dotted_names(text: str) -> set[str]:
    full = set(re.findall(r"(?<![\w./-])birdinfer(?:\.[A-Za-z_]\w*)+", text))
    short = set()
    for span in _code_spans(text):
        for token in re.findall(r"(?<![\w./-])([a-z_]\w*(?:\[\])?(?:\.[A-Za-z_]\w*)+)", span):
            if token.split(".")[0].removesuffix("[]") in {*_short_names(), *_top_keys()}:
                short.add(token)
    return full | (short - full)


@functools.cache
def _top_keys() -> frozenset[str]:
    from birdinfer.config import Config

    return frozenset(f.name for f in dataclasses.fields(Config))


def _known(dotted: str) -> bool:
    head, _, rest = dotted.partition(".")
    suffix = dotted.rsplit(".", 1)[-1]
    if suffix == "py":
        homes = ("birdinfer", "scripts", "benchmarks", "tests")
        return any(any((REPO / home).rglob(dotted)) for home in homes)
    if suffix in FILE_SUFFIXES or dotted in NOT_PYTHON:
        return True
    if dotted.startswith("birdinfer."):
        return _resolves(dotted)
    if head in VARIABLES and _resolves(f"{VARIABLES[head]}.{rest}"):
        return True
    modules = _short_names().get(head, [])
    return any(_resolves(f"{m}.{rest}") for m in modules) or _is_config_key(dotted)


@pytest.mark.parametrize("doc", DOCS, ids=_rel)
def test_every_dotted_name_in_the_docs_is_a_module_attribute_or_config_key(doc):
    missing = sorted(n for n in _dotted_names(_text(doc)) if not _known(n))
    assert missing == [], f"{_rel(doc)} names what the code does not have: {missing}"


@pytest.mark.parametrize("doc", DOCS, ids=_rel)
def test_every_set_override_in_the_docs_is_a_config_key(doc):
    keys = re.findall(r"--set\s+([\w.\[\]]+)=", _text(doc))
    missing = sorted({k for k in keys if k.lower() != "key" and not _is_config_key(k)})
    assert missing == [], f"{_rel(doc)}: --set keys that Config does not have: {missing}"


# -- paths and links ----------------------------------------------------------------------------

PATH = r"(?<![\w/.-])((?:scripts|benchmarks|configs|docs|tests|submission|birdinfer)/[\w*./-]*\w)"


@pytest.mark.parametrize("doc", DOCS, ids=_rel)
def test_every_repository_path_in_the_docs_exists(doc):
    paths = set(re.findall(PATH, _text(doc)))
    missing = sorted(p for p in paths if not any(REPO.glob(p)))
    assert missing == [], f"{_rel(doc)} names paths that are not in the repository: {missing}"


def _slug(heading: str) -> str:
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


@pytest.mark.parametrize("doc", ALL_DOCS, ids=_rel)
def test_every_relative_link_in_the_docs_lands(doc):
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", _text(doc)):
        if re.match(r"[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        landing = (doc.parent / path).resolve() if path else doc
        if not landing.exists():
            broken.append(target)
        elif anchor and landing.suffix == ".md":
            slugs = {_slug(h) for h in re.findall(r"^#+ (.+)$", _text(landing), flags=re.M)}
            broken += [] if anchor in slugs else [target]
    assert broken == [], f"{_rel(doc)} has links that land nowhere: {broken}"


# -- commands and flags -------------------------------------------------------------------------


def _cli_parser() -> argparse.ArgumentParser:
    from birdinfer.cli.main import build_parser

    return build_parser()


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _flags(parser: argparse.ArgumentParser, current: bool = False) -> set[str]:
    """The parser's flags; `current`: without the hidden ones (old spellings, moved flags),
    which a guide must not teach."""
    return {
        s
        for a in parser._actions
        if not (current and a.help == argparse.SUPPRESS)
        for s in a.option_strings
        if s.startswith("--")
    }


def _invocations(text: str) -> list[tuple[str, str]]:
    """(`birdinfer ...` command line up to a comment or a pipe, the doc's line) pairs."""
    found = []
    for span in _code_spans(text):
        for match in re.finditer(r"(?:^|[!(]|&& )\s*birdinfer((?: [^#|;&`]*)?)", span):
            if match.group(1).strip():
                found.append((match.group(1).strip(), span))
    return found


def _parser_for(words: list[str]) -> tuple[argparse.ArgumentParser | None, str]:
    parser = _cli_parser()
    commands = _subparsers(parser)
    if not words or words[0].startswith("-"):
        return commands["infer"], "infer"  # the default command
    if words[0] not in commands:
        return None, words[0]
    chosen, name = commands[words[0]], words[0]
    actions = _subparsers(chosen)
    if actions:
        if len(words) < 2 or words[1] not in actions:
            return None, f"{name} {words[1] if len(words) > 1 else ''}".strip()
        return actions[words[1]], f"{name} {words[1]}"
    return chosen, name


@pytest.mark.parametrize("doc", DOCS, ids=_rel)
def test_every_birdinfer_command_and_its_flags_exist(doc):
    problems = []
    for command, line in _invocations(_text(doc)):
        words = command.split()
        parser, name = _parser_for(words)
        if parser is None:
            problems.append(f"no command `birdinfer {name}` ({line!r})")
            continue
        shown = set(re.findall(r"--[\w-]+", command))
        unknown = sorted(shown - _flags(parser, current=True) - {"--help"})
        problems += [f"`birdinfer {name}` has no {flag} ({line!r})" for flag in unknown]
    assert problems == [], f"{_rel(doc)}:\n" + "\n".join(problems)


@functools.cache
def _script_flags(script: str) -> frozenset[str]:
    done = subprocess.run(
        [sys.executable, script, "--help"], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"{script} --help: {done.stderr[-500:]}"
    return frozenset(re.findall(r"--[\w-]+", done.stdout))


@pytest.mark.slow  # runs each script's --help
def test_every_script_flag_in_the_docs_is_in_that_scripts_help():
    problems = []
    for doc in DOCS:
        for span in _code_spans(_text(doc)):
            for script, rest in re.findall(
                r"python ((?:scripts|benchmarks)/\w+\.py)([^#|;&]*)", span
            ):
                if not (REPO / script).exists():
                    continue  # the path test names it
                unknown = set(re.findall(r"--[\w-]+", rest)) - _script_flags(script)
                problems += [f"{_rel(doc)}: {script} has no {flag}" for flag in sorted(unknown)]
    assert problems == []


@functools.cache
def _every_flag() -> frozenset[str]:
    flags = set(_flags(_cli_parser()))
    for command in _subparsers(_cli_parser()).values():
        flags |= _flags(command)
        for action in _subparsers(command).values():
            flags |= _flags(action)
    # The benchmarks with a command line (the others are modules they import).
    benchmarks = [s for s in (REPO / "benchmarks").glob("*.py") if "argparse" in _text(s)]
    for script in sorted([*(REPO / "scripts").glob("*.py"), *benchmarks]):
        flags |= _script_flags(_rel(script))
    return frozenset(flags | OTHER_TOOLS_FLAGS)


@pytest.mark.slow  # runs each script's --help
def test_every_flag_named_in_the_docs_belongs_to_some_command():
    """A flag shown without its command (`--workers 3` in a sentence) is at least some command's."""
    found = {
        (_rel(doc), flag)
        for doc in DOCS
        for span in _code_spans(_text(doc))
        for flag in re.findall(r"(?<![\w-])--[a-z][\w-]*", span)
    }
    assert sorted(pair for pair in found if pair[1] not in _every_flag()) == []


# -- the README's two commands ------------------------------------------------------------------


def test_the_readme_test_command_is_the_one_ci_runs():
    ci = [line for line in _text(REPO / ".ci" / "run").splitlines() if "pytest" in line]
    readme = [line.split("#")[0].strip() for line in _code_spans(_text(REPO / "README.md"))]
    assert len(ci) == 1 and ci[0].strip() in readme


def test_the_readme_demo_command_runs_the_demo_script():
    readme = [line.split("#")[0].strip() for line in _code_spans(_text(REPO / "README.md"))]
    assert "pip install -e . && python scripts/infer.py" in readme
    assert (REPO / "scripts" / "infer.py").exists()


# -- the configuration reference ----------------------------------------------------------------

REFERENCE = REPO / "docs" / "configuration.md"


def _yaml(value) -> str:
    """A default as it is written in a YAML config."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_yaml(v) for v in value) + "]"
    if dataclasses.is_dataclass(value):
        changed = {
            f.name: getattr(value, f.name)
            for f in dataclasses.fields(value)
            if f.default is dataclasses.MISSING or getattr(value, f.name) != f.default
        }
        if len(changed) == 1:
            return _yaml(next(iter(changed.values())))
        return "{" + ", ".join(f"{k}: {_yaml(v)}" for k, v in changed.items()) + "}"
    return str(value)


def config_keys() -> list[tuple[str, str]]:
    """Every key of `Config`, walked from the root dataclass, with its default as YAML. A section
    is a row only where its default is null (`mel: null` means something); each dataclass's keys
    are listed once, under the first key that holds it (`mel.normalization[]`, not again under
    `image.normalization[]`)."""
    from birdinfer.config import Config

    rows: list[tuple[str, str]] = []
    seen: set[type] = set()

    def walk(cls, prefix: str) -> None:
        seen.add(cls)
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            key, inner = prefix + f.name, _dataclass_in(hints[f.name])
            if f.default is not dataclasses.MISSING:
                default = f.default
            elif f.default_factory is not dataclasses.MISSING:
                default = f.default_factory()
            else:
                default = dataclasses.MISSING
            many = typing.get_origin(hints[f.name]) is tuple or any(
                typing.get_origin(a) is tuple for a in typing.get_args(hints[f.name])
            )
            if inner is None or default is None or many:
                rows.append((key, "required" if default is dataclasses.MISSING else _yaml(default)))
            if inner is not None and inner not in seen:
                walk(inner, key + ("[]." if many else "."))

    walk(Config, "")
    return rows


def _reference_rows() -> dict[str, tuple[str, str]]:
    rows = re.findall(r"^\| `([^`]+)` \| `([^`]*)` \| (.*) \|$", _text(REFERENCE), flags=re.M)
    return {key: (default, meaning.strip()) for key, default, meaning in rows}


def test_the_configuration_reference_lists_every_key_with_its_default():
    documented = _reference_rows()
    expected = dict(config_keys())
    missing = [f"| `{k}` | `{d}` | ... |" for k, d in expected.items() if k not in documented]
    stale = sorted(set(documented) - set(expected))
    wrong = {k: (documented[k][0], d) for k, d in expected.items() if k in documented}
    wrong = {k: pair for k, pair in wrong.items() if pair[0] != pair[1]}
    assert missing == [], "keys missing from docs/configuration.md:\n" + "\n".join(missing)
    assert stale == [], f"docs/configuration.md lists keys Config does not have: {stale}"
    assert wrong == {}, f"defaults in docs/configuration.md (documented, actual): {wrong}"


def test_every_key_in_the_configuration_reference_says_what_it_means():
    assert [k for k, (_, meaning) in _reference_rows().items() if len(meaning) < 10] == []
