"""Issue 16: one task per case on Dask distributed. The runner gives the sequential loop's results
on a real LocalCluster of 2 worker processes, isolates and names a failing case, and loses no case
when a worker process dies in the middle of one."""

import hashlib
import os
import sys
from pathlib import Path

import pytest

from AnatomyCommonLib.atomic_output import atomic_output_file
from AnatomyCommonLib.cluster import (
    ClusterOptions,
    InvalidClusterOptionError,
    add_cluster_arguments,
    cluster_options,
    run_cases,
)
from AnatomyCommonLib.errors import InputNotFoundError

pytest.importorskip("distributed")
cloudpickle = pytest.importorskip("cloudpickle")

# worker processes cannot import this test module: its functions travel by value
cloudpickle.register_pickle_by_value(sys.modules[__name__])


def digest_case(case, job):
    """Reads its input file, writes the SHA-256 of it atomically, returns a small record."""
    source, out_dir = job
    data = Path(source).read_bytes()
    if not data:
        raise InputNotFoundError(f"{source} is empty; give a file with content.")
    if data == b"crash":
        raise RuntimeError("the algorithm broke")
    text = hashlib.sha256(data).hexdigest()
    with atomic_output_file(Path(out_dir) / f"{case}.txt") as tmp:
        Path(tmp).write_text(text)
    return {"case": case, "bytes": len(data)}


def die_once_then_digest(case, job):
    """The first run of each case kills its worker process (as an OOM kill would)."""
    source, out_dir, markers = job
    marker = Path(markers) / case
    if not marker.exists():
        marker.write_text("died")
        os._exit(1)
    return digest_case(case, (source, out_dir))


def make_inputs(tmp_path, contents):
    (tmp_path / "in").mkdir()
    jobs = {}
    for name, content in contents.items():
        (tmp_path / "in" / name).write_bytes(content)
        jobs[name] = str(tmp_path / "in" / name)
    return jobs


CONTENTS = {"a": b"first case", "b": b"", "c": b"crash", "d": b"x" * 1000, "e": b"last"}


def expected_digests():
    return {k: hashlib.sha256(v).hexdigest() for k, v in CONTENTS.items() if v not in (b"", b"crash")}


def outputs(folder):
    return {p.stem: p.read_text() for p in sorted(Path(folder).glob("*.txt"))}


def test_sequential_run_isolates_and_names_failing_cases(tmp_path):
    inputs = make_inputs(tmp_path, CONTENTS)
    jobs = {case: (path, str(tmp_path / "out")) for case, path in inputs.items()}
    outcomes = run_cases(jobs, digest_case, progress=False)
    assert list(outcomes) == list(CONTENTS)
    assert {c: o.status for c, o in outcomes.items()} == {
        "a": "ok",
        "b": "failed",
        "c": "failed",
        "d": "ok",
        "e": "ok",
    }
    assert "is empty" in outcomes["b"].error
    assert outcomes["c"].error == "RuntimeError: the algorithm broke"
    assert outcomes["d"].record == {"case": "d", "bytes": 1000}
    assert outputs(tmp_path / "out") == expected_digests()


def test_local_cluster_gives_the_sequential_results(tmp_path, capsys):
    inputs = make_inputs(tmp_path, CONTENTS)
    here = run_cases({c: (p, str(tmp_path / "seq")) for c, p in inputs.items()}, digest_case, progress=False)
    there = run_cases(
        {c: (p, str(tmp_path / "par")) for c, p in inputs.items()},
        digest_case,
        ClusterOptions(workers=2, retries=1),
    )
    assert list(there) == list(here)
    for case in CONTENTS:
        assert (there[case].status, there[case].error, there[case].record) == (
            here[case].status,
            here[case].error,
            here[case].record,
        )
    assert outputs(tmp_path / "par") == outputs(tmp_path / "seq") == expected_digests()
    err = capsys.readouterr().err
    assert "dashboard http" in err and "3/5 done, 2 failed, 0 running" in err


def test_a_killed_worker_loses_no_case(tmp_path):
    contents = {"a": b"one", "b": b"two", "c": b"three"}
    inputs = make_inputs(tmp_path, contents)
    (tmp_path / "markers").mkdir()
    jobs = {c: (p, str(tmp_path / "out"), str(tmp_path / "markers")) for c, p in inputs.items()}
    outcomes = run_cases(jobs, die_once_then_digest, ClusterOptions(workers=2, retries=3), progress=False)
    assert {c: o.status for c, o in outcomes.items()} == dict.fromkeys(contents, "ok")
    assert sorted(p.name for p in (tmp_path / "markers").iterdir()) == ["a", "b", "c"]  # each died once
    assert outputs(tmp_path / "out") == {k: hashlib.sha256(v).hexdigest() for k, v in contents.items()}
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]  # no partial files


def test_cluster_flags_are_checked():
    import argparse

    parser = argparse.ArgumentParser()
    add_cluster_arguments(parser, gpu=True)
    options = cluster_options(parser.parse_args(["--workers", "3", "--gpu-resource"]))
    assert (options.workers, options.scheduler, options.gpu_resource, options.distributed) == (
        3,
        None,
        True,
        True,
    )
    assert not cluster_options(parser.parse_args([])).distributed
    for argv in (["--workers", "2", "--scheduler", "tcp://h:8786"], ["--workers", "-1"], ["--retries", "-2"]):
        with pytest.raises(InvalidClusterOptionError):
            cluster_options(parser.parse_args(argv))


def report_memory_limit(case, job):
    from AnatomyCommonLib.cluster import worker_memory_limit

    return worker_memory_limit()


def test_a_case_sees_its_workers_memory_limit(tmp_path):
    import argparse

    assert report_memory_limit("here", None) is None  # not on a worker: no limit of its own
    parser = argparse.ArgumentParser()
    add_cluster_arguments(parser)
    options = cluster_options(parser.parse_args(["--workers", "1", "--worker-memory", "3GB"]))
    outcomes = run_cases({"a": None}, report_memory_limit, options, progress=False)
    assert outcomes["a"].record == 3 * 10**9
    with pytest.raises(InvalidClusterOptionError, match="--workers"):
        cluster_options(parser.parse_args(["--worker-memory", "3GB"]))


def test_local_workers_are_planned_from_the_largest_case():
    from AnatomyCommonLib.cluster import MEMORY_HEADROOM, plan_local_workers

    gb = 10**9
    assert plan_local_workers(4, 2 * gb, 16 * gb) == (4, None)  # 4 x 2.5 GB fit in 16 GB
    workers, note = plan_local_workers(4, 5 * gb, 16 * gb)  # 6.25 GB each: 2 fit
    assert workers == 2 and "2 start instead of 4" in note and "5.0 GB" in note
    assert plan_local_workers(2, 20 * gb, 16 * gb)[0] == 1  # never fewer than one
    assert MEMORY_HEADROOM > 1


def test_a_case_larger_than_the_workers_limit_is_refused_before_it_runs(tmp_path, capsys):
    inputs = make_inputs(tmp_path, {"small": b"small case", "huge": b"huge case"})
    jobs = {case: (path, str(tmp_path / "out")) for case, path in inputs.items()}
    options = ClusterOptions(workers=1, extra={"memory_limit": "2GB"})
    outcomes = run_cases(jobs, digest_case, options, memory={"small": 10**8, "huge": 3 * 10**9})
    assert outcomes["small"].status == "ok"
    assert outcomes["huge"].status == "failed"
    assert "needs about 3.0 GB" in outcomes["huge"].error and "limit of 2.0 GB" in outcomes["huge"].error
    assert "--worker-memory" in outcomes["huge"].error
    assert outputs(tmp_path / "out") == {"small": hashlib.sha256(b"small case").hexdigest()}  # never ran
    assert "1/2 done, 1 failed" in capsys.readouterr().err


def test_a_local_cluster_starts_as_many_workers_as_the_largest_case_allows(tmp_path, capsys):
    import psutil

    inputs = make_inputs(tmp_path, {"a": b"one", "b": b"two"})
    jobs = {case: (path, str(tmp_path / "out")) for case, path in inputs.items()}
    largest = int(psutil.virtual_memory().total * 0.6)  # with headroom, one worker's worth of RAM
    outcomes = run_cases(jobs, digest_case, ClusterOptions(workers=2), memory={"a": largest, "b": 1})
    assert [o.status for o in outcomes.values()] == ["ok", "ok"]
    err = capsys.readouterr().err
    assert "1 start instead of 2" in err and "local Dask cluster: 1 worker processes" in err
