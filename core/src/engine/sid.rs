//! Random ids: Engine.IO session ids (a secret of one client) and Socket.IO
//! socket ids (public), drawn separately so that one never reveals the
//! other.

use std::fmt;
use std::str::FromStr;

/// The number of characters of an id: 15 random bytes in base64url.
const LEN: usize = 20;

/// A 120-bit random id, as 20 base64url characters.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Sid([u8; LEN]);

/// Bytes of the operating system's random source, drawn once for many
/// ids (a system call per connection and id, otherwise): each id takes
/// bytes no other id took.
const POOL: usize = 15 * 16;

thread_local! {
    /// This thread's unused random bytes: `POOL - .0` of them, from `.0`.
    static RANDOM: std::cell::RefCell<(usize, [u8; POOL])> =
        const { std::cell::RefCell::new((POOL, [0; POOL])) };
}

/// Fills `out` with bytes of the operating system's random source.
fn random_bytes(out: &mut [u8]) {
    RANDOM.with_borrow_mut(|(used, pool)| {
        if *used + out.len() > POOL {
            if getrandom::fill(pool).is_err() {
                // No OS randomness at all: the process cannot run safely.
                panic!("the operating system's random source is unavailable");
            }
            *used = 0;
        }
        out.copy_from_slice(&pool[*used..*used + out.len()]);
        // Taken bytes are not kept.
        pool[*used..*used + out.len()].fill(0);
        *used += out.len();
    });
}

impl Sid {
    /// A fresh id from the operating system's random source.
    pub(crate) fn new() -> Sid {
        let mut raw = [0u8; 15];
        random_bytes(&mut raw);
        let mut out = [0u8; LEN];
        use base64::Engine as _;
        let n = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode_slice(raw, &mut out)
            .expect("15 bytes encode to 20 characters");
        debug_assert_eq!(n, LEN);
        Sid(out)
    }

    /// The id as text.
    pub(crate) fn as_str(&self) -> &str {
        // The bytes are base64url characters, always ASCII.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

/// The text is not an id of ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BadSid;

impl FromStr for Sid {
    type Err = BadSid;

    fn from_str(s: &str) -> Result<Sid, BadSid> {
        let b = s.as_bytes();
        if b.len() != LEN
            || !b
                .iter()
                .all(|c| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'_')
        {
            return Err(BadSid);
        }
        let mut out = [0u8; LEN];
        out.copy_from_slice(b);
        Ok(Sid(out))
    }
}

impl fmt::Display for Sid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Sid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sid({})", self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_random_and_round_trip() {
        let a = Sid::new();
        let b = Sid::new();
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), 20);
        assert_eq!(a.as_str().parse::<Sid>(), Ok(a));
        assert_eq!("short".parse::<Sid>(), Err(BadSid));
        assert_eq!("aaaaaaaaaaaaaaaaaaa/".parse::<Sid>(), Err(BadSid));
    }

    #[test]
    fn ids_drawn_across_many_refills_never_repeat() {
        // 16 ids per draw from the OS: 100 draws' worth, on two threads.
        let draw = || (0..1600).map(|_| Sid::new()).collect::<Vec<_>>();
        let other = std::thread::spawn(draw);
        let mut all = draw();
        all.extend(other.join().unwrap());
        let n = all.len();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), n);
        // No byte value is missing from the ids' first characters: not a
        // stuck or zeroed pool.
        let firsts: std::collections::HashSet<u8> = all.iter().map(|s| s.0[0]).collect();
        assert_eq!(firsts.len(), 64);
    }
}
