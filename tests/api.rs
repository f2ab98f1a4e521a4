//! Extraction from the APIs: the real binary against the fixture server it ships.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::*;

const DAY: &str = "2025-06-30";
const KEY: &str = "api-key-7f3c91e0-must-never-appear";

fn universe(t: &TestLake, orders: usize) {
    universe_in(&t.input(), orders);
}

/// A universe of `orders` orders (seed 33) in `dir`: the same seed and a larger count give the
/// same first orders plus new ones.
fn universe_in(dir: &Path, orders: usize) {
    std::fs::create_dir_all(dir).unwrap();
    let u = opslake::samples::Universe {
        orders,
        seed: 33,
        // The API serves the latest appointment of a work order only.
        superseded: false,
    };
    opslake::samples::generate(&u, dir).unwrap();
}

/// Rewrites every file of a source folder, line by line or whole (`.json`), through `edit`
/// (decompressing and compressing `.gz` and `.zst` files as they were).
fn rewrite(dir: &Path, source: &str, edit: &dyn Fn(&mut serde_json::Value)) {
    use std::io::{Read, Write};
    let mut stack = vec![dir.join(source)];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            let raw = std::fs::read(&p).unwrap();
            let text = if name.ends_with(".gz") {
                let mut s = String::new();
                flate2::read::GzDecoder::new(&raw[..]).read_to_string(&mut s).unwrap();
                s
            } else if name.ends_with(".zst") {
                String::from_utf8(zstd::decode_all(&raw[..]).unwrap()).unwrap()
            } else {
                String::from_utf8(raw).unwrap()
            };
            let edited = if name.ends_with(".json") {
                let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
                edit(&mut v);
                v.to_string()
            } else {
                let mut out = String::new();
                for line in text.lines().filter(|l| !l.trim().is_empty()) {
                    let mut v: serde_json::Value = serde_json::from_str(line).unwrap();
                    edit(&mut v);
                    out.push_str(&v.to_string());
                    out.push('\n');
                }
                out
            };
            let bytes = if name.ends_with(".gz") {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                e.write_all(edited.as_bytes()).unwrap();
                e.finish().unwrap()
            } else if name.ends_with(".zst") {
                zstd::encode_all(edited.as_bytes(), 1).unwrap()
            } else {
                edited.into_bytes()
            };
            std::fs::write(&p, bytes).unwrap();
        }
    }
}

/// Every appointment of a universe in a final state (`completed`), as in a back office whose
/// installations are mostly done.
fn complete_appointments(dir: &Path) {
    rewrite(dir, "appointments", &|v| {
        if let Some(o) = v.as_object_mut() {
            o.insert("status".into(), "completed".into());
        }
    });
}

/// A job on the three APIs, fast limits for tests; `extra` is appended to the top of the
/// file, `sections` to each API section (`[api.appointments]`... keys).
fn api_job(t: &TestLake, tenants: &str, extra: &str) -> std::path::PathBuf {
    api_job_with(t, tenants, extra, &["", "", ""])
}

fn api_job_with(t: &TestLake, tenants: &str, extra: &str, sections: &[&str; 3]) -> std::path::PathBuf {
    let api = |page: u32, more: &str| {
        format!(
            "concurrency = 4\nrequests_per_second = 2000\ntimeout_seconds = 10\nretries = 8\npage_size = {page}\n{more}\n"
        )
    };
    let text = format!(
        "name = \"api-test\"\npii = \"hash\"\ntenants = {tenants}\n{extra}\n[api.appointments]\n{}\n[api.customer_care]\n{}\n[api.logistics]\n{}",
        api(50, sections[0]),
        api(7, sections[1]),
        api(25, sections[2])
    );
    // Each job its own file: a test may hold several.
    static JOBS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = JOBS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = t.dir.path().join(format!("api-{n}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

/// The job line that keeps raw captures beside the lake (never in it).
fn raw_output(t: &TestLake) -> String {
    format!("raw_output = {:?}", t.dir.path().join("raw").display().to_string())
}

const TENANTS: &str = r#"["masmovil", "yoigo", "pepephone", "lebara"]"#;

fn run_api(t: &TestLake, server: &FixtureServer, job: &std::path::Path, command: &[&str]) -> std::process::Output {
    run_api_on(t, server, job, command, DAY, &[])
}

fn run_api_on(
    t: &TestLake,
    server: &FixtureServer,
    job: &std::path::Path,
    command: &[&str],
    day: &str,
    flags: &[&str],
) -> std::process::Output {
    t.cmd()
        .envs(server.env())
        .env("OPSLAKE_API_KEY", KEY)
        .args(command)
        .arg("--job")
        .arg(job)
        .args(["--as-of", day, "--output"])
        .arg(t.lake())
        .args(flags)
        .output()
        .unwrap()
}

fn ok(out: &std::process::Output) {
    assert!(
        out.status.success(),
        "exit {:?}\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The first error line of a failed run.
fn first_error(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr)
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_default()
        .to_string()
}

/// Every table of a day as sorted rows of text (the day each row was fetched left out: an API
/// run knows it, an export does not).
fn tables(lake: &std::path::Path) -> BTreeMap<String, Vec<String>> {
    tables_on(lake, DAY)
}

fn tables_on(lake: &std::path::Path, day: &str) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(lake).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().to_string();
        if name.starts_with('_') || !lake.join(&name).join(format!("run_date={day}")).is_dir() {
            continue;
        }
        let df = read_table(lake, &name, day);
        let cols: Vec<Vec<Option<String>>> = df
            .get_column_names()
            .iter()
            .filter(|c| c.as_str() != "_fetched_on")
            .map(|c| strings(&df, c.as_str()))
            .collect();
        let mut rows: Vec<String> = (0..df.height())
            .map(|i| cols.iter().map(|c| format!("{:?}", c[i])).collect::<Vec<_>>().join("|"))
            .collect();
        rows.sort();
        out.insert(name, rows);
    }
    out
}

fn assert_same_tables(api: &std::path::Path, files: &std::path::Path) {
    let (a, f) = (tables(api), tables(files));
    assert_eq!(
        a.keys().collect::<Vec<_>>(),
        f.keys().collect::<Vec<_>>(),
        "the same tables"
    );
    for (name, rows) in &f {
        assert!(!rows.is_empty() || name.starts_with("pickup"), "{name} is empty");
        assert_eq!(a[name].len(), rows.len(), "{name}: rows");
        assert!(a[name] == *rows, "{name}: the API run differs from the file run");
    }
}

/// Runs the same universe as export files into another lake.
fn file_run(input: &TestLake) -> TestLake {
    let files = TestLake::new();
    let out = files
        .cmd()
        .args(["run", "--as-of", DAY, "--input"])
        .arg(input.input())
        .arg("--output")
        .arg(files.lake())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    files
}

fn no_key_in(t: &TestLake, outputs: &[&std::process::Output]) {
    for o in outputs {
        assert!(!String::from_utf8_lossy(&o.stdout).contains(KEY) && !String::from_utf8_lossy(&o.stderr).contains(KEY));
    }
    let mut stack = vec![t.lake(), t.dir.path().join("raw")];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        for e in rd {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let bytes = std::fs::read(&p).unwrap();
            let text = if p.extension().is_some_and(|x| x == "zst") {
                zstd::decode_all(&bytes[..]).unwrap()
            } else {
                bytes
            };
            assert!(
                !String::from_utf8_lossy(&text).contains(KEY),
                "the key leaked into {}",
                p.display()
            );
        }
    }
}

#[test]
fn an_api_run_publishes_the_same_tables_as_the_files_it_serves() {
    let t = TestLake::new();
    universe(&t, 250);
    let server = FixtureServer::start(&t.input(), KEY, &[]);
    let job = api_job(&t, TENANTS, &raw_output(&t));
    let out = run_api(&t, &server, &job, &["run"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let files = file_run(&t);
    assert_same_tables(&t.lake(), &files.lake());
    let m = &t.manifests(DAY)[0];
    let extract = &m["extract"];
    // Raw responses are kept, compressed, per source and tenant, at raw_output under the run's
    // own prefix: never in the analysts' lake.
    assert!(!t.lake().join("raw").exists(), "no raw captures in the lake");
    let prefix = extract["raw"]["prefix"].as_str().unwrap();
    assert_eq!(prefix, format!("run_date={DAY}/{}", m["run_id"].as_str().unwrap()));
    let raw = t
        .dir
        .path()
        .join("raw")
        .join(prefix)
        .join("orders/yoigo/part-00000.ndjson.zst");
    assert!(raw.is_file(), "{}", raw.display());
    let devices = t.dir.path().join("raw").join(prefix).join("customer_devices");
    let mut kept = String::new();
    for tenant in std::fs::read_dir(&devices).unwrap() {
        for f in std::fs::read_dir(tenant.unwrap().path()).unwrap() {
            kept.push_str(
                &String::from_utf8(zstd::decode_all(&std::fs::read(f.unwrap().path()).unwrap()[..]).unwrap()).unwrap(),
            );
        }
    }
    assert!(
        kept.contains(&format!("\"_fetched_on\":\"{DAY}\"")),
        "answers say when they were fetched"
    );
    // Each row of a per-id source says the day it was fetched.
    let fetched = strings(&t.table("appointments", DAY), "_fetched_on");
    assert!(
        !fetched.is_empty() && fetched.iter().all(|d| d.as_deref() == Some(DAY)),
        "{fetched:?}"
    );
    assert_eq!(extract["refresh"], "full");
    assert!(extract["journey_devices_without_fees"].as_u64().is_some());
    assert!(extract["apis"]["logistics"]["requests"].as_u64().unwrap() > 4);
    assert!(
        extract["sources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["source"] == "appointments" && s["not_found"].as_u64().unwrap() > 0),
        "work orders without an appointment are 404s, not failures"
    );
    no_key_in(&t, &[&out]);
}

#[test]
fn an_api_run_survives_ten_percent_of_failing_requests() {
    let t = TestLake::new();
    universe(&t, 150);
    let faults = [
        "--error-rate",
        "0.05",
        "--rate-429",
        "0.03",
        "--truncate-rate",
        "0.02",
        "--retry-after",
        "0",
        "--seed",
        "7",
    ];
    let server = FixtureServer::start(&t.input(), KEY, &faults);
    let job = api_job(&t, TENANTS, "");
    let out = run_api(&t, &server, &job, &["run"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_same_tables(&t.lake(), &file_run(&t).lake());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("raw captures: none kept"),
        "without raw_output nothing is kept"
    );
    assert!(!t.dir.path().join("raw").exists() && !t.lake().join("raw").exists());
    let m = &t.manifests(DAY)[0];
    let apis = m["extract"]["apis"].as_object().unwrap();
    let total = |k: &str| apis.values().map(|a| a[k].as_u64().unwrap()).sum::<u64>();
    assert!(
        total("retried_5xx") > 0 && total("retried_429") > 0 && total("retried_invalid_body") > 0,
        "{apis:?}"
    );
    assert_eq!(
        total("retries"),
        total("retried_5xx") + total("retried_429") + total("retried_invalid_body") + total("retried_network")
    );
    no_key_in(&t, &[&out]);
}

#[test]
fn raw_captures_replay_a_day_without_the_apis() {
    let t = TestLake::new();
    universe(&t, 120);
    // Without raw_output, `extract` has nowhere to keep what it pulls.
    let server = FixtureServer::start(&t.input(), KEY, &[]);
    let bare = api_job(&t, TENANTS, "");
    let refused = run_api(&t, &server, &bare, &["extract"]);
    assert_eq!(refused.status.code(), Some(2), "{}", first_error(&refused));
    assert!(
        first_error(&refused).contains("raw_output"),
        "{}",
        first_error(&refused)
    );
    // raw_output inside the lake is refused: the captures hold personal data.
    let inside = api_job(
        &t,
        TENANTS,
        &format!("raw_output = {:?}", t.lake().join("raw").display().to_string()),
    );
    let refused = run_api(&t, &server, &inside, &["run"]);
    assert_eq!(refused.status.code(), Some(2), "{}", first_error(&refused));
    assert!(
        first_error(&refused).contains("inside the lake"),
        "{}",
        first_error(&refused)
    );
    let job = api_job(&t, TENANTS, &raw_output(&t));
    let out = run_api(&t, &server, &job, &["extract"]);
    drop(server);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!t.lake().join("orders").exists(), "extract commits raw captures only");
    assert!(!t.lake().join("raw").exists(), "and keeps them out of the lake");
    // The server is gone: the replay reads the captures at raw_output.
    let replay = t
        .cmd()
        .env("OPSLAKE_API_KEY", KEY)
        .args(["normalize", "--from-raw", DAY, "--job"])
        .arg(&job)
        .arg("--output")
        .arg(t.lake())
        .output()
        .unwrap();
    assert!(replay.status.success(), "{}", String::from_utf8_lossy(&replay.stderr));
    assert_same_tables(&t.lake(), &file_run(&t).lake());
    assert_eq!(t.manifests(DAY).len(), 2);
}

#[test]
fn api_failures_are_clear_publish_nothing_and_leak_no_key() {
    let t = TestLake::new();
    universe(&t, 30);
    let nothing_published = |t: &TestLake| assert!(t.manifests(DAY).is_empty() && !t.lake().join("orders").exists());

    // A source that is down: connection refused until the retries run out.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let down = TestLake::new();
    let job = api_job(&down, TENANTS, "");
    let text = std::fs::read_to_string(&job)
        .unwrap()
        .replace("retries = 8", "retries = 1");
    std::fs::write(&job, text).unwrap();
    // A password in a base URL is never printed.
    let out = down
        .cmd()
        .env("OPSLAKE_APPOINTMENTS_URL", format!("http://opslake:hunter2@{closed}"))
        .env("OPSLAKE_CUSTOMER_CARE_URL", format!("http://opslake:hunter2@{closed}"))
        .env("OPSLAKE_LOGISTICS_URL", format!("http://opslake:hunter2@{closed}"))
        .env("OPSLAKE_API_KEY", KEY)
        .args(["run", "--as-of", DAY, "--job"])
        .arg(&job)
        .arg("--output")
        .arg(down.lake())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", first_error(&out));
    assert!(
        first_error(&out).contains("unreachable") && first_error(&out).contains("nothing was published"),
        "{}",
        first_error(&out)
    );
    assert!(
        first_error(&out).contains("http://***@127.0.0.1"),
        "{}",
        first_error(&out)
    );
    assert!(!String::from_utf8_lossy(&out.stderr).contains("hunter2"));
    nothing_published(&down);
    no_key_in(&down, &[&out]);

    // Plain http:// to a host that is not loopback needs allow_http; paths are plain paths.
    let out = down
        .cmd()
        .env("OPSLAKE_APPOINTMENTS_URL", "http://appointments.example.com")
        .env("OPSLAKE_CUSTOMER_CARE_URL", format!("http://{closed}"))
        .env("OPSLAKE_LOGISTICS_URL", format!("http://{closed}"))
        .env("OPSLAKE_API_KEY", KEY)
        .args(["run", "--as-of", DAY, "--job"])
        .arg(&job)
        .arg("--output")
        .arg(down.lake())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", first_error(&out));
    assert!(first_error(&out).contains("allow_http"), "{}", first_error(&out));
    let sneaky = api_job_with(
        &down,
        TENANTS,
        "",
        &["", "", "[api.logistics.paths]\norders = \"//evil.example.com/orders\""],
    );
    let out = down
        .cmd()
        .envs([
            ("OPSLAKE_APPOINTMENTS_URL", format!("http://{closed}")),
            ("OPSLAKE_CUSTOMER_CARE_URL", format!("http://{closed}")),
            ("OPSLAKE_LOGISTICS_URL", format!("http://{closed}")),
        ])
        .env("OPSLAKE_API_KEY", KEY)
        .args(["run", "--as-of", DAY, "--job"])
        .arg(&sneaky)
        .arg("--output")
        .arg(down.lake())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", first_error(&out));
    assert!(first_error(&out).contains("'//'"), "{}", first_error(&out));
    nothing_published(&down);

    // A wrong key.
    let server = FixtureServer::start(&t.input(), "the-right-key", &[]);
    let job = api_job(&t, TENANTS, "");
    let out = run_api(&t, &server, &job, &["run"]);
    assert_eq!(out.status.code(), Some(2), "{}", first_error(&out));
    assert!(
        first_error(&out).contains("refused the API key (HTTP 401)"),
        "{}",
        first_error(&out)
    );
    nothing_published(&t);
    no_key_in(&t, &[&out]);
    drop(server);

    // A next_request link to another host.
    let server = FixtureServer::start(&t.input(), KEY, &["--foreign-next"]);
    let out = run_api(&t, &server, &job, &["run"]);
    assert_eq!(out.status.code(), Some(3), "{}", first_error(&out));
    assert!(
        first_error(&out).contains("refusing to follow next_request to http://evil.example.com"),
        "{}",
        first_error(&out)
    );
    nothing_published(&t);
    no_key_in(&t, &[&out]);

    // Tenants that would change the URL path.
    for bad in [r#"["ok", "a/b"]"#, r#"["..", "ok"]"#] {
        let job = api_job(&t, bad, "");
        let out = run_api(&t, &server, &job, &["run"]);
        assert_eq!(out.status.code(), Some(2), "{bad}: {}", first_error(&out));
        assert!(first_error(&out).contains("refusing tenant"), "{}", first_error(&out));
        nothing_published(&t);
    }
}

/// The `extract` block of a day's last manifest.
fn extract_of(t: &TestLake, day: &str) -> serde_json::Value {
    t.manifests(day).last().unwrap()["extract"].clone()
}

fn source_fetch<'a>(extract: &'a serde_json::Value, source: &str) -> &'a serde_json::Value {
    extract["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["source"] == source)
        .unwrap_or_else(|| panic!("no {source} in {extract}"))
}

#[test]
fn listings_are_complete_or_failed() {
    let t = TestLake::new();
    // About 40 orders per tenant: two pages of 25.
    universe(&t, 160);
    let job = api_job(&t, TENANTS, "");
    let nothing_published = |t: &TestLake| assert!(t.manifests(DAY).is_empty() && !t.lake().join("orders").exists());

    // A total_pages of 10^12 is refused before it is paged.
    let server = FixtureServer::start(&t.input(), KEY, &["--total-pages", "1000000000000"]);
    let out = run_api(&t, &server, &job, &["run"]);
    assert_eq!(out.status.code(), Some(3), "{}", first_error(&out));
    assert!(
        first_error(&out).contains("total_pages 1000000000000 is past the bound max_pages = 100000"),
        "{}",
        first_error(&out)
    );
    nothing_published(&t);
    drop(server);

    // A next_request chain of new links that never ends stops at max_pages.
    let server = FixtureServer::start(&t.input(), KEY, &["--endless-next"]);
    let bounded = api_job_with(&t, TENANTS, "", &["", "max_pages = 30", ""]);
    let out = run_api(&t, &server, &bounded, &["run"]);
    assert_eq!(out.status.code(), Some(3), "{}", first_error(&out));
    assert!(
        first_error(&out).contains("next_request chain is longer than max_pages = 30"),
        "{}",
        first_error(&out)
    );
    nothing_published(&t);
    drop(server);

    // A body larger than max_body_bytes fails its call without being read whole.
    let server = FixtureServer::start(&t.input(), KEY, &[]);
    let small = api_job_with(&t, TENANTS, "", &["", "", "max_body_bytes = 2048"]);
    let out = run_api(&t, &server, &small, &["run"]);
    assert_eq!(out.status.code(), Some(3), "{}", first_error(&out));
    assert!(
        first_error(&out).contains("sent more than 2048 bytes") && first_error(&out).contains("max_body_bytes"),
        "{}",
        first_error(&out)
    );
    nothing_published(&t);
    drop(server);

    // Items that move between pages for good: the listing is read three times, then fails.
    let server = FixtureServer::start(&t.input(), KEY, &["--shift-pages", "1000000"]);
    let out = run_api(&t, &server, &job, &["run"]);
    assert_eq!(out.status.code(), Some(3), "{}", first_error(&out));
    assert!(
        first_error(&out).contains("items moved between pages while paging")
            && first_error(&out).contains("read 3 times"),
        "{}",
        first_error(&out)
    );
    nothing_published(&t);
    drop(server);

    // Items that moved once: the listing is read again and the run publishes what the files hold.
    let server = FixtureServer::start(&t.input(), KEY, &["--shift-pages", "1"]);
    let out = run_api(&t, &server, &job, &["run"]);
    ok(&out);
    let extract = extract_of(&t, DAY);
    let rereads: u64 = extract["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["rereads"].as_u64().unwrap())
        .sum();
    assert_eq!(rereads, 1, "one listing was read again");
    let orders = source_fetch(&extract, "orders");
    assert_eq!(
        orders["items"], orders["total_elements"],
        "every announced item arrived"
    );
    assert_same_tables(&t.lake(), &file_run(&t).lake());
}

#[test]
fn searches_send_what_seed_000_defines_and_a_refused_one_is_named() {
    let t = TestLake::new();
    universe(&t, 120);
    // One appointment lacks its relatedPlace: the API refuses its search (400).
    let mut broken = None;
    for tenant in std::fs::read_dir(t.input().join("appointments")).unwrap() {
        for f in std::fs::read_dir(tenant.unwrap().path()).unwrap() {
            let p = f.unwrap().path();
            if broken.is_none() && p.extension().is_some_and(|x| x == "json") {
                let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
                v.as_object_mut().unwrap().remove("relatedPlace");
                broken = Some(v["id"].as_str().unwrap().to_string());
                std::fs::write(&p, v.to_string()).unwrap();
            }
        }
    }
    let broken = broken.expect("a single-appointment file");
    let server = FixtureServer::start(&t.input(), KEY, &[]);

    // Within max_reject_ratio: that call fails, named; the night publishes.
    let job = api_job(&t, TENANTS, "max_reject_ratio = 0.05");
    let out = run_api(&t, &server, &job, &["run"]);
    ok(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let named = format!("appointment id {broken}: HTTP 400");
    assert!(stdout.contains(&named), "the summary names the appointment:\n{stdout}");
    assert!(stdout.contains("The [relatedPlace] attribute is required."), "{stdout}");
    let extract = extract_of(&t, DAY);
    let searches = source_fetch(&extract, "time_slots");
    assert_eq!(searches["failed"], 1);
    assert!(searches["failures"][0].as_str().unwrap().starts_with(&named));
    let m = t.manifests(DAY).pop().unwrap();
    assert!(
        m["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().contains(&named)),
        "the run record names it"
    );
    // Every other search was accepted: the fixture checks seed 000's request on each.
    let slots = t.table("time_slots", DAY);
    let ids = strings(&slots, "appointment_id");
    assert!(!ids.is_empty() && !ids.iter().any(|i| i.as_deref() == Some(broken.as_str())));

    // Past max_reject_ratio: the night fails, naming it, and publishes nothing new.
    let strict = api_job(&t, TENANTS, "max_reject_ratio = 0.001");
    let out = run_api(&t, &server, &strict, &["run"]);
    assert_eq!(out.status.code(), Some(3), "{}", first_error(&out));
    assert!(
        first_error(&out).contains("source time_slots: the API refused 1 of") && first_error(&out).contains(&named),
        "{}",
        first_error(&out)
    );
    assert_eq!(t.manifests(DAY).len(), 1);
}

/// Drops the memos of the customers of every fifth order: customer care then names them in no
/// memo, as with customers who never called.
fn drop_some_memos(dir: &Path) -> Vec<String> {
    let dropped: Vec<String> = (0..1000).step_by(5).map(|i| (10_000_000 + i).to_string()).collect();
    let set: std::collections::BTreeSet<String> = dropped.iter().cloned().collect();
    rewrite(dir, "memos", &|v| {
        let customer = |m: &serde_json::Value| match &m["customer_num"] {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        if let Some(list) = v.pointer_mut("/data/memos").and_then(|l| l.as_array_mut()) {
            list.retain(|m| !set.contains(&customer(m)));
        } else if let Some(list) = v.get_mut("memos").and_then(|l| l.as_array_mut()) {
            list.retain(|m| !set.contains(&customer(m)));
        }
    });
    dropped
}

#[test]
fn every_customer_whose_fees_are_needed_is_asked_for() {
    // The universe's own final payments without any fee record (NO_FEES_RECORD cases): no id
    // source can find those. Counted on a lake of its own, whose customers are then known.
    let whole = TestLake::new();
    universe(&whole, 100);
    let server = FixtureServer::start(&whole.input(), KEY, &[]);
    ok(&run_api(&whole, &server, &api_job(&whole, TENANTS, ""), &["run"]));
    let unknowable = extract_of(&whole, DAY)["journey_devices_without_fees"]
        .as_u64()
        .unwrap();
    drop(server);

    let t = TestLake::new();
    universe(&t, 100);
    let dropped = drop_some_memos(&t.input());

    // Memos alone: the customers without a memo have no fee record.
    let server = FixtureServer::start(&t.input(), KEY, &[]);
    let job = api_job(&t, TENANTS, "");
    let out = run_api(&t, &server, &job, &["run"]);
    ok(&out);
    let missing = extract_of(&t, DAY)["journey_devices_without_fees"].as_u64().unwrap();
    assert!(missing > unknowable, "customers named by no memo lack fees");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("journey devices without a fee record: {missing}")),
        "the summary says how many"
    );

    // An ids file on the object store names them: every journey device has its fees.
    let csv = t.dir.path().join("crm").join("customers.csv");
    std::fs::create_dir_all(csv.parent().unwrap()).unwrap();
    std::fs::write(&csv, format!("customer_num,segment\n{}\n", dropped.join(",x\n") + ",x")).unwrap();
    let url = format!("file://{}", csv.display());
    let with_file = api_job_with(
        &t,
        TENANTS,
        "",
        &[
            "",
            &format!("ids_file = {{ url = {url:?}, column = \"customer_num\" }}"),
            "",
        ],
    );
    let out = run_api(&t, &server, &with_file, &["run"]);
    ok(&out);
    let extract = extract_of(&t, DAY);
    assert_eq!(extract["journey_devices_without_fees"], unknowable);
    let devices = source_fetch(&extract, "customer_devices");
    assert!(devices["ids"]["file"].as_u64().unwrap() > 0, "{devices}");
    drop(server);

    // Customers known from an earlier committed day are asked for again, memo or not.
    let day1 = TestLake::new();
    universe(&day1, 100);
    let server = FixtureServer::start(&day1.input(), KEY, &[]);
    let job1 = api_job(&day1, TENANTS, "");
    ok(&run_api_on(&day1, &server, &job1, &["run"], "2025-06-29", &[]));
    drop(server);
    drop_some_memos(&day1.input());
    let server = FixtureServer::start(&day1.input(), KEY, &[]);
    ok(&run_api(&day1, &server, &job1, &["run"]));
    let extract = extract_of(&day1, DAY);
    // The same universe: only its own NO_FEES_RECORD cases lack fees.
    assert_eq!(extract["journey_devices_without_fees"], unknowable, "{extract}");
    assert!(
        source_fetch(&extract, "customer_devices")["ids"]["known"]
            .as_u64()
            .unwrap()
            > 0
    );
}

#[test]
fn an_incremental_night_asks_only_what_can_have_changed() {
    const DAY2: &str = "2025-07-01";
    let t = TestLake::new();
    let (day1, day2) = (t.dir.path().join("day1"), t.dir.path().join("day2"));
    // Day 2 is day 1 with 5% more orders (the same seed: the first orders are the same).
    universe_in(&day1, 160);
    universe_in(&day2, 168);
    complete_appointments(&day1);
    complete_appointments(&day2);
    let job = api_job(&t, TENANTS, &raw_output(&t));

    let server = FixtureServer::start(&day1, KEY, &[]);
    ok(&run_api_on(&t, &server, &job, &["run"], DAY, &[]));
    drop(server);
    let server = FixtureServer::start(&day2, KEY, &[]);
    let out = run_api_on(&t, &server, &job, &["run"], DAY2, &[]);
    ok(&out);
    let (e1, e2) = (extract_of(&t, DAY), extract_of(&t, DAY2));
    assert_eq!(e1["refresh"], "full");
    assert_eq!(e2["refresh"], "incremental", "{e2}");
    assert_eq!(e2["base"]["run_id"], t.manifests(DAY)[0]["run_id"]);
    let calls = |e: &serde_json::Value| -> u64 {
        e["sources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["called"].as_u64().unwrap())
            .sum()
    };
    let (c1, c2) = (calls(&e1), calls(&e2));
    let ratio = c2 as f64 / c1 as f64;
    eprintln!("per-id calls: night 1 {c1}, night 2 {c2} ({:.1}%)", 100.0 * ratio);
    // Nothing settled is asked again: only new ids, and the work orders that had no
    // appointment (one may have been booked since).
    for s in e2["sources"].as_array().unwrap() {
        assert_eq!(s["asked_changed"], 0, "{s}");
    }
    assert_eq!(
        source_fetch(&e2, "appointments")["asked_unsettled"],
        source_fetch(&e1, "appointments")["not_found"]
    );
    assert_eq!(
        source_fetch(&e2, "customer_devices")["asked_new"],
        8,
        "the new orders' customers"
    );
    assert!(
        (0.03..0.10).contains(&ratio),
        "night 2 made {c2} of night 1's {c1} per-id calls"
    );
    // Every answer is there: asked or carried.
    for s in ["appointments", "time_slots", "customer_devices", "typifications"] {
        let f = source_fetch(&e2, s);
        assert_eq!(
            f["responses"].as_u64(),
            Some(f["called"].as_u64().unwrap() - f["failed"].as_u64().unwrap() + f["carried"].as_u64().unwrap()),
            "{f}"
        );
    }

    // The same tables as a full pull of day 2.
    let full = TestLake::new();
    let server_full = &server;
    let fjob = api_job(&full, TENANTS, &raw_output(&full));
    let out = run_api_on(&full, server_full, &fjob, &["run"], DAY2, &[]);
    ok(&out);
    assert_eq!(extract_of(&full, DAY2)["refresh"], "full");
    let (a, b) = (tables_on(&t.lake(), DAY2), tables_on(&full.lake(), DAY2));
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (name, rows) in &b {
        // recon_exceptions ages exceptions across the lake's days by design: the full pull's
        // lake has no day 1, so every exception there is NEW.
        if name == "recon_exceptions" {
            continue;
        }
        assert!(
            a[name] == *rows,
            "{name}: the incremental night differs from a full pull"
        );
    }
    // Carried rows say the day they were fetched.
    let fetched = strings(&t.table("appointments", DAY2), "_fetched_on");
    assert!(fetched.iter().any(|d| d.as_deref() == Some(DAY)) && fetched.iter().any(|d| d.as_deref() == Some(DAY2)));

    // On demand, and every full_refresh_days, every id is asked again.
    let out = run_api_on(&t, &server, &job, &["run"], DAY2, &["--full-refresh"]);
    ok(&out);
    let e3 = extract_of(&t, DAY2);
    assert_eq!(e3["refresh"], "full");
    assert_eq!(e3["full_refresh_reason"], "--full-refresh");
    assert!(calls(&e3) > c2 * 5);
    let weekly = api_job(&t, TENANTS, &format!("{}\nfull_refresh_days = 1", raw_output(&t)));
    let out = run_api_on(&t, &server, &weekly, &["run"], "2025-07-02", &[]);
    ok(&out);
    assert!(
        extract_of(&t, "2025-07-02")["full_refresh_reason"]
            .as_str()
            .unwrap()
            .contains("full_refresh_days = 1")
    );
}

#[test]
fn raw_captures_go_to_their_own_store_with_their_own_credentials() {
    // Two S3 servers: the lake's (AWS_*) and the raw captures' (OPSLAKE_RAW_AWS_*).
    let (Some(lake_s3), Some(raw_s3)) = (S3Server::start(), S3Server::start()) else {
        return;
    };
    let t = TestLake::new();
    universe(&t, 60);
    let server = FixtureServer::start(&t.input(), KEY, &[]);
    let job = api_job(&t, TENANTS, &format!("raw_output = {:?}", raw_s3.url("captures")));
    let raw_env: Vec<(String, String)> = vec![
        ("OPSLAKE_RAW_AWS_ENDPOINT_URL".into(), raw_s3.endpoint.clone()),
        ("OPSLAKE_RAW_AWS_ALLOW_HTTP".into(), "true".into()),
        ("OPSLAKE_RAW_AWS_REGION".into(), "us-east-1".into()),
        ("OPSLAKE_RAW_AWS_ACCESS_KEY_ID".into(), "raw-writer".into()),
        ("OPSLAKE_RAW_AWS_SECRET_ACCESS_KEY".into(), "raw-secret".into()),
    ];
    let out = t
        .cmd()
        .envs(server.env())
        .envs(lake_s3.env())
        .envs(raw_env.clone())
        .env("OPSLAKE_API_KEY", KEY)
        .args(["run", "--job"])
        .arg(&job)
        .args(["--as-of", DAY, "--output", &lake_s3.url("lake")])
        .output()
        .unwrap();
    ok(&out);
    drop(server);
    let list = |vars: &[(String, String)], url: &str| -> Vec<String> {
        let store = opslake::extract::raw::store::open(url, vars).unwrap();
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(store.list(""))
            .unwrap()
            .into_iter()
            .map(|m| m.location.to_string())
            .collect()
    };
    let as_raw = |s: &S3Server| -> Vec<(String, String)> {
        let mut v = raw_env.clone();
        v[0].1 = s.endpoint.clone();
        v
    };
    let captures = list(&as_raw(&raw_s3), &raw_s3.url("captures"));
    assert!(
        captures.iter().any(|o| o.contains("/customer_devices/")),
        "the captures are on the raw store: {captures:?}"
    );
    let lake = list(&as_raw(&lake_s3), &lake_s3.url(""));
    assert!(lake.iter().any(|o| o.starts_with("lake/orders/")), "{lake:?}");
    assert!(
        !lake
            .iter()
            .any(|o| o.contains("customer_devices/") && o.ends_with(".zst"))
            && !lake.iter().any(|o| o.starts_with("captures")),
        "no capture on the lake's store: {lake:?}"
    );

    // The replay reads them back from there, with the same credentials.
    let replay = t
        .cmd()
        .envs(lake_s3.env())
        .envs(raw_env)
        .args(["normalize", "--from-raw", DAY, "--job"])
        .arg(&job)
        .args(["--output", &lake_s3.url("lake")])
        .output()
        .unwrap();
    ok(&replay);
    assert!(String::from_utf8_lossy(&replay.stdout).contains("raw captures:"));
}
