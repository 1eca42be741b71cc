"""The explorer's JSON API (FastAPI's TestClient): every endpoint against the library called on its own
and against brute force over the documents' tokens; withheld documents never leaking, checked on every
endpoint; path and id tricks, oversized requests, foreign Host headers and deadlines refused cleanly."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections import Counter

import pytest

from conftest import brute_count, brute_occurrences

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402

from seethrough.audit.trace import TraceSettings, trace, trace_generation  # noqa: E402
from seethrough.errors import QueryError  # noqa: E402
from seethrough.index import open_corpus, parse_boolean_query  # noqa: E402
from seethrough.serve import ServeLimits, create_app  # noqa: E402

BASE = "http://127.0.0.1:8000"


@pytest.fixture(scope="module")
def world(world_corpus):
    """The world corpus opened for queries, its documents' token ids, and a withheld document: a canary
    whose whole text occurs once in the corpus, so its text can only come from it."""
    root, _, _, docs = world_corpus
    index = open_corpus(root / "corpus")
    token_docs = [index.document(i).token_ids for i in range(index.num_documents)]
    withheld = next(i for i, d in enumerate(docs) if d.get("kind") == "canary" and len(token_docs[i]) >= 12
                    and index.count(token_docs[i]) == 1)
    return root / "corpus", index, token_docs, withheld


@pytest.fixture(scope="module")
def plain(world, tiny_run):
    corpus, _, _, _ = world
    with TestClient(create_app(corpus, run=tiny_run), base_url=BASE) as client:
        yield client


@pytest.fixture(scope="module")
def hiding(world, tiny_run, tmp_path_factory):
    corpus, _, _, withheld = world
    takedown = tmp_path_factory.mktemp("takedown") / "withhold.txt"
    takedown.write_text(f"# takedown requests\n{withheld}\n\n")
    with TestClient(create_app(corpus, run=tiny_run, withhold=takedown), base_url=BASE) as client:
        yield client


def ok(response) -> dict:
    assert response.status_code == 200, response.text
    return response.json()


def without(record: dict, *keys: str) -> dict:
    return {k: v for k, v in record.items() if k not in keys}


def words(index, ids) -> str:
    return index.tokenizer.decode(list(ids))


# ---- answers equal the library's ---------------------------------------------------------------------
def test_count_equals_the_library_and_brute_force(plain, world):
    _, index, token_docs, _ = world
    for text in ["the", "the employer of", words(index, token_docs[5][:3])]:
        ids = index.encode(text).tolist()
        got = ok(plain.get("/api/count", params={"q": text}))
        assert without(got, "tokens", "withheld") == {"count": index.count(text), "ids": ids, "text": text}
        assert got["count"] == brute_count(token_docs, ids) and got["withheld"] == 0
        assert got["tokens"] == [index.tokenizer.decode([i]) for i in ids]
    ids = token_docs[7][:2]
    by_ids = ok(plain.get("/api/count", params={"ids": ",".join(map(str, ids))}))
    assert by_ids == {"count": brute_count(token_docs, ids), "ids": ids, "tokens": by_ids["tokens"], "withheld": 0}


def test_find_pages_equal_the_library_listing(plain, world):
    _, index, token_docs, _ = world
    text = "the employer of"
    ids = index.encode(text).tolist()
    everything = index.find(text, limit=10_000, context=5)
    assert [(m.doc, m.position) for m in everything.matches] == brute_occurrences(token_docs, ids)
    for offset, limit in [(0, 10), (7, 5), (everything.count - 3, 10), (everything.count, 4)]:
        got = ok(plain.get("/api/find", params={"q": text, "offset": offset, "limit": limit, "context": 5}))
        assert got["count"] == everything.count and got["ids"] == ids and got["withheld"] == 0
        assert (got["offset"], got["limit"]) == (offset, limit)
        assert [without(m, "pieces") for m in got["matches"]] == \
            [m.to_dict() for m in everything.matches[offset:offset + limit]]
        for m in got["matches"]:  # the highlighted piece is the match, and the pieces join into the snippet
            assert "".join(p["text"] for p in m["pieces"]) == m["snippet"]
            assert [p["text"] for p in m["pieces"] if p["clause"] == 0] == [text]
    first = ok(plain.get("/api/find", params={"q": text}))  # the defaults: the library's find
    assert without(first, "offset", "limit", "withheld") | {"matches": [without(m, "pieces") for m in first["matches"]]} \
        == index.find(text).to_dict()


def test_ntd_equals_the_library(plain, world):
    _, index, token_docs, _ = world
    for params, prompt in [({"q": "the"}, "the"), ({"q": "the employer of"}, "the employer of"), ({}, ""),
                           ({"ids": str(token_docs[3][0])}, [token_docs[3][0]])]:
        got = ok(plain.get("/api/ntd", params=params))
        want = index.ntd(prompt).to_dict()
        assert without(got, "withheld") | {"next": [without(r, "token") for r in got["next"]]} == want
        assert all(r["token"] == index.tokenizer.decode([r["id"]]) for r in got["next"])
    # brute force of one prompt: what follows each occurrence
    ids = index.encode("the employer of").tolist()
    follows = Counter(d[i + len(ids)] for j, i in brute_occurrences(token_docs, ids) for d in [token_docs[j]]
                      if i + len(ids) < len(d))
    got = ok(plain.get("/api/ntd", params={"q": "the employer of"}))
    assert {r["id"]: r["count"] for r in got["next"]} == dict(follows)


def test_search_equals_the_library(plain, world):
    _, index, _, _ = world
    for query, window in [("employer AND born OR is", 10), ("the employer of", 100), ("born AND city", 3)]:
        got = ok(plain.get("/api/search", params={"q": query, "window": window, "limit": 7, "context": 4}))
        want = index.search(parse_boolean_query(query), window=window, limit=7, context=4).to_dict()
        assert without(got, "withheld") | {"matches": [without(m, "pieces") for m in got["matches"]]} == want
        for m in got["matches"]:
            assert "".join(p["text"] for p in m["pieces"]) == m["snippet"]


def test_document_equals_the_library(plain, world):
    _, index, _, _ = world
    for doc in [0, 17, index.num_documents - 1]:
        d = index.document(doc)
        assert ok(plain.get(f"/api/document/{doc}")) == {"doc": doc, "text": d.text, "token_ids": d.token_ids,
                                                         "metadata": d.metadata, "path": d.path, "line": d.line}


def test_trace_membership_and_generate_equal_the_library(plain, world, tiny_run):
    from seethrough.audit.membership import MembershipAuditor

    _, index, token_docs, _ = world
    text = words(index, token_docs[40] + token_docs[41][:6])
    got = ok(plain.post("/api/trace", json={"text": text, "min_length": 3, "span_density": 1}))
    settings = TraceSettings(min_length=3, span_density=1.0)
    assert without(got, "pieces") == trace(index, index.encode(text).tolist(), settings).to_dict()
    assert "".join(p["text"] for p in got["pieces"]) == got["text"]
    for piece in got["pieces"]:  # each piece lies inside exactly the spans it is marked with
        assert piece["spans"] == [i for i, s in enumerate(got["spans"]) if s["start"] <= piece["start"]
                                  and piece["end"] <= s["end"]]
    assert ok(plain.post("/api/membership", json={"text": text})) == \
        json.loads(json.dumps(MembershipAuditor(tiny_run, index).score([text])[0].to_dict()))
    answered = 0
    for prompt in ["the employer of", "the", "born in", "is", "the city of", "."]:
        response = plain.post("/api/generate", json={"prompt": prompt, "max_new_tokens": 12})
        try:
            want = json.loads(json.dumps(trace_generation(tiny_run, index, prompt, 12, TraceSettings()).to_dict()))
        except QueryError as error:  # the barely trained model may end at once: then both refuse alike
            assert "ended its response at once" in str(error)
            assert response.status_code == 422 and "ended its response at once" in response.json()["error"]
            continue
        assert without(ok(response), "pieces") == want
        answered += 1
    assert answered


def test_info_describes_the_corpus_and_the_limits(plain, world, tiny_run):
    _, index, _, _ = world
    info = ok(plain.get("/api/info"))
    assert (info["documents"], info["tokens"], info["run"]) == (index.num_documents, index.num_tokens, str(tiny_run))
    assert info["limits"] == ServeLimits().__dict__ and info["withheld_documents"] == 0


# ---- withheld documents --------------------------------------------------------------------------------
def test_withheld_documents_never_leak_from_any_endpoint(hiding, plain, world):
    """The canary's text (beyond what a query itself says) and its id appear in no answer; counts keep
    the index's numbers and say how many occurrences are withheld."""
    _, index, token_docs, withheld = world
    secret = token_docs[withheld]
    head, rest = secret[:3], secret[3:]  # a query names the head; the rest must never come back
    head_text, rest_text = words(index, head), words(index, rest[:4])
    leaks = [f'"doc": {withheld},', f'"doc":{withheld},', rest_text]

    def clean(response, status=200) -> dict:
        assert response.status_code == status, response.text
        for leak in leaks:
            assert leak not in response.text, (response.request.url, leak)
        return response.json()

    # without the takedown list the canary is there to be found: the checks below can fail
    assert withheld in [m["doc"] for m in ok(plain.get("/api/find", params={"q": head_text, "limit": 100}))["matches"]]
    assert rest_text in plain.get(f"/api/document/{withheld}").text
    count = clean(hiding.get("/api/count", params={"q": head_text}))
    assert (count["count"], count["withheld"]) == (index.count(head), brute_count([secret], head))
    found = clean(hiding.get("/api/find", params={"q": head_text, "limit": 100}))
    visible = [(j, i) for j, i in brute_occurrences(token_docs, head) if j != withheld]
    assert found["count"] == index.count(head) and found["withheld"] == brute_count([secret], head)
    assert [(m["doc"], m["position"]) for m in found["matches"]] == visible[:100]
    ntd = clean(hiding.get("/api/ntd", params={"q": head_text}))
    follows = Counter(token_docs[j][i + 3] for j, i in visible if i + 3 < len(token_docs[j]))
    assert {r["id"]: r["count"] for r in ntd["next"]} == dict(follows) and ntd["withheld"] >= 1
    assert ntd["prompt_count"] == index.count(head)
    whole = clean(hiding.get("/api/ntd", params={"ids": ",".join(map(str, secret[:-1]))}))
    assert whole["next"] == [] and whole["withheld"] == 1  # the prompt only it holds: nothing follows visibly
    searched = clean(hiding.get("/api/search", params={"q": f"{words(index, secret[:2])} AND {words(index, secret[5:7])}",
                                                        "window": 20, "limit": 50}))
    assert searched["withheld"] >= 1 and all(m["doc"] != withheld for m in searched["matches"])
    gone = clean(hiding.get(f"/api/document/{withheld}"), 410)
    assert "withheld" in gone["error"] and gone["status"] == 410
    traced = clean(hiding.post("/api/trace", json={"text": head_text + " " + words(index, token_docs[3]),
                                                   "span_density": 1, "min_length": 2}))
    assert all(d["doc"] != withheld for s in traced["spans"] for d in s["documents"])
    member = clean(hiding.post("/api/membership", json={"text": words(index, secret[:3])}))
    assert member["tokens"] == 3
    assert clean(hiding.get("/api/info"))["withheld_documents"] == 1


def test_generate_never_lists_withheld_documents(hiding, plain, world, monkeypatch):
    """A model that writes the withheld canary word for word (greedy decoding replaced by it): the trace
    finds the span and counts it, and lists no document for it."""
    import seethrough.model

    _, index, token_docs, withheld = world
    secret = token_docs[withheld]
    monkeypatch.setattr(seethrough.model, "greedy_continuations", lambda model, prompts, n: [secret[:n]])
    for client, listed in [(plain, True), (hiding, False)]:
        got = ok(client.post("/api/generate", json={"prompt": "the", "max_new_tokens": len(secret),
                                                    "span_density": 1, "min_length": 4}))
        assert got["generated_ids"] == secret
        whole = next(s for s in got["spans"] if s["start"] == 0 and s["end"] == len(secret))
        assert whole["count"] == 1
        assert [d["doc"] for d in whole["documents"]] == ([withheld] if listed else [])
        assert listed or all(d["doc"] != withheld for s in got["spans"] for d in s["documents"])


def test_withheld_boolean_hits_are_the_engines_hits_in_that_document(world):
    """The withheld count of a boolean search, computed on the withheld document alone, equals the
    engine's own listing of every hit, counted in that document."""
    from seethrough.serve.withhold import WithheldDocuments

    _, index, token_docs, withheld = world
    secret = token_docs[withheld]
    hidden = WithheldDocuments(index, [withheld, 3, 11])
    for clauses, window in [([[secret[:2]], [secret[4:6]]], 6), ([[secret[:1], secret[2:3]], [secret[-1:]]], 30),
                            ([[index.encode("the").tolist()], [index.encode("of").tolist()]], 2)]:
        encoded = [[index.encode(t) for t in clause] for clause in clauses]
        every = index.search(clauses, window=window, limit=100_000, context=0)
        assert every.count == len(every.matches)
        assert hidden.boolean_hits(encoded, window) == sum(m.doc in hidden for m in every.matches)


def test_takedown_file_lines_are_checked(world, tmp_path):
    from seethrough.errors import ConfigError
    from seethrough.serve import read_withheld

    corpus, index, _, _ = world
    good = tmp_path / "good.txt"
    good.write_text("3\n  5 \n# a comment\n\n3\n")
    assert read_withheld(good, index.num_documents) == [3, 5]
    for content, message in [("3\nfive\n", "line 2: 'five' is not a document id"), ("-1\n", "line 1: '-1'"),
                             (f"{index.num_documents}\n", f"line 1: document {index.num_documents} does not exist")]:
        bad = tmp_path / "bad.txt"
        bad.write_text(content)
        with pytest.raises(ConfigError, match=message):
            read_withheld(bad, index.num_documents)
    result = subprocess.run([sys.executable, "-m", "seethrough", "serve", str(corpus), "--withhold", str(bad),
                             "--port", "0"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "line 1" in result.stderr and "does not exist" in result.stderr


# ---- refusals -------------------------------------------------------------------------------------------
def refused(response, *statuses: int) -> str:
    assert response.status_code in statuses, (response.status_code, response.text)
    body = response.json()
    assert set(body) == {"error", "status"} and body["status"] == response.status_code
    assert "Traceback" not in response.text and "\n" not in body["error"]
    return body["error"]


def test_path_and_id_tricks_are_refused(plain, world):
    _, index, _, _ = world
    for path in ["/api/document/-1", "/api/document/abc", "/api/document/1e3", "/api/document/0x10",
                 "/api/document/%201", "/api/document/1.0", "/api/document/%00"]:
        assert "is not a document number; ask for /api/document/0" in refused(plain.get(path), 422)
    for path in [f"/api/document/{index.num_documents}", "/api/document/99999999999999999999999999"]:
        assert "does not exist" in refused(plain.get(path), 404)
    for path in ["/api/document/..%2F..%2Fpyproject.toml", "/api/document/../../pyproject.toml",
                 "/static/../../../pyproject.toml", "/static/..%2F..%2F..%2Fpyproject.toml", "/static/%2e%2e/app.py",
                 "/static/nothing.js", "/api/nothing"]:
        response = plain.get(path)
        refused(response, 404)
        assert "[project]" not in response.text and "import" not in response.text
    assert "not a list of token ids" in refused(plain.get("/api/count", params={"ids": "1,-2"}), 422)
    assert "outside the vocabulary" in refused(plain.get("/api/count", params={"ids": "999999999"}), 422)
    assert "not both" in refused(plain.get("/api/count", params={"q": "the", "ids": "1"}), 422)
    assert "limit" in refused(plain.get("/api/find", params={"q": "the", "limit": "ten"}), 422)
    assert "limit=1000" in refused(plain.get("/api/find", params={"q": "the", "limit": 1000}), 422)
    assert "offset=-1" in refused(plain.get("/api/find", params={"q": "the", "offset": -1}), 422)
    assert "window=10001: give a whole number from 0 to 10000" in refused(
        plain.get("/api/search", params={"q": "the", "window": 10_001}), 422)
    assert "not in the tokenizer's vocabulary" in refused(plain.get("/api/count", params={"q": "zzzz"}), 422)
    assert "POST /api/count is not answered; use GET" in refused(plain.post("/api/count"), 405)
    assert "/api/nothing is not a page of this server; the API is GET /api/info" in refused(plain.get("/api/nothing"),
                                                                                             404)
    for empty_item in ["1,,2", ",1", "1,", "1, ,2"]:  # an empty item is a typo, not a query for fewer ids
        assert "not a list of token ids" in refused(plain.get("/api/count", params={"ids": empty_item}), 422)
    ids = index.encode("the employer of").tolist()
    for spelled in [",".join(map(str, ids)), " ".join(map(str, ids)), " , ".join(map(str, ids))]:
        assert ok(plain.get("/api/count", params={"ids": spelled}))["count"] == index.count(ids)
    assert "q is empty: give some text (q=TEXT)" in refused(plain.get("/api/count", params={"q": ""}), 422)


def test_oversized_requests_are_refused(plain):
    limits = ServeLimits()
    big = {"text": "the " * (limits.max_body_bytes // 4 + 10)}
    assert "over this server's limit of 65,536 bytes" in refused(plain.post("/api/trace", json=big), 413)

    def chunks():  # no Content-Length: the body is counted as it arrives
        for _ in range(limits.max_body_bytes // 1000 + 2):
            yield b" " * 1000

    assert "bytes" in refused(plain.post("/api/trace", content=chunks(), headers={"content-type": "application/json"}),
                              413)
    huge = b" " * (3 << 20)  # past what is read through: refused from its Content-Length alone
    assert "bytes" in refused(plain.post("/api/trace", content=huge, headers={"content-type": "application/json"}), 413)
    assert "characters" in refused(plain.get("/api/count", params={"q": "the " * 600}), 422)
    assert f"limit of {limits.max_query_tokens}" in refused(plain.get("/api/count", params={"ids": ",".join(["1"] * 501)}),
                                                            422)
    long_text = " ".join(["the"] * (limits.max_text_tokens + 1))
    assert f"limit of {limits.max_text_tokens}" in refused(plain.post("/api/trace", json={"text": long_text}), 422)
    assert "max_new_tokens" in refused(plain.post("/api/generate", json={"prompt": "the", "max_new_tokens": 10_000}), 422)
    assert "application/json" in refused(plain.post("/api/trace", data={"text": "the"}), 415)
    assert "not valid JSON" in refused(plain.post("/api/trace", content=b"{", headers={"content-type": "application/json"}),
                                       422)
    assert "leave it out" in refused(plain.post("/api/trace", json={"text": "the", "verbose": True}), 422)
    assert "docs_per_span" in refused(plain.post("/api/trace", json={"text": "the", "docs_per_span": 500}), 422)


def test_foreign_host_headers_are_refused(plain):
    for host in ["attacker.example", "127.0.0.2", "localhost.", "evil.localhost:8000", ""]:
        assert "Host header" in refused(plain.get("/api/info", headers={"host": host}), 400)
    for host in ["127.0.0.1:8000", "localhost", "LOCALHOST:1234", "127.0.0.1"]:
        ok(plain.get("/api/info", headers={"host": host}))


def test_no_model_no_membership(world):
    corpus, _, _, _ = world
    with TestClient(create_app(corpus), base_url=BASE) as client:
        assert "--run" in refused(client.post("/api/membership", json={"text": "the"}), 404)
        assert "--run" in refused(client.post("/api/generate", json={"prompt": "the"}), 404)
        assert ok(client.get("/api/info"))["run"] is None


def test_a_query_past_its_deadline_answers_503(world):
    corpus, _, _, _ = world
    with TestClient(create_app(corpus, limits=ServeLimits(deadline_seconds=1e-9)), base_url=BASE) as client:
        assert "deadline" in refused(client.get("/api/count", params={"q": "the"}), 503)
        assert "deadline" in refused(client.post("/api/trace", json={"text": "the employer of"}), 503)
        ok(client.get("/api/info"))  # no query: no deadline


def test_the_queue_is_bounded():
    """Two slots: a third query waits, a fourth is refused at once; a waiter gives up at the deadline."""
    from seethrough.serve.app import Admission, Busy

    async def scenario() -> list[str]:
        admission, events = Admission(running=2, queued=1, wait=0.2), []
        release = asyncio.Event()

        async def query(name: str) -> None:
            try:
                async with admission:
                    events.append(f"{name} runs")
                    await release.wait()
            except Busy as error:
                events.append(f"{name} refused: {error}")

        tasks = [asyncio.create_task(query(n)) for n in ("a", "b", "c")]
        await asyncio.sleep(0.01)
        assert (admission.running, admission.waiting) == (2, 1)
        await query("d")  # the queue is full
        release.set()
        await asyncio.gather(*tasks)
        late = Admission(running=1, queued=5, wait=0.05)
        async with late:
            try:
                async with late:
                    pass
            except Busy as error:
                events.append(f"late refused: {error}")
        return events

    events = asyncio.run(scenario())
    assert events[:3] == ["a runs", "b runs", "d refused: the server is busy (2 queries running, 1 waiting); try "
                                              "again shortly"]
    assert "c runs" in events
    assert events[-1].startswith("late refused: the server is busy: no query slot came free within 0.05 s")


# ---- the command and the demo's lines ---------------------------------------------------------------
def test_the_command_serves_and_says_where(world, tmp_path):
    """`seethrough serve --port 0 --json` listens, says where, answers as the library, and refuses a
    taken port and flags without --run with one line."""
    import httpx

    corpus, index, _, _ = world
    server = subprocess.Popen([sys.executable, "-m", "seethrough", "serve", str(corpus), "--port", "0", "--json"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready = json.loads(server.stdout.readline())
        assert ready["url"] == f"http://127.0.0.1:{ready['port']}/" and ready["documents"] == index.num_documents
        with httpx.Client(base_url=ready["url"]) as client:
            assert client.get("/api/count", params={"q": "the"}).json()["count"] == index.count("the")
            assert client.get("/").text.startswith("<!doctype html>")
            assert client.get("/static/app.js").status_code == 200
            for _ in range(3):  # over a real socket, a client still sending an oversized body reads the 413
                big = client.post("/api/trace", json={"text": "the " * 20_000})
                assert big.status_code == 413 and "bytes" in big.json()["error"]
            assert client.get("/api/count", params={"q": "the"}).status_code == 200
        taken = subprocess.run([sys.executable, "-m", "seethrough", "serve", str(corpus), "--port", str(ready["port"])],
                               capture_output=True, text=True, timeout=120)
        assert taken.returncode == 2 and "is in use" in taken.stderr and "Traceback" not in taken.stderr
    finally:
        server.terminate()
        server.wait(30)
    alone = subprocess.run([sys.executable, "-m", "seethrough", "serve", str(corpus), "--device", "cpu"],
                           capture_output=True, text=True, timeout=120)
    assert alone.returncode == 2 and "--device has no effect with no --run" in alone.stderr


def test_the_demos_serve_command_is_quoted_for_a_shell(world, tiny_run):
    from seethrough.serve.demo_step import serve_command

    corpus, _, _, _ = world
    assert serve_command(corpus, tiny_run) == f"seethrough serve {corpus} --run {tiny_run}"
    assert serve_command("my corpus", port=9000) == "seethrough serve 'my corpus' --port 9000"


def test_a_host_that_is_not_this_machines_is_named():
    """A well-formed address this machine does not have (EADDRNOTAVAIL) reads as the --host problem it is."""
    import errno
    import socket

    from seethrough.cli.serve import bind
    from seethrough.errors import ConfigError

    probe = socket.socket()
    try:
        probe.bind(("192.0.2.1", 0))  # TEST-NET-1: no machine's own address
    except OSError as error:
        assert error.errno == errno.EADDRNOTAVAIL
    else:
        pytest.skip("this machine has 192.0.2.1")
    finally:
        probe.close()
    with pytest.raises(ConfigError, match=r"^--host 192.0.2.1 is not an address of this machine; use 127.0.0.1"):
        bind("192.0.2.1", 0)


def test_the_search_window_limit_is_the_servers_setting(world):
    corpus, index, _, _ = world
    with TestClient(create_app(corpus, limits=ServeLimits(max_window=5)), base_url=BASE) as narrow:
        assert "window=6: give a whole number from 0 to 5" in refused(
            narrow.get("/api/search", params={"q": "the", "window": 6}), 422)
        got = ok(narrow.get("/api/search", params={"q": "the AND of", "window": 5, "limit": 3}))
        assert got["count"] == index.search(parse_boolean_query("the AND of"), window=5, limit=3).count
