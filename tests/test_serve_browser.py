"""The explorer's page in a real browser (Debian's chromium through Playwright, offline: every non-local
request aborted): each panel used as a person would, what it shows checked against the JSON API, no
console error, no request leaving the machine, a screenshot of each panel kept (test-artifacts/).

One server (uvicorn in a thread, over the world corpus and the tiny run) and one browser for the module.
The model's greedy decoding is replaced by a fixed text made of two documents' openings, so the trace of
"generate and trace" has spans in different documents to filter by (the barely trained model would
write nothing traceable)."""

from __future__ import annotations

import csv
import io
import json
import threading
import time

import pytest

from _browser import offline_page, require_chromium

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")


@pytest.fixture(scope="module")
def server(world_corpus, tiny_run):
    import httpx
    import uvicorn

    import seethrough.model
    from seethrough.cli.serve import bind
    from seethrough.index import open_corpus
    from seethrough.serve import create_app

    require_chromium()
    root = world_corpus[0]
    index = open_corpus(root / "corpus")
    written = index.document(40).token_ids[:10] + index.document(90).token_ids[:10]
    patch = pytest.MonkeyPatch()
    patch.setattr(seethrough.model, "greedy_continuations", lambda model, prompts, n: [written[:n]])
    app = create_app(root / "corpus", run=tiny_run)
    listener = bind("127.0.0.1", 0)
    port = listener.getsockname()[1]
    uv = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    while not uv.started:
        time.sleep(0.02)
    api = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
    try:
        yield port, api, written
    finally:
        api.close()
        uv.should_exit = True
        thread.join(10)
        listener.close()
        patch.undo()


@pytest.fixture(scope="module")
def browser(server):
    port, _, _ = server
    with offline_page(port=port) as b:
        b.page.goto(f"http://127.0.0.1:{port}/")
        b.page.wait_for_selector("body[data-ready='1']")
        yield b
    assert b.blocked == [], "the page asked for something outside this machine"


def expect_refusal(b, status: int) -> None:
    """The one console error chromium logs for a refused request the page shows (and nothing else)."""
    assert len(b.console_errors) == 1 and f"status of {status}" in b.console_errors[0], b.console_errors
    b.console_errors.clear()


def clean(b) -> None:
    assert b.console_errors == []
    assert b.blocked == []
    assert all(u.startswith((f"http://127.0.0.1:", "blob:", "data:")) for u in b.requests)


def wait_until(condition, seconds: float = 15.0) -> None:
    """Poll from Python: the page's CSP forbids the eval behind Playwright's wait_for_function."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the page did not update"
        time.sleep(0.05)


def tab(b, name: str) -> None:
    b.page.click(f"#tabs button[data-panel={name}]")


def submit(b, panel: str, fields: dict[str, str], ready: str, go: str | None = None) -> None:
    """Open a panel, fill its fields (selector -> text), press its button and wait for ``ready`` to show."""
    tab(b, panel)
    for selector, text in fields.items():
        b.page.fill(selector, text)
    b.page.click(go or f"#{panel}-go")
    b.page.wait_for_selector(ready)


def test_count_shows_the_count_tokens_and_latency(browser, server):
    _, api, _ = server
    p = browser.page
    submit(browser, "count", {"#count-q": "the employer of"}, "#count-result:not([hidden])")
    want = api.get("/api/count", params={"q": "the employer of"}).json()
    assert p.inner_text("#count-value") == f"{want['count']:,}"
    rows = [[c.inner_text() for c in r.query_selector_all("td")] for r in p.query_selector_all("#count-tokens tr")]
    assert rows == [[str(i), json.dumps(t), str(t_id)] for i, (t, t_id) in enumerate(zip(want["tokens"], want["ids"]))]
    assert "latency" in p.inner_text("#count-latency") and "ms" in p.inner_text("#count-latency")
    p.select_option("#count-mode", "ids")  # the same query as token ids
    p.fill("#count-q", " ".join(map(str, want["ids"])))
    p.click("#count-go")
    wait_until(lambda: len(p.query_selector_all("#count-tokens tr")) == 3)
    assert p.inner_text("#count-value") == f"{want['count']:,}"
    browser.screenshot("serve-count")
    p.select_option("#count-mode", "q")  # a word the tokenizer does not know: the API's one-line error, shown
    submit(browser, "count", {"#count-q": "zzzz"}, "#count-error:not([hidden])")
    assert "not in the tokenizer's vocabulary" in p.inner_text("#count-error")
    expect_refusal(browser, 422)
    clean(browser)


def test_find_highlights_pages_and_exports(browser, server):
    _, api, _ = server
    p = browser.page
    submit(browser, "find", {"#find-q": "the"}, "#find-rows li")
    first = api.get("/api/find", params={"q": "the", "limit": 10}).json()

    def shown() -> list[tuple[int, str]]:
        return [(int(li.query_selector("a").get_attribute("data-doc")), li.query_selector(".snippet").inner_text())
                for li in p.query_selector_all("#find-rows li")]

    assert shown() == [(m["doc"], m["snippet"]) for m in first["matches"]]
    assert {m.inner_text() for m in p.query_selector_all("#find-rows mark")} == {"the"}
    assert f"{first['count']:,} occurrence(s)" in p.inner_text("#find-summary")
    browser.screenshot("serve-find")
    p.click("#find-next")
    wait_until(lambda: "showing 11–20" in p.inner_text("#find-summary"))
    second = api.get("/api/find", params={"q": "the", "limit": 10, "offset": 10}).json()
    assert shown() == [(m["doc"], m["snippet"]) for m in second["matches"]]
    with p.expect_download() as download:
        p.click("#find-export-json")
    exported = json.loads(open(download.value.path(), encoding="utf-8").read())
    cap = min(1000, first["count"])
    every = [m for offset in range(0, cap, 100)
             for m in api.get("/api/find", params={"q": "the", "limit": min(100, cap - offset), "offset": offset,
                                                    "context": 20}).json()["matches"]]
    assert exported["count"] == first["count"] and exported["matches"] == every
    with p.expect_download() as download:
        p.click("#find-export-csv")
    rows = list(csv.DictReader(io.StringIO(open(download.value.path(), encoding="utf-8").read())))
    assert len(rows) == len(every)
    assert [(int(r["doc"]), int(r["position"]), r["match"]) for r in rows] == [(m["doc"], m["position"], "the") for m in every]
    assert all(r["left"] + r["match"] + r["right"] == m["snippet"] for r, m in zip(rows, every))
    clean(browser)


def test_next_tokens_click_to_extend(browser, server):
    _, api, _ = server
    p = browser.page
    submit(browser, "ntd", {"#ntd-q": "the"}, "#ntd-rows tr")
    want = api.get("/api/ntd", params={"q": "the"}).json()
    rows = [(int(r.get_attribute("data-id")), int(r.query_selector_all("td")[2].inner_text().replace(",", "")))
            for r in p.query_selector_all("#ntd-rows tr")]
    assert rows == [(r["id"], r["count"]) for r in want["next"][:50]]
    top = want["next"][0]
    p.click("#ntd-rows tr:first-child")
    then = api.get("/api/ntd", params={"ids": ",".join(map(str, want["ids"] + [top["id"]]))}).json()
    wait_until(lambda: p.inner_text("#ntd-summary").startswith(f"prompt occurs {then['prompt_count']:,} time"))
    assert p.input_value("#ntd-q") == f"the {top['token']}"
    assert int(p.query_selector("#ntd-rows tr").get_attribute("data-id")) == then["next"][0]["id"]
    browser.screenshot("serve-ntd")
    clean(browser)


def test_boolean_search_and_the_document_view(browser, server):
    _, api, _ = server
    p = browser.page
    submit(browser, "search", {"#search-q": "employer AND born OR is", "#search-window": "10"}, "#search-rows li")
    want = api.get("/api/search", params={"q": "employer AND born OR is", "window": 10, "limit": 10}).json()
    assert p.inner_text("#search-summary").startswith(f"{want['count']:,} match(es) in {want['documents']:,} document(s)")
    docs = [int(a.get_attribute("data-doc")) for a in p.query_selector_all("#search-rows li .where a")]
    assert docs == [m["doc"] for m in want["matches"]]
    assert {m.get_attribute("class") for m in p.query_selector_all("#search-rows mark")} == {"c0", "c1"}
    browser.screenshot("serve-search")
    p.click("#search-rows li .where a")  # a match's document, opened from its link
    p.wait_for_selector("#doc-view:not([hidden])")
    doc = api.get(f"/api/document/{docs[0]}").json()
    assert p.inner_text("#doc-text") == doc["text"]
    assert p.inner_text("#doc-meta").startswith(f"document {docs[0]}: {len(doc['token_ids'])} tokens")
    browser.screenshot("serve-document")
    submit(browser, "document", {"#doc-id": "999999"}, "#doc-error:not([hidden])", go="#doc-go")
    assert "does not exist" in p.inner_text("#doc-error")
    expect_refusal(browser, 404)
    clean(browser)


def test_was_my_text_in_the_data(browser, server):
    _, api, _ = server
    p = browser.page
    index_text = api.get("/api/document/40").json()["text"] + " " + api.get("/api/document/41").json()["text"]
    submit(browser, "check", {"#check-text": index_text, "#check-min": "3"}, "#check-membership:not([hidden])")
    traced = api.post("/api/trace", json={"text": index_text, "min_length": 3, "span_density": 1}).json()
    marks = [m.inner_text() for m in p.query_selector_all("#check-highlight mark")]
    assert marks == [piece["text"] for piece in traced["pieces"] if piece["spans"]]
    assert p.inner_text("#check-highlight") == traced["text"]
    covered = len({i for s in traced["spans"] for i in range(s["start"], s["end"])}) / traced["tokens"]
    assert p.inner_text("#check-coverage").startswith(f"{100 * covered:.0f}% of its {traced['tokens']} tokens")
    cards = {int(c.get_attribute("data-doc")) for c in p.query_selector_all("#check-docs .doc-card")}
    assert cards == {d["doc"] for s in traced["spans"] for d in s["documents"]} and 40 in cards
    member = api.post("/api/membership", json={"text": index_text}).json()
    signals = {r.query_selector_all("td")[0].inner_text(): r.query_selector_all("td")[1].inner_text()
               for r in p.query_selector_all("#check-signals tr")}
    for name in ("loss", "zlib", "min_k", "min_k_plus_plus", "index"):
        assert signals[name] == f"{member[name]:.4f}"
    browser.screenshot("serve-check")
    clean(browser)


def test_generate_and_trace_spans_and_documents_filter_each_other(browser, server):
    _, api, written = server
    p = browser.page
    submit(browser, "generate", {"#gen-prompt": "the", "#gen-tokens": str(len(written))}, "#gen-result:not([hidden])",
           go="#gen-go")
    got = api.post("/api/generate", json={"prompt": "the", "max_new_tokens": len(written), "span_density": 0.1,
                                          "min_length": 4}).json()  # the page's defaults
    assert got["generated_ids"] == written and len(got["spans"]) >= 2
    docs_of = [{d["doc"] for d in s["documents"]} for s in got["spans"]]
    assert docs_of[0] != docs_of[-1]

    def visible_cards() -> set[int]:
        return {int(c.get_attribute("data-doc")) for c in p.query_selector_all("#gen-docs .doc-card") if c.is_visible()}

    assert visible_cards() == set().union(*docs_of)
    browser.screenshot("serve-generate")
    # a span selects its documents ...
    p.click("#gen-text mark[data-spans^='0']")
    assert visible_cards() == docs_of[0]
    assert p.inner_text("#gen-status").startswith(f"{len(docs_of[0])} document(s) containing span")
    browser.screenshot("serve-generate-span")
    p.click("#gen-status button.clear")
    assert visible_cards() == set().union(*docs_of)
    # ... and a document locates its spans
    last = sorted(docs_of[-1] - docs_of[0])[0]
    p.click(f"#gen-docs .doc-card[data-doc='{last}'] button.locate")
    in_doc = {i for i, docs in enumerate(docs_of) if last in docs}
    for mark in p.query_selector_all("#gen-text mark"):
        spans = {int(i) for i in mark.get_attribute("data-spans").split(",")}
        assert ("dim" in (mark.get_attribute("class") or "").split()) == (not spans & in_doc)
    assert p.inner_text(f"#gen-docs .doc-card[data-doc='{last}'] button.locate") == "show all spans"
    browser.screenshot("serve-generate-document")
    clean(browser)
