//! Processes a test starts: free ports, waiting for one to open, SIGTERM,
//! waiting for an exit.

use std::{
    net::{TcpListener, TcpStream},
    process::{Child, Command, ExitStatus},
    time::{Duration, Instant},
};

/// How long a server a test starts may take to open its port: a JVM's
/// start-up is seconds, many more while other tests keep both cores busy.
pub const SERVER_START: Duration = Duration::from_secs(90);

/// A free loopback port (the OS picks; the tiny race is acceptable in tests).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until something listens on `127.0.0.1:port`.
pub fn wait_port(port: u16, what: &str, child: &mut Child) {
    let deadline = Instant::now() + SERVER_START;
    loop {
        if TcpStream::connect_timeout(
            &format!("127.0.0.1:{port}").parse().unwrap(),
            Duration::from_millis(200),
        )
        .is_ok()
        {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited with {status} before opening port {port}");
        }
        assert!(Instant::now() < deadline, "{what} did not open port {port}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Sends SIGTERM to a process.
pub fn sigterm(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -TERM {} failed", child.id());
}

/// Waits for a process to exit, at most `timeout` (then kills it and says so).
pub fn wait_exit(child: &mut Child, timeout: Duration) -> Result<ExitStatus, String> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            return Ok(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("did not exit within {timeout:?}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
