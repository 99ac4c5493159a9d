//! The shipped binary with real signals: SIGHUP re-reads the file without disturbing
//! established sessions; SIGTERM stops accepting and exits after draining. Also keeps the
//! sample deployment config valid.

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

fn config_text(admin: SocketAddr, public: SocketAddr, with_ops: bool) -> String {
    let ops = if with_ops {
        "[[route]]\nname = \"ops\"\nsni = [\"ops.example.com\"]\nupstream = \"admin\"\nproxy_protocol = true\n"
    } else {
        ""
    };
    format!(
        "drain_timeout_ms = 2000\n\
         [[listener]]\nbind = \"127.0.0.1:0\"\n\
         [admin]\nbind = \"127.0.0.1:0\"\n\
         [[upstream]]\nname = \"admin\"\naddresses = [\"{admin}\"]\n\
         [[upstream]]\nname = \"public\"\naddresses = [\"{public}\"]\n\
         [[route]]\nname = \"admin\"\nsni = [\"admin.example.com\"]\nupstream = \"admin\"\nproxy_protocol = true\nreserved = 8\n\
         [[route]]\nname = \"public\"\nsni = [\"*.example.com\"]\nupstream = \"public\"\nproxy_protocol = true\n{ops}"
    )
}

struct Running {
    child: Child,
    listen: SocketAddr,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the binary and learns its ports from its JSON log.
fn spawn(config: &PathBuf) -> Result<Running> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_protostar-edge"))
        .arg("--config")
        .arg(config)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| anyhow::anyhow!("no stdout"))?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout)
            .lines()
            .map_while(std::io::Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let mut running = Running {
        child,
        listen: SocketAddr::from(([0, 0, 0, 0], 0)),
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let Ok(line) = rx.recv_timeout(Duration::from_secs(1)) else {
            continue;
        };
        let v: serde_json::Value = serde_json::from_str(&line)?;
        let fields = &v["fields"];
        if fields["message"] == "listening" {
            running.listen = fields["addr"].as_str().unwrap_or_default().parse()?;
            return Ok(running);
        }
    }
    anyhow::bail!("the binary never reported its listener")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_and_sigterm_drains() -> Result<()> {
    let admin =
        TlsUpstream::start("admin", &["admin.example.com", "ops.example.com"], true).await?;
    let public = TlsUpstream::start("public", &["*.example.com"], true).await?;
    let dir = std::env::temp_dir().join(format!("protostar-edge-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("edge.toml");
    std::fs::write(&path, config_text(admin.addr, public.addr, false))?;
    let mut running = spawn(&path)?;
    let addr = running.listen;
    let trusted = vec![admin.cert.clone(), public.cert.clone()];
    let pid = Pid::from_raw(i32::try_from(running.child.id())?);

    let (admin_addr, public_addr) = (admin.addr, public.addr);
    let path2 = path.clone();
    let outcome = blocking(move || -> Result<Option<std::process::ExitStatus>> {
        assert_eq!(
            tls_via(addr, "ops.example.com", &trusted, &ClientOpts::default())?.label(),
            "public"
        );
        let (_, mut session) = open_tls(addr, "www.example.com", &trusted, &ClientOpts::default())?;

        std::fs::write(&path2, config_text(admin_addr, public_addr, true))?;
        kill(pid, Signal::SIGHUP)?;
        let deadline = Instant::now() + Duration::from_secs(20);
        while tls_via(addr, "ops.example.com", &trusted, &ClientOpts::default())?.label() != "admin"
        {
            anyhow::ensure!(
                Instant::now() < deadline,
                "SIGHUP never applied the new route"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        session.echo(b"survived the reload")?;

        kill(pid, Signal::SIGTERM)?;
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(addr).is_ok() {
            anyhow::ensure!(Instant::now() < deadline, "still accepting after SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
        // Established sessions keep working while draining.
        session.echo(b"draining")?;
        Ok(None)
    })
    .await?;
    assert!(outcome.is_none());
    // The last session closed with the client, so the drain ends and the process exits 0.
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = running.child.try_wait()? {
            break s;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "did not exit after the drain deadline"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(status.success(), "{status:?}");
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

#[test]
fn check_flag_accepts_the_sample_config_and_refuses_a_broken_one() -> Result<()> {
    let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/edge.toml");
    let ok = Command::new(env!("CARGO_BIN_EXE_protostar-edge"))
        .args(["--check", "--config", sample])
        .output()?;
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let dir = std::env::temp_dir().join(format!("protostar-edge-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let broken = dir.join("broken.toml");
    std::fs::write(
        &broken,
        "[[listener]]\nbind = \"127.0.0.1:0\"\n[default]\naction = \"route\"\nroute = \"nowhere\"\n",
    )?;
    let bad = Command::new(env!("CARGO_BIN_EXE_protostar-edge"))
        .arg("--check")
        .arg("--config")
        .arg(&broken)
        .output()?;
    assert!(!bad.status.success());
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
