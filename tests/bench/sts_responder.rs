//! `make bench`'s STS endpoint for aggregators (tests/bench/aggregate.sh): the concurrent
//! GetCallerIdentity responder of tests/common/responder.rs as a program.
//!
//! `sts_responder LATENCY_MS PORT_FILE`: listens on a free port of 127.0.0.1, writes it to
//! PORT_FILE and answers until killed; `GET /stats` gives the counts as JSON (that request's
//! own connection included) and `POST /reset` zeroes them.

#[path = "../common/responder.rs"]
#[allow(dead_code)]
mod responder;

use std::time::Duration;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(latency), Some(port_file)) = (
        args.get(1).and_then(|ms| ms.parse::<u64>().ok()),
        args.get(2),
    ) else {
        eprintln!("usage: sts_responder LATENCY_MS PORT_FILE");
        std::process::exit(2);
    };
    let responder = responder::Responder::start(Duration::from_millis(latency));
    // Written whole, then renamed: a reader never sees half a port number.
    let partial = format!("{port_file}.partial");
    std::fs::write(&partial, responder.port.to_string()).expect("write the port file");
    std::fs::rename(&partial, port_file).expect("write the port file");
    loop {
        std::thread::park();
    }
}
