from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_top_level_matches_design():
    for name in ["Pulumi.yaml", "__main__.py", "infra", "playbooks", "roles", "app", "sql",
                 "tasks.py", "tests", "bench", "docs", "inventories", ".ci/run",
                 "pyproject.toml", "README.md"]:
        assert (ROOT / name).exists(), name


def test_ci_runs_exactly_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci/run").read_text()
    assert "./scripts/test" in readme
    assert "exec ./scripts/test\n" in ci
