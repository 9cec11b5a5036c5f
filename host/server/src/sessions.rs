//! The console's browser sessions, in memory: a random session id stands
//! for a token's name and roles, a CSRF token and an expiry. Kept apart from
//! the pages (`ui`) so the daemon's state (`app`) can own the table without
//! importing the pages that read it.

use crate::auth::Caller;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a session lasts after login.
pub const LIFETIME: Duration = Duration::from_secs(8 * 3600);
/// Sessions kept at most; the oldest goes first beyond it.
const MAX_SESSIONS: usize = 10_000;

struct Session {
    caller: Caller,
    csrf: String,
    expires: Instant,
}

/// The console's sessions, in memory (a restart logs everyone out).
pub struct Sessions {
    /// The CSRF token of the console's forms when no tokens are configured.
    pub open_csrf: String,
    by_id: Mutex<HashMap<String, Session>>,
}

/// 32 random bytes from the OS, hex.
fn random_hex() -> Result<String, String> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).map_err(|e| format!("no randomness: {e}"))?;
    Ok(hex::encode(b))
}

impl Sessions {
    pub fn new() -> Sessions {
        let mut b = [0u8; 32];
        // Without OS randomness the open console's forms cannot be protected:
        // an empty token matches no form, so they are refused instead.
        let open_csrf = match getrandom::fill(&mut b) {
            Ok(()) => hex::encode(b),
            Err(_) => String::new(),
        };
        Sessions {
            open_csrf,
            by_id: Mutex::new(HashMap::new()),
        }
    }

    /// A new session for `caller`: its id and CSRF token.
    pub fn create(&self, caller: Caller) -> Result<(String, String), String> {
        let (id, csrf) = (random_hex()?, random_hex()?);
        let now = Instant::now();
        let mut map = self
            .by_id
            .lock()
            .map_err(|_| "the session table is poisoned".to_string())?;
        map.retain(|_, s| s.expires > now);
        if map.len() >= MAX_SESSIONS
            && let Some(oldest) = map
                .iter()
                .min_by_key(|(_, s)| s.expires)
                .map(|(k, _)| k.clone())
        {
            map.remove(&oldest);
        }
        map.insert(
            id.clone(),
            Session {
                caller,
                csrf: csrf.clone(),
                expires: now + LIFETIME,
            },
        );
        Ok((id, csrf))
    }

    /// The caller and CSRF token of a live session.
    pub fn find(&self, id: &str) -> Option<(Caller, String)> {
        let mut map = self.by_id.lock().ok()?;
        let s = map.get(id)?;
        if s.expires <= Instant::now() {
            map.remove(id);
            return None;
        }
        Some((s.caller.clone(), s.csrf.clone()))
    }

    /// Forgets a session.
    pub fn remove(&self, id: &str) {
        if let Ok(mut map) = self.by_id.lock() {
            map.remove(id);
        }
    }

    /// Sessions alive now.
    pub fn len(&self) -> usize {
        self.by_id.lock().map(|m| m.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Default for Sessions {
    fn default() -> Self {
        Sessions::new()
    }
}
