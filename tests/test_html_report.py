"""The HTML eval report: its data (outcomes, A/B flips, prompts), `tagsmith report`, and the
page itself driven in headless Chromium (tables, filters, A/B links, no console errors)."""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from tagsmith.cli import main
from tagsmith.errors import InputError
from tagsmith.evaluation import EvalPlan, evaluate, html_report, matrix
from tagsmith.evaluation.metrics import score_slot

from conftest import FakeEngine

COLORS = ["Black", "Red", "Stainless Steel"]
N_ITEMS = 40
#: a title that would break a page that pasted text into HTML or a script element
NASTY = 'Pan </script><img src=x onerror="throw new Error(1)"> & "co"'


def _answer(request) -> str:
    """Template A gets Color right except every 4th item; template B except every 3rd, and
    answers Material only for odd items; B's answer to item 5 is not JSON."""
    text = " ".join(m["content"] for m in request.messages)
    i = int(re.search(r"item (\d+)", text).group(1))
    gold, wrong = COLORS[i % 3], COLORS[(i + 1) % 3]
    if "TEMPLATE-B" not in text:
        return json.dumps({"Color": [gold if i % 4 else wrong], "Material": ["Steel"]})
    if i == 5:
        return "I cannot answer that"
    return json.dumps({"Color": [gold if i % 3 else wrong], "Material": ["Steel"] if i % 2 else []})


def build_report(root: Path, monkeypatch) -> Path:
    """A real `evaluate` of two templates (A = reference) on the fake engine; the run folder."""
    vocab = root / "kitchen.json"
    vocab.write_text(json.dumps({"name": "kitchen", "facets": [
        {"name": "Color", "values": COLORS}, {"name": "Material", "values": ["Steel", "Wood"]}]}))
    data = root / "gold.jsonl"
    with data.open("w", encoding="utf-8") as f:
        for i in range(N_ITEMS):
            title = f"{NASTY} item {i}" if i == 7 else f"Kitchen item {i} in {COLORS[i % 3].lower()}"
            f.write(json.dumps({"id": f"p{i}", "title": title, "description": f"Desc {i}",
                                "gold": {"Color": [COLORS[i % 3]], "Material": ["Steel"] if i % 2 else []}}) + "\n")
    templates = []
    for name in ("A", "B"):
        t = root / f"template-{name.lower()}.jinja"
        t.write_text(f"TEMPLATE-{name}: tag this product.\nProduct title: {{{{ title }}}}\nJSON answer:\n")
        templates.append(str(t))
    # the fake engine, built anew (never an engine another test left loaded in this process)
    monkeypatch.setattr(matrix, "create_engine", lambda *a, **k: FakeEngine(_answer))
    report = evaluate(EvalPlan(data=data, vocab=str(vocab), split="all", templates=templates, engines=("fake",),
                               adapters=("none",), baseline=False))
    return report.save(root / "runs")


@pytest.fixture
def run_dir(tmp_path, monkeypatch) -> Path:
    return build_report(tmp_path, monkeypatch)


def right(outcome: str) -> bool:
    return outcome in ("right", "empty")


def test_outcomes_colour_each_kind_of_slot():
    def o(gold, predicted, mode="set"):
        return html_report.outcome(score_slot("i", "f", gold, predicted, mode), predicted)

    assert o(["Red"], ["Red"]) == "right"
    assert o([], []) == "empty"
    assert o(["Red"], ["Black"]) == "wrong"
    assert o(["Red"], []) == "missed"
    assert o([], ["Red"]) == "extra"
    assert o(["Red", "Black"], ["Black"], mode="alternatives") == "right"


def test_viewer_flips_are_exactly_the_paired_comparison(run_dir):
    folder = html_report.RunFolder.read(run_dir)
    data = html_report.page_data(folder)
    (comp,) = data["comparisons"]
    assert len(data["slots"]) == 2 * N_ITEMS
    key = lambda s: (data["items"][s[0]][0], data["facets"][s[1]])  # noqa: E731
    a_right_b_wrong = {key(s) for s in data["slots"] if right(s[2][0][0]) and not right(s[2][1][0])}
    a_wrong_b_right = {key(s) for s in data["slots"] if not right(s[2][0][0]) and right(s[2][1][0])}
    assert a_right_b_wrong == {tuple(x) for x in comp["right_to_wrong"]} and a_right_b_wrong
    assert a_wrong_b_right == {tuple(x) for x in comp["wrong_to_right"]} and a_wrong_b_right
    # every run's prompt is kept, and shows its own template
    item = next(n for n, it in enumerate(data["items"]) if it[0] == "p3")
    prompts = ["\n".join(data["strings"][k] for _role, lines in run[3] for k in lines) for run in data["details"][item]]
    assert prompts[0].startswith("TEMPLATE-A: tag this product.\nProduct title: Kitchen item 3 in black\n")
    assert prompts[1].startswith("TEMPLATE-B: tag this product.\nProduct title: Kitchen item 3 in black\n")
    item5 = next(n for n, it in enumerate(data["items"]) if it[0] == "p5")
    assert data["details"][item5][1][1] == "I cannot answer that"  # the raw answer, unparseable


def test_page_is_self_contained_and_escapes_item_text(run_dir):
    page = (run_dir / "report.html").read_text(encoding="utf-8")
    assert "<table" in page and 'id="facet-table"' in page and "<svg" in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)  # nothing fetched from a network
    # the nasty title is inside the JSON data only, with "</" escaped so it cannot end the script
    assert "</script><img" not in page and "<\\/script><img" in page


def test_report_command_rebuilds_the_page_from_saved_predictions(run_dir):
    first = (run_dir / "report.html").read_text(encoding="utf-8")
    (run_dir / "report.html").unlink()
    r = CliRunner().invoke(main, ["report", str(run_dir)])
    assert r.exit_code == 0, r.output
    assert (run_dir / "report.html").read_text(encoding="utf-8") == first


def test_report_command_bad_folders_are_one_line_errors(tmp_path, run_dir):
    r = CliRunner().invoke(main, ["report", str(tmp_path / "nowhere")])
    assert r.exit_code == 2 and "no such folder" in r.output and "Traceback" not in r.output
    old = tmp_path / "old-run"
    shutil.copytree(run_dir, old)
    (old / "items.jsonl").unlink()
    r = CliRunner().invoke(main, ["report", str(old)])
    assert r.exit_code == 2 and "items.jsonl missing" in r.output
    (old / "items.jsonl").write_text("{not json\n")
    with pytest.raises(InputError, match="damaged eval run folder"):
        html_report.RunFolder.read(old)


def test_eval_open_without_a_browser_says_where_the_report_is(monkeypatch, tmp_path, capsys):
    import webbrowser

    from tagsmith.cli.eval import open_in_browser

    opened = []
    monkeypatch.setattr(webbrowser, "open", lambda url: opened.append(url) or False)
    for command in ("report", "eval"):
        assert "--open" in CliRunner().invoke(main, [command, "--help"]).output
    page = tmp_path / "report.html"
    page.write_text("<html></html>")
    open_in_browser(page)
    assert "no web browser found here" in capsys.readouterr().err
    assert opened == [page.resolve().as_uri()]


# ----------------------------------------------------------------------------- in a browser

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    webdriver = pytest.importorskip("selenium.webdriver")
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip("no Chromium here (Debian's chromium and chromium-driver; .ci/run installs them)")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", "--window-size=1400,1000",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.implicitly_wait(0)
    yield driver
    driver.quit()


def slots(n: int) -> str:
    """The viewer's count line."""
    return f"{n} slot" if n == 1 else f"{n} slots"


def console_errors(driver) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def screenshot(driver, path: Path) -> None:
    """The whole page, not just the window (Chromium's DevTools capture beyond the viewport)."""
    import base64

    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"captureBeyondViewport": True, "format": "png"})
    path.write_bytes(base64.b64decode(shot["data"]))


@pytest.mark.browser
def test_report_works_in_chromium(browser, run_dir, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    d = browser
    d.get((run_dir / "report.html").as_uri())
    comp = json.loads((run_dir / "summary.json").read_text())["comparisons"][0]
    assert "{" not in d.find_element(By.ID, "overview").text.split("configuration")[0]  # no raw JSON or Markdown
    assert len(d.find_elements(By.CSS_SELECTOR, ".card")) == 2

    # the per-facet table sorts on a click
    table = d.find_element(By.ID, "facet-table")
    facets = lambda: [r.find_elements(By.TAG_NAME, "td")[0].text for r in table.find_elements(By.CSS_SELECTOR, "tbody tr")]  # noqa: E731
    table.find_element(By.CSS_SELECTOR, "th[data-col='0']").click()
    assert facets() == ["Color", "Material"]
    table.find_element(By.CSS_SELECTOR, "th[data-col='0']").click()
    assert facets() == ["Material", "Color"]

    # every slot, then only "A right, B wrong": exactly the comparison's right -> wrong flips
    count = lambda: d.find_element(By.ID, "count").text  # noqa: E731
    assert count() == slots(2 * N_ITEMS)
    Select(d.find_element(By.ID, "outcome")).select_by_value("a-right-b-wrong")
    assert count() == slots(len(comp['right_to_wrong']))
    shown = {(r.get_attribute("data-item"), r.find_elements(By.TAG_NAME, "td")[2].text)
             for r in d.find_elements(By.CSS_SELECTOR, "#viewer tr.slot")}
    assert shown == {tuple(x) for x in comp["right_to_wrong"]}
    Select(d.find_element(By.ID, "facet")).select_by_value("Material")
    assert count() == slots(sum(1 for _, f in comp['right_to_wrong'] if f == 'Material'))

    # the A/B section's button shows the other direction's flips
    d.find_element(By.CSS_SELECTOR, "button.show-flips[data-outcome='a-wrong-b-right']").click()
    assert count() == slots(len(comp['wrong_to_right']))

    # search over the text (the nasty title is shown as text, not run as HTML)
    Select(d.find_element(By.ID, "outcome")).select_by_value("any")
    box = d.find_element(By.ID, "q")
    box.send_keys("onerror")
    assert count() == slots(2)
    assert NASTY in d.find_element(By.CSS_SELECTOR, "#viewer tr.slot td.title").text
    box.clear()
    box.send_keys(" ")  # an input event with an empty query: every slot again
    assert count() == slots(2 * N_ITEMS)

    # a flipped slot's link opens its item: text, gold, every run's answer and prompt
    item_id, facet = comp["right_to_wrong"][0]
    d.find_element(By.CSS_SELECTOR, f"a.flip[href='#item={item_id}&facet={facet}']").click()
    assert count() == slots(1)
    detail = d.find_element(By.CSS_SELECTOR, "#viewer tr.detail .detail")
    prompt = detail.find_elements(By.CSS_SELECTOR, "details.prompt")
    assert len(prompt) == 2
    prompt[1].find_element(By.TAG_NAME, "summary").click()
    assert "TEMPLATE-B" in prompt[1].text and f"item {item_id[1:]}" in prompt[1].text
    assert "evidence" in detail.text and "not stated in the text" in detail.text
    d.find_element(By.ID, "clear-item").click()
    assert count() == slots(2 * N_ITEMS)

    shots = Path(os.environ.get("TAGSMITH_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    Select(d.find_element(By.ID, "outcome")).select_by_value("a-right-b-wrong")
    d.find_element(By.CSS_SELECTOR, "#viewer tr.slot").click()
    screenshot(d, shots / "report.png")
    assert (shots / "report.png").stat().st_size > 10_000
    assert console_errors(d) == []


def large_run_folder(root: Path, n_items: int) -> Path:
    """A run folder as eval writes it, made directly: n_items items, 5 facets, 2 runs."""
    root.mkdir()
    facets = [f"Facet {k}" for k in range(5)]
    values = [f"value {v}" for v in range(30)]
    items = [{"id": f"x{i}", "title": f"Product {i} " + "word " * 20, "description": "text " * 60,
              "category": None, "gold": {f: [values[(i + k) % 30]] for k, f in enumerate(facets)}} for i in range(n_items)]
    (root / "items.jsonl").write_text("".join(json.dumps(i) + "\n" for i in items))
    runs = []
    for r in range(2):
        key = f"run{r}"
        with (root / f"predictions-{key}.jsonl").open("w") as f:
            for i, item in enumerate(items):
                tags = {fa: [values[(i + k + (r if i % 3 else 0)) % 30]] for k, fa in enumerate(facets)}
                prompt = [{"role": "system", "content": "You tag products. " * 40},
                          {"role": "user", "content": item["title"] + item["description"]}]
                f.write(json.dumps({"item_id": item["id"], "tags": tags, "raw": json.dumps(tags),
                                    "prompt": prompt, "vocabulary": "v"}) + "\n")
        per_facet = {fa: {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": n_items} for fa in facets}
        runs.append({"name": key, "kind": "llm", "config": {}, "config_key": key, "seconds_per_item": 0.1,
                     "items_per_second": 10, "cached_items": 0,
                     "rates": {"oov_rate": 0, "duplicate_rate": 0, "unparseable_rate": 0},
                     "scores": {"f1": 0.5, "precision": 0.5, "recall": 0.5, "macro_f1": 0.5, "exact_match": 0.1,
                                "per_facet": per_facet}})
    summary = {"dataset": "synthetic", "n_items": n_items, "split": "all", "vocab": "v", "mode": "alternatives",
               "runs": runs, "comparisons": [{"a": "run0", "b": "run1", "delta_f1": 0.0, "interval": [-0.01, 0.01],
                                              "right_to_wrong": [], "wrong_to_right": []}]}
    (root / "summary.json").write_text(json.dumps(summary))
    html_report.write(root)
    return root


@pytest.mark.browser
def test_a_large_report_opens_quickly(browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    folder = large_run_folder(tmp_path / "large", 10_000)
    start = time.perf_counter()
    browser.get((folder / "report.html").as_uri())
    assert browser.find_element(By.ID, "count").text == "50000 slots"
    opened = time.perf_counter() - start
    start = time.perf_counter()
    Select(browser.find_element(By.ID, "outcome")).select_by_value("a-right-b-wrong")
    filtered = time.perf_counter() - start
    rows = browser.find_elements(By.CSS_SELECTOR, "#viewer tr.slot")
    assert len(rows) == 50  # one page of rows, not 50,000
    print(f"10,000-item report: {(folder / 'report.html').stat().st_size / 1e6:.1f} MB, "
          f"opened in {opened:.2f} s, filtered in {filtered:.2f} s")
    # generous for a loaded 2-core CI machine; a page that built every row would take far longer
    assert opened < 10 and filtered < 5
    assert console_errors(browser) == []
