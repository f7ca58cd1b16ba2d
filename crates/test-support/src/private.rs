//! Servers of one test alone (a Kafka broker, a SecantusDB), which it may
//! kill, stop and restart without disturbing the shared ones or other tests.

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use rdkafka::{
    config::ClientConfig,
    consumer::{BaseConsumer, Consumer},
};

use crate::{
    process::{free_port, sigterm, wait_exit, wait_port, SERVER_START},
    real_servers, unique, RealServers,
};

/// Waits until the broker at `brokers` answers a metadata request naming
/// itself (it opens its port before it can serve one).
fn wait_metadata(brokers: &str, child: &mut Child) {
    let client: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("metadata client");
    let deadline = Instant::now() + SERVER_START;
    loop {
        match client.fetch_metadata(None, Duration::from_secs(2)) {
            Ok(m) if !m.brokers().is_empty() => return,
            _ => {}
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the Kafka broker at {brokers} exited with {status} before serving metadata");
        }
        assert!(
            Instant::now() < deadline,
            "the Kafka broker at {brokers} did not serve metadata"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A server process of one test, on its own directory and port, which
/// survive its restarts.
struct Private {
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
    /// Starts the server's process on `dir` and `port` and returns it once
    /// it serves.
    launch: fn(&Private) -> Child,
}

impl Private {
    /// A server started by `launch` on a new directory named after `prefix`
    /// and a free port.
    fn start(prefix: &str, launch: fn(&Private) -> Child) -> Self {
        let dir = std::env::temp_dir().join(unique(prefix));
        std::fs::create_dir_all(&dir).unwrap();
        let mut server = Self {
            dir,
            port: free_port(),
            child: None,
            launch,
        };
        server.child = Some(launch(&server));
        server
    }

    /// A log file in the server's directory, appended to across restarts.
    fn log(&self, name: &str) -> std::fs::File {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(name))
            .unwrap()
    }

    /// SIGKILL: the server vanishes without a goodbye.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// Starts the server again on its directory and port; `how` it must
    /// have been taken down first.
    fn restart(&mut self, how: &str) {
        assert!(self.child.is_none(), "{how} the server first");
        self.child = Some((self.launch)(self));
    }
}

impl Drop for Private {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// An Apache Kafka broker of this test alone (`scripts/kafka-broker.sh`: the
/// same KRaft broker as the shared one), on its own log directory, so it can
/// be killed and restarted on the same port with its data.
pub struct PrivateKafka(Private);

impl PrivateKafka {
    pub fn start() -> Self {
        Self(Private::start("private-kafka", launch_kafka))
    }

    pub fn brokers(&self) -> String {
        kafka_brokers(&self.0)
    }

    /// The broker's own log (`server.log` of the Apache Kafka distribution).
    pub fn log_path(&self) -> PathBuf {
        self.0.dir.join("kafka.log")
    }

    /// SIGKILL: the broker vanishes without a goodbye.
    pub fn kill(&mut self) {
        self.0.kill();
    }

    pub fn restart(&mut self) {
        self.0.restart("kill");
    }
}

fn kafka_brokers(server: &Private) -> String {
    format!("127.0.0.1:{}", server.port)
}

/// Starts the broker (formatting its log directory the first time) and
/// returns once it answers metadata, not only once its port is open.
fn launch_kafka(server: &Private) -> Child {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/kafka-broker.sh");
    let log = server.log("kafka.log");
    let mut child = Command::new("bash")
        .arg(script)
        .arg("run")
        .arg(server.dir.join("broker"))
        .arg(server.port.to_string())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("start a private Apache Kafka broker");
    wait_port(server.port, "private Kafka broker", &mut child);
    wait_metadata(&kafka_brokers(server), &mut child);
    child
}

/// A private broker beside the shared MongoDB: the broker (to kill and
/// restart) and the servers to run the services against.
pub fn private_broker(shared: &RealServers) -> (PrivateKafka, RealServers) {
    let broker = PrivateKafka::start();
    let servers = RealServers {
        mongodb_uri: shared.mongodb_uri.clone(),
        kafka_brokers: broker.brokers(),
    };
    (broker, servers)
}

/// [`private_broker`] beside the shared servers of `test`, or `None` where
/// [`real_servers`] is `None` (outside CI, servers not configured).
pub fn private_broker_for(test: &str) -> Option<(PrivateKafka, RealServers)> {
    Some(private_broker(&real_servers(test)?))
}

/// A SecantusDB server of this test alone, storing on disk (not in memory)
/// so that its data survives a stop and a restart on the same port.
pub struct PrivateMongo(Private);

impl PrivateMongo {
    pub fn start() -> Self {
        Self(Private::start("faults-secantus", launch_secantus))
    }

    pub fn uri(&self) -> String {
        format!("mongodb://127.0.0.1:{}/?directConnection=true", self.0.port)
    }

    /// Stops the server (SIGTERM, as an operator or an orchestrator would;
    /// SIGKILL if it does not exit in 30 s) and returns once it is gone.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.0.child.take() {
            sigterm(&child);
            if let Err(e) = wait_exit(&mut child, Duration::from_secs(30)) {
                eprintln!("private SecantusDB {e}; killed");
            }
        }
    }

    /// SIGKILL: the server crashes.
    pub fn kill(&mut self) {
        self.0.kill();
    }

    pub fn restart(&mut self) {
        self.0.restart("stop");
    }
}

fn launch_secantus(server: &Private) -> Child {
    let bin = std::env::var("TEST_SECANTUS_BIN")
        .expect("TEST_SECANTUS_BIN (set by scripts/test-servers.sh start)");
    let mut child = Command::new(bin)
        .args([
            "--host",
            "127.0.0.1",
            "--port",
            &server.port.to_string(),
            "--storage-path",
            &server.dir.join("data").to_string_lossy(),
        ])
        .stdout(Stdio::null())
        .stderr(server.log("secantus.log"))
        .spawn()
        .expect("start private SecantusDB");
    wait_port(server.port, "private SecantusDB", &mut child);
    child
}
