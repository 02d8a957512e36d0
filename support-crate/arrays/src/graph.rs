//! Task graphs: a computation split into tasks, each after the tasks whose results it takes,
//! run lazily on rayon's threads (notebook 43).
//!
//! This is the idea under Dask: `dask.delayed` and every Dask array or dataframe build such a
//! graph, and a scheduler runs it. Here a [`TaskGraph`] holds the tasks; nothing runs until
//! [`TaskGraph::compute`], which runs each task as soon as its inputs are ready, on as many
//! threads as the graph allows, and returns a [`GraphRun`]: which thread ran each task, when,
//! in how many attempts.

use std::any::Any;
use std::collections::BTreeSet;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use parcours::diagram::{Bar, Diagram, Node};
use parcours::display::{Table, format_duration};

/// A task's result, shared with the tasks after it.
type Shared = Arc<dyn Any + Send + Sync>;
/// A task's code: its inputs' results in, its result or an error out.
type Work = Box<dyn Fn(&[Shared]) -> Result<Shared, String> + Send + Sync>;

struct Spec {
    name: String,
    after: Vec<usize>,
    retries: u32,
    work: Work,
}

/// A handle on a task of a graph whose result is a `T`.
pub struct Task<T> {
    id: usize,
    kind: PhantomData<fn() -> T>,
}

impl<T> Clone for Task<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Task<T> {}

impl<T> Task<T> {
    /// The task's number in its graph.
    pub fn id(&self) -> usize {
        self.id
    }
}

/// A graph of tasks, built first and run later (lazily).
#[derive(Default)]
pub struct TaskGraph {
    tasks: Vec<Spec>,
}

/// Why a graph could not give its result.
#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    /// A task failed on its last attempt.
    #[error("task {task} ({name}) failed after {attempts} attempt(s): {error}")]
    Failed {
        /// The task's number.
        task: usize,
        /// The task's name.
        name: String,
        /// How many times it ran.
        attempts: u32,
        /// Its last error.
        error: String,
    },
}

thread_local! {
    static CURRENT: std::cell::Cell<Option<usize>> = const { std::cell::Cell::new(None) };
}

/// The number of the graph task running on this thread, if any: what a chunked array
/// records of each read ([`crate::arrays::ChunkedArray::read_log`]).
pub fn current_task() -> Option<usize> {
    CURRENT.with(|c| c.get())
}

fn downcast<T: 'static>(value: &Shared) -> &T {
    value.downcast_ref::<T>().expect("a task's input has the type its handle says")
}

impl TaskGraph {
    /// An empty graph.
    pub fn new() -> Self {
        TaskGraph::default()
    }

    /// How many tasks the graph holds.
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    /// Whether the graph holds no task.
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// The tasks' names, in the order they were added.
    pub fn names(&self) -> Vec<&str> {
        self.tasks.iter().map(|t| t.name.as_str()).collect()
    }

    /// The tasks each task comes after (its inputs), by number.
    pub fn inputs(&self, task: usize) -> &[usize] {
        &self.tasks[task].after
    }

    fn push<T: Send + Sync + 'static>(&mut self, name: String, after: Vec<usize>, retries: u32, work: Work) -> Task<T> {
        self.tasks.push(Spec { name, after, retries, work });
        Task { id: self.tasks.len() - 1, kind: PhantomData }
    }

    /// A task with no input (`dask.delayed(f)()`): it makes or loads something.
    pub fn source<T: Send + Sync + 'static>(&mut self, name: impl Into<String>, work: impl Fn() -> T + Send + Sync + 'static) -> Task<T> {
        self.push(name.into(), vec![], 0, Box::new(move |_| Ok(Arc::new(work()) as Shared)))
    }

    /// A task on the result of one task.
    pub fn map<A: 'static, T: Send + Sync + 'static>(
        &mut self,
        name: impl Into<String>,
        input: Task<A>,
        work: impl Fn(&A) -> T + Send + Sync + 'static,
    ) -> Task<T> {
        self.push(name.into(), vec![input.id], 0, Box::new(move |inputs| Ok(Arc::new(work(downcast::<A>(&inputs[0]))) as Shared)))
    }

    /// A task on the results of several tasks of one type (a reduction, a concatenation).
    pub fn reduce<A: 'static, T: Send + Sync + 'static>(
        &mut self,
        name: impl Into<String>,
        inputs: &[Task<A>],
        work: impl Fn(&[&A]) -> T + Send + Sync + 'static,
    ) -> Task<T> {
        let after = inputs.iter().map(|t| t.id).collect();
        self.push(
            name.into(),
            after,
            0,
            Box::new(move |inputs| {
                let values: Vec<&A> = inputs.iter().map(downcast::<A>).collect();
                Ok(Arc::new(work(&values)) as Shared)
            }),
        )
    }

    /// A task with no input that may fail; it runs again, up to `retries` more times, before
    /// its failure fails the graph (what Dask's `retries=` does).
    pub fn fallible<T: Send + Sync + 'static>(
        &mut self,
        name: impl Into<String>,
        retries: u32,
        work: impl Fn() -> Result<T, String> + Send + Sync + 'static,
    ) -> Task<T> {
        self.push(name.into(), vec![], retries, Box::new(move |_| work().map(|v| Arc::new(v) as Shared)))
    }

    /// The graph as a picture: one box per task, inputs on the left.
    pub fn diagram(&self) -> Diagram {
        let nodes: Vec<Node> = self.tasks.iter().map(|t| Node::new(t.name.clone(), t.after.clone())).collect();
        Diagram::layered(&format!("a task graph of {} tasks", self.tasks.len()), &nodes)
    }

    /// Runs what `target` needs, each task once, as soon as its inputs are ready, on rayon's
    /// threads; returns the target's result and the record of the run.
    ///
    /// # Errors
    /// When a task fails on its last attempt; the tasks already running finish, no new one starts.
    pub fn compute<T: Clone + 'static>(&self, target: Task<T>) -> Result<(T, GraphRun), GraphError> {
        // The tasks the target needs, found backwards from it.
        let mut needed = vec![false; self.tasks.len()];
        let mut stack = vec![target.id];
        while let Some(k) = stack.pop() {
            if !std::mem::replace(&mut needed[k], true) {
                stack.extend(&self.tasks[k].after);
            }
        }
        let mut waiting: Vec<usize> = self.tasks.iter().map(|t| t.after.len()).collect();
        let mut children = vec![Vec::new(); self.tasks.len()];
        for (k, task) in self.tasks.iter().enumerate().filter(|(k, _)| needed[*k]) {
            for &input in &task.after {
                children[input].push(k);
            }
        }
        let state = Mutex::new(State { results: vec![None; self.tasks.len()], runs: Vec::new(), failure: None });
        let origin = Instant::now();
        let ready: Vec<usize> = (0..self.tasks.len()).filter(|&k| needed[k] && waiting[k] == 0).collect();
        let waiting_counts = Mutex::new(std::mem::take(&mut waiting));
        parcours::rayon::scope(|scope| {
            for k in ready {
                self.spawn(scope, k, &state, &waiting_counts, &children, origin);
            }
        });
        let state = state.into_inner().unwrap_or_else(|e| e.into_inner());
        if let Some(error) = state.failure {
            return Err(error);
        }
        let result = state.results[target.id].as_ref().expect("the target ran").clone();
        let mut runs = state.runs;
        runs.sort_by_key(|r| (r.started, r.task));
        Ok((downcast::<T>(&result).clone(), GraphRun { tasks: runs }))
    }

    fn spawn<'s>(
        &'s self,
        scope: &parcours::rayon::Scope<'s>,
        k: usize,
        state: &'s Mutex<State>,
        waiting: &'s Mutex<Vec<usize>>,
        children: &'s [Vec<usize>],
        origin: Instant,
    ) {
        scope.spawn(move |scope| {
            let task = &self.tasks[k];
            let inputs: Vec<Shared> = {
                let state = state.lock().unwrap_or_else(|e| e.into_inner());
                if state.failure.is_some() {
                    return;
                }
                task.after.iter().map(|&i| state.results[i].clone().expect("inputs ran first")).collect()
            };
            let started = origin.elapsed();
            let mut attempts = 0;
            let outcome = loop {
                attempts += 1;
                // A task waiting inside a parallel iterator may run another task on this
                // thread: put back whatever was running before.
                let outer = CURRENT.with(|c| c.replace(Some(k)));
                let outcome = (task.work)(&inputs);
                CURRENT.with(|c| c.set(outer));
                match outcome {
                    Ok(value) => break Ok(value),
                    Err(error) if attempts > task.retries => break Err(error),
                    Err(_) => continue,
                }
            };
            let ended = origin.elapsed();
            let thread = parcours::rayon::current_thread_index().unwrap_or(usize::MAX);
            let mut guard = state.lock().unwrap_or_else(|e| e.into_inner());
            guard.runs.push(TaskRun { task: k, name: task.name.clone(), thread, started, ended, attempts });
            match outcome {
                Ok(value) => guard.results[k] = Some(value),
                Err(error) => {
                    guard.failure.get_or_insert(GraphError::Failed { task: k, name: task.name.clone(), attempts, error });
                    return;
                }
            }
            drop(guard);
            let mut counts = waiting.lock().unwrap_or_else(|e| e.into_inner());
            let now_ready: Vec<usize> = children[k]
                .iter()
                .copied()
                .filter(|&c| {
                    counts[c] -= 1;
                    counts[c] == 0
                })
                .collect();
            drop(counts);
            for child in now_ready {
                self.spawn(scope, child, state, waiting, children, origin);
            }
        });
    }
}

struct State {
    results: Vec<Option<Shared>>,
    runs: Vec<TaskRun>,
    failure: Option<GraphError>,
}

/// One task's run: which thread, when, how many attempts.
#[derive(Clone, Debug)]
pub struct TaskRun {
    /// The task's number in its graph.
    pub task: usize,
    /// The task's name.
    pub name: String,
    /// The rayon thread that ran it.
    pub thread: usize,
    /// When it started, from the start of the run.
    pub started: Duration,
    /// When it ended.
    pub ended: Duration,
    /// How many times it ran (more than 1: it failed and was retried).
    pub attempts: u32,
}

/// The record of a graph's run.
#[derive(Clone, Debug)]
pub struct GraphRun {
    /// Every task that ran, by start time.
    pub tasks: Vec<TaskRun>,
}

impl GraphRun {
    /// The threads that ran at least one task.
    pub fn threads(&self) -> BTreeSet<usize> {
        self.tasks.iter().map(|t| t.thread).collect()
    }

    /// The run's wall time, from the first start to the last end.
    pub fn elapsed(&self) -> Duration {
        self.tasks.iter().map(|t| t.ended).max().unwrap_or_default()
    }

    /// A table of the tasks' runs.
    pub fn table(&self) -> Table {
        let mut table = Table::new(["task", "thread", "started", "took", "attempts"]).title("the run, task by task");
        for t in &self.tasks {
            table.push_row([
                t.name.clone(),
                t.thread.to_string(),
                format_duration(t.started),
                format_duration(t.ended - t.started),
                t.attempts.to_string(),
            ]);
        }
        table
    }

    /// The run as a Gantt chart: one row per thread, one bar per task (red: retried).
    pub fn gantt(&self) -> Diagram {
        let bars: Vec<Bar> = self
            .tasks
            .iter()
            .map(|t| {
                let bar = Bar::new(format!("thread {}", t.thread), t.name.clone(), t.started.as_secs_f64(), t.ended.as_secs_f64());
                if t.attempts > 1 { bar.color(Bar::RED) } else { bar }
            })
            .collect();
        let title = format!("the run on {} thread(s): {}", self.threads().len(), format_duration(self.elapsed()));
        Diagram::gantt(&title, &bars)
    }
}
