//! Runs of the farm lesson on a shared machine: each deploys into a folder of its own, and the
//! next run stops the workers that a killed one left running. With the real worker binary and
//! the role's `worker-ctl`, laid out as Ansible lays them out. Every wait is bounded.
#![cfg(unix)]

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use parcours_limits::farm::{DeployRoot, WorkerConfig, free_ports, query, write_private_file};

#[path = "../../tests-common/processes.rs"]
mod common;
use common::{alive, wait_until};

/// Set in the helper process of `the_workers_of_a_killed_run_are_stopped_by_the_next_claim`
/// to the parent folder of the runs, and the port to use.
const HELPER_ENV: &str = "PARCOURS_FARM_TEST_HELPER";
const TOKEN: &str = "farm-runs-token-0123";

/// What the role deploys for one host: the binary, `worker-ctl`, the configuration; then
/// `worker-ctl start`. Returns the worker's pid and its supervisor's.
fn deploy(run: &Path, host: &str, port: u16) -> (u32, u32) {
    let folder = run.join(host);
    for sub in ["bin", "etc", "run", "log"] {
        std::fs::create_dir_all(folder.join(sub)).unwrap();
    }
    let control = folder.join("bin/worker-ctl");
    let role_files = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../notebooks/ansible/roles/worker/files/worker-ctl");
    std::fs::copy(role_files, &control).unwrap();
    std::fs::copy(
        env!("CARGO_BIN_EXE_parcours-worker"),
        folder.join("bin/parcours-worker"),
    )
    .unwrap();
    for program in [&control, &folder.join("bin/parcours-worker")] {
        std::fs::set_permissions(program, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let config = WorkerConfig::new(host, &format!("127.0.0.1:{port}"), TOKEN);
    write_private_file(&folder.join("etc/worker.json"), &serde_json(&config)).unwrap();
    let started = Command::new(&control).arg("start").output().unwrap();
    assert!(started.status.success(), "{started:?}");
    let address = format!("127.0.0.1:{port}");
    assert!(
        wait_until(Duration::from_secs(10), || query(&address, TOKEN).is_ok()),
        "the worker in {} did not answer",
        folder.display()
    );
    let supervisor = std::fs::read_to_string(folder.join("run/worker.pid")).unwrap();
    (
        query(&address, TOKEN).unwrap().pid,
        supervisor.trim().parse().unwrap(),
    )
}

fn serde_json(config: &WorkerConfig) -> String {
    parcours::serde_json::to_string(config).unwrap()
}

#[test]
#[ignore = "the helper process of the_workers_of_a_killed_run_are_stopped_by_the_next_claim"]
fn helper_claims_a_run_deploys_and_waits() {
    let Some(setting) = std::env::var_os(HELPER_ENV) else {
        return;
    };
    let setting = setting.into_string().unwrap();
    let (parent, port) = setting.rsplit_once(':').unwrap();
    let run = DeployRoot::claim(Path::new(parent)).unwrap();
    let (worker, supervisor) = deploy(run.path(), "worker-1", port.parse().unwrap());
    println!("run {worker} {supervisor} {}", run.path().display());
    std::io::stdout().flush().unwrap();
    std::thread::sleep(Duration::from_secs(60));
}

#[test]
fn the_workers_of_a_killed_run_are_stopped_by_the_next_claim() {
    let parent: PathBuf =
        std::env::temp_dir().join(format!("parcours-farm-runs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&parent);
    let ports = free_ports(2).unwrap();
    // A run that lives on: this process owns it.
    let live = DeployRoot::claim(&parent).unwrap();
    let (live_worker, _) = deploy(live.path(), "worker-1", ports[0]);

    // A run whose owner is killed: a helper process claims, deploys, and gets SIGKILL.
    let mut helper = Command::new(std::env::current_exe().unwrap())
        .args([
            "helper_claims_a_run_deploys_and_waits",
            "--exact",
            "--ignored",
            "--nocapture",
        ])
        .env(HELPER_ENV, format!("{}:{}", parent.display(), ports[1]))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(helper.stdout.take().unwrap());
    let (send, receive) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            if let Some(run) = line.strip_prefix("run ") {
                let _ = send.send(run.to_string());
            }
        }
    });
    let Ok(line) = receive.recv_timeout(Duration::from_secs(30)) else {
        let _ = helper.kill();
        panic!("the helper did not deploy its run");
    };
    let mut fields = line.splitn(3, ' ');
    let worker: u32 = fields.next().unwrap().parse().unwrap();
    let supervisor: u32 = fields.next().unwrap().parse().unwrap();
    let killed_run = PathBuf::from(fields.next().unwrap());
    helper.kill().unwrap();
    helper.wait().unwrap();
    // Workers are daemons: they outlive the run that started them.
    let killed_address = format!("127.0.0.1:{}", ports[1]);
    assert!(query(&killed_address, TOKEN).is_ok());

    let next = DeployRoot::claim(&parent).unwrap();
    assert_eq!(next.cleaned(), std::slice::from_ref(&killed_run));
    assert!(
        wait_until(Duration::from_secs(5), || !alive(worker)
            && !alive(supervisor)),
        "the killed run's worker or supervisor still runs"
    );
    assert!(query(&killed_address, TOKEN).is_err());
    assert!(!killed_run.exists(), "the killed run's folder is left");
    // The live run was left alone.
    let live_address = format!("127.0.0.1:{}", ports[0]);
    assert_eq!(query(&live_address, TOKEN).unwrap().pid, live_worker);
    assert!(live.path().exists());

    live.finish().unwrap();
    assert!(wait_until(Duration::from_secs(5), || !alive(live_worker)));
    next.finish().unwrap();
    std::fs::remove_dir_all(&parent).unwrap();
}
