"""The opslake benchmark, one run on the same freshly generated inputs (see bench/run.sh).

1. normalize N seed-000 appointments (NDJSON) into `appointments` + `appointment_parties`
   (zstd Parquet): opslake, DuckDB doing the same job in SQL (bench/duckdb_normalize.sql),
   and the floor: a serde-only parse on all cores (bench/parse_floor.rs);
2. recon_order_fulfilment over the order products and status histories of a generated
   universe: opslake and DuckDB (bench/duckdb_fulfilment.sql), states compared row by row;
3. the full `opslake run` on the universe; and the normalize stage's peak memory on the
   universe and on a quarter of it;
4. extraction from the fixture API server answering with 50 ms of latency, with
   concurrency 8 and with concurrency 1 (the same data, the same requests).

Every figure is the median of --runs runs (wall seconds; peak RSS of the process, from wait4
in bench/timed.py). Compared commands run in turn (A B A B ...) and a ratio is the median of
the round-by-round ratios, so drift in the machine's speed does not bias it. Targets are
checked unless --quick.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

import duckdb

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DAY = "2025-06-30"


def run_once(cmd, env=None):
    """Wall seconds and peak RSS (MiB) of one run of `cmd`, timed by bench/timed.py."""
    proc = subprocess.run([sys.executable, "-S", os.path.join(HERE, "timed.py"), *cmd],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{proc.stderr.decode(errors='replace')[-3000:]}")
    wall, rss = proc.stdout.split()
    return float(wall), int(rss) / 1024


def interleaved(commands, runs):
    """Runs each (cmd, env, before) in turn, `runs` rounds (A B A B ...), so that drift in the
    machine's speed hits every command alike. Returns, per command, its (wall, rss) per round."""
    results = [[] for _ in commands]
    for _ in range(runs):
        for i, (cmd, env, before) in enumerate(commands):
            if before:
                before()
            results[i].append(run_once(cmd, env))
    return results


def medians(rounds):
    """(median wall seconds, median peak RSS MiB)."""
    return statistics.median(w for w, _ in rounds), statistics.median(r for _, r in rounds)


def ratio(a, b, k=0):
    """Median of the round-by-round ratios a/b of figure k (0 wall, 1 RSS)."""
    return statistics.median(x[k] / y[k] for x, y in zip(a, b))


def measure(cmd, runs, env=None, before=None):
    """Median wall seconds and median peak RSS (MiB) of `cmd` over `runs` runs."""
    return medians(interleaved([(cmd, env, before)], runs)[0])


def count(path):
    return duckdb.execute(f"select count(*) from read_parquet('{path}')").fetchone()[0]


def live(lake, table):
    """The files of `table`'s day at the version the latest run record names (a day
    replaced several times keeps its older files until `opslake vacuum`)."""
    runs = os.path.join(lake, "_runs", f"run_date={DAY}")
    records = [json.load(open(os.path.join(runs, f))) for f in os.listdir(runs) if f.endswith(".json")]
    latest = max((r for r in records if table in r["tables"]), key=lambda r: r["commit"])
    return [os.path.join(lake, f) for f in latest["tables"][table]["files"]]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true", help="small inputs, one run, no targets")
    p.add_argument("--appointments", type=int, default=1_000_000)
    p.add_argument("--orders", type=int, default=1_000_000)
    p.add_argument("--runs", type=int, default=5, help="rounds of each comparison (the full run: at most 3)")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    p.add_argument("--profile", default="release", help="release, or debug (CI's quick run)")
    a = p.parse_args()
    api_orders = 300
    if a.quick:
        a.appointments, a.orders, a.runs, api_orders = 5_000, 4_000, 1, 40
    opslake = os.path.join(ROOT, f"target/{a.profile}/opslake")
    floor = os.path.join(ROOT, f"target/{a.profile}/examples/parse_floor")
    data = os.path.join(HERE, "data")
    out = os.path.join(HERE, "out")
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    env = dict(os.environ, OPSLAKE_LOG_FORMAT="json", OPSLAKE_PII_KEY="benchmark-key")
    threads = str(a.threads)

    # Inputs, generated once per size and seed.
    appt_dir = os.path.join(data, f"appointments-{a.appointments}")
    appt_file = os.path.join(appt_dir, "appointments", "appointments.ndjson")
    if not os.path.exists(appt_file):
        subprocess.run([opslake, "samples", "appointments", "--count", str(a.appointments), "--seed", "7",
                        "--out", appt_file], check=True, env=env)
    universes = {}
    for orders in (a.orders, a.orders // 4):
        u = os.path.join(data, f"universe-{orders}")
        if not os.path.exists(os.path.join(u, "_truth")):
            shutil.rmtree(u, ignore_errors=True)
            subprocess.run([opslake, "samples", "generate", "--orders", str(orders), "--seed", "7", "--out", u],
                           check=True, env=env, stdout=subprocess.DEVNULL)
        universes[orders] = u
    size = os.path.getsize(appt_file)
    rows = []

    # 1. Normalize.
    o_norm = os.path.join(out, "opslake-normalize")
    d_norm = os.path.join(out, "duckdb-normalize")
    clean = lambda d: (lambda: (shutil.rmtree(d, ignore_errors=True), os.makedirs(d)))
    r_o, r_d, r_f = interleaved([
        ([opslake, "normalize", "--input", appt_dir, "--out", o_norm, "--sources", "appointments",
          "--tables", "appointments,appointment_parties", "--pii", "drop", "--as-of", DAY, "--threads", threads],
         env, clean(o_norm)),
        ([sys.executable, os.path.join(HERE, "duckdb_run.py"), os.path.join(HERE, "duckdb_normalize.sql"),
          f"input={appt_file}", f"out={d_norm}", f"threads={threads}"], env, clean(d_norm)),
        ([floor, appt_file, threads], env, None),
    ], a.runs)
    t_o, t_d, t_f = medians(r_o), medians(r_d), medians(r_f)
    for table in ("appointments", "appointment_parties"):
        n_o = count(f"{o_norm}/{table}/run_date={DAY}/*.parquet")
        n_d = count(f"{d_norm}/{table}.parquet")
        if n_o != n_d:
            sys.exit(f"normalize: {table} has {n_o} rows from opslake but {n_d} from DuckDB")
    n = a.appointments
    rows += [("normalize", "opslake", *t_o, n), ("normalize", "duckdb", *t_d, n), ("normalize", "serde floor", *t_f, n)]

    # 3. The full run (it also publishes the lake the reconciliation reads).
    lake = os.path.join(out, "lake")
    t_run = measure([opslake, "run", "--input", universes[a.orders], "--output", lake, "--as-of", DAY,
                     "--threads", threads], min(a.runs, 3), env)
    n_orders = a.orders
    rows.append(("full run", "opslake", *t_run, n_orders))
    # The timed runs replaced the day several times; DuckDB below reads the day's folders, so
    # the files of superseded versions go first (a Delta reader would not need this).
    subprocess.run([opslake, "vacuum", "--retention-hours", "0", "--output", lake], env=env, check=True,
                   stdout=subprocess.DEVNULL)

    # 2. Reconciliation.
    products = count(f"{lake}/order_products/run_date={DAY}/*.parquet")
    statuses = count(f"{lake}/expedition_status_history/run_date={DAY}/*.parquet")
    d_recon = os.path.join(out, "duckdb-fulfilment.parquet")
    as_of = duckdb.execute(f"select (timezone('Europe/Madrid', TIMESTAMP '{DAY} 00:00:00') + INTERVAL 1 DAY)::VARCHAR").fetchone()[0]
    r_ro, r_rd = interleaved([
        ([opslake, "reconcile", "--run-date", DAY, "--output", lake, "--reconciliations", "recon_order_fulfilment",
          "--threads", threads], env, None),
        ([sys.executable, os.path.join(HERE, "duckdb_run.py"), os.path.join(HERE, "duckdb_fulfilment.sql"),
          f"lake={lake}", f"day={DAY}", f"as_of={as_of}", f"out={d_recon}", f"threads={threads}",
          f"categories={os.path.join(ROOT, 'sql', 'status_categories.csv')}"], env, None),
    ], a.runs)
    t_ro, t_rd = medians(r_ro), medians(r_rd)
    diff = duckdb.execute(f"""
        select count(*) from read_parquet({live(lake, "recon_order_fulfilment")}) o
        full join read_parquet('{d_recon}') d using (order_id, position)
        where o.state is distinct from d.state or o.expedition_id is distinct from d.expedition_id
    """).fetchone()[0]
    if diff:
        sys.exit(f"reconciliation: {diff} products differ between opslake and DuckDB")
    rows += [("reconcile", "opslake", *t_ro, products), ("reconcile", "duckdb", *t_rd, products)]

    # Memory of the normalize stage: the universe and a quarter of it.
    mem = {}
    for orders, u in universes.items():
        o = os.path.join(out, f"normalize-{orders}")
        _, rss = measure([opslake, "normalize", "--input", u, "--out", o, "--as-of", DAY, "--threads", threads],
                         1, env, clean(o))
        mem[orders] = rss
        rows.append(("normalize stage", f"opslake {orders} orders", 0.0, rss, orders))

    # 4. Extraction: concurrency 8 against 1, 50 ms per answer.
    api_data = os.path.join(data, f"universe-api-{api_orders}")
    if not os.path.exists(os.path.join(api_data, "_truth")):
        subprocess.run([opslake, "samples", "generate", "--orders", str(api_orders), "--seed", "7", "--no-superseded",
                        "--out", api_data], check=True, env=env, stdout=subprocess.DEVNULL)
    server = subprocess.Popen([opslake, "fixtures", "serve", "--data", api_data, "--port", "0", "--api-key", "bench",
                               "--latency-ms", "50"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    url = server.stdout.readline().decode().strip().removeprefix("listening on ")
    api_env = dict(env, OPSLAKE_API_KEY="bench", OPSLAKE_APPOINTMENTS_URL=url, OPSLAKE_CUSTOMER_CARE_URL=url,
                   OPSLAKE_LOGISTICS_URL=url)
    try:
        jobs = {}
        for c in (8, 1):
            jobs[c] = os.path.join(out, f"api-{c}.toml")
            section = f"concurrency = {c}\nrequests_per_second = 10000\nretries = 3\n"
            # `extract` keeps the captures at raw_output; every round a full pull (--full-refresh),
            # so that a round does not carry forward the previous round's answers.
            raw = os.path.join(out, f"api-raw-{c}")
            with open(jobs[c], "w") as f:
                f.write(f'pii = "drop"\nraw_output = "{raw}"\ntenants = ["masmovil", "yoigo", "pepephone", "lebara"]\n'
                        + "".join(f"[api.{api}]\n{section}" for api in ("appointments", "customer_care", "logistics")))
        r_e8, r_e1 = interleaved([([opslake, "extract", "--job", jobs[c], "--output", os.path.join(out, f"api-lake-{c}"),
                                    "--as-of", DAY, "--full-refresh"], api_env, None) for c in (8, 1)], a.runs)
    finally:
        server.kill()
    extract = {8: medians(r_e8), 1: medians(r_e1)}
    rows += [("extract, 50 ms", "opslake concurrency 8", *extract[8], api_orders),
             ("extract, 50 ms", "opslake concurrency 1", *extract[1], api_orders)]

    print(f"\ninputs: {n} appointments ({size / 2**30:.2f} GiB); universe of {a.orders} orders; "
          f"{products} order products x {statuses} statuses; {a.threads} threads; median of {a.runs} rounds (full run: {min(a.runs, 3)})\n")
    print(f"{'stage':<16} {'tool':<22} {'wall s':>8} {'records/s':>12} {'peak RSS MiB':>13}")
    for stage, tool, wall, rss, records in rows:
        rate = f"{records / wall:,.0f}" if wall else "-"
        print(f"{stage:<16} {tool:<22} {wall:>8.2f} {rate:>12} {rss:>13.0f}")
    ratios = [
        ("normalize time, opslake / duckdb", ratio(r_o, r_d), 0.6),
        ("normalize peak RSS, opslake / duckdb", ratio(r_o, r_d, 1), 0.5),
        ("normalize time, opslake / serde floor", ratio(r_o, r_f), 2.5),
        ("reconcile time, opslake / duckdb", ratio(r_ro, r_rd), 1.2),
        ("reconcile peak RSS, opslake / duckdb", ratio(r_ro, r_rd, 1), 1.5),
        (f"normalize stage RSS, {a.orders} / {a.orders // 4} orders", mem[a.orders] / mem[a.orders // 4], 1.3),
        ("full run peak RSS, GiB", t_run[1] / 1024, 4.0),
        ("extract time, concurrency 1 / concurrency 8 (>= 6)", ratio(r_e1, r_e8), None),
    ]
    print()
    failed = 0
    for name, value, target in ratios:
        # The extraction speed-up is a floor, the others ceilings.
        ok = value >= 6 if target is None else value <= target
        failed += not ok
        verdict = "" if a.quick else ("  ok" if ok else "  MISSED")
        bound = ">= 6" if target is None else f"<= {target}"
        print(f"{name:<52} {value:>6.2f}  (target {bound}){verdict}")
    if failed and not a.quick:
        sys.exit(f"{failed} target(s) missed")


if __name__ == "__main__":
    main()
