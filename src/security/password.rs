//! Argon2id password hashing (PHC strings), with parameters per OWASP's recommendation.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

fn hasher() -> Argon2<'static> {
    // Argon2id, 19 MiB, 2 iterations, 1 lane.
    Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        argon2::Params::new(19 * 1024, 2, 1, None).expect("valid argon2 parameters"),
    )
}

pub fn hash(password: &str) -> String {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    hasher()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 hashing cannot fail with valid params")
        .to_string()
}

pub fn verify(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => hasher().verify_password(password.as_bytes(), &parsed).is_ok(),
        Err(_) => false,
    }
}

/// A hash of a random password, verified against when the username does not exist,
/// so that a login with an unknown name costs as much time as one with a wrong password.
pub fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash(&super::random_token(16)))
}

/// Minimal password policy: 12+ characters.
pub fn check_policy(password: &str) -> Result<(), crate::messages::Msg> {
    use crate::messages::Msg;
    if password.chars().count() < 12 {
        return Err(Msg::AtLeastChars(12));
    }
    if password.len() > 1024 {
        return Err(Msg::AtMostBytes(1024));
    }
    Ok(())
}

/// Argon2 off the async workers, at most `concurrent` at a time (each takes 19 MiB and a core for ~20 ms): a burst
/// of sign-ins queues here instead of taking gigabytes of memory, and gives up with 503 after `wait`.
pub struct Hashing {
    permits: std::sync::Arc<tokio::sync::Semaphore>,
    wait: std::time::Duration,
}

impl Hashing {
    pub fn new(concurrent: usize, wait: std::time::Duration) -> Self {
        Self { permits: std::sync::Arc::new(tokio::sync::Semaphore::new(concurrent.max(1))), wait }
    }

    /// Runs `f` (Argon2 work) on the blocking pool once a permit is free. The permit travels with the work and is
    /// returned when the work ends — not when the request does (a dropped client does not stop the hashing).
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, crate::error::ApiError> {
        use crate::error::ApiError;
        let permit = tokio::time::timeout(self.wait, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| ApiError::Unavailable)?
            .map_err(|_| ApiError::Unavailable)?;
        actix_web::web::block(move || {
            let _permit = permit;
            f()
        })
        .await
        .map_err(|_| ApiError::internal("password hashing cancelled"))
    }

    pub async fn hash(&self, password: String) -> Result<String, crate::error::ApiError> {
        self.run(move || hash(&password)).await
    }

    pub async fn verify(&self, password: String, phc: String) -> Result<bool, crate::error::ApiError> {
        self.run(move || verify(&password, &phc)).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use super::*;

    #[actix_rt::test]
    async fn hashing_runs_at_most_the_configured_number_at_once() {
        let hashing = Arc::new(Hashing::new(2, std::time::Duration::from_secs(30)));
        let (running, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let jobs = (0..8).map(|_| {
            let (hashing, running, most) = (hashing.clone(), running.clone(), most.clone());
            async move {
                hashing
                    .run(move || {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        std::thread::sleep(std::time::Duration::from_millis(30));
                        running.fetch_sub(1, Ordering::SeqCst);
                    })
                    .await
                    .unwrap()
            }
        });
        futures_util::future::join_all(jobs).await;
        assert_eq!(most.load(Ordering::SeqCst), 2);
    }

    #[actix_rt::test]
    async fn a_burst_beyond_the_wait_is_refused_not_queued_for_ever() {
        let hashing = Arc::new(Hashing::new(1, std::time::Duration::from_millis(50)));
        let slow = hashing.run(|| std::thread::sleep(std::time::Duration::from_millis(300)));
        let late = async {
            actix_rt::time::sleep(std::time::Duration::from_millis(10)).await;
            hashing.run(|| ()).await
        };
        let (first, second) = futures_util::future::join(slow, late).await;
        assert!(first.is_ok());
        assert!(matches!(second, Err(crate::error::ApiError::Unavailable)));
    }
}
