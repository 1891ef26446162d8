"""The documentation's code names what exists (the README and every ``docs/*.md`` page): every name its Python blocks import, every
``hf_neuroformer.<module>.<name>`` and ``nf.<name>`` it mentions, the ``processor.`` / ``rec.``
attributes it uses, and every ``neuroformer <command> --flag`` of its shell blocks and inline code
(and ``<command> --flag`` in its prose and comments) is in the command's parser, with each value
written for a flag that has choices (``--mixed-precision no|bf16|fp16``) among them.

The blocks themselves are not run here (the first trains for minutes): they were run by hand, with
fewer steps, as the README allows; this keeps a renamed function, module or flag from leaving the
README behind without anyone noticing. Fast: it imports the package and builds the parser.
Every relative link of those pages points to a file of the repository.
"""

from __future__ import annotations

import argparse
import importlib
import re
from pathlib import Path

import pytest

from conftest import REPO_ROOT, documentation_pages

FLAG = r"--[a-z][a-z0-9-]*"
# where a line of shell ends one command: &&, ||, ; and a pipe, a | with a space on at least one side
# (`... | tee log`), none of them inside [...] / {...}. A | inside brackets or between two words
# (`[--mixed-precision no|bf16|fp16]`, `--mode teacher_forced|free_running`) separates a flag's
# alternatives: the command goes on after it
COMMAND_END = r"(?:&&|\|\||;|(?<=\s)\||\|(?=\s))(?![^\[\]{}]*[\]}])"
# a flag and the value written after it (`--mode free_running`, `--split=test`, `[--order free|canonical]`,
# `--mode {teacher_forced,free_running}`); a flag that follows a flag is not its value
FLAG_VALUE = rf"(?<![\w-])({FLAG})(?:=|\s+)(?!-+[a-zA-Z])([^\s\[\]`]+)"


def _resolve(dotted: str):
    """The object a dotted name ``a.b.c`` names (the longest importable module, then attributes);
    raises ImportError / AttributeError when there is none."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            if i == 1:
                raise
            continue
        for name in parts[i:]:
            obj = getattr(obj, name)
        return obj


def python_name_problems(text: str) -> list:
    """Names a Markdown text's Python blocks import, and ``hf_neuroformer.x.y`` / ``nf.x`` /
    ``processor.x`` / ``rec.x`` names anywhere in it, that do not exist; one string per problem."""
    import hf_neuroformer as nf
    from hf_neuroformer import NeuroformerProcessor, SpikeRecording

    problems = []
    for block in re.findall(r"```python\n(.*?)```", text, re.S):
        for module, names in re.findall(r"^\s*from\s+([\w.]+)\s+import\s+(.+)$", block, re.M):
            for name in names.strip("() ").split(","):
                name = name.split(" as ")[0].strip()
                try:
                    _resolve(f"{module}.{name}")
                except (ImportError, AttributeError) as e:
                    problems.append(f"from {module} import {name}: {e}")
        for module in re.findall(r"^\s*import\s+([\w.]+)", block, re.M):
            try:
                importlib.import_module(module)
            except ImportError as e:
                problems.append(f"import {module}: {e}")
    for dotted in sorted(set(re.findall(r"\bhf_neuroformer(?:\.[A-Za-z_]\w*)+", text))):
        try:
            _resolve(dotted)
        except (ImportError, AttributeError) as e:
            problems.append(f"{dotted}: {e}")
    # file names such as rec.nwb or model.safetensors are not attributes
    for prefix, owner in (("nf", nf), ("processor", NeuroformerProcessor), ("rec", SpikeRecording)):
        for name in sorted(set(re.findall(rf"(?<![\w.]){prefix}\.([A-Za-z_]\w*)\b(?!\.\w)", text))):
            if name not in {"nwb", "json", "csv", "png", "npz"} and not hasattr(owner, name):
                problems.append(f"{prefix}.{name}: {owner.__name__} has no attribute {name!r}")
    return problems


def _subparsers() -> tuple:
    from hf_neuroformer.cli import build_parser

    parser = build_parser()
    subs = next(a.choices for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    top = {o for a in parser._actions for o in a.option_strings}
    return top, subs


def command_problems(text: str) -> list:
    """``neuroformer <command> --flag`` lines of a Markdown text's bash blocks (comments left
    out, ``\\`` continuations joined), inline ``neuroformer ...`` code spans, and ``<command>
    --flag`` anywhere in the text, whose command or flag the parser lacks; one string per problem."""
    top, subs = _subparsers()
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").split("\n"):
            code = "" if line.lstrip().startswith("#") else line.split(" #")[0]
            commands += [s.strip() for s in re.split(COMMAND_END, code) if s.strip().startswith("neuroformer ")]
    commands += re.findall(r"`(neuroformer [^`]*)`", text)
    problems = []
    for command in commands:
        sub = command.split()[1]
        if sub.startswith("--"):
            if sub not in top:
                problems.append(f"{command!r}: neuroformer has no option {sub}")
        elif sub not in subs:
            problems.append(f"{command!r}: no command {sub!r}")
        else:
            problems += [f"{command!r}: {p}" for p in _flag_problems(sub, subs[sub], command)]
    # '<command> --flag' in prose and comments: 'train --max-steps -5', 'finetune --kind foo'
    names = "|".join(sorted(subs, key=len, reverse=True))
    flag_run = rf"(?:\s+\[?{FLAG}(?:[ =][^\s\]\[`,;)]+)?\]?)+"
    for m in re.finditer(rf"(?<![\w/.-])({names})({flag_run})", text):
        problems += [f"{m.group(0)!r}: {p}" for p in _flag_problems(m.group(1), subs[m.group(1)], m.group(2))]
    return problems


def _flag_problems(name: str, parser: argparse.ArgumentParser, command: str) -> list:
    """The flags of one command's text that its parser lacks, and the values written after a flag
    that has choices (each alternative of ``no|bf16|fp16`` or ``{a,b}``) that are not among them;
    a placeholder (``N``, ``$A``, ``<kind>``) is not a value. One string per problem."""
    actions = {o: a for a in parser._actions for o in a.option_strings}
    problems = [f"{name} has no option {f}" for f in re.findall(rf"(?<![\w-]){FLAG}", command) if f not in actions]
    for flag, value in re.findall(FLAG_VALUE, command):
        choices = getattr(actions.get(flag), "choices", None)
        if not choices:
            continue
        value = value.rstrip(".,;:)").strip("'\"")  # prose: 'generate --order canonical.'
        braced = value.startswith("{") and value.endswith("}")
        for alternative in re.split(r"[|,]" if braced else r"\|", value.strip("{}")):
            if alternative.isupper() or alternative.startswith(("$", "<")):
                continue
            if alternative not in {str(c) for c in choices}:
                problems.append(f"{name} {flag} has no choice {alternative!r} (choices: {', '.join(map(str, choices))})")
    return problems


def _page_ids() -> list:
    return [str(p.relative_to(REPO_ROOT)) for p in documentation_pages()]


def test_the_documentation_pages_are_found():
    # guard for the checks below, which run once per page: the README and the docs/ pages it moved to
    pages = _page_ids()
    assert pages[0] == "README.md" and len(pages) >= 10, pages
    assert {"docs/cli.md", "docs/metrics.md", "docs/decoding.md", "docs/python_api.md"} <= set(pages), pages
    assert "```python" in (REPO_ROOT / "README.md").read_text()


@pytest.mark.parametrize("page", _page_ids())
def test_every_name_the_readme_uses_exists(page):
    text = (REPO_ROOT / page).read_text()
    assert python_name_problems(text) == []


@pytest.mark.parametrize("page", _page_ids())
def test_every_command_and_flag_the_readme_shows_exists(page):
    text = (REPO_ROOT / page).read_text()
    assert command_problems(text) == []


def broken_links(page: Path) -> list:
    """The relative Markdown links (``[text](target)``, ``#anchor`` and ``?query`` parts aside) of a
    page whose target is not a file or folder of the repository (``http(s)://`` and ``mailto:``
    links are not checked); one string per link."""
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)  # code blocks hold no links
    text = re.sub(r"`[^`\n]*`", "", text)  # nor inline code
    out = []
    for target in re.findall(r"\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)", text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
            continue
        path = target.split("#")[0].split("?")[0]
        if path and not (page.parent / path).exists():
            out.append(f"{page.name}: {target}")
    return out


@pytest.mark.parametrize("page", _page_ids())
def test_every_relative_link_of_the_documentation_resolves(page):
    assert broken_links(REPO_ROOT / page) == []


def test_the_link_check_finds_a_broken_link(tmp_path):
    # not vacuous: a missing page, a missing anchor's page and a link out of the folder are reported;
    # a page that exists, an anchor of this page, links to the web and links in code are not
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "here.md").write_text("x")
    page = tmp_path / "README.md"
    page.write_text("[a](docs/here.md) [b](docs/gone.md) [c](docs/gone.md#part) [d](#top) [e](../nowhere.md)\n"
                    "[f](https://example.org/x.md) [g](docs/here.md \"title\") `[h](docs/code.md)`\n"
                    "```\n[i](docs/block.md)\n```\n")
    assert broken_links(page) == ["README.md: docs/gone.md", "README.md: docs/gone.md#part",
                                  "README.md: ../nowhere.md"]


def test_every_name_command_and_file_the_model_cards_show_exists():
    # the written cards (not the template, whose {{ placeholders }} are filled by hub.py) are read on the
    # Hub beside the model: the same checks as the README's, and every figure or file they link is there
    cards = sorted(p for p in (REPO_ROOT / "model_cards").glob("*.md") if not p.is_symlink())
    assert cards, "no model card in model_cards/"
    for card in cards:
        text = card.read_text()
        assert python_name_problems(text) == [], card.name
        assert command_problems(text) == [], card.name
        links = [link for link in re.findall(r"\]\(([^)#\s]+)\)", text) if "://" not in link]
        assert [link for link in links if not (card.parent / link).exists()] == [], card.name


def test_the_readme_checks_find_a_wrong_name_or_flag():
    # the checks above are not vacuous: each kind of stale reference is reported
    text = "\n".join([
        "```python", "from hf_neuroformer.io import load_recording, read_nwbx",
        "import hf_neuroformer.no_such_module", "```",
        "`hf_neuroformer.training.trian` and `nf.generate_spike` and `processor.to_datasets(rec, s)`,"
        " `rec.sumary()`, `rec.nwb`",
    ])
    problems = python_name_problems(text)
    assert [p.split(":")[0] for p in problems] == [
        "from hf_neuroformer.io import read_nwbx", "import hf_neuroformer.no_such_module",
        "hf_neuroformer.no_such_module", "hf_neuroformer.training.trian", "nf.generate_spike",
        "processor.to_datasets", "rec.sumary"], problems
    text = "\n".join([
        "```bash", "neuroformer train --data x.nwb \\", "    --max-step 5  # --not-checked here",
        "neuroformer trian --data x", "# neuroformer evaluate --no-such (a comment)", "```",
        "`neuroformer generate --top-q 3`, `neuroformer --versions`, and in prose decode --batch-sizes 0.",
    ])
    problems = command_problems(text)
    assert {p.rsplit(" ", 1)[-1] for p in problems} == {
        "'trian'", "--max-step", "--top-q", "--versions", "--no-such", "--batch-sizes"}, problems


def test_the_command_check_reads_past_a_list_of_alternatives():
    # a | between a flag's alternatives (in [...] / {...} or between two words) does not end the command:
    # the flags after it are checked, and so is each alternative against the flag's choices; a pipe
    # (a | with a space beside it) still does, so the flags of the command piped into are not train's
    text = "\n".join([
        "```bash", "neuroformer train --data x.nwb \\",
        "    [--mixed-precision no|bf16|fp16] [--made-up-flag] [--attn-implementation sdpa|eagre] \\",
        "    [--overwrite] 2>&1 | tee --append train.log",
        "neuroformer generate --model m --data x.nwb --mode {teacher_forced,free_runing} --order free|canonical"
        " --split test --seed S --not-a-flag",
        "```",
        "`neuroformer evaluate --real x.nwb --generated g.nwb [--model m [--split tset]]`, and in prose"
        " generate --order canonicl.",
    ])
    problems = command_problems(text)
    assert {p.split(": ", 1)[1] for p in problems} == {
        "train has no option --made-up-flag",
        "train --attn-implementation has no choice 'eagre' (choices: sdpa, eager, flash_attention_2)",
        "generate --mode has no choice 'free_runing' (choices: teacher_forced, free_running)",
        "generate has no option --not-a-flag",
        "evaluate --split has no choice 'tset' (choices: train, validation, test)",
        "generate --order has no choice 'canonicl' (choices: free, canonical)"}, problems


def test_ci_runs_the_readmes_install_and_test_command():
    # .ci/run says it runs exactly the README's install + test command: the two must not drift apart
    readme = (REPO_ROOT / "README.md").read_text()
    ci = (REPO_ROOT / ".ci" / "run").read_text()
    command = next(line for line in ci.splitlines() if "pytest" in line).strip()
    assert command.startswith("pip install") and f"```bash\n{command}\n```" in readme, command


def readme_output_folders(text: str) -> dict:
    """The folders a Markdown text's examples write a run into, each with the ``--config`` file that
    run was given (``None``: none): ``neuroformer <command> ... --output-dir X`` of its bash blocks
    (comments left out, ``\\`` continuations joined) and, in its Python blocks, ``train(rec, "X")``
    and ``output_dir="X"``."""
    folders = {}
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").split("\n"):
            code = "" if line.lstrip().startswith("#") else line.split(" #")[0]
            for command in re.split(COMMAND_END, code):
                if command.strip().startswith("neuroformer ") and (out := re.search(r"--output-dir[ =]([^\s\[\]]+)", command)):
                    config = re.search(r"--config[ =]([^\s\[\]]+)", command)
                    folders.setdefault(out.group(1), set()).add(config.group(1) if config else None)
    for block in re.findall(r"```python\n(.*?)```", text, re.S):
        for folder in re.findall(r"(?<![\w.])train\(\s*\w+\s*,\s*[\"']([^\"']+)[\"']", block) + \
                re.findall(r"output_dir\s*=\s*[\"']([^\"']+)[\"']", block):
            folders.setdefault(folder, set()).add(None)
    return folders


def config_folder_clashes(readme: str, configs: dict) -> list:
    """For ``configs`` (``{"configs/x.yaml": its text}``): the example configs whose header comment's
    ``neuroformer train ... --output-dir X`` writes into a folder that another example config's header
    also writes, or that ``readme`` (:func:`readme_output_folders`) writes with another config or none:
    following the README and then the config is refused (or with ``--overwrite`` replaces the README's
    model). One string per clash."""
    written = readme_output_folders(readme)
    headers = {}
    for name, text in configs.items():
        header = " ".join(line.lstrip("# ").rstrip("\\ ") for line in text.splitlines() if line.startswith("#"))
        if out := re.search(r"neuroformer train .*?--output-dir[ =](\S+)", header):
            headers.setdefault(out.group(1), []).append(name)
    problems = [f"{', '.join(names)}: all write {folder}" for folder, names in headers.items() if len(names) > 1]
    for folder, names in headers.items():
        others = sorted(("no --config" if c is None else f"--config {c}") for c in written.get(folder, set()) - set(names))
        problems += [f"{name}: writes {folder}, which the README writes with {' and '.join(others)}" for name in names
                     if others]
    return problems


def test_each_example_config_writes_a_folder_of_its_own():
    """configs/a2929_head_direction.yaml's command wrote runs/a2929, the folder of the README's Python
    example (the model every later README command reads): following the README and then the config was
    refused, or with --overwrite replaced that model. Each example config's header now names a folder
    that no other config, and no README run of another config (or of none), writes."""
    readme = (REPO_ROOT / "README.md").read_text()
    configs = {f"configs/{p.name}": p.read_text() for p in sorted((REPO_ROOT / "configs").glob("*.yaml"))}
    assert sum("--output-dir" in text for text in configs.values()) >= 5 and readme_output_folders(readme)
    assert config_folder_clashes(readme, configs) == []


def test_the_folder_check_finds_a_config_writing_the_readmes_model_or_another_configs_folder():
    readme = "\n".join(["```python", 'metrics = train(rec, "runs/m")', "```", "```bash",
                        "neuroformer train --config configs/c.yaml --data x.nwb \\", "    --output-dir runs/c",
                        "neuroformer finetune --model runs/m --output-dir runs/ft  # --output-dir runs/ignored",
                        "```"])
    assert readme_output_folders(readme) == {"runs/m": {None}, "runs/c": {"configs/c.yaml"}, "runs/ft": {None}}
    header = "# a config\n#   neuroformer train --config {0} --data x.nwb \\\n#       --output-dir {1}\nhidden_size: 8\n"
    configs = {"configs/a.yaml": header.format("configs/a.yaml", "runs/m"),
               "configs/b.yaml": header.format("configs/b.yaml", "runs/shared"),
               "configs/c.yaml": header.format("configs/c.yaml", "runs/c"),
               "configs/d.yaml": header.format("configs/d.yaml", "runs/shared")}
    assert config_folder_clashes(readme, configs) == [
        "configs/b.yaml, configs/d.yaml: all write runs/shared",
        "configs/a.yaml: writes runs/m, which the README writes with no --config"]
