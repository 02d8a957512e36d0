//! The scheduler and the executor, as the program `parcours-ballista` runs them: Ballista's
//! own servers (its libraries), configured for a cluster of one machine on loopback.

use std::net::SocketAddr;
use std::sync::Arc;

use ballista_executor::executor_process::{ExecutorProcessConfig, start_executor_process};
use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::{SchedulerConfig, TaskDistributionPolicy};
use ballista_scheduler::scheduler_process::start_server;

use crate::cluster::{EXECUTOR_TIMEOUT, HEARTBEAT};

/// Runs a scheduler on 127.0.0.1:`port` (gRPC and the REST API) until it is killed.
///
/// # Errors
/// Ballista's, when the server cannot start.
pub async fn scheduler(port: u16) -> ballista_core::error::Result<()> {
    let mut config = SchedulerConfig::default().with_hostname("127.0.0.1").with_port(port);
    config.bind_host = "127.0.0.1".into();
    // One task per executor in turn: the lesson shows a job spread over every executor.
    config.task_distribution = TaskDistributionPolicy::RoundRobin;
    // A killed executor is seen within seconds, not Ballista's 3 minutes (heartbeats 2 s).
    config.executor_timeout_seconds = EXECUTOR_TIMEOUT.as_secs();
    config.expire_dead_executor_interval_seconds = 1;
    config.no_executors_grace_period_seconds = EXECUTOR_TIMEOUT.as_secs();
    // Shuffle files stay an hour: the notebook reads which executor wrote them.
    config.finished_job_data_clean_up_interval_seconds = 3600;
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let cluster = BallistaCluster::new_from_config(&config).await?;
    start_server(cluster, address, Arc::new(config)).await
}

/// What an executor needs to know.
#[derive(Clone, Debug)]
pub struct ExecutorSettings {
    /// Its name (its id for the scheduler).
    pub name: String,
    /// The scheduler's port on 127.0.0.1.
    pub scheduler_port: u16,
    /// Its Arrow Flight port (other executors fetch shuffle data there).
    pub port: u16,
    /// Its gRPC port (the scheduler hands it tasks there).
    pub grpc_port: u16,
    /// How many tasks it runs at once.
    pub vcores: usize,
    /// Where it writes shuffle files.
    pub work_dir: String,
}

/// Runs an executor until it is stopped (SIGTERM) or killed.
///
/// # Errors
/// Ballista's, when it cannot start or reach the scheduler.
pub async fn executor(settings: ExecutorSettings) -> ballista_core::error::Result<()> {
    let config = ExecutorProcessConfig {
        executor_id: settings.name,
        bind_host: "127.0.0.1".into(),
        external_host: Some("127.0.0.1".into()),
        port: settings.port,
        grpc_port: settings.grpc_port,
        scheduler_host: "127.0.0.1".into(),
        scheduler_port: settings.scheduler_port,
        scheduler_connect_timeout_seconds: 30,
        vcores: settings.vcores,
        work_dir: Some(settings.work_dir),
        executor_heartbeat_interval_seconds: HEARTBEAT.as_secs(),
        print_thread_info: false,
        ..ExecutorProcessConfig::default()
    };
    start_executor_process(Arc::new(config)).await
}

/// Ballista logs through `log`: its warnings and errors go to stderr (the process' log file).
pub fn log_warnings() {
    struct Stderr;
    impl log::Log for Stderr {
        fn enabled(&self, metadata: &log::Metadata) -> bool {
            metadata.level() <= log::Level::Warn
                || (metadata.level() == log::Level::Info && metadata.target().starts_with("ballista"))
        }
        fn log(&self, record: &log::Record) {
            if self.enabled(record.metadata()) {
                eprintln!("{} {}: {}", record.level(), record.target(), record.args());
            }
        }
        fn flush(&self) {}
    }
    static LOGGER: Stderr = Stderr;
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(log::LevelFilter::Info);
    }
}
