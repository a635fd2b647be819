import re

from rag.config import PROJECT_ROOT


def test_ci_runs_the_readme_test_command() -> None:
    readme = (PROJECT_ROOT / "README.md").read_text("utf-8")
    ci = (PROJECT_ROOT / ".ci" / "run").read_text("utf-8")
    m = re.search(r"bash scripts/install.sh --test && (python -m pytest[^\n#]*?)\s*#", readme)
    assert m, "README quick start must give the test command"
    assert m.group(1).strip() in ci
    assert "bash scripts/install.sh --test" in ci


def test_space_front_matter() -> None:
    readme = (PROJECT_ROOT / "README.md").read_text("utf-8")
    head = readme.split("---")[1]
    for key in ("sdk: gradio", "sdk_version:", "app_file: ui/app.py", "python_version:"):
        assert key in head
    assert (PROJECT_ROOT / "ui" / "app.py").exists()
    assert ".[ui,llm,model,docs]" in (PROJECT_ROOT / "requirements.txt").read_text()
