"""The opslake benchmark, one run on the same freshly generated inputs (see bench/run.sh).

1. normalize N seed-000 appointments (NDJSON) into `appointments` + `appointment_parties`
   (zstd Parquet): opslake, DuckDB doing the same job in SQL (bench/duckdb_normalize.sql),
   and the floor: a serde-only parse on all cores (bench/parse_floor.rs); then the same on
   appointments whose role lists come in varied orders, spellings and aliases
   (`samples appointments --varied`); then the whole `opslake run` (six appointment tables,
   personal data hashed, rejects, manifest, Delta commits) on the first file against DuckDB's
   two-table job;
2. recon_order_fulfilment over the order products and status histories of a generated
   universe: opslake and DuckDB (bench/duckdb_fulfilment.sql), states compared row by row;
3. the full `opslake run` on the universe, and on universes of 1/8, 1/4 and 1/2 its size (time
   must grow linearly); the normalize stage's peak memory on the universe and on a quarter;
4. extraction from the fixture API server answering with 50 ms of latency, with
   concurrency 8 and with concurrency 1 (the same data, the same requests);
5. file count: the full `opslake run` on one universe written as many small files (about half
   a file per order, as per-page / per-id API exports write them) and as a few large files
   (one per source and tenant); the tables must match.

Every figure is the median of --runs runs (wall seconds; peak RSS of the process, from wait4
in bench/timed.py). Compared commands run in turn (A B A B ...) and a ratio is the median of
the round-by-round ratios, so drift in the machine's speed does not bias it. Targets are
checked unless --quick. `--only full-run,files` runs some sections (while working on one).
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
SECTIONS = ("normalize", "run-appointments", "full-run", "reconcile", "stage-memory", "extract", "files")


def run_once(cmd, env=None):
    """Wall seconds and peak RSS (MiB) of one run of `cmd`, timed by bench/timed.py."""
    proc = subprocess.run([sys.executable, "-S", os.path.join(HERE, "timed.py"), *cmd],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{proc.stderr.decode(errors='replace')[-3000:]}")
    wall, rss = proc.stdout.split()
    return float(wall), int(rss) / 1024


def interleaved(commands, runs, warmup=False):
    """Runs each (cmd, env, before) in turn, `runs` rounds (A B A B ...), so that drift in the
    machine's speed hits every command alike. Returns, per command, its (wall, rss) per round.
    `warmup`: one untimed round first, so that no command pays alone for reading its inputs
    into the page cache."""
    results = [[] for _ in commands]
    if warmup:
        for cmd, env, before in commands:
            if before:
                before()
            run_once(cmd, env)
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
    p.add_argument("--files-orders", type=int, default=100_000,
                   help="orders of the universe written as small and as large files")
    p.add_argument("--runs", type=int, default=5, help="rounds of each comparison (the full run: at most 3)")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    p.add_argument("--profile", default="release", help="release, or debug (CI's quick run)")
    p.add_argument("--only", default=",".join(SECTIONS),
                   help="comma-separated sections to run (reconcile needs full-run's lake): " + ", ".join(SECTIONS))
    a = p.parse_args()
    only = set(a.only.split(","))
    if only - set(SECTIONS):
        sys.exit(f"--only: unknown section(s) {', '.join(sorted(only - set(SECTIONS)))}; known: {', '.join(SECTIONS)}")
    if "reconcile" in only:
        only.add("full-run")
    api_orders = 300
    if a.quick:
        a.appointments, a.orders, a.files_orders, a.runs, api_orders = 5_000, 4_000, 2_000, 1, 40
    opslake = os.path.join(ROOT, f"target/{a.profile}/opslake")
    floor = os.path.join(ROOT, f"target/{a.profile}/examples/parse_floor")
    data = os.path.join(HERE, "data")
    out = os.path.join(HERE, "out")
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    env = dict(os.environ, OPSLAKE_LOG_FORMAT="json", OPSLAKE_PII_KEY="benchmark-key")
    threads = str(a.threads)

    # Inputs, generated once per size and seed.
    def appointments(varied):
        d = os.path.join(data, f"appointments-{'varied-' if varied else ''}{a.appointments}")
        f = os.path.join(d, "appointments", "appointments.ndjson")
        if not os.path.exists(f):
            subprocess.run([opslake, "samples", "appointments", "--count", str(a.appointments),
                            "--seed", "11" if varied else "7", *(["--varied"] if varied else []), "--out", f],
                           check=True, env=env)
        return d, f

    def universe(orders, layout="default"):
        u = os.path.join(data, f"universe-{orders}" + ("" if layout == "default" else f"-{layout}"))
        if not os.path.exists(os.path.join(u, "_truth")):
            shutil.rmtree(u, ignore_errors=True)
            subprocess.run([opslake, "samples", "generate", "--orders", str(orders), "--seed", "7", "--files", layout,
                            "--out", u], check=True, env=env, stdout=subprocess.DEVNULL)
        return u

    scale = [a.orders // 8, a.orders // 4, a.orders // 2, a.orders]
    clean = lambda d: (lambda: (shutil.rmtree(d, ignore_errors=True), os.makedirs(d)))
    rows, ratios, notes = [], [], []

    # 1. Normalize, like for like with DuckDB, on the benchmark's input and on the varied one.
    if "normalize" in only:
        for name in ("", " varied"):
            in_dir, in_file = appointments(varied=bool(name))
            o_norm = os.path.join(out, f"opslake-normalize{name.strip()}")
            d_norm = os.path.join(out, f"duckdb-normalize{name.strip()}")
            compared = [
                ([opslake, "normalize", "--input", in_dir, "--out", o_norm, "--sources", "appointments",
                  "--tables", "appointments,appointment_parties", "--pii", "drop", "--as-of", DAY,
                  "--threads", threads], env, clean(o_norm)),
                ([sys.executable, os.path.join(HERE, "duckdb_run.py"), os.path.join(HERE, "duckdb_normalize.sql"),
                  f"input={in_file}", f"out={d_norm}", f"threads={threads}"], env, clean(d_norm)),
            ]
            if not name:
                compared.append(([floor, in_file, threads], env, None))
            results = interleaved(compared, a.runs)
            for table in ("appointments", "appointment_parties"):
                n_o = count(f"{o_norm}/{table}/run_date={DAY}/*.parquet")
                n_d = count(f"{d_norm}/{table}.parquet")
                if n_o != n_d:
                    sys.exit(f"normalize{name}: {table} has {n_o} rows from opslake but {n_d} from DuckDB")
            # Every role the varied spellings carry must land in the same column as DuckDB's.
            diff = duckdb.execute(f"""
                select count(*) from read_parquet('{o_norm}/appointments/run_date={DAY}/*.parquet') o
                full join read_parquet('{d_norm}/appointments.parquet') d using (appointment_id)
                where o.sell_channel is distinct from d.sell_channel or o.tenant is distinct from d.tenant
                   or o.work_order is distinct from d.work_order or o.territory_owner is distinct from d.territory_owner
                   or o.duration_min is distinct from d.duration_min or o.last_update is distinct from d.last_update
            """).fetchone()[0]
            if diff:
                sys.exit(f"normalize{name}: {diff} appointments differ between opslake and DuckDB")
            rows += [(f"normalize{name}", "opslake", *medians(results[0]), a.appointments),
                     (f"normalize{name}", "duckdb", *medians(results[1]), a.appointments)]
            ratios += [(f"normalize{name} time, opslake / duckdb", ratio(results[0], results[1]), 0.5),
                       (f"normalize{name} peak RSS, opslake / duckdb", ratio(results[0], results[1], 1), 0.35)]
            if not name:
                rows.append(("normalize", "serde floor", *medians(results[2]), a.appointments))
                ratios.append(("normalize time, opslake / serde floor", ratio(results[0], results[2]), 2.5))
        notes.append(f"{a.appointments} appointments ({os.path.getsize(appointments(False)[1]) / 2**30:.2f} GiB)")

    # The whole product on the appointments file (personal data hashed: the key is in `env`)
    # against DuckDB's two-table job.
    if "run-appointments" in only:
        appt_dir, appt_file = appointments(varied=False)
        run_lake = os.path.join(out, "appointments-lake")
        d_norm = os.path.join(out, "duckdb-normalize")
        r_ao, r_ad = interleaved([
            ([opslake, "run", "--input", appt_dir, "--output", run_lake, "--as-of", DAY,
              "--threads", threads], env, lambda: shutil.rmtree(run_lake, ignore_errors=True)),
            ([sys.executable, os.path.join(HERE, "duckdb_run.py"), os.path.join(HERE, "duckdb_normalize.sql"),
              f"input={appt_file}", f"out={d_norm}", f"threads={threads}"], env, clean(d_norm)),
        ], a.runs)
        rows += [("run, appointments", "opslake", *medians(r_ao), a.appointments),
                 ("run, appointments", "duckdb (2 tables)", *medians(r_ad), a.appointments)]
        ratios.append(("run appointments time, opslake / duckdb 2 tables", ratio(r_ao, r_ad), 0.8))

    # 3. The full run (it also publishes the lake the reconciliation reads), and its growth.
    lake = os.path.join(out, "lake")
    if "full-run" in only:
        t_run = measure([opslake, "run", "--input", universe(a.orders), "--output", lake, "--as-of", DAY,
                         "--threads", threads], min(a.runs, 3), env)
        runs_at = {a.orders: t_run}
        for orders in scale[:-1]:
            part_lake = os.path.join(out, f"lake-{orders}")
            runs_at[orders] = measure([opslake, "run", "--input", universe(orders), "--output", part_lake,
                                       "--as-of", DAY, "--threads", threads], 1, env)
            shutil.rmtree(part_lake, ignore_errors=True)
        for orders in scale:
            rows.append(("full run", f"opslake {orders} orders", *runs_at[orders], orders))
        ratios += [("full run peak RSS, GiB", t_run[1] / 1024, 1.0),
                   (f"full run time, {a.orders} / {a.orders // 4} orders (linear: 4)",
                    runs_at[a.orders][0] / runs_at[a.orders // 4][0], 4.4)]
        notes.append(f"universe of {a.orders} orders")
        # The timed runs replaced the day several times; DuckDB below reads the day's folders, so
        # the files of superseded versions go first (a Delta reader would not need this).
        subprocess.run([opslake, "vacuum", "--retention-hours", "0", "--output", lake], env=env, check=True,
                       stdout=subprocess.DEVNULL)

    # 2. Reconciliation.
    if "reconcile" in only:
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
        diff = duckdb.execute(f"""
            select count(*) from read_parquet({live(lake, "recon_order_fulfilment")}) o
            full join read_parquet('{d_recon}') d using (order_id, position)
            where o.state is distinct from d.state or o.expedition_id is distinct from d.expedition_id
               or o.logistics_status_agrees is distinct from d.logistics_status_agrees
        """).fetchone()[0]
        if diff:
            sys.exit(f"reconciliation: {diff} products differ between opslake and DuckDB")
        rows += [("reconcile", "opslake", *medians(r_ro), products), ("reconcile", "duckdb", *medians(r_rd), products)]
        ratios += [("reconcile time, opslake / duckdb", ratio(r_ro, r_rd), 1.2),
                   ("reconcile peak RSS, opslake / duckdb", ratio(r_ro, r_rd, 1), 1.5)]
        notes.append(f"{products} order products x {statuses} statuses")

    # Memory of the normalize stage: the universe and a quarter of it.
    if "stage-memory" in only:
        mem = {}
        for orders in (a.orders, a.orders // 4):
            o = os.path.join(out, f"normalize-{orders}")
            _, rss = measure([opslake, "normalize", "--input", universe(orders), "--out", o, "--as-of", DAY,
                              "--threads", threads], 1, env, clean(o))
            mem[orders] = rss
            rows.append(("normalize stage", f"opslake {orders} orders", 0.0, rss, orders))
        ratios.append((f"normalize stage RSS, {a.orders} / {a.orders // 4} orders", mem[a.orders] / mem[a.orders // 4], 1.3))

    # 4. Extraction: concurrency 8 against 1, 50 ms per answer.
    if "extract" in only:
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
        rows += [("extract, 50 ms", "opslake concurrency 8", *medians(r_e8), api_orders),
                 ("extract, 50 ms", "opslake concurrency 1", *medians(r_e1), api_orders)]
        ratios.append(("extract time, concurrency 1 / concurrency 8 (>= 6)", ratio(r_e1, r_e8), None))

    # 5. File count: one universe as many small files and as a few large ones. A warm-up round
    # first: the small layout's tens of thousands of files would otherwise pay alone for a cold
    # page cache in the first round.
    if "files" in only:
        layouts = {layout: universe(a.files_orders, layout) for layout in ("small", "large")}
        files_in = {layout: sum(len(f) for d, _, f in os.walk(u) if "_truth" not in os.path.relpath(d, u))
                    for layout, u in layouts.items()}
        lakes = {layout: os.path.join(out, f"lake-{layout}") for layout in layouts}
        r_small, r_large = interleaved([
            ([opslake, "run", "--input", layouts[layout], "--output", lakes[layout], "--as-of", DAY,
              "--threads", threads], env, (lambda d: lambda: shutil.rmtree(d, ignore_errors=True))(lakes[layout]))
            for layout in ("small", "large")], a.runs, warmup=not a.quick)
        for table in ("order_products", "customer_devices", "appointments", "recon_order_fulfilment", "recon_summary"):
            counts = {layout: count(f"{lakes[layout]}/{table}/run_date={DAY}/*.parquet") for layout in layouts}
            if counts["small"] != counts["large"]:
                sys.exit(f"file count: {table} has {counts['small']} rows from small files, {counts['large']} from large")
        out_files = {layout: sum(f.endswith(".parquet") for _, _, fs in os.walk(lake) for f in fs)
                     for layout, lake in lakes.items()}
        rows += [("run, file count", f"{files_in['small']} small files", *medians(r_small), a.files_orders),
                 ("run, file count", f"{files_in['large']} large files", *medians(r_large), a.files_orders)]
        ratios.append((f"run time, {files_in['small']} small / {files_in['large']} large files",
                       ratio(r_small, r_large), 1.3))
        notes.append(f"output Parquet files of the file-count runs: {out_files['small']} (small inputs), "
                     f"{out_files['large']} (large inputs)")

    print(f"\ninputs: {'; '.join(notes)}; {a.threads} threads; median of {a.runs} rounds "
          f"(full run: {min(a.runs, 3)})\n")
    print(f"{'stage':<16} {'tool':<22} {'wall s':>8} {'records/s':>12} {'peak RSS MiB':>13}")
    for stage, tool, wall, rss, records in rows:
        rate = f"{records / wall:,.0f}" if wall else "-"
        print(f"{stage:<16} {tool:<22} {wall:>8.2f} {rate:>12} {rss:>13.0f}")
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
