//! The shared key and the challenge/response that proves both ends know it, before any RPC.
//!
//! Like Python's `authkey`, the key itself never travels. On connect:
//! 1. the manager sends [`MAGIC`] and a random 32-byte nonce;
//! 2. the client answers HMAC-SHA256(key, "client" ‖ nonce) and a nonce of its own;
//! 3. the manager checks the answer in constant time and sends one byte: [`ACCEPTED`] followed
//!    by HMAC-SHA256(key, "manager" ‖ client nonce), so the client knows it is not talking to an
//!    impostor, or [`REJECTED`] and closes, so a client with a wrong key learns why.
//!
//! Every message has a fixed size (40, 64, then 1 + 32 bytes) and both ends give up after
//! [`HANDSHAKE_TIMEOUT`]: a stranger can hold a connection for five seconds, never make the
//! manager allocate. Only then is the socket handed to tarpc.
//!
//! This authenticates the two ends; it does not encrypt what follows. The RPC frames travel in
//! clear on the socket: an eavesdropper reads the tasks and results, and one who can alter
//! packets can change them. Across a network you do not trust, carry the connection in an SSH
//! tunnel or WireGuard, or use a transport with TLS.

use std::fmt;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::ClusterError;

/// The environment variable that carries the key to the manager and worker binaries: a key
/// on the command line would be visible to every user through `ps`.
pub const KEY_ENV: &str = "PARCOURS_CLUSTER_KEY";

/// The first bytes a manager sends; the last two digits are the protocol's version, so a
/// client and a manager built from different versions fail with a clear message.
pub const MAGIC: &[u8; 8] = b"PCLUST03";
/// The manager's answer to a right key.
pub const ACCEPTED: u8 = 1;
/// The manager's answer to a wrong key, just before it closes the connection.
pub const REJECTED: u8 = 0;
/// How long either end waits for the other's part of the handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// The shortest key [`SharedKey::new`] takes. Anyone who can connect may try keys, and a
/// recorded handshake lets an eavesdropper test guesses offline, billions a second on a GPU
/// (Module 3 cracks passwords that way): a short or guessable key falls quickly, so prefer
/// [`SharedKey::random`].
pub const MIN_KEY_BYTES: usize = 16;

const NONCE_LEN: usize = 32;
const MAC_LEN: usize = 32;
/// What the manager sends first: the magic and its nonce.
pub(crate) const CHALLENGE_LEN: usize = MAGIC.len() + NONCE_LEN;
/// What the client answers: its MAC of the manager's nonce, and its own nonce.
pub(crate) const ANSWER_LEN: usize = MAC_LEN + NONCE_LEN;

/// The secret shared by a manager and its clients: [`MIN_KEY_BYTES`] bytes at least. Its
/// `Debug` hides it.
///
/// ```
/// use parcours_cluster::cluster::SharedKey;
/// let key = SharedKey::new("correct horse battery").unwrap();
/// assert_eq!(format!("{key:?}"), "SharedKey(<hidden>)");
/// assert!(SharedKey::new("short").unwrap_err().to_string().contains("16 bytes"));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct SharedKey(Vec<u8>);

impl fmt::Debug for SharedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SharedKey(<hidden>)")
    }
}

impl SharedKey {
    /// A key from bytes or text; refuses fewer than [`MIN_KEY_BYTES`] bytes.
    ///
    /// # Errors
    /// [`ClusterError::Config`] for a key too short to resist guessing.
    pub fn new(key: impl AsRef<[u8]>) -> Result<Self, ClusterError> {
        let key = key.as_ref();
        if key.len() < MIN_KEY_BYTES {
            return Err(ClusterError::Config(format!(
                "the cluster key has {} bytes; use {MIN_KEY_BYTES} bytes at least \
                 (SharedKey::random() makes one of 64)",
                key.len()
            )));
        }
        Ok(SharedKey(key.to_vec()))
    }

    /// 32 random bytes written as 64 hexadecimal digits, so the key can travel in an
    /// environment variable.
    ///
    /// ```
    /// use parcours_cluster::cluster::SharedKey;
    /// assert_ne!(SharedKey::random(), SharedKey::random());
    /// assert_eq!(SharedKey::random().as_text().unwrap().len(), 64);
    /// ```
    pub fn random() -> Self {
        let bytes = random_bytes::<32>();
        SharedKey(
            bytes
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
                .into_bytes(),
        )
    }

    /// The key from [`KEY_ENV`].
    ///
    /// # Errors
    /// When the variable is unset or the key too short; the message says how to set it.
    pub fn from_env() -> Result<Self, ClusterError> {
        match std::env::var_os(KEY_ENV) {
            Some(key) => Self::new(key.as_encoded_bytes()),
            None => Err(ClusterError::Config(format!(
                "no cluster key: set {KEY_ENV} (or pass --key-file FILE); never put it on the command line, where `ps` shows it"
            ))),
        }
    }

    /// The key stored in a file (a final newline is not part of it).
    ///
    /// # Errors
    /// When the file cannot be read or holds a key too short.
    pub fn from_file(path: &Path) -> Result<Self, ClusterError> {
        let mut bytes = std::fs::read(path).map_err(|e| {
            ClusterError::Config(format!("cannot read the key file {}: {e}", path.display()))
        })?;
        while bytes.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            bytes.pop();
        }
        Self::new(bytes)
    }

    /// The key as text, if it is UTF-8 (to hand it to a child process's environment).
    pub fn as_text(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }

    /// HMAC-SHA256 of `role` ‖ `nonce`: the role keeps the manager's proof from being replayed
    /// as a client's, and the other way round.
    fn proof(&self, role: &[u8], nonce: &[u8]) -> Hmac<Sha256> {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes keys of any length");
        mac.update(role);
        mac.update(nonce);
        mac
    }
}

pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).expect("the operating system provides random bytes");
    bytes
}

/// The manager's opening message: the magic and a fresh nonce; keep the nonce to check the answer.
pub(crate) fn challenge() -> ([u8; CHALLENGE_LEN], [u8; NONCE_LEN]) {
    let nonce = random_bytes::<NONCE_LEN>();
    let mut message = [0u8; CHALLENGE_LEN];
    message[..MAGIC.len()].copy_from_slice(MAGIC);
    message[MAGIC.len()..].copy_from_slice(&nonce);
    (message, nonce)
}

/// Checks a client's answer to `nonce`, in constant time; on success, the manager's reply
/// (that proves it knows the key too).
pub(crate) fn check_answer(
    key: &SharedKey,
    nonce: &[u8; NONCE_LEN],
    answer: &[u8; ANSWER_LEN],
) -> Option<[u8; 1 + MAC_LEN]> {
    let (mac, client_nonce) = answer.split_at(MAC_LEN);
    key.proof(b"client", nonce).verify_slice(mac).ok()?;
    let mut reply = [0u8; 1 + MAC_LEN];
    reply[0] = ACCEPTED;
    reply[1..].copy_from_slice(&key.proof(b"manager", client_nonce).finalize().into_bytes());
    Some(reply)
}

/// Runs the client's side of the handshake on a fresh connection to a manager, blocking, with
/// [`HANDSHAKE_TIMEOUT`] on each read and write. `address` only names the manager in errors.
///
/// [`Client::connect`](super::Client::connect) calls it before handing the socket to tarpc; it
/// is public so that a test or a curious student can speak the protocol by hand.
///
/// # Errors
/// [`ClusterError::Rejected`] when the manager refuses the key, [`ClusterError::Protocol`] when
/// the other end is not a parcours manager (or not of this version, or does not know the key),
/// [`ClusterError::Disconnected`] when it goes silent or away.
pub fn authenticate(
    stream: &mut TcpStream,
    key: &SharedKey,
    address: &str,
) -> Result<(), ClusterError> {
    let gone = |e: std::io::Error| {
        ClusterError::Disconnected(format!(
            "the manager at {address} broke off the handshake: {e}"
        ))
    };
    stream
        .set_read_timeout(Some(HANDSHAKE_TIMEOUT))
        .map_err(gone)?;
    stream
        .set_write_timeout(Some(HANDSHAKE_TIMEOUT))
        .map_err(gone)?;
    let mut challenge = [0u8; CHALLENGE_LEN];
    stream.read_exact(&mut challenge).map_err(gone)?;
    let (magic, nonce) = challenge.split_at(MAGIC.len());
    if magic != MAGIC {
        return Err(ClusterError::Protocol(format!(
            "{address} is not a parcours manager of this version (it opened with {:?}, expected {:?}); \
             check the address, and rebuild the binaries if the course was updated",
            String::from_utf8_lossy(magic),
            String::from_utf8_lossy(MAGIC)
        )));
    }
    let own_nonce = random_bytes::<NONCE_LEN>();
    let mut answer = [0u8; ANSWER_LEN];
    answer[..MAC_LEN].copy_from_slice(&key.proof(b"client", nonce).finalize().into_bytes());
    answer[MAC_LEN..].copy_from_slice(&own_nonce);
    stream.write_all(&answer).map_err(gone)?;
    let mut verdict = [0u8; 1];
    match stream.read_exact(&mut verdict) {
        Ok(()) if verdict[0] == ACCEPTED => {}
        // A manager of this version always answers; silence or a closed socket after our
        // answer also means no.
        Ok(()) | Err(_) => {
            return Err(ClusterError::Rejected(format!(
                "the manager at {address} rejected the key: give the clients the key the manager \
                 was started with ({KEY_ENV} or its key file)"
            )));
        }
    }
    let mut proof = [0u8; MAC_LEN];
    stream.read_exact(&mut proof).map_err(gone)?;
    key.proof(b"manager", &own_nonce)
        .verify_slice(&proof)
        .map_err(|_| {
            ClusterError::Protocol(format!(
                "{address} accepted our key without proving it knows it: it is not the manager you expect"
            ))
        })?;
    stream.set_read_timeout(None).map_err(gone)?;
    stream.set_write_timeout(None).map_err(gone)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_right_answer_passes_and_a_wrong_one_does_not() {
        let key = SharedKey::new("a shared secret key").unwrap();
        let (message, nonce) = challenge();
        assert_eq!(&message[..8], MAGIC);
        let mut answer = [0u8; ANSWER_LEN];
        answer[..MAC_LEN].copy_from_slice(&key.proof(b"client", &nonce).finalize().into_bytes());
        assert_eq!(check_answer(&key, &nonce, &answer).unwrap()[0], ACCEPTED);

        let other = SharedKey::new("another secret key").unwrap();
        assert!(check_answer(&other, &nonce, &answer).is_none());
        // The manager's own proof, replayed as a client's answer, is refused.
        answer[..MAC_LEN].copy_from_slice(&key.proof(b"manager", &nonce).finalize().into_bytes());
        assert!(check_answer(&key, &nonce, &answer).is_none());
    }

    #[test]
    fn keys_shorter_than_16_bytes_are_refused_with_the_way_out() {
        let refused = SharedKey::new("fifteen bytes..").unwrap_err();
        assert!(matches!(refused, ClusterError::Config(_)), "{refused:?}");
        let message = refused.to_string();
        assert!(
            message.contains("has 15 bytes") && message.contains("16 bytes at least"),
            "{message}"
        );
        assert!(message.contains("SharedKey::random()"), "{message}");
        assert!(SharedKey::new("sixteen bytes...").is_ok());
        // The same rule for a key from the environment's text or a file.
        let path = std::env::temp_dir().join(format!("parcours-short-key-{}", std::process::id()));
        std::fs::write(&path, "short key\n").unwrap();
        let from_file = SharedKey::from_file(&path).unwrap_err().to_string();
        std::fs::remove_file(&path).unwrap();
        assert!(from_file.contains("16 bytes at least"), "{from_file}");
    }

    #[test]
    fn key_files_lose_their_final_newline() {
        let path = std::env::temp_dir().join(format!("parcours-key-{}", std::process::id()));
        std::fs::write(&path, "file secret 12345\n").unwrap();
        assert_eq!(
            SharedKey::from_file(&path).unwrap(),
            SharedKey::new("file secret 12345").unwrap()
        );
        std::fs::remove_file(&path).unwrap();
        let missing = SharedKey::from_file(&path).unwrap_err().to_string();
        assert!(missing.contains("cannot read the key file"), "{missing}");
    }
}
