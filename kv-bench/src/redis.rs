//! The peer a user would otherwise pick: Redis from the OS packages, on a
//! loopback port of its own, measured with `redis-benchmark -P 512`.

use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};

pub struct RedisFigures {
    pub get: Vec<f64>,
    pub set: Vec<f64>,
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

/// `runs` rounds of GET and SET, 128-byte values, pipelining 512, 1M random keys.
pub fn bench(runs: usize) -> Result<RedisFigures> {
    ensure_installed()?;
    let port = free_port()?.to_string();
    let dir = std::env::temp_dir().join(format!("kvbench-redis-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut server = Command::new("redis-server")
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
        .arg("--dir")
        .arg(&dir)
        .stdout(Stdio::null())
        .spawn()
        .context("cannot start redis-server")?;
    let ready = crate::wait_for(Duration::from_secs(10), || {
        std::net::TcpStream::connect(format!("127.0.0.1:{port}")).ok()
    });
    let result = (|| {
        if ready.is_none() {
            bail!("redis-server did not listen on 127.0.0.1:{port}");
        }
        let mut figures = RedisFigures {
            get: vec![],
            set: vec![],
        };
        for _ in 0..runs {
            let out = Command::new("redis-benchmark")
                .args([
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &port,
                    "-P",
                    "512",
                    "-d",
                    "128",
                    "-r",
                    "1000000",
                ])
                .args(["-n", "5000000", "-t", "set,get", "--csv"])
                .output()
                .context("cannot run redis-benchmark")?;
            let text = String::from_utf8_lossy(&out.stdout);
            for line in text.lines() {
                let f: Vec<&str> = line.split(',').map(|s| s.trim_matches('"')).collect();
                if let (Some(test), Some(rps)) =
                    (f.first(), f.get(1).and_then(|v| v.parse::<f64>().ok()))
                {
                    match *test {
                        "GET" => figures.get.push(rps),
                        "SET" => figures.set.push(rps),
                        _ => {}
                    }
                }
            }
            // A figure redis-benchmark did not print shows as "-", not as a debug `None`.
            let last = |v: &[f64]| v.last().map_or("-".to_string(), |x| format!("{x:.0}"));
            println!(
                "  redis GET/SET      {} / {} ops/s",
                last(&figures.get),
                last(&figures.set)
            );
        }
        if figures.get.is_empty() {
            bail!("redis-benchmark printed no GET figure");
        }
        Ok(figures)
    })();
    // Stop the server we started, by its PID.
    let _ = server.kill();
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(&dir);
    result
}
