//! Types of your own in the manager, as Python's `BaseManager.register` adds them.
//!
//! Python's manager runs a registered class's methods in the manager's process, on the
//! arguments a proxy pickles. Rust cannot send code to a running program, so the type is
//! registered where the manager is built ([`ManagerConfig::register`](super::ManagerConfig::register)):
//! a [`Manager`](super::Manager) started by your program serves it, the `parcours-manager`
//! binary does not. Its methods are one `Request` type (an enum, usually) answered by one
//! `Reply`: both travel as JSON, like the other proxies' values. The manager makes an object
//! with `Default` on the first call to its name, and runs one call at a time on it: `&mut self`
//! needs no lock of yours (Python's manager serves each connection on its own thread, and a
//! shared object there needs one).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// A type a manager can hold and serve to proxies in other threads and processes.
///
/// ```
/// use parcours_cluster::cluster::{Manager, ManagerConfig, SharedKey, Shared};
///
/// /// A tally of words, kept in the manager.
/// #[derive(Default)]
/// struct Tally(std::collections::BTreeMap<String, u64>);
///
/// #[derive(serde::Serialize, serde::Deserialize)]
/// enum Ask { Add(String), Count(String) }
///
/// impl Shared for Tally {
///     type Request = Ask;
///     type Reply = u64;
///     fn serve(&mut self, request: Ask) -> u64 {
///         match request {
///             Ask::Add(word) => { let n = self.0.entry(word).or_default(); *n += 1; *n }
///             Ask::Count(word) => self.0.get(&word).copied().unwrap_or(0),
///         }
///     }
/// }
///
/// let key = SharedKey::random();
/// let manager = Manager::start(ManagerConfig::new("127.0.0.1:0", key.clone()).register::<Tally>("Tally")).unwrap();
/// let client = Manager::connect(&manager.address().to_string(), &key).unwrap();
/// let words = client.object::<Tally>("Tally", "words");
/// words.call(&Ask::Add("pi".into())).unwrap();
/// assert_eq!(words.call(&Ask::Add("pi".into())).unwrap(), 2);
/// assert_eq!(words.call(&Ask::Count("e".into())).unwrap(), 0);
/// ```
pub trait Shared: Default + Send + 'static {
    /// What a proxy asks.
    type Request: Serialize + DeserializeOwned;
    /// What the manager answers.
    type Reply: Serialize + DeserializeOwned;
    /// Answers one request, in the manager.
    fn serve(&mut self, request: Self::Request) -> Self::Reply;
}

/// A registered object as the manager holds it: JSON in, JSON out.
pub(crate) trait Object: Send {
    fn call(&mut self, request: &[u8]) -> Result<Vec<u8>, String>;
}

struct Held<T>(T);

impl<T: Shared> Object for Held<T> {
    fn call(&mut self, request: &[u8]) -> Result<Vec<u8>, String> {
        let request: T::Request = serde_json::from_slice(request).map_err(|e| {
            format!(
                "not a request of {}: {e} (do the proxy and the manager use the same type?)",
                std::any::type_name::<T>()
            )
        })?;
        serde_json::to_vec(&self.0.serve(request)).map_err(|e| format!("cannot answer: {e}"))
    }
}

type Factory = Arc<dyn Fn() -> Box<dyn Object> + Send + Sync>;

/// The types a manager was built with, by name.
#[derive(Clone, Default)]
pub(crate) struct Registry(BTreeMap<String, Factory>);

impl Registry {
    pub(crate) fn register<T: Shared>(&mut self, type_name: &str) {
        self.0.insert(
            type_name.to_string(),
            Arc::new(|| Box::new(Held(T::default()))),
        );
    }

    /// A new object of the type called `type_name`, if there is one.
    pub(crate) fn make(&self, type_name: &str) -> Option<Box<dyn Object>> {
        self.0.get(type_name).map(|factory| factory())
    }

    pub(crate) fn names(&self) -> Vec<String> {
        self.0.keys().cloned().collect()
    }
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}
