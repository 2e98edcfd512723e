//! Background work: one queue in the database, shared by every node.
//!
//! A job is claimed with a lease ([`LEASE`]); a worker that dies mid-job leaves the lease to run
//! out, and the next claim picks the job up again. PostgreSQL claims with `FOR UPDATE SKIP
//! LOCKED`, so any number of workers on any number of nodes never get the same job; SQLite
//! takes its write lock before choosing. Each kind decides what a failure means: try again
//! later (with back-off) or give up.

use std::time::Duration;

use serde_json::Value;
use uuid::Uuid;

use crate::store::Job;
use crate::{Error, Pixeld, Result};

/// How long a claimed job belongs to its worker before another may take it over.
pub const LEASE: time::Duration = time::Duration::minutes(5);

/// Finished jobs are deleted this long after they finished.
pub const KEEP_FINISHED: time::Duration = time::Duration::days(7);

/// A job that keeps failing for reasons of ours (storage down, a bug) is retried this many
/// times in all before it is marked failed.
const MAX_INTERNAL_ATTEMPTS: i32 = 5;

/// What became of one run of a job.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Finished; nothing more to do.
    Done,
    /// Try again at this time.
    Retry(time::OffsetDateTime, String),
    /// Gave up.
    Failed(String),
}

/// What one call to [`Pixeld::run_next_job`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ran {
    /// The queue had nothing due.
    Idle,
    /// A job ran; its id, kind and new state (`done`, `queued` for a retry, `failed`).
    Job {
        /// The job.
        id: Uuid,
        /// Its kind.
        kind: String,
        /// Its state afterwards.
        state: &'static str,
    },
}

impl Pixeld {
    /// A new queued job of `kind` for `org`, due at `run_at`.
    pub(crate) fn new_job(
        &self,
        kind: &str,
        org: Uuid,
        payload: Value,
        run_at: time::OffsetDateTime,
    ) -> Job {
        let now = self.now();
        Job {
            id: Uuid::now_v7(),
            kind: kind.into(),
            org_id: org,
            payload: payload.to_string(),
            state: "queued".into(),
            attempts: 0,
            run_at,
            locked_until: None,
            last_error: None,
            created_at: now,
            updated_at: now,
        }
    }

    /// Wakes a waiting worker of this process (others poll).
    pub(crate) fn wake_worker(&self) {
        self.jobs_ready.notify_one();
    }

    /// Claims the oldest due job and runs it. Workers call this in a loop; tests call it to
    /// run the queue step by step.
    pub async fn run_next_job(&self) -> Result<Ran> {
        let now = self.now();
        let Some(job) = self.store.claim_job(now, now + LEASE).await? else {
            return Ok(Ran::Idle);
        };
        let outcome = match job.kind.as_str() {
            "render" => self.run_render_job(&job).await,
            "webhook" => self.run_webhook_job(&job).await,
            "export" => self.run_export_job(&job).await,
            other => Ok(Outcome::Failed(format!("unknown job kind `{other}`"))),
        };
        let outcome = match outcome {
            Ok(o) => o,
            Err(e) => {
                tracing::warn!(job = %job.id, kind = %job.kind, attempt = job.attempts, error = %e, "job failed");
                if job.attempts >= MAX_INTERNAL_ATTEMPTS {
                    Outcome::Failed(e.to_string())
                } else {
                    Outcome::Retry(
                        self.now() + time::Duration::seconds(30 * i64::from(job.attempts)),
                        e.to_string(),
                    )
                }
            }
        };
        let at = self.now();
        let state = match outcome {
            Outcome::Done => {
                self.store.finish_job(job.id, "done", None, at).await?;
                "done"
            }
            Outcome::Retry(run_at, why) => {
                self.store.retry_job(job.id, run_at, &why, at).await?;
                "queued"
            }
            Outcome::Failed(why) => {
                self.store
                    .finish_job(job.id, "failed", Some(&why), at)
                    .await?;
                "failed"
            }
        };
        Ok(Ran::Job {
            id: job.id,
            kind: job.kind,
            state,
        })
    }

    /// Runs jobs until `stop` turns true: everything due, then waits for a wake-up from this
    /// process or `poll` (jobs queued by other nodes, retries coming due). A job that has
    /// started is finished before stopping.
    pub async fn work(&self, poll: Duration, mut stop: tokio::sync::watch::Receiver<bool>) {
        while !*stop.borrow() {
            match self.run_next_job().await {
                Ok(Ran::Job { .. }) => continue,
                Ok(Ran::Idle) => {}
                Err(e) => tracing::warn!(error = %e, "job queue unavailable; retrying"),
            }
            tokio::select! {
                () = self.jobs_ready.notified() => {}
                () = tokio::time::sleep(poll) => {}
                r = stop.changed() => if r.is_err() { return },
            }
        }
    }

    /// Reads a job's payload.
    pub(crate) fn payload<T: serde::de::DeserializeOwned>(job: &Job) -> Result<T> {
        serde_json::from_str(&job.payload)
            .map_err(|e| Error::Internal(format!("job {} has a bad payload: {e}", job.id)))
    }
}
