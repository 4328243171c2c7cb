"""Profile aggregation and every output writer, from synthetic samples.

Each format is read back with an independent reader (xml.etree, jsonschema
with the speedscope schema, the official protobuf runtime for pprof) and
compared with counts computed here straight from the samples, so a writer
cannot agree with itself by accident.
"""
from __future__ import annotations

import gzip
import io
import json
import os
import random
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from snapshot.model import Frame, Local, Snapshot, ThreadStack
from snapshot.profile import Profile, ProfileOptions, Sample, samples_from_snapshot
from snapshot.writers import format_for_path, formats, write_atomic, writer_class, writer_for
from snapshot.writers.base import Writer

DATA = Path(__file__).parent / "data"
SVG = "{http://www.w3.org/2000/svg}"
PERIOD = 10_000_000  # 100 Hz

MAIN = Frame("<module>", "/srv/app/main.py", 3)
RUN = Frame("run", "/srv/app/main.py", 20)
SERVE = Frame("serve", "/usr/lib/python3.11/site-packages/web/server.py", 88)
PARSE = Frame("parse", "/usr/lib/python3.11/json/decoder.py", 337)
PARSE2 = Frame("parse", "/usr/lib/python3.11/json/decoder.py", 353)
ODD = Frame("a&b<c>\"q\"", "/srv/app/we ird.py", 7)
WAIT = Frame("wait", "/usr/lib/python3.11/threading.py", 320)
WORKER = Frame("worker", "/srv/app/jobs.py", 14)
CHILD = Frame("child_main", "/srv/app/child.py", 5)

# stacks innermost first, as the walker produces them
STACKS = [
    (RUN, MAIN),
    (SERVE, RUN, MAIN),
    (PARSE, SERVE, RUN, MAIN),
    (PARSE2, SERVE, RUN, MAIN),
    (ODD, RUN, MAIN),
]
WORKER_STACKS = [(WAIT, WORKER), (WORKER,)]
THREADS = [  # pid, thread_id, native_id, name, command line, stacks
    (100, 0x7F10AA00, 1001, "MainThread", "python main.py", STACKS),
    (100, 0x7F10BB00, 1002, "worker-1", "python main.py", WORKER_STACKS),
    (200, 0x7F20CC00, 2001, None, "python child.py --fast", [(CHILD,), (PARSE, CHILD)]),
]


def make_samples(passes: int = 300, seed: int = 7):
    """Passes at 100 Hz; each thread holds a stack for a random run of passes."""
    rng = random.Random(seed)
    current = {t[1]: rng.choice(t[5]) for t in THREADS}
    out = []
    for i in range(passes):
        ts = 1_700_000_000_000_000_000 + i * PERIOD
        for pid, tid, native, name, cmd, stacks in THREADS:
            if rng.random() < 0.2:
                current[tid] = rng.choice(stacks)
            out.append(Sample(ts, pid, tid, native, name, tid % 2 == 0, False, current[tid], cmd))
    return out


def expected_collapsed(samples, threads=False, subprocesses=False):
    """Label paths -> counts, computed independently of Profile."""
    out = Counter()
    for s in samples:
        path = []
        if subprocesses:
            path.append('process %d:"%s"' % (s.pid, s.command_line))
        if threads:
            path.append("thread (0x%X)" % s.thread_id + (": " + s.thread_name if s.thread_name else ""))
        for f in reversed(s.frames):
            path.append("%s (%s:%d)" % (f.function, f.short_filename, f.line))
        out[tuple(path)] += 1
    return out


@pytest.fixture(scope="module")
def samples():
    return make_samples()


@pytest.fixture(scope="module")
def profile(samples):
    p = Profile(rate_hz=100)
    p.add_all(samples)
    return p


def render(fmt, profile, **options):
    writer = writer_for(fmt, profile, **options)
    stream = io.BytesIO() if writer.binary else io.StringIO()
    writer.finish(stream)
    return stream.getvalue()


# --------------------------------------------------------------------------- Profile

def test_memory_grows_with_distinct_stacks_not_time():
    p = Profile()
    frames = (Frame("f", "/a.py", 1, (Local("x", "1", 0x10, True),)), MAIN)
    for i in range(20_000):
        p.add(Sample(i * PERIOD, 1, 1, 1, "t", True, False, frames))
    assert p.samples == 20_000 and p.ticks == 20_000
    assert len(p.counts) == 1 and len(p.stacks) == 1 and len(p.frames) == 2
    assert p.interval_count == 1  # one run: the stack never changed
    assert all(f.locals is None for f in p.frames)  # locals never kept
    assert p.period_ns == PERIOD and p.rate_hz == pytest.approx(100)
    assert p.duration_ns == 20_000 * PERIOD


def test_one_counter_per_thread_and_stack(profile, samples):
    expected = Counter(((s.pid, s.thread_id), tuple(reversed(s.frames))) for s in samples)
    got = {(key, tuple(profile.frames[f] for f in profile.stacks[sid])): n
           for (key, sid), n in profile.counts.items()}
    assert got == dict(expected)
    assert profile.samples == len(samples) == sum(profile.counts.values())
    assert profile.ticks == 300
    assert profile.gil_samples == sum(s.holds_gil for s in samples)


def test_totals_errors_late():
    p = Profile(rate_hz=50)
    p.errors += 3  # (as record sets them, from the sampler's counts)
    p.late += 1
    assert (p.errors, p.late, p.samples, p.duration_ns) == (3, 1, 0, 0)
    assert p.period_ns == 20_000_000


def test_labels_like_py_spy(samples):
    p = Profile(threads=True, subprocesses=True)
    p.add_all(samples)
    assert p.collapsed() == dict(expected_collapsed(samples, threads=True, subprocesses=True))
    labels = {label for path in p.collapsed() for label in path}
    assert 'process 200:"python child.py --fast"' in labels
    assert "thread (0x7F10AA00): MainThread" in labels
    assert "thread (0x7F20CC00)" in labels
    assert "serve (web/server.py:88)" in labels  # short filename
    full = Profile(full_filenames=True)
    full.add_all(samples)
    assert "serve (/usr/lib/python3.11/site-packages/web/server.py:88)" in {
        label for path in full.collapsed() for label in path}


def test_nolineno_aggregates_by_function(samples):
    p = Profile(nolineno=True)
    p.add_all(samples)
    labels = {label for path in p.collapsed() for label in path}
    assert "parse (json/decoder.py)" in labels
    assert not any(re.search(r":\d+\)$", label) for label in labels)
    parse_frames = [f for f in p.frames if f.function == "parse"]
    assert len(parse_frames) == 1  # the two parse lines folded into one
    assert sum(p.collapsed().values()) == len(samples)


def test_function_mode_shows_first_line(samples):
    p = Profile(function=True)
    p.add_all(samples)
    labels = {label for path in p.collapsed() for label in path}
    assert "parse (json/decoder.py:337)" in labels  # lowest line seen in parse
    assert "parse (json/decoder.py:353)" not in labels
    assert len([f for f in p.frames if f.function == "parse"]) == 1


def test_timeline_merges_runs_and_splits_on_change_and_gaps():
    p = Profile(rate_hz=100)
    a, b = (RUN, MAIN), (SERVE, RUN, MAIN)
    order = [a, a, a, b, b, a]
    for i, stack in enumerate(order):
        p.add(Sample(i * PERIOD, 1, 5, None, None, True, False, stack))
    # the thread is unseen for a long time (e.g. idle, filtered by the sampler), then back on a
    p.add(Sample(20 * PERIOD, 1, 5, None, None, True, False, a))
    runs = list(p.timeline((1, 5)))
    assert [(r.start_ns // PERIOD, r.end_ns // PERIOD, r.samples) for r in runs] == [
        (0, 3, 3), (3, 5, 2), (5, 6, 1), (20, 21, 1)]
    assert p.interval_count == 4


def test_period_estimate_with_per_thread_timestamps():
    """A sampler may stamp each thread separately: runs must still merge, the rate stay right."""
    p = Profile()
    for i in range(1000):
        for t in range(4):
            p.add(Sample(i * PERIOD + t * 1000, 1, t, None, None, True, False, STACKS[t % 2]))
    assert p.ticks == 4000
    assert p.period_ns == pytest.approx(PERIOD, rel=0.001)
    assert p.interval_count == 4


def test_timeline_is_capped():
    p = Profile(max_intervals=3)
    for i in range(10):
        p.add(Sample(i, 1, 1, None, None, True, False, (STACKS[i % 2][0],)))
    assert p.interval_count == 3 and p.timeline_truncated
    assert p.samples == 10 and sum(p.counts.values()) == 10  # counts stay exact


def test_samples_from_snapshot():
    snap = Snapshot(9, "3.12.1", "/usr/bin/python3", 123, (
        ThreadStack(1, 11, "MainThread", True, False, STACKS[1]),
        ThreadStack(2, 12, None, False, True, WORKER_STACKS[0])), ("python", "x.py"))
    got = samples_from_snapshot(snap)
    assert [(s.timestamp_ns, s.pid, s.thread_id, s.is_idle, s.command_line) for s in got] == [
        (123, 9, 1, False, "python x.py"), (123, 9, 2, True, "python x.py")]
    p = Profile()
    p.add_all(got)
    assert p.ticks == 1 and p.samples == 2


def test_options_are_frozen():
    with pytest.raises(Exception):
        ProfileOptions().threads = True  # type: ignore[misc]


# --------------------------------------------------------------------------- registry

@pytest.mark.parametrize("path, fmt", [
    ("out.svg", "flamegraph"), ("OUT.SVG", "flamegraph"),
    ("profile.json", "speedscope"), ("x.speedscope", "speedscope"),
    ("stacks.txt", "raw"), ("stacks.collapsed", "raw"),
    ("run.trace.json", "chrometrace"), ("run.chrometrace", "chrometrace"),
    ("cpu.pb.gz", "pprof"), ("cpu.pprof", "pprof"),
    (Path("/tmp/dir.d/p.trace.json"), "chrometrace"),
])
def test_format_for_path(path, fmt):
    assert format_for_path(path) == fmt


def test_format_for_path_unknown():
    assert format_for_path("profile.html") is None
    assert format_for_path("profile.html", default="flamegraph") == "flamegraph"


def test_registry_metadata():
    assert formats() == ["flamegraph", "speedscope", "raw", "chrometrace", "pprof"]
    for name in formats():
        cls = writer_class(name)
        assert issubclass(cls, Writer) and cls.name == name
        assert format_for_path("out" + cls.extension) == name
        assert cls.binary == (name == "pprof")
    assert writer_class("collapsed") is writer_class("raw")
    with pytest.raises(ValueError, match="unknown output format"):
        writer_for("html")


def test_add_finish_interface(samples):
    writer = writer_for("raw")
    for s in samples:
        writer.add(s)
    stream = io.StringIO()
    writer.finish(stream)
    assert stream.getvalue() == render("raw", writer.profile)


# --------------------------------------------------------------------------- raw

def parse_raw(text):
    out = {}
    for line in text.splitlines():
        m = re.fullmatch(r"(.+) (\d+)", line)
        assert m, line
        assert m.group(1) not in out
        out[m.group(1)] = int(m.group(2))
    return out


def test_raw_keeps_separator_out_of_labels():
    p = Profile()
    p.add(Sample(0, 1, 1, None, None, True, False, (Frame("f;g", "/x.py", 2), MAIN)))
    assert parse_raw(render("raw", p)) == {"<module> (main.py:3);f:g (x.py:2)": 1}


def test_raw(samples):
    p = Profile(threads=True)
    p.add_all(samples)
    text = render("raw", p)
    assert text.endswith("\n")
    got = parse_raw(text)
    assert sum(got.values()) == len(samples)
    want = {";".join(path): n for path, n in expected_collapsed(samples, threads=True).items()}
    assert got == want
    assert text.splitlines() == sorted(text.splitlines())


# --------------------------------------------------------------------------- flamegraph

def tree_nodes(collapsed):
    """Every prefix of every path (the nodes of the merged tree) -> its total."""
    totals = Counter()
    for path, n in collapsed.items():
        for i in range(1, len(path) + 1):
            totals[path[:i]] += n
    return totals


TITLE = re.compile(r"(.*) \(([\d,]+) samples?, ([\d.]+)%\)")


def parse_svg(text):
    root = ET.fromstring(text)
    assert root.tag == SVG + "svg"
    frames = []
    for g in root.iter(SVG + "g"):
        if g.get("class") != "frame":
            continue
        m = TITLE.fullmatch(g.find(SVG + "title").text)
        assert m, g.find(SVG + "title").text
        rect = g.find(SVG + "rect")
        frames.append({"label": m.group(1), "samples": int(m.group(2).replace(",", "")),
                       "pct": float(m.group(3)), "x": float(rect.get("x")), "y": float(rect.get("y")),
                       "w": float(rect.get("width")), "fill": rect.get("fill")})
    return root, frames


def test_flamegraph_structure_and_counts(samples):
    p = Profile(threads=True)
    p.add_all(samples)
    text = render("flamegraph", p)
    root, frames = parse_svg(text)
    nodes = tree_nodes(expected_collapsed(samples, threads=True))
    rects = list(root.iter(SVG + "rect"))
    assert len(rects) == 1 + 1 + len(nodes)  # background + "all" + one per node
    total = len(samples)
    alls = [f for f in frames if f["label"] == "all"]
    assert len(alls) == 1 and alls[0]["samples"] == total and alls[0]["pct"] == 100.0
    # each node's title carries its inclusive count; labels with & < > " survive escaping
    by_label = Counter()
    for f in frames:
        by_label[(f["label"], f["samples"])] += 1
    want = Counter((path[-1], n) for path, n in nodes.items())
    want[("all", total)] += 1
    assert by_label == want
    assert any(f["label"].startswith('a&b<c>"q"') for f in frames)
    # widths proportional to samples
    scale = alls[0]["w"] / total
    for f in frames:
        assert f["w"] == pytest.approx(f["samples"] * scale, abs=0.01)
        assert re.fullmatch(r"rgb\(\d+,\d+,\d+\)", f["fill"])
        assert f["pct"] == pytest.approx(100.0 * f["samples"] / total, abs=0.006)
    # interactive parts are there
    script = root.find(SVG + "script")
    assert script is not None and "function zoom" in script.text and "function search" in script.text
    ids = {e.get("id") for e in root.iter() if e.get("id")}
    assert {"unzoom", "search", "matched", "details", "frames"} <= ids


def test_flamegraph_layout_is_alphabetical_and_nested(samples):
    p = Profile()
    p.add_all(samples)
    _, frames = parse_svg(render("flamegraph", p))
    rows = defaultdict(list)
    for f in frames:
        rows[f["y"]].append(f)
    ys = sorted(rows)
    assert len(rows[ys[-1]]) == 1 and rows[ys[-1]][0]["label"] == "all"  # root at the bottom
    eps = 0.02
    for upper, lower in zip(ys, ys[1:]):
        for f in rows[upper]:  # every frame sits on exactly one parent in the row below
            parents = [q for q in rows[lower] if q["x"] - eps <= f["x"] and f["x"] + f["w"] <= q["x"] + q["w"] + eps]
            assert len(parents) == 1, f
        for q in rows[lower]:  # siblings: alphabetical, left to right, without overlap
            kids = sorted((f for f in rows[upper] if q["x"] - eps <= f["x"] < q["x"] + q["w"] - eps),
                          key=lambda f: f["x"])
            assert [k["label"] for k in kids] == sorted(k["label"] for k in kids)
            for left, right in zip(kids, kids[1:]):
                assert left["x"] + left["w"] <= right["x"] + eps
            assert sum(k["samples"] for k in kids) <= q["samples"]


def test_flamegraph_colours_follow_function_name(samples):
    p = Profile()
    p.add_all(samples)
    _, frames = parse_svg(render("flamegraph", p))
    fills = defaultdict(set)
    for f in frames:
        fills[f["label"].split(" (")[0]].add(f["fill"])
        r, g, b = map(int, re.findall(r"\d+", f["fill"]))
        assert r >= 200 and r > b  # warm
    assert all(len(v) == 1 for v in fills.values())  # parse at two lines: one colour


def test_flamegraph_elides_invisible_frames():
    p = Profile()
    for i in range(100_000):
        p.add(Sample(i, 1, 1, None, None, True, False, STACKS[0]))
    p.add(Sample(100_000, 1, 1, None, None, True, False, STACKS[2]))  # 1 in 100001: < 0.1 px
    _, frames = parse_svg(render("flamegraph", p))
    assert [f["label"] for f in frames] == ["all", "<module> (main.py:3)", "run (main.py:20)"]
    assert frames[0]["samples"] == 100_001


def test_flamegraph_empty_profile():
    root, frames = parse_svg(render("flamegraph", Profile()))
    assert [f["label"] for f in frames] == ["all"] and frames[0]["samples"] == 0


def test_flamegraph_handles_deep_recursion():
    deep = tuple(Frame("f", "/r.py", 1) for _ in range(3000))
    p = Profile()
    p.add(Sample(0, 1, 1, None, None, True, False, deep))
    _, frames = parse_svg(render("flamegraph", p))
    assert len(frames) == 3001


def _flamegraph_tool():
    for tool in ("inferno-flamegraph", "flamegraph.pl", "flamegraph"):
        path = shutil.which(tool)
        if path:
            return path
    return None


@pytest.mark.skipif(_flamegraph_tool() is None,
                    reason="cross-check needs inferno-flamegraph or flamegraph.pl on PATH; neither is installed")
def test_raw_is_accepted_by_reference_flamegraph_tool(samples, profile):
    out = subprocess.run([_flamegraph_tool()], input=render("raw", profile), capture_output=True,
                         text=True, check=True).stdout
    _, theirs = parse_svg(out)
    ours = parse_svg(render("flamegraph", profile))[1]
    assert max(f["samples"] for f in theirs) == len(samples)
    assert {f["label"] for f in theirs} - {"all"} == {f["label"] for f in ours} - {"all"}


# --------------------------------------------------------------------------- speedscope

def speedscope_schema():
    return json.loads((DATA / "speedscope-file-format-schema.json").read_text())


def check_speedscope(doc):
    jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is a test dependency")
    jsonschema.validate(doc, speedscope_schema())


def test_speedscope_schema_and_counts(samples, profile):
    doc = json.loads(render("speedscope", profile))
    check_speedscope(doc)
    frames = doc["shared"]["frames"]
    assert doc["exporter"].startswith("pyspy-repl")
    assert len(doc["profiles"]) == 3
    names = [prof["name"] for prof in doc["profiles"]]
    assert names == ['Process 100 Thread 1001 "MainThread"', 'Process 100 Thread 1002 "worker-1"',
                     "Process 200 Thread 2001"]
    for (pid, tid, *_), prof in zip(THREADS, doc["profiles"]):
        assert prof["type"] == "sampled" and prof["unit"] == "seconds"
        assert len(prof["samples"]) == len(prof["weights"])
        assert prof["startValue"] == 0
        assert prof["endValue"] == pytest.approx(sum(prof["weights"]))
        got = Counter()
        for stack, weight in zip(prof["samples"], prof["weights"]):
            assert all(isinstance(i, int) and 0 <= i < len(frames) for i in stack)
            key = tuple((frames[i]["name"], frames[i]["file"], frames[i].get("line")) for i in stack)
            got[key] += round(weight / (PERIOD / 1e9))
        want = Counter(tuple((f.function, f.filename, f.line) for f in reversed(s.frames))
                       for s in samples if s.thread_id == tid)
        assert got == want
    # samples in time order: the sequence of runs replays the thread's stacks
    main = doc["profiles"][0]
    replay = []
    for stack, weight in zip(main["samples"], main["weights"]):
        replay += [tuple(frames[i]["name"] for i in stack)] * round(weight / (PERIOD / 1e9))
    assert replay == [tuple(f.function for f in reversed(s.frames)) for s in samples
                      if s.thread_id == THREADS[0][1]]
    assert 0 <= doc["activeProfileIndex"] < len(doc["profiles"])


def test_speedscope_without_period_uses_counts():
    p = Profile()
    p.add(Sample(5, 1, 0x10, None, "only", True, False, STACKS[1]))
    doc = json.loads(render("speedscope", p))
    check_speedscope(doc)
    prof, = doc["profiles"]
    assert prof["unit"] == "none" and prof["weights"] == [1] and prof["name"] == 'Thread 0x10 "only"'


def test_speedscope_truncated_timeline_keeps_totals(samples):
    p = Profile(rate_hz=100, max_intervals=5)
    p.add_all(samples)
    doc = json.loads(render("speedscope", p))
    check_speedscope(doc)
    total = sum(round(w / 0.01) for prof in doc["profiles"] for w in prof["weights"])
    assert total == len(samples)


def test_speedscope_schema_rejects_bad_files():
    jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is a test dependency")
    good = json.loads(render("speedscope", Profile()))
    jsonschema.validate(good, speedscope_schema())
    bad = dict(good, profiles=[{"type": "sampled", "name": "x", "unit": "parsecs", "startValue": 0,
                                "endValue": 1, "samples": [], "weights": []}])
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, speedscope_schema())


# --------------------------------------------------------------------------- chrometrace

REQUIRED = {"X": {"name", "ph", "ts", "dur", "pid", "tid"}, "B": {"name", "ph", "ts", "pid", "tid"},
            "E": {"ph", "ts", "pid", "tid"}, "M": {"name", "ph", "pid", "tid", "args"}}


def test_chrometrace_events(samples, profile):
    doc = json.loads(render("chrometrace", profile))
    events = doc["traceEvents"]
    per_thread = defaultdict(list)
    names = {}
    for e in events:
        assert e["ph"] in REQUIRED and REQUIRED[e["ph"]] <= set(e), e
        if e["ph"] == "M":
            assert e["name"] in ("process_name", "thread_name") and isinstance(e["args"]["name"], str)
            names[(e["name"], e["pid"], e["tid"] if e["name"] == "thread_name" else None)] = e["args"]["name"]
        else:
            assert isinstance(e["ts"], int) and isinstance(e["dur"], int)
            assert e["ts"] >= 0 and e["dur"] >= 0
            assert {"filename"} <= set(e["args"])
            per_thread[(e["pid"], e["tid"])].append(e)
    assert names[("thread_name", 100, 1001)] == "MainThread"
    assert names[("thread_name", 200, 2001)] == "Thread 0x7F20CC00"
    assert names[("process_name", 200, None)] == "python child.py --fast"
    assert set(per_thread) == {(100, 1001), (100, 1002), (200, 2001)}

    for (pid, tid), evs in per_thread.items():
        # proper nesting: every event lies inside the enclosing open one or after it
        open_, roots = [], []
        for e in evs:
            assert evs.index(e) == 0 or e["ts"] >= evs[evs.index(e) - 1]["ts"]
            while open_ and e["ts"] >= open_[-1]["ts"] + open_[-1]["dur"] and not (
                    e["dur"] == 0 and e["ts"] == open_[-1]["ts"]):
                open_.pop()
            if open_:
                assert e["ts"] + e["dur"] <= open_[-1]["ts"] + open_[-1]["dur"], (e, open_[-1])
            else:
                roots.append(e)
            open_.append(e)
        # at each sample instant, the events covering it spell the sampled stack
        native = {t[2]: t[1] for t in THREADS}[tid]
        origin = samples[0].timestamp_ns
        for s in [s for s in samples if s.thread_id == native][::17]:
            t = (s.timestamp_ns - origin) // 1000
            covering = [e["name"] for e in evs if e["ts"] <= t < e["ts"] + e["dur"]]
            assert covering == [f.function for f in reversed(s.frames)]
        # the outermost frames tile the whole recording of this thread
        assert sum(e["dur"] for e in roots) == 300 * PERIOD // 1000


def test_chrometrace_stream_matches_document():
    p = Profile(rate_hz=1000)
    rng = random.Random(3)
    for i in range(15000):  # thousands of stack changes: several streamed batches
        p.add(Sample(i * 1_000_000, 1, 1 + i % 2, None, None, True, False, rng.choice(STACKS)))
    text = render("chrometrace", p)
    doc = writer_class("chrometrace")().document(p)
    assert json.loads(text) == doc
    assert sum(e["ph"] == "X" for e in doc["traceEvents"]) > 8192
    empty = json.loads(render("chrometrace", Profile()))
    assert empty["traceEvents"] == []


def test_chrometrace_gap_closes_frames():
    p = Profile(rate_hz=100)
    p.add(Sample(0, 1, 1, None, None, True, False, STACKS[1]))
    p.add(Sample(PERIOD, 1, 1, None, None, True, False, STACKS[1]))
    p.add(Sample(50 * PERIOD, 1, 1, None, None, True, False, STACKS[1]))
    evs = [e for e in json.loads(render("chrometrace", p))["traceEvents"] if e["ph"] == "X"]
    assert [(e["name"], e["ts"], e["dur"]) for e in evs] == [
        ("<module>", 0, 20000), ("run", 0, 20000), ("serve", 0, 20000),
        ("<module>", 500000, 10000), ("run", 500000, 10000), ("serve", 500000, 10000)]


# --------------------------------------------------------------------------- pprof

def pprof_message_class():
    """profile.proto's messages, built at test time from a hand-made FileDescriptorProto."""
    descriptor_pb2 = pytest.importorskip("google.protobuf.descriptor_pb2",
                                         reason="protobuf>=4 is a test dependency")
    from google.protobuf import descriptor_pool, message_factory

    F = descriptor_pb2.FieldDescriptorProto
    fdp = descriptor_pb2.FileDescriptorProto(name="test_profile.proto", package="perftools.profiles",
                                             syntax="proto3")

    def message(name, *fields):
        m = fdp.message_type.add(name=name)
        for number, fname, ftype, repeated, type_name in fields:
            f = m.field.add(name=fname, number=number, type=ftype,
                            label=F.LABEL_REPEATED if repeated else F.LABEL_OPTIONAL)
            if type_name:
                f.type_name = ".perftools.profiles." + type_name

    I64, U64, STR, MSG, BOOL = F.TYPE_INT64, F.TYPE_UINT64, F.TYPE_STRING, F.TYPE_MESSAGE, F.TYPE_BOOL
    message("Profile",
            (1, "sample_type", MSG, True, "ValueType"), (2, "sample", MSG, True, "Sample"),
            (3, "mapping", MSG, True, "Mapping"), (4, "location", MSG, True, "Location"),
            (5, "function", MSG, True, "Function"), (6, "string_table", STR, True, None),
            (7, "drop_frames", I64, False, None), (8, "keep_frames", I64, False, None),
            (9, "time_nanos", I64, False, None), (10, "duration_nanos", I64, False, None),
            (11, "period_type", MSG, False, "ValueType"), (12, "period", I64, False, None),
            (13, "comment", I64, True, None), (14, "default_sample_type", I64, False, None))
    message("ValueType", (1, "type", I64, False, None), (2, "unit", I64, False, None))
    message("Sample", (1, "location_id", U64, True, None), (2, "value", I64, True, None),
            (3, "label", MSG, True, "Label"))
    message("Label", (1, "key", I64, False, None), (2, "str", I64, False, None),
            (3, "num", I64, False, None), (4, "num_unit", I64, False, None))
    message("Mapping", (1, "id", U64, False, None), (2, "memory_start", U64, False, None),
            (3, "memory_limit", U64, False, None), (4, "file_offset", U64, False, None),
            (5, "filename", I64, False, None), (6, "build_id", I64, False, None),
            (7, "has_functions", BOOL, False, None), (8, "has_filenames", BOOL, False, None),
            (9, "has_line_numbers", BOOL, False, None), (10, "has_inline_frames", BOOL, False, None))
    message("Location", (1, "id", U64, False, None), (2, "mapping_id", U64, False, None),
            (3, "address", U64, False, None), (4, "line", MSG, True, "Line"),
            (5, "is_folded", BOOL, False, None))
    message("Line", (1, "function_id", U64, False, None), (2, "line", I64, False, None))
    message("Function", (1, "id", U64, False, None), (2, "name", I64, False, None),
            (3, "system_name", I64, False, None), (4, "filename", I64, False, None),
            (5, "start_line", I64, False, None))
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("perftools.profiles.Profile"))


def decode_pprof(data):
    msg = pprof_message_class()()
    msg.ParseFromString(gzip.decompress(data))
    return msg


def test_pprof_round_trip(samples, profile):
    data = render("pprof", profile)
    assert data[:2] == b"\x1f\x8b"
    prof = decode_pprof(data)
    st = list(prof.string_table)
    assert st[0] == "" and len(set(st)) == len(st)
    assert [(st[v.type], st[v.unit]) for v in prof.sample_type] == [("samples", "count"), ("cpu", "nanoseconds")]
    assert (st[prof.period_type.type], st[prof.period_type.unit]) == ("cpu", "nanoseconds")
    assert prof.period == PERIOD
    assert prof.time_nanos == samples[0].timestamp_ns
    assert prof.duration_nanos == 300 * PERIOD
    functions = {f.id: f for f in prof.function}
    locations = {loc.id: loc for loc in prof.location}
    assert len(functions) == len(prof.function) and len(locations) == len(prof.location)
    for f in prof.function:
        assert st[f.name] == st[f.system_name]

    got = Counter()
    for s in prof.sample:
        count, nanos = s.value
        assert nanos == count * PERIOD
        labels = {st[l.key]: (st[l.str] if l.str else l.num) for l in s.label}
        stack = []
        for loc_id in s.location_id:  # leaf first
            line, = locations[loc_id].line
            fn = functions[line.function_id]
            stack.append((st[fn.name], st[fn.filename], line.line))
        got[(labels["pid"], labels["thread_id"], labels.get("thread_name"), tuple(stack))] += count
    want = Counter((s.pid, s.thread_id, s.thread_name,
                    tuple((f.function, f.filename, f.line) for f in s.frames)) for s in samples)
    assert got == want


def test_pprof_single_process_wall_and_no_period():
    p = Profile(idle=True)
    p.add(Sample(42, 7, 3, 9, None, False, True, STACKS[2]))
    prof = decode_pprof(render("pprof", p))
    st = list(prof.string_table)
    assert st[prof.sample_type[1].type] == "wall"
    s, = prof.sample
    assert list(s.value) == [1, 0] and len(s.location_id) == 4
    assert {st[l.key] for l in s.label} == {"thread_id", "native_id"}  # no pid label, no name


def test_pprof_function_mode_start_line(samples):
    p = Profile(function=True)
    p.add_all(samples)
    prof = decode_pprof(render("pprof", p))
    st = list(prof.string_table)
    parse, = [f for f in prof.function if st[f.name] == "parse"]
    assert parse.start_line == 337


def test_protobuf_varint_encoding():
    from snapshot.writers._protobuf import varint
    assert varint(0) == b"\x00" and varint(1) == b"\x01" and varint(300) == b"\xac\x02"
    assert varint(-1) == b"\xff" * 9 + b"\x01"


# --------------------------------------------------------------------------- atomic write

def test_write_atomic(tmp_path, profile):
    for fmt in formats():
        cls = writer_class(fmt)
        target = tmp_path / ("out" + cls.extension)
        write_atomic(target, cls(profile))
        assert target.stat().st_size > 0
    assert sorted(os.listdir(tmp_path)) == sorted("out" + writer_class(f).extension for f in formats())
    assert (tmp_path / "out.txt").read_text() == render("raw", profile)
    assert decode_pprof((tmp_path / "out.pb.gz").read_bytes()).sample


class _Exploding(Writer):
    name, extension, binary = "boom", ".boom", False

    def render(self, profile, stream):
        stream.write("partial output")
        raise RuntimeError("disk on fire")


def test_write_atomic_failure_leaves_nothing(tmp_path):
    target = tmp_path / "out.boom"
    with pytest.raises(RuntimeError):
        write_atomic(target, _Exploding())
    assert os.listdir(tmp_path) == []
    target.write_text("previous")
    with pytest.raises(RuntimeError):
        write_atomic(target, _Exploding())
    assert os.listdir(tmp_path) == ["out.boom"] and target.read_text() == "previous"


# --------------------------------------------------------------------------- real pass times

def _late_passes(profile, stacks_by_pass, jitter_ns):
    """Passes at 100 Hz, each late by its jitter; ``None`` in stacks_by_pass: the thread unseen."""
    ts = 0
    for i, stack in enumerate(stacks_by_pass):
        ts = i * PERIOD + jitter_ns[i]
        profile.tick(ts)
        if stack is not None:
            profile.add(Sample(ts, 1, 7, 70, "busy", True, False, stack))
    return ts


def test_chrometrace_late_passes_give_one_continuous_slice():
    """A thread seen in every pass with one stack is one slice, however late the passes came."""
    p = Profile(rate_hz=100)
    rng = random.Random(5)
    jitter = [0] + [rng.choice((0, 0, 3, 25, 31)) * PERIOD for _ in range(99)]
    jitter = [sum(jitter[:i + 1]) for i in range(100)]  # lateness accumulates: the grid is behind
    last = _late_passes(p, [STACKS[1]] * 100, jitter)
    evs = [e for e in json.loads(render("chrometrace", p))["traceEvents"] if e["ph"] == "X"]
    assert [(e["name"], e["ts"], e["dur"]) for e in evs] == [
        (name, 0, (last + PERIOD) // 1000) for name in ("<module>", "run", "serve")]
    doc = json.loads(render("chrometrace", p))
    assert doc["otherData"]["passes"] == 100 and doc["otherData"]["rate_hz"] == 100


def test_chrometrace_stack_change_after_late_pass_leaves_no_gap():
    p = Profile(rate_hz=100)
    _late_passes(p, [STACKS[1], STACKS[2], STACKS[1]], [0, 40 * PERIOD, 41 * PERIOD])
    evs = [e for e in json.loads(render("chrometrace", p))["traceEvents"] if e["ph"] == "X"]
    serve = [(e["ts"], e["dur"]) for e in evs if e["name"] == "serve"]
    assert serve == [(0, (43 * PERIOD + PERIOD) // 1000)]  # one activation across all three passes
    parse = [(e["ts"], e["dur"]) for e in evs if e["name"] == "parse"]
    assert parse == [(41 * PERIOD // 1000, 2 * PERIOD // 1000)]  # from its pass to the next one


def test_chrometrace_thread_unseen_in_a_pass_ends_its_slice():
    """Seen idle (dropped by the sampler) in one pass: the slice ends a period after its last sample."""
    p = Profile(rate_hz=100)
    _late_passes(p, [STACKS[1], None, STACKS[1]], [0, 0, 0])
    evs = [e for e in json.loads(render("chrometrace", p))["traceEvents"] if e["ph"] == "X"]
    assert [(e["ts"], e["dur"]) for e in evs if e["name"] == "<module>"] == [
        (0, PERIOD // 1000), (2 * PERIOD // 1000, PERIOD // 1000)]


def test_speedscope_names_os_thread_ids_and_weights_in_unit():
    p = Profile(rate_hz=250)
    for i in range(10):
        p.add(Sample(i * 4_000_000, 1, 0x7F00AB, 4242, "worker", True, False, STACKS[1]))
    doc = json.loads(render("speedscope", p))
    check_speedscope(doc)
    prof, = doc["profiles"]
    assert prof["name"] == 'Thread 4242 "worker"'
    assert prof["unit"] == "seconds" and sum(prof["weights"]) == pytest.approx(10 / 250)
    assert prof["endValue"] == pytest.approx(10 / 250)


def test_pprof_mappings_main_binary_first():
    from snapshot.process.base import MappedFile
    p = Profile(rate_hz=100)
    files = [MappedFile("/usr/lib/libc.so.6", 0x7F000000, 0x7F090000, 0x7F000000, "aa11", "/usr/lib/libc.so.6"),
             MappedFile("/usr/bin/python3.12", 0x400000, 0x800000, 0, "bb22", "/usr/bin/python3.12")]
    p.add_mappings(7, "/usr/bin/python3.12", files)
    native = Frame("PyEval_EvalFrameDefault", "", 0, None, is_native=True, module="libc.so.6", address=0x7F001234)
    p.add(Sample(0, 7, 3, 9, "main", True, False, (native,) + STACKS[1]))
    prof = decode_pprof(render("pprof", p))
    st = list(prof.string_table)
    assert [(m.id, st[m.filename], st[m.build_id]) for m in prof.mapping] == [
        (1, "/usr/bin/python3.12", "bb22"), (2, "/usr/lib/libc.so.6", "aa11")]
    main = prof.mapping[0]
    assert (main.memory_start, main.memory_limit) == (0x400000, 0x800000) and main.has_functions
    by_id = {loc.id: loc for loc in prof.location}
    s, = prof.sample
    leaf = by_id[s.location_id[0]]
    assert (leaf.mapping_id, leaf.address) == (2, 0x7F001234)
    assert all(by_id[i].mapping_id == 1 for i in s.location_id[1:])
    assert [(st[v.type], st[v.unit]) for v in prof.sample_type] == [("samples", "count"), ("cpu", "nanoseconds")]


def test_pprof_without_known_binaries_names_the_command():
    p = Profile()
    p.add(Sample(0, 7, 3, 9, "main", True, False, STACKS[1], "/opt/py/bin/python3 app.py"))
    prof = decode_pprof(render("pprof", p))
    st = list(prof.string_table)
    assert [st[m.filename] for m in prof.mapping] == ["/opt/py/bin/python3"]
    assert all(loc.mapping_id == 1 for loc in prof.location)
