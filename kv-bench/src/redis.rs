//! The peer a user would otherwise pick: Redis from the OS packages, on a
//! loopback port of its own, measured with `redis-benchmark -P 512`.

use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};

pub struct RedisFigures {
    pub get: Vec<f64>,
    pub set: Vec<f64>,
    /// GET with the server's I/O threads on (`--io-threads 2 --io-threads-do-reads yes`).
    pub get_io_threads: Vec<f64>,
    /// GET with `redis-benchmark --threads 2`, so the load generator is not the limit.
    pub get_bench_threads: Vec<f64>,
}

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Installs redis-server and redis-tools with apt-get when absent (as root).
fn ensure_installed() -> Result<()> {
    if have("redis-server") && have("redis-benchmark") {
        return Ok(());
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!(
            "redis-server/redis-benchmark not installed (apt-get install redis-server redis-tools)"
        );
    }
    println!("installing redis-server and redis-tools with apt-get...");
    let ok = Command::new("sh")
        .args(["-c", "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server redis-tools >/dev/null"])
        .status()
        .context("cannot run apt-get")?
        .success();
    if !ok {
        bail!("apt-get install redis-server redis-tools failed");
    }
    Ok(())
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A redis-server on a free loopback port with `extra` flags; stopped by
/// PID when dropped.
struct RedisServer {
    child: std::process::Child,
    port: String,
    dir: std::path::PathBuf,
}

impl RedisServer {
    fn start(extra: &[&str]) -> Result<RedisServer> {
        let port = free_port()?.to_string();
        let dir = std::env::temp_dir().join(format!("kvbench-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port,
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .args(extra)
            .arg("--dir")
            .arg(&dir)
            .stdout(Stdio::null())
            .spawn()
            .context("cannot start redis-server")?;
        let server = RedisServer { child, port, dir };
        let ready = crate::wait_for(Duration::from_secs(10), || {
            std::net::TcpStream::connect(format!("127.0.0.1:{}", server.port)).ok()
        });
        if ready.is_none() {
            bail!("redis-server did not listen on 127.0.0.1:{}", server.port);
        }
        Ok(server)
    }

    /// `redis-benchmark -P 512 -d 128 -r 1000000 -n 5000000 -t TESTS` with
    /// `extra` flags: (test, requests per second) as it prints them.
    fn bench(&self, tests: &str, extra: &[&str]) -> Result<Vec<(String, f64)>> {
        let out = Command::new("redis-benchmark")
            .args(["-h", "127.0.0.1", "-p", &self.port])
            .args(["-P", "512", "-d", "128", "-r", "1000000"])
            .args(["-n", "5000000", "-t", tests, "--csv"])
            .args(extra)
            .output()
            .context("cannot run redis-benchmark")?;
        let text = String::from_utf8_lossy(&out.stdout);
        Ok(text
            .lines()
            .filter_map(|line| {
                let f: Vec<&str> = line.split(',').map(|s| s.trim_matches('"')).collect();
                let rps = f.get(1)?.parse::<f64>().ok()?;
                Some((f.first()?.to_string(), rps))
            })
            .collect())
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        // Stop the server we started, by its PID.
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `runs` rounds of: GET and SET (128-byte values, pipelining 512, 1M
/// random keys); GET with the server's I/O threads on; GET with
/// redis-benchmark's own 2 threads.
pub fn bench(runs: usize) -> Result<RedisFigures> {
    ensure_installed()?;
    let mut figures = RedisFigures {
        get: vec![],
        set: vec![],
        get_io_threads: vec![],
        get_bench_threads: vec![],
    };
    // A figure redis-benchmark did not print shows as "-", not as a debug `None`.
    let last = |v: &[f64]| v.last().map_or("-".to_string(), |x| format!("{x:.0}"));
    let plain = RedisServer::start(&[])?;
    for _ in 0..runs {
        // Started for its test only: its I/O threads must not spin beside the others.
        let threaded = RedisServer::start(&["--io-threads", "2", "--io-threads-do-reads", "yes"])?;
        for (test, rps) in plain.bench("set,get", &[])? {
            match test.as_str() {
                "GET" => figures.get.push(rps),
                "SET" => figures.set.push(rps),
                _ => {}
            }
        }
        for (test, rps) in threaded.bench("get", &[])? {
            if test == "GET" {
                figures.get_io_threads.push(rps);
            }
        }
        drop(threaded);
        for (test, rps) in plain.bench("get", &["--threads", "2"])? {
            if test == "GET" {
                figures.get_bench_threads.push(rps);
            }
        }
        println!(
            "  redis GET/SET      {} / {} ops/s; GET io-threads 2: {}; GET redis-benchmark --threads 2: {}",
            last(&figures.get),
            last(&figures.set),
            last(&figures.get_io_threads),
            last(&figures.get_bench_threads)
        );
    }
    if figures.get.is_empty() {
        bail!("redis-benchmark printed no GET figure");
    }
    Ok(figures)
}
