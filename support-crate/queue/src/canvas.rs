//! Celery's canvas on apalis-workflow: chains, groups and chords of steps, each step a task
//! of its own in the broker, run by the course's worker processes.
//!
//! A [`Flow`] is data (like a Celery signature): a list of named [`Step`]s, each after the
//! steps whose outputs it takes. The worker program builds apalis' `GraphFlow` from it (the
//! steps are code compiled into the worker, as [`crate::tasks::CourseTask`]s are), and each
//! finished step enqueues the next ones. A step after several others (a chord's body) is
//! enqueued by each of them; only the one enqueued by the last of them runs it, once it has
//! waited for the others' results in the broker (the others answer `WaitingForDependencies`).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use apalis::prelude::{AbortError, BoxDynError, TaskId};
use apalis_workflow::graph::decode::GraphCodec;
use apalis_workflow::graph::error::{GraphFlowError, GraphServiceError};
use parcours::diagram::{Bar, Diagram, Node};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::broker::{Queue, Run, Status, TaskRecord};
use crate::tasks::{Handling, count_primes, now_ms};
use crate::QueueError;

/// One step of a flow: code the worker program knows. Its inputs are the outputs of the steps
/// it comes after, in the order they were named (for a first step: the flow's input).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Step {
    /// Counts the primes in `start..end` (ignores its inputs): CPU work to spread.
    Primes {
        /// First number.
        start: u64,
        /// One past the last.
        end: u64,
    },
    /// The sum of its inputs (numbers, or arrays of numbers).
    Sum,
    /// Its input plus `n`.
    Add {
        /// What to add.
        n: i64,
    },
    /// Its input times `by`.
    Multiply {
        /// The factor.
        by: i64,
    },
    /// Waits `ms` milliseconds, then passes its input on.
    Sleep {
        /// How long.
        ms: u64,
    },
    /// Fails, with this message: what a failed step does to a flow.
    Fail {
        /// The error.
        message: String,
    },
}

impl Step {
    /// Runs the step on its inputs.
    ///
    /// # Errors
    /// [`Step::Fail`], or an input that is not a number where one is needed.
    pub async fn run(&self, inputs: Vec<Value>) -> Result<Value, String> {
        let number = |inputs: &[Value]| -> Result<i64, String> {
            match inputs {
                [value] => value.as_i64().ok_or_else(|| format!("{value} is not a whole number")),
                other => Err(format!("one number expected, got {} inputs", other.len())),
            }
        };
        match self {
            Step::Primes { start, end } => {
                let (start, end) = (*start, *end);
                let count = tokio::task::spawn_blocking(move || count_primes(start, end))
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(count.into())
            }
            Step::Sum => {
                let mut total = 0i64;
                for value in inputs.iter().flat_map(|v| v.as_array().cloned().unwrap_or_else(|| vec![v.clone()])) {
                    total += value.as_i64().ok_or_else(|| format!("{value} is not a whole number"))?;
                }
                Ok(total.into())
            }
            Step::Add { n } => Ok((number(&inputs)? + n).into()),
            Step::Multiply { by } => Ok((number(&inputs)? * by).into()),
            Step::Sleep { ms } => {
                tokio::time::sleep(Duration::from_millis(*ms)).await;
                Ok(match <[Value; 1]>::try_from(inputs) {
                    Ok([one]) => one,
                    Err(many) => Value::Array(many),
                })
            }
            Step::Fail { message } => Err(message.clone()),
        }
    }
}

/// A step's place in its flow (what [`Flow::add`] returns).
pub type NodeId = usize;

/// One named step of a flow, and the steps it waits for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowNode {
    /// Its name, unique in the flow.
    pub name: String,
    /// What it runs.
    pub step: Step,
    /// The steps whose outputs are its inputs, in that order.
    pub after: Vec<NodeId>,
}

/// A workflow of steps: a chain, a group, a chord, or any graph of them that apalis-workflow
/// 1.0 can run (see [`Flow::validate`]).
///
/// ```
/// use parcours_queue::canvas::{Flow, Step};
/// // Celery: chord([primes.s(0, 1000), primes.s(1000, 2000)], total.s())
/// let flow = Flow::chord("count", vec![Step::Primes { start: 0, end: 1000 },
///     Step::Primes { start: 1000, end: 2000 }], Step::Sum);
/// assert_eq!(flow.starts(), vec![0, 1]);
/// assert!(flow.validate().is_ok());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flow {
    /// Its name.
    pub name: String,
    /// Its steps, each after steps added before it.
    pub nodes: Vec<FlowNode>,
}

impl Flow {
    /// An empty flow.
    pub fn new(name: &str) -> Self {
        Flow { name: name.to_string(), nodes: Vec::new() }
    }

    /// Adds a step after the steps `after` (none: a first step, which gets the flow's input).
    ///
    /// # Panics
    /// When `after` names a step not added yet: steps are added in an order that runs.
    pub fn add(&mut self, name: &str, step: Step, after: &[NodeId]) -> NodeId {
        assert!(
            after.iter().all(|&node| node < self.nodes.len()),
            "step {name:?} comes after a step not added yet ({after:?}; {} added)",
            self.nodes.len()
        );
        self.nodes.push(FlowNode { name: name.to_string(), step, after: after.to_vec() });
        self.nodes.len() - 1
    }

    /// Celery's `chain(a, b, c)`: each step takes the output of the one before.
    pub fn chain(name: &str, steps: Vec<Step>) -> Self {
        let mut flow = Flow::new(name);
        let mut previous: Option<NodeId> = None;
        for (k, step) in steps.into_iter().enumerate() {
            let after: Vec<NodeId> = previous.into_iter().collect();
            previous = Some(flow.add(&format!("{k}: {}", step.label()), step, &after));
        }
        flow
    }

    /// Celery's `group(a, b, c)`: independent steps, each with its own input.
    pub fn group(name: &str, steps: Vec<Step>) -> Self {
        let mut flow = Flow::new(name);
        for (k, step) in steps.into_iter().enumerate() {
            flow.add(&format!("{k}: {}", step.label()), step, &[]);
        }
        flow
    }

    /// Celery's `chord(header, body)`: a group, then `body` on all of its outputs.
    pub fn chord(name: &str, header: Vec<Step>, body: Step) -> Self {
        let mut flow = Flow::group(name, header);
        let header: Vec<NodeId> = (0..flow.nodes.len()).collect();
        flow.add(&format!("{}: {}", header.len(), body.label()), body, &header);
        flow
    }

    /// The first steps: those after no other step.
    pub fn starts(&self) -> Vec<NodeId> {
        (0..self.nodes.len()).filter(|&node| self.nodes[node].after.is_empty()).collect()
    }

    /// The step named `name`.
    pub fn node(&self, name: &str) -> Option<NodeId> {
        self.nodes.iter().position(|node| node.name == name)
    }

    /// Checks that apalis-workflow 1.0 can run the flow. A step after several steps learns
    /// their task ids from the task that enqueued it, and ids are passed on only where a
    /// step enqueues several at once: so the steps it waits for must be all first steps, or
    /// all enqueued by one same step.
    ///
    /// # Errors
    /// [`QueueError::Flow`], saying which step and why.
    pub fn validate(&self) -> Result<(), QueueError> {
        if self.nodes.is_empty() {
            return Err(QueueError::Flow(format!("flow {:?} has no step", self.name)));
        }
        let mut names = BTreeSet::new();
        for node in &self.nodes {
            if !names.insert(&node.name) {
                return Err(QueueError::Flow(format!("two steps are named {:?}", node.name)));
            }
            if node.after.iter().collect::<BTreeSet<_>>().len() != node.after.len() {
                return Err(QueueError::Flow(format!("step {:?} names a step twice", node.name)));
            }
        }
        let starts = self.starts().len();
        let children = |parent: NodeId| self.nodes.iter().filter(|n| n.after.contains(&parent)).count();
        for node in self.nodes.iter().filter(|node| node.after.len() > 1) {
            let parents: BTreeSet<&Vec<NodeId>> =
                node.after.iter().map(|&waited| &self.nodes[waited].after).collect();
            let fanned_out = match parents.into_iter().collect::<Vec<_>>().as_slice() {
                [parent] if parent.is_empty() => starts > 1,
                [parent] if parent.len() == 1 => children(parent[0]) > 1,
                _ => false,
            };
            if !fanned_out {
                return Err(QueueError::Flow(format!(
                    "step {:?} waits for steps that are not all first steps, nor all started by \
                     one same step: apalis-workflow 1.0 cannot find their results (make them a \
                     group, or the children of one step)",
                    node.name
                )));
            }
        }
        Ok(())
    }

    /// The flow as a picture: one box per step, arrows from the steps it waits for.
    pub fn diagram(&self) -> Diagram {
        let nodes: Vec<Node> = self.nodes.iter().map(|node| Node::new(node.name.clone(), node.after.clone())).collect();
        Diagram::layered(&format!("flow {}", self.name), &nodes)
    }
}

impl Step {
    /// A short name for the step, as a diagram shows it.
    pub fn label(&self) -> String {
        match self {
            Step::Primes { start, end } => format!("primes {start}..{end}"),
            Step::Sum => "sum".into(),
            Step::Add { n } => format!("add {n}"),
            Step::Multiply { by } => format!("times {by}"),
            Step::Sleep { ms } => format!("sleep {ms} ms"),
            Step::Fail { .. } => "fail".into(),
        }
    }
}

/// A step's inputs: a first step gets the flow's input, a step after one step its output, a
/// step after several steps their outputs (apalis-workflow hands those over as a JSON array).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub(crate) struct Inputs(pub(crate) Vec<Value>);

impl<B, Error> GraphCodec<B> for Inputs
where
    B: apalis::prelude::Backend + apalis_core::backend::WireFormatBackend,
    B::Codec: apalis::prelude::Codec<Value, Compact = B::Compact, Error = Error>,
{
    type Error = Error;

    fn encode(self, codec: &B::Codec) -> Result<B::Compact, Error> {
        apalis::prelude::Codec::encode(codec, &Value::Array(self.0))
    }

    // One output (or the flow's input): fan-ins do not come this way (they are an array).
    fn decode(compact: &B::Compact, codec: &B::Codec) -> Result<Self, Error> {
        let value: Value = apalis::prelude::Codec::decode(codec, compact)?;
        Ok(Inputs(vec![value]))
    }
}

/// The steps a step waits for, as apalis-workflow's graph numbers them (in the order added).
pub(crate) struct Waits(pub(crate) Vec<petgraph::graph::NodeIndex>);

impl apalis_workflow::graph::DepsCheck<Inputs> for Waits {
    fn to_node_indices(&self) -> Vec<petgraph::graph::NodeIndex> {
        self.0.clone()
    }
}

/// apalis' graph for a [`Flow`] on the backend the worker is built with (a macro: the
/// backend's type is inferred where the worker is built), each node a logged course step.
macro_rules! flow_graph {
    ($flow:expr, $handling:expr) => {{
        let flow: &$crate::canvas::Flow = $flow;
        let graph = apalis_workflow::GraphFlow::new(&flow.name);
        let mut ids = Vec::new();
        for node in &flow.nodes {
            let (name, step) = (node.name.clone(), node.step.clone());
            let handling: std::sync::Arc<$crate::tasks::Handling> = std::sync::Arc::clone($handling);
            let service = apalis::prelude::task_fn(
                move |inputs: $crate::canvas::Inputs, id: apalis::prelude::TaskId, attempt: apalis::prelude::Attempt| {
                    let (name, step, handling) = (name.clone(), step.clone(), std::sync::Arc::clone(&handling));
                    async move { $crate::canvas::run_step(&handling, &name, &step, inputs.0, &id, attempt.current()).await }
                },
            );
            let waits = $crate::canvas::Waits(node.after.iter().map(|&k| ids[k]).collect());
            ids.push(graph.add_node(&node.name, service).depends_on(waits).id());
        }
        graph
    }};
}
pub(crate) use flow_graph;

/// A flow's worker service whose every error is an abort. A step's error reaches apalis inside
/// the graph's own error, which apalis would mark `Failed` and the broker retry on its own (up
/// to 25 times); a step after a failed one fails too. A failed step ends its flow instead.
///
/// One error is retried once: a chord's body that found a step it waits for not done, on its
/// first attempt. On Redis that can be a race, not a failure: apalis-redis 1.0 reads a task's
/// status and its result in two commands, so a step acknowledged between them reads as still
/// running with its result stored, and apalis-workflow 1.0 then ends the body as if that step
/// had failed. Seen in about 1 run in 20 of notebook 42's chord; the second attempt finds it done.
pub(crate) struct Aborting<G>(pub(crate) G);

impl<B, G, S, Compact> apalis_core::worker::service::IntoWorkerService<B, AbortOnError<S>> for Aborting<G>
where
    B: apalis::prelude::Backend,
    G: apalis_core::worker::service::IntoWorkerService<B, S, Task = apalis::prelude::Task<Compact>>,
    S: tower::Service<apalis::prelude::Task<Compact>, Error = GraphFlowError>,
    S::Future: Send + 'static,
{
    type Task = apalis::prelude::Task<Compact>;
    type Backend = G::Backend;

    fn into_service(self, backend: B) -> apalis_core::worker::service::WorkerService<G::Backend, AbortOnError<S>> {
        let inner = self.0.into_service(backend);
        apalis_core::worker::service::WorkerService { backend: inner.backend, service: AbortOnError(inner.service) }
    }
}

/// The service [`Aborting`] makes.
pub(crate) struct AbortOnError<S>(S);

impl<S, Compact> tower::Service<apalis::prelude::Task<Compact>> for AbortOnError<S>
where
    S: tower::Service<apalis::prelude::Task<Compact>, Error = GraphFlowError>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = BoxDynError;
    type Future = futures::future::BoxFuture<'static, Result<S::Response, BoxDynError>>;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), BoxDynError>> {
        self.0.poll_ready(cx).map_err(abort)
    }

    fn call(&mut self, task: apalis::prelude::Task<Compact>) -> Self::Future {
        let context = std::sync::Arc::clone(task.ctx());
        let answer = self.0.call(task);
        Box::pin(async move {
            answer.await.map_err(|error| {
                // apalis counts the attempt as the task starts, so this one is counted.
                let first = context.attempt() <= 1;
                let waited = matches!(error, GraphFlowError::Service(GraphServiceError::DependencyTaskFailed(_)));
                if first && waited { error.into() } else { abort(error) }
            })
        })
    }
}

fn abort<E: Into<BoxDynError>>(error: E) -> BoxDynError {
    let error = error.into();
    if error.is::<AbortError>() { error } else { Box::new(AbortError::new(error)) }
}

pub(crate) async fn run_step(
    handling: &Handling,
    node: &str,
    step: &Step,
    inputs: Vec<Value>,
    id: &TaskId,
    attempt: usize,
) -> Result<Value, BoxDynError> {
    let started = now_ms();
    let line = |outcome: Option<&str>| {
        let mut line = serde_json::json!({
            "task": id.to_string(), "worker": handling.worker, "pid": std::process::id(),
            "attempt": attempt, "started_ms": started, "node": node, "inputs": inputs.len(),
        });
        if let Some(outcome) = outcome {
            line["ended_ms"] = now_ms().into();
            line["outcome"] = outcome.into();
        }
        line
    };
    handling.log(&line(None));
    match step.run(inputs.clone()).await {
        Ok(value) => {
            handling.log(&line(Some("ok")));
            Ok(value)
        }
        Err(error) => {
            handling.log(&line(Some(&error)));
            // A failed step ends its flow (as in a Celery chain): never retried.
            Err(AbortError::new(format!("step {node:?}: {error}")).into())
        }
    }
}

/// Pushes the flow's input: one value per first step, in the order of [`Flow::starts`].
pub(crate) fn start_payload(flow: &Flow, inputs: Vec<Value>) -> Result<StartPayload, QueueError> {
    flow.validate()?;
    let starts = flow.starts().len();
    if inputs.len() != starts {
        return Err(QueueError::Flow(format!(
            "flow {:?} has {starts} first step(s), so it takes {starts} input(s), not {}",
            flow.name,
            inputs.len()
        )));
    }
    Ok(if starts == 1 { StartPayload::One(inputs.into_iter().next().unwrap_or(Value::Null)) } else { StartPayload::FanOut(inputs) })
}

/// How a flow starts: one task, or one task that enqueues each first step.
pub(crate) enum StartPayload {
    One(Value),
    FanOut(Vec<Value>),
}

/// What each step of one run of a flow did, from the broker's records and the workers' logs.
#[derive(Clone, Debug, PartialEq)]
pub struct FlowReport {
    /// One entry per step, in the flow's order.
    pub steps: Vec<StepReport>,
}

/// One step of a run.
#[derive(Clone, Debug, PartialEq)]
pub struct StepReport {
    /// The step's name.
    pub name: String,
    /// The task that ran it (`None`: it never ran).
    pub task: Option<String>,
    /// Its status in the broker.
    pub status: Option<Status>,
    /// Its output.
    pub output: Option<Result<Value, String>>,
    /// How many inputs it got.
    pub inputs: Option<usize>,
    /// The worker's log of the run: which worker, when.
    pub run: Option<Run>,
    /// Tasks the broker holds for this step beyond the one that ran it: a step after `k`
    /// steps is enqueued `k` times, and all but one answer that they wait for the others.
    pub waiting_tasks: usize,
}

impl FlowReport {
    /// The step named `name`.
    pub fn step(&self, name: &str) -> Option<&StepReport> {
        self.steps.iter().find(|s| s.name == name)
    }

    /// The output of the step named `name`, if it ran and succeeded.
    pub fn output(&self, name: &str) -> Option<&Value> {
        self.step(name)?.output.as_ref()?.as_ref().ok()
    }

    /// A table of the steps: worker, start and end (ms after the first start), output.
    pub fn table(&self) -> parcours::display::Table {
        let origin = self.origin();
        let mut table = parcours::display::Table::new(["step", "status", "worker", "start (ms)", "end (ms)", "inputs", "output"])
            .title("the flow's steps, as the broker and the workers recorded them");
        for step in &self.steps {
            let at = |ms: Option<u64>| ms.map_or("-".into(), |ms| ms.saturating_sub(origin).to_string());
            table = table.row([
                step.name.clone(),
                step.status.map_or("not run".into(), |s| format!("{s:?}")),
                step.run.as_ref().map_or("-".into(), |r| r.worker.clone()),
                at(step.run.as_ref().map(|r| r.started_ms)),
                at(step.run.as_ref().and_then(|r| r.ended_ms)),
                step.inputs.map_or("-".into(), |n| n.to_string()),
                match &step.output {
                    Some(Ok(value)) => value.to_string(),
                    Some(Err(error)) => format!("error: {error}"),
                    None => "-".into(),
                },
            ]);
        }
        table
    }

    fn origin(&self) -> u64 {
        self.steps.iter().filter_map(|s| s.run.as_ref().map(|r| r.started_ms)).min().unwrap_or(0)
    }

    /// The run as a Gantt chart: one row per worker, one bar per step (orange: joins).
    pub fn gantt(&self) -> Diagram {
        let origin = self.origin();
        let seconds = |ms: u64| ms.saturating_sub(origin) as f64 / 1000.0;
        let bars: Vec<Bar> = self
            .steps
            .iter()
            .filter_map(|step| {
                let run = step.run.as_ref()?;
                let bar = Bar::new(run.worker.clone(), step.name.clone(), seconds(run.started_ms), seconds(run.ended_ms.unwrap_or(run.started_ms)));
                Some(if step.inputs.unwrap_or(0) > 1 { bar.color(Bar::ORANGE) } else { bar })
            })
            .collect();
        Diagram::gantt("the run: which worker ran each step, when", &bars)
    }
}

/// Reads one run of `flow` on `queue` (the queue holds that run only).
pub(crate) fn report(flow: &Flow, records: &[TaskRecord], runs: &[Run]) -> FlowReport {
    let mut by_node: BTreeMap<usize, Vec<&TaskRecord>> = BTreeMap::new();
    for record in records {
        // The task that started a flow of one first step carries no node: it is that step.
        let node = record.node.or_else(|| (flow.starts().len() == 1).then(|| flow.starts()[0]));
        if let Some(node) = node {
            by_node.entry(node).or_default().push(record);
        }
    }
    let steps = flow
        .nodes
        .iter()
        .enumerate()
        .map(|(k, node)| {
            let tasks = by_node.remove(&k).unwrap_or_default();
            let ran = tasks.iter().find(|t| runs.iter().any(|r| r.task == t.id));
            let run = ran.and_then(|t| runs.iter().filter(|r| r.task == t.id).next_back().cloned());
            // A task of the step that apalis ended before the step's code ran (a chord's body
            // whose header failed): the step is given up, with apalis' reason.
            let ended = ran.or_else(|| tasks.iter().find(|t| t.status == Status::Killed));
            StepReport {
                name: node.name.clone(),
                task: ran.map(|t| t.id.clone()),
                status: ended.map(|t| t.status),
                output: ended.and_then(|t| t.result.clone()).map(|result| result.map(node_output)),
                inputs: run.as_ref().and_then(|r| r.inputs),
                run,
                waiting_tasks: tasks.len() - usize::from(ran.is_some()),
            }
        })
        .collect();
    FlowReport { steps }
}

/// apalis-workflow stores a step's answer with what it did next: `{"EnqueuedNext": {"result":
/// ..}}`, `{"FanOut": {"response": ..}}`, `{"Complete": {"result": ..}}`.
fn node_output(stored: Value) -> Value {
    let Value::Object(map) = &stored else { return stored };
    for inner in map.values() {
        if let Some(value) = inner.get("result").or_else(|| inner.get("response")) {
            return value.clone();
        }
    }
    stored
}

impl Queue {
    /// Starts one run of `flow` with `inputs` (one per first step, in the order of
    /// [`Flow::starts`]); workers started with [`crate::pool::WorkerPool::start_flow`] run it.
    ///
    /// # Errors
    /// A flow that cannot run ([`Flow::validate`]), the wrong number of inputs, or a broker
    /// that cannot be reached.
    pub fn start_flow(&self, flow: &Flow, inputs: Vec<Value>) -> Result<(), QueueError> {
        let payload = start_payload(flow, inputs)?;
        self.push_start(payload)
    }

    /// What each step of the run of `flow` on this queue did.
    ///
    /// # Errors
    /// When the broker cannot be reached.
    pub fn flow_report(&self, flow: &Flow) -> Result<FlowReport, QueueError> {
        Ok(report(flow, &self.records()?, &self.runs()))
    }

    /// Waits until the run of `flow` on this queue is over, then reports it: every step done
    /// or given up, or never run behind a step given up. [`Queue::wait`] sees tasks only, and
    /// a step's tasks exist only once the steps before it end (a chord's body is pushed as its
    /// header ends): on a loaded machine it can return before the last step is pushed.
    ///
    /// # Errors
    /// [`QueueError::Timeout`] after `timeout`, or a broker that cannot be reached.
    pub fn wait_flow(&self, flow: &Flow, timeout: Duration) -> Result<FlowReport, QueueError> {
        let started = std::time::Instant::now();
        loop {
            let report = self.flow_report(flow)?;
            let gave_up = report.steps.iter().any(|s| s.status == Some(Status::Killed));
            let over = report.steps.iter().all(|s| match s.status {
                Some(status) => matches!(status, Status::Done | Status::Killed),
                None => gave_up,
            });
            if over {
                // The queue's other tasks (a step's waiting tasks) settle too.
                self.wait(timeout.saturating_sub(started.elapsed()))?;
                return self.flow_report(flow);
            }
            if started.elapsed() > timeout {
                return Err(QueueError::Timeout {
                    what: format!("the run of flow {:?} to end", flow.nodes.last().map_or("", |n| n.name.as_str())),
                    waited: timeout,
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
