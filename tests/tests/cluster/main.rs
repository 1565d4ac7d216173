//! Several `article-server` replicas on one real PostgreSQL, some behind a
//! real HAProxy (`deploy/haproxy.cfg`): writes through one replica reach
//! watchers and lists on the others, concurrent writers give every watcher
//! the same gap-free sequence, watchers survive `kill -9` of their replica
//! by resuming through HAProxy, a draining replica leaves rotation without
//! failing calls, and a PostgreSQL restart turns replicas NOT_SERVING and
//! back with nothing lost.
//!
//! Needs PostgreSQL and HAProxy (Debian's `postgresql` and `haproxy`),
//! which `cargo xtask test` installs; run with
//! `cargo test -p article-tests --features cluster --test cluster`.
//! Every test owns its PostgreSQL cluster, replicas and load balancer, all
//! stopped when the test ends, pass or fail.

mod feed;
mod harness;
mod load_balancer;
mod outage;
