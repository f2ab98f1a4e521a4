//! The floor of the normalize benchmark: read the appointments file and deserialize every
//! record with serde into opslake's own appointment model, on every core, writing nothing.
//!
//! `cargo build --release --example parse_floor && target/release/examples/parse_floor FILE [THREADS]`

use opslake::sources::appointments::Appointment;

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let path = args.next().expect("usage: parse_floor FILE [THREADS]");
    let threads: usize = args
        .next()
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let data = std::fs::read(&path)?;
    // Cut the file into one slice per thread, at line ends.
    let mut bounds = vec![0];
    for t in 1..threads {
        let at = data.len() * t / threads;
        let nl = memchr::memchr(b'\n', &data[at..]).map_or(data.len(), |p| at + p + 1);
        bounds.push(nl.max(*bounds.last().unwrap_or(&0)));
    }
    bounds.push(data.len());
    let records: usize = std::thread::scope(|s| {
        let handles: Vec<_> = bounds
            .windows(2)
            .map(|w| {
                let slice = &data[w[0]..w[1]];
                s.spawn(move || {
                    let mut n = 0usize;
                    for line in slice.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                        let a: Appointment = serde_json::from_slice(line).expect("a valid appointment");
                        std::hint::black_box(a);
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or(0)).sum()
    });
    println!("{records} records");
    Ok(())
}
