//! Model-based tests: long seeded random sequences of API calls and clock jumps, checked after every step
//! against a small, independently written model of what the API should answer. They catch lifecycle
//! corner cases (a stop during deploy, a re-create right at the end of retention, an invitation accepted
//! the instant it expires) that hand-written scenarios miss.
#![allow(
    clippy::too_many_lines,
    reason = "each model step is one long match, read top to bottom"
)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on unexpected values"
)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use blaxel_operator::sim::SimConfig;
use common::{Harness, config};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::StatusCode;
use serde_json::json;

const DEPLOY: u64 = 2_000;
const STOP: u64 = 1_000;
const DELETE: u64 = 1_000;
const RETENTION: u64 = 5_000;
const TTL: u64 = 10_000;

#[derive(Debug, Clone, Copy)]
enum Sbx {
    Absent,
    Live {
        powered: bool,
        since: u64,
        never_started: bool,
    },
    Deleted {
        at: u64,
    },
}

impl Sbx {
    /// Expected status, or None for 404.
    fn status(self, now: u64) -> Option<&'static str> {
        match self {
            Self::Absent => None,
            Self::Deleted { at } if now >= at + DELETE + RETENTION => None,
            Self::Deleted { at } if now >= at + DELETE => Some("TERMINATED"),
            Self::Deleted { .. } => Some("DELETING"),
            Self::Live {
                powered: true,
                since,
                ..
            } if now < since + DEPLOY => Some("DEPLOYING"),
            Self::Live { powered: true, .. } => Some("DEPLOYED"),
            Self::Live {
                never_started: true,
                ..
            } => Some("DEACTIVATED"),
            Self::Live { since, .. } if now < since + STOP => Some("DEACTIVATING"),
            Self::Live { .. } => Some("DEACTIVATED"),
        }
    }
}

fn sim_config() -> SimConfig {
    SimConfig {
        deploy_time: Duration::from_millis(DEPLOY),
        stop_time: Duration::from_millis(STOP),
        delete_time: Duration::from_millis(DELETE),
        termination_retention: Duration::from_millis(RETENTION),
        invite_ttl: Some(Duration::from_millis(TTL)),
        ..config()
    }
}

/// Random create/delete/start/stop/disable and clock jumps: every answer and every sandbox's status match
/// the model at every step, and the list always holds exactly the visible sandboxes.
#[tokio::test]
async fn sandboxes_follow_the_model() {
    let h = Harness::start(sim_config()).await;
    let names = ["a", "b", "c", "d", "e"];
    let mut model: BTreeMap<&str, Sbx> = names.iter().map(|n| (*n, Sbx::Absent)).collect();
    let mut now: u64 = 0;
    let mut rng = StdRng::seed_from_u64(2025);
    for step in 0..400 {
        let name = names[rng.random_range(0..names.len())];
        let cur = model[name];
        let st = cur.status(now);
        let op = rng.random_range(0..7);
        let (desc, got, want, next) = match op {
            0 | 1 => {
                let got = h
                    .post("/sandboxes", common::sandbox_body(name))
                    .await
                    .status;
                let fresh = Sbx::Live {
                    powered: true,
                    since: now,
                    never_started: false,
                };
                match st {
                    None | Some("TERMINATED") => ("create", got, 200, fresh),
                    _ => ("create", got, 409, cur),
                }
            }
            2 => {
                let got = h.delete(&format!("/sandboxes/{name}")).await.status;
                match (st, cur) {
                    (None, _) => ("delete", got, 404, Sbx::Absent),
                    (_, Sbx::Deleted { .. }) => ("delete", got, 200, cur),
                    _ => ("delete", got, 200, Sbx::Deleted { at: now }),
                }
            }
            3 | 4 => {
                let on = op == 3;
                let got = h
                    .put(
                        &format!("/sandboxes/{name}/{}", if on { "start" } else { "stop" }),
                        json!({}),
                    )
                    .await
                    .status;
                let desc = if on { "start" } else { "stop" };
                match (st, cur) {
                    (None, _) => (desc, got, 404, Sbx::Absent),
                    (_, Sbx::Deleted { .. }) => (desc, got, 409, cur),
                    (_, Sbx::Live { powered, .. }) if powered == on => (desc, got, 409, cur),
                    _ => (
                        desc,
                        got,
                        200,
                        Sbx::Live {
                            powered: on,
                            since: now,
                            never_started: false,
                        },
                    ),
                }
            }
            5 => {
                // Create disabled (only when the name is free).
                let mut body = common::sandbox_body(name);
                body["spec"]["enabled"] = json!(false);
                let got = h.post("/sandboxes", body).await.status;
                match st {
                    None | Some("TERMINATED") => (
                        "create-disabled",
                        got,
                        200,
                        Sbx::Live {
                            powered: false,
                            since: now,
                            never_started: true,
                        },
                    ),
                    _ => ("create-disabled", got, 409, cur),
                }
            }
            _ => {
                let ms = [0, 250, 1_000, 2_000, 4_000, 6_000][rng.random_range(0..6)];
                h.sim_post("/clock/advance", json!({ "ms": ms })).await;
                now += ms;
                ("advance", StatusCode::OK, 200, cur)
            }
        };
        assert_eq!(
            got.as_u16(),
            want,
            "step {step}: {desc} {name} at {now} ms from {cur:?}"
        );
        model.insert(
            name,
            if next.status(now).is_none() {
                Sbx::Absent
            } else {
                next
            },
        );

        for n in names {
            let a = h.get(&format!("/sandboxes/{n}")).await;
            match model[n].status(now) {
                None => assert_eq!(
                    a.status,
                    StatusCode::NOT_FOUND,
                    "step {step}: {n} should be gone: {}",
                    a.raw
                ),
                Some(s) => assert_eq!(
                    a.body["status"], s,
                    "step {step}: {n} at {now} ms, model {:?}",
                    model[n]
                ),
            }
        }
        let listed = h.get("/sandboxes").await.body;
        let visible = model.values().filter(|m| m.status(now).is_some()).count();
        assert_eq!(
            listed.as_array().unwrap().len(),
            visible,
            "step {step}: list {listed}"
        );
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Usr {
    Absent,
    Invited { at: u64, admin: bool },
    Member { admin: bool },
}

/// Random invite/set-role/remove/accept and clock jumps: answers and `GET /users` match the model at every
/// step (including expiry and fresh re-invites).
#[tokio::test]
async fn users_follow_the_model() {
    let h = Harness::start(sim_config()).await;
    let emails = ["a@x.io", "b@x.io", "c@x.io", "d@x.io"];
    let mut model: BTreeMap<&str, Usr> = emails.iter().map(|e| (*e, Usr::Absent)).collect();
    let mut now: u64 = 0;
    let mut rng = StdRng::seed_from_u64(1128);
    for step in 0..400 {
        let email = emails[rng.random_range(0..emails.len())];
        let cur = model[email];
        let expired = matches!(cur, Usr::Invited { at, .. } if now >= at + TTL);
        let (desc, got, want, next) = match rng.random_range(0..6) {
            0 => {
                let got = h.post("/users", json!({ "email": email })).await.status;
                let next = match cur {
                    Usr::Absent => Usr::Invited {
                        at: now,
                        admin: false,
                    },
                    Usr::Invited { .. } if expired => Usr::Invited {
                        at: now,
                        admin: false,
                    },
                    other => other,
                };
                ("invite", got, 200, next)
            }
            1 | 2 => {
                let admin = rng.random::<bool>();
                let role = if admin { "admin" } else { "member" };
                let got = h
                    .put(&format!("/users/{email}"), json!({ "role": role }))
                    .await
                    .status;
                match cur {
                    Usr::Absent => ("role", got, 404, cur),
                    Usr::Invited { at, .. } => ("role", got, 200, Usr::Invited { at, admin }),
                    Usr::Member { .. } => ("role", got, 200, Usr::Member { admin }),
                }
            }
            3 => {
                let got = h.delete(&format!("/users/{email}")).await.status;
                match cur {
                    Usr::Absent => ("remove", got, 404, cur),
                    _ => ("remove", got, 200, Usr::Absent),
                }
            }
            4 => {
                let got = h
                    .sim_post(
                        &format!("/invitations/{email}/accept?workspace=ws-a"),
                        json!({}),
                    )
                    .await
                    .status;
                match cur {
                    Usr::Absent => ("accept", got, 404, cur),
                    Usr::Invited { .. } if expired => ("accept", got, 404, cur),
                    Usr::Invited { admin, .. } | Usr::Member { admin } => {
                        ("accept", got, 200, Usr::Member { admin })
                    }
                }
            }
            _ => {
                let ms = [500, 3_000, 9_999, 10_000][rng.random_range(0..4)];
                h.sim_post("/clock/advance", json!({ "ms": ms })).await;
                now += ms;
                ("advance", StatusCode::OK, 200, cur)
            }
        };
        assert_eq!(
            got.as_u16(),
            want,
            "step {step}: {desc} {email} at {now} ms from {cur:?}"
        );
        model.insert(email, next);

        let users = h.get("/users").await.body;
        let mut seen = BTreeMap::new();
        for u in users.as_array().unwrap() {
            seen.insert(
                u["email"].as_str().unwrap().to_owned(),
                (
                    u["role"].clone(),
                    u["accepted"].clone(),
                    u["expired"].clone(),
                ),
            );
        }
        let expected: BTreeMap<String, _> = model
            .iter()
            .filter_map(|(e, m)| {
                let role = |admin: bool| json!(if admin { "admin" } else { "member" });
                match *m {
                    Usr::Absent => None,
                    Usr::Invited { at, admin } => Some((
                        (*e).to_owned(),
                        (role(admin), json!(false), json!(now >= at + TTL)),
                    )),
                    Usr::Member { admin } => {
                        Some(((*e).to_owned(), (role(admin), json!(true), json!(false))))
                    }
                }
            })
            .collect();
        assert_eq!(seen, expected, "step {step} at {now} ms");
    }
}
