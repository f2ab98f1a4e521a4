//! Extraction from the APIs: the real binary against the fixture server it ships.

mod common;

use std::collections::BTreeMap;

use common::*;

const DAY: &str = "2025-06-30";
const KEY: &str = "api-key-7f3c91e0-must-never-appear";

fn universe(t: &TestLake, orders: usize) {
    std::fs::create_dir_all(t.input()).unwrap();
    let u = opslake::samples::Universe {
        orders,
        seed: 33,
        // The API serves the latest appointment of a work order only.
        superseded: false,
    };
    opslake::samples::generate(&u, &t.input()).unwrap();
}

/// A job on the three APIs, fast limits for tests; `extra` is appended to the file.
fn api_job(t: &TestLake, tenants: &str, extra: &str) -> std::path::PathBuf {
    let api = |page: u32| {
        format!("concurrency = 4\nrequests_per_second = 2000\ntimeout_seconds = 10\nretries = 8\npage_size = {page}\n")
    };
    let text = format!(
        "name = \"api-test\"\npii = \"hash\"\ntenants = {tenants}\n{extra}\n[api.appointments]\n{}\n[api.customer_care]\n{}\n[api.logistics]\n{}",
        api(50),
        api(7),
        api(25)
    );
    let path = t.dir.path().join("api.toml");
    std::fs::write(&path, text).unwrap();
    path
}

const TENANTS: &str = r#"["masmovil", "yoigo", "pepephone", "lebara"]"#;

fn run_api(t: &TestLake, server: &FixtureServer, job: &std::path::Path, command: &[&str]) -> std::process::Output {
    t.cmd()
        .envs(server.env())
        .env("OPSLAKE_API_KEY", KEY)
        .args(command)
        .arg("--job")
        .arg(job)
        .args(["--as-of", DAY, "--output"])
        .arg(t.lake())
        .output()
        .unwrap()
}

/// Every table of a day as sorted rows of text.
fn tables(lake: &std::path::Path) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(lake).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().to_string();
        if name.starts_with('_') || name == "raw" || !lake.join(&name).join(format!("run_date={DAY}")).is_dir() {
            continue;
        }
        let df = read_table(lake, &name, DAY);
        let cols: Vec<Vec<Option<String>>> = df.get_column_names().iter().map(|c| strings(&df, c.as_str())).collect();
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
    let mut stack = vec![t.lake()];
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
    let job = api_job(&t, TENANTS, "");
    let out = run_api(&t, &server, &job, &["run"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let files = file_run(&t);
    assert_same_tables(&t.lake(), &files.lake());
    // Raw responses are kept, compressed, per source, run and tenant, listed in the record.
    let m = &t.manifests(DAY)[0];
    let raw = m["raw"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .find(|p| p.starts_with(&format!("raw/orders/run_date={DAY}/")) && p.ends_with("/yoigo/part-00000.ndjson.zst"))
        .unwrap_or_else(|| panic!("{}", m["raw"]));
    assert!(t.lake().join(raw).is_file(), "{raw}");
    let extract = &m["extract"];
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
    let job = api_job(&t, TENANTS, "");
    let out = {
        let server = FixtureServer::start(&t.input(), KEY, &[]);
        run_api(&t, &server, &job, &["extract"])
    };
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!t.lake().join("orders").exists(), "extract commits raw captures only");
    // The server is gone: the replay reads the lake's raw/ captures.
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
    let first_error = |o: &std::process::Output| {
        String::from_utf8_lossy(&o.stderr)
            .lines()
            .find(|l| l.starts_with("error:"))
            .unwrap_or_default()
            .to_string()
    };
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
    let out = down
        .cmd()
        .env("OPSLAKE_APPOINTMENTS_URL", format!("http://{closed}"))
        .env("OPSLAKE_CUSTOMER_CARE_URL", format!("http://{closed}"))
        .env("OPSLAKE_LOGISTICS_URL", format!("http://{closed}"))
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
    nothing_published(&down);
    no_key_in(&down, &[&out]);

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
