"""Cohort scale: throughput with 1 and 2 workers, peak memory per worker as the manifest grows, resume speed-up.

    .venv/bin/python benchmarks/bench_cohort.py [--data ../shared/data/sts-ct] [--limit K] [--workers 1 2]
                                                [--features signature|all] [--copies 10]
                                                [--parts throughput memory dask resume]

Every study folder of --data holding CT_image.nii.gz and CT_mask.nii.gz is one case. Runs write no segmentation
files and use no cache (extraction, the default perturbed delineations of --features, and scoring), each in a
fresh process:

throughput  `pipeline.run` of the studies with each --workers count (1: this process, the engine overlapping two
            studies in threads; N: N local processes): lesions per second, and the speed-up over the first count.
            Checks that every run's lesions.csv is identical.
memory      the studies once, then --copies times each (under other patient IDs, no cache), with 2 local worker
            processes: peak resident memory of the largest worker (the pool's processes, reaped).
            It must stay flat (within 10%) as the manifest grows ten-fold.
dask        the same two manifests on a Dask LocalCluster of 2 worker processes (1 thread each) on localhost: the
            peak resident memory of each worker, read on the workers after the run.
resume      a full run with the largest --workers count (segmentations included) into an empty folder, then the
            same run again, which reuses out/cache.

Figures depend on the machine and on what else runs on it: the load average is printed at the start and the end.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
LIBRARY = HERE.parent / "CTTime"
sys.path.insert(0, str(LIBRARY))

from CTTimeLib.run import pipeline  # noqa: E402

MEMORY = r"""
import json, resource, sys, time
sys.path.insert(0, {library!r})
from CTTimeLib.run import pipeline
studies, copies, out, features, dask = {studies!r}, {copies}, {out!r}, {features!r}, {dask!r}
cases = [pipeline.Case(name if copy == 0 else f"{{name}}_copy{{copy}}", "BS", image, mask)
         for copy in range(copies) for name, image, mask in studies]
options = dict(workers=2, cache=False, write_segmentations=False, features=features)
if dask:
    from distributed import Client, LocalCluster
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                           dashboard_address=None)
    options = dict(options, scheduler=cluster.scheduler_address)
start = time.perf_counter()
result = pipeline.run(cases, out, pipeline.Options(**options))
seconds = time.perf_counter() - start
if dask:
    with Client(cluster) as client:
        workers = client.run(lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    cluster.close()
    peaks = sorted(workers.values())
else:
    peaks = [resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024]  # the largest reaped worker
print(json.dumps({{"cases": len(cases), "lesions": len(result.lesions), "seconds": seconds, "workers_mb": peaks}}))
"""


def cases_in(folder, limit=None):
    studies = sorted(p for p in Path(folder).iterdir() if (p / "CT_image.nii.gz").is_file()
                     and (p / "CT_mask.nii.gz").is_file())
    return [pipeline.Case(p.name, "BS", str(p / "CT_image.nii.gz"), str(p / "CT_mask.nii.gz"))
            for p in studies[:limit]]


def timed(cases, out, **options):
    start = time.perf_counter()
    result = pipeline.run(cases, out, pipeline.Options(**options))
    return time.perf_counter() - start, result


def throughput(cases, folder, worker_counts, features):
    tables, first = [], None
    for workers in worker_counts:
        seconds, result = timed(cases, folder / f"w{workers}", workers=workers, cache=False,
                                write_segmentations=False, features=features)
        tables.append((folder / f"w{workers}" / "lesions.csv").read_bytes())
        rate = len(result.lesions) / seconds
        first = first or rate
        print(f"  workers {workers:>2}: {len(result.lesions)} lesions in {seconds:6.1f} s = {rate:5.2f} lesions/s "
              f"({rate / first:.2f}x the throughput of {worker_counts[0]})")
    identical = all(table == tables[0] for table in tables)
    print("  lesions.csv identical for every worker count:", identical)
    return identical


def memory(cases, folder, copies, features, dask):
    studies = [(case.patient_id, case.image, case.segmentation) for case in cases]
    peaks = []
    for count in (1, copies):
        out = folder / f"memory_{'dask' if dask else 'local'}_{count}"
        done = subprocess.run([sys.executable, "-c", MEMORY.format(library=str(LIBRARY), studies=studies, copies=count,
                                                                   out=str(out), features=features, dask=dask)],
                              capture_output=True, text=True)
        if done.returncode not in (0, 3):
            raise SystemExit(f"memory run failed: {done.stderr[-3000:]}")
        figures = json.loads(done.stdout.strip().splitlines()[-1])
        peaks.append(max(figures["workers_mb"]))
        print(f"  {figures['cases']:>4} studies ({figures['lesions']} lesions) in {figures['seconds']:6.1f} s: peak "
              f"per worker {', '.join(f'{mb:.0f}' for mb in figures['workers_mb'])} MB")
    growth = peaks[1] / peaks[0] - 1
    print(f"  peak per worker grows by {100 * growth:+.1f}% from {len(cases)} to {len(cases) * copies} studies "
          f"({'flat' if abs(growth) <= 0.10 else 'NOT flat'}: target within 10%)")
    return abs(growth) <= 0.10


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(HERE.parent.parent / "shared" / "data" / "sts-ct"))
    parser.add_argument("--limit", type=int, help="only the first K studies")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--features", choices=["signature", "all"], default="signature")
    parser.add_argument("--copies", type=int, default=10, help="the larger manifest lists each study this often")
    parser.add_argument("--parts", nargs="+", choices=["throughput", "memory", "dask", "resume"],
                        default=["throughput", "memory", "dask", "resume"])
    args = parser.parse_args(argv)
    cases = cases_in(args.data, args.limit)
    print(f"{len(cases)} studies from {args.data}; --features {args.features}; {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}")
    good = True
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        if "throughput" in args.parts:
            print("throughput, no cache, no segmentation files:")
            good &= throughput(cases, folder, args.workers, args.features)
        if "memory" in args.parts:
            print("peak memory, 2 local worker processes:")
            good &= memory(cases, folder, args.copies, args.features, dask=False)
        if "dask" in args.parts:
            print("peak memory, Dask LocalCluster with 2 worker processes:")
            good &= memory(cases, folder, args.copies, args.features, dask=True)
        if "resume" in args.parts:
            workers = max(args.workers)
            cold, _ = timed(cases, folder / "resume", workers=workers, features=args.features)
            warm, result = timed(cases, folder / "resume", workers=workers, features=args.features)
            print(f"full run, {workers} workers, empty output folder: {cold:6.1f} s; rerun (all from cache): "
                  f"{warm:5.1f} s = {cold / warm:.1f}x faster ({result.summary['studies_from_cache']} studies from "
                  "cache)")
    print(f"load average {os.getloadavg()[0]:.1f} at the end")
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
