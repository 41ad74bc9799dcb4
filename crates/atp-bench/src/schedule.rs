//! The scheduler: run jobs concurrently under a global bound and a per-group (per-prover) bound,
//! starting them in the order given (task-major), each as its own tokio task.
//!
//! Invariants: at most `workers` jobs run at once, at most `per_group` of one group; a job is
//! never started after `cancel` fired (the jobs not started are returned); every started job is
//! awaited to its end (a job that panics is reported as such, never lost); the order of starts is
//! the order of `jobs` among those whose group has room — a saturated group does not hold back
//! the others.

use std::collections::VecDeque;
use std::future::Future;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// The bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Jobs running at once (≥ 1).
    pub workers: usize,
    /// Jobs of one group running at once (≥ 1).
    pub per_group: usize,
}

/// One job: its group and its payload.
#[derive(Debug, Clone)]
pub struct Job<T> {
    pub group: usize,
    pub item: T,
}

/// How a started job ended.
#[derive(Debug)]
pub enum Ended<T, O> {
    Done(O),
    /// The job's task panicked (its payload is given back for the record).
    Panicked(T, String),
}

/// Run `jobs` with `run`, calling `on_end` as each ends (in the order they end). Returns the
/// jobs never started (after `cancel`).
pub async fn run_bounded<T, O, F, Fut>(
    jobs: Vec<Job<T>>,
    groups: usize,
    limits: Limits,
    cancel: &CancellationToken,
    run: F,
    mut on_end: impl FnMut(Ended<T, O>),
) -> Vec<T>
where
    T: Clone + Send + 'static,
    O: Send + 'static,
    F: Fn(T) -> Fut,
    Fut: Future<Output = O> + Send + 'static,
{
    let workers = limits.workers.max(1);
    let per_group = limits.per_group.max(1);
    let mut pending: VecDeque<Job<T>> = jobs.into();
    let mut running_per_group = vec![0usize; groups.max(1)];
    let mut set: JoinSet<O> = JoinSet::new();
    let mut started: std::collections::HashMap<tokio::task::Id, (usize, T)> =
        std::collections::HashMap::new();
    loop {
        if !cancel.is_cancelled() {
            while set.len() < workers {
                let Some(pos) = pending
                    .iter()
                    .position(|j| running_per_group.get(j.group).copied().unwrap_or(0) < per_group)
                else {
                    break;
                };
                let Some(job) = pending.remove(pos) else {
                    break;
                };
                if let Some(n) = running_per_group.get_mut(job.group) {
                    *n += 1;
                }
                let handle = set.spawn(run(job.item.clone()));
                started.insert(handle.id(), (job.group, job.item));
            }
        }
        if set.is_empty() {
            break;
        }
        let next = tokio::select! {
            biased;
            r = set.join_next_with_id() => r,
            _ = cancel.cancelled(), if !cancel.is_cancelled() => continue,
        };
        let Some(r) = next else { break };
        let id = match &r {
            Ok((id, _)) => *id,
            Err(e) => e.id(),
        };
        let Some((group, item)) = started.remove(&id) else {
            continue; // not one of ours (cannot happen: every task of the set is recorded)
        };
        if let Some(n) = running_per_group.get_mut(group) {
            *n = n.saturating_sub(1);
        }
        match r {
            Ok((_, out)) => on_end(Ended::Done(out)),
            Err(e) => {
                let msg = if e.is_panic() {
                    "the cell's task panicked".to_string()
                } else {
                    "the cell's task was aborted".to_string()
                };
                on_end(Ended::Panicked(item, msg));
            }
        }
    }
    pending.into_iter().map(|j| j.item).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    #[derive(Default)]
    struct Gauge {
        now: AtomicUsize,
        max: AtomicUsize,
        per: Mutex<Vec<usize>>,
        max_per: Mutex<Vec<usize>>,
        order: Mutex<Vec<usize>>,
    }

    async fn run(
        jobs: Vec<Job<usize>>,
        groups: usize,
        limits: Limits,
        cancel: CancellationToken,
    ) -> (Arc<Gauge>, Vec<usize>, Vec<usize>) {
        let g = Arc::new(Gauge {
            per: Mutex::new(vec![0; groups]),
            max_per: Mutex::new(vec![0; groups]),
            ..Default::default()
        });
        let groups_of: Vec<usize> = jobs.iter().map(|j| j.group).collect();
        let g2 = Arc::clone(&g);
        let mut ended = Vec::new();
        let left = run_bounded(
            jobs,
            groups,
            limits,
            &cancel,
            move |i: usize| {
                let g = Arc::clone(&g2);
                let grp = groups_of[i];
                async move {
                    g.order.lock().expect("lock").push(i);
                    let n = g.now.fetch_add(1, Ordering::SeqCst) + 1;
                    g.max.fetch_max(n, Ordering::SeqCst);
                    {
                        let mut p = g.per.lock().expect("lock");
                        p[grp] += 1;
                        let mut m = g.max_per.lock().expect("lock");
                        m[grp] = m[grp].max(p[grp]);
                    }
                    tokio::time::sleep(Duration::from_millis(20 + (i % 3) as u64 * 5)).await;
                    g.per.lock().expect("lock")[grp] -= 1;
                    g.now.fetch_sub(1, Ordering::SeqCst);
                    if i == 5 {
                        panic!("job 5 panics");
                    }
                    i
                }
            },
            |e| match e {
                Ended::Done(i) => ended.push(i),
                Ended::Panicked(i, _) => ended.push(1000 + i),
            },
        )
        .await;
        (g, ended, left)
    }

    fn jobs(n: usize, groups: usize) -> Vec<Job<usize>> {
        (0..n)
            .map(|i| Job {
                group: i % groups,
                item: i,
            })
            .collect()
    }

    #[tokio::test]
    async fn global_and_per_group_bounds_hold() {
        let (g, ended, left) = run(
            jobs(30, 3),
            3,
            Limits {
                workers: 4,
                per_group: 2,
            },
            CancellationToken::new(),
        )
        .await;
        assert!(left.is_empty());
        assert_eq!(ended.len(), 30);
        assert!(ended.contains(&1005), "the panicking job is reported");
        assert_eq!(g.max.load(Ordering::SeqCst), 4);
        assert!(g.max_per.lock().expect("lock").iter().all(|m| *m <= 2));
        // starts follow the given order
        let order = g.order.lock().expect("lock").clone();
        assert_eq!(&order[..4], &[0, 1, 2, 3]);
    }

    #[tokio::test]
    async fn a_saturated_group_does_not_block_the_others() {
        // jobs 0..4 in group 0, then 4 in group 1: with per_group 1, job 4 starts at once.
        let jobs: Vec<Job<usize>> = (0..6)
            .map(|i| Job {
                group: usize::from(i >= 4),
                item: i,
            })
            .collect();
        let (g, _, _) = run(
            jobs,
            2,
            Limits {
                workers: 2,
                per_group: 1,
            },
            CancellationToken::new(),
        )
        .await;
        let order = g.order.lock().expect("lock").clone();
        assert_eq!(&order[..2], &[0, 4]);
    }

    #[tokio::test]
    async fn cancel_stops_starting_and_returns_the_rest() {
        let cancel = CancellationToken::new();
        let c2 = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(30)).await;
            c2.cancel();
        });
        let (g, ended, left) = run(
            jobs(40, 1),
            1,
            Limits {
                workers: 2,
                per_group: 2,
            },
            cancel,
        )
        .await;
        assert!(!left.is_empty());
        assert_eq!(ended.len() + left.len(), 40);
        assert_eq!(
            g.order.lock().expect("lock").len(),
            ended.len(),
            "every started job ended"
        );
    }
}
