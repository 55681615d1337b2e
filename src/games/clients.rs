//! Per-program protocol clients and the queries built on them: one shared [`RconSession`]
//! and one [`PalworldClient`] per program (so commands from the API, the monitor and stop
//! steps reuse one connection and share the wrong-password cool-down), plus status queries
//! that yield player counts.

use std::collections::HashMap;
use std::sync::Mutex;

use game_proto::{PalworldClient, ProtoError, RconSession};
use serde::Serialize;
use utoipa::ToSchema;

use crate::config::GamesConfig;
use crate::program::game::{GameSpec, LivenessCheck, QueryKind, QuerySpec, RconSpec, RestSpec};

/// Players online, as a query reports them.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct PlayersInfo {
    /// Players online.
    pub online: u32,
    /// Player limit, when reported.
    pub max: Option<u32>,
    /// Names of (some of) the players online; servers may report only a sample or none.
    pub names: Vec<String>,
    /// The server's name (A2S) or message of the day (Minecraft), kept to answer for it
    /// while it sleeps.
    #[serde(skip)]
    pub server_name: Option<String>,
}

/// The clients of one program, kept while its settings stay the same.
#[derive(Default)]
struct Entry {
    rcon: Option<(RconSpec, RconSession)>,
    rest: Option<(RestSpec, PalworldClient)>,
}

/// Clients by program name. A std mutex: held only to look up or insert, never across
/// `.await` (the clients themselves are cheap clones of shared handles).
pub(super) struct Clients {
    cfg: GamesConfig,
    map: Mutex<HashMap<String, Entry>>,
}

impl Clients {
    pub(super) fn new(cfg: GamesConfig) -> Clients {
        Clients {
            cfg,
            map: Mutex::new(HashMap::new()),
        }
    }

    /// The program's RCON session, created anew when its address or password changed.
    pub(super) fn rcon(&self, program: &str, spec: &RconSpec) -> RconSession {
        let make = || {
            RconSession::with_auth_cool_down(
                spec.addr(),
                spec.password.expose(),
                self.cfg.rcon_timeout,
                self.cfg.rcon_auth_cool_down,
            )
        };
        let mut map = crate::sync::lock(&self.map);
        let entry = map.entry(program.to_string()).or_default();
        match &entry.rcon {
            Some((s, session)) if s == spec => session.clone(),
            _ => {
                let session = make();
                entry.rcon = Some((spec.clone(), session.clone()));
                session
            }
        }
    }

    /// The program's REST client, created anew when its address or password changed.
    pub(super) fn rest(
        &self,
        program: &str,
        spec: &RestSpec,
    ) -> Result<PalworldClient, ProtoError> {
        let make = || {
            PalworldClient::new(
                &spec.base_url(),
                spec.password.expose(),
                self.cfg.query_timeout,
            )
        };
        let mut map = crate::sync::lock(&self.map);
        let entry = map.entry(program.to_string()).or_default();
        match &entry.rest {
            Some((s, client)) if s == spec => Ok(client.clone()),
            _ => {
                let client = make()?;
                entry.rest = Some((spec.clone(), client.clone()));
                Ok(client)
            }
        }
    }

    /// Drops a deleted program's clients (closing its RCON connection).
    pub(super) fn forget(&self, program: &str) {
        crate::sync::lock(&self.map).remove(program);
    }

    /// Runs `q`: `Some` players for kinds that report them, `None` for plain checks.
    pub(super) async fn query(
        &self,
        program: &str,
        game: &GameSpec,
        q: &QuerySpec,
    ) -> Result<Option<PlayersInfo>, ProtoError> {
        let timeout = self.cfg.query_timeout;
        let addr = || {
            q.addr().ok_or_else(|| ProtoError::InvalidAddress {
                addr: q.host.clone(),
                detail: "the query has no port".into(),
            })
        };
        match q.kind {
            QueryKind::Slp => {
                let s = game_proto::slp::ping(&addr()?, timeout).await?;
                Ok(Some(PlayersInfo {
                    online: s.players_online,
                    max: Some(s.players_max),
                    names: s.sample,
                    server_name: Some(s.motd),
                }))
            }
            QueryKind::A2s => {
                let addr = addr()?;
                let info = game_proto::a2s::info(&addr, timeout).await?;
                // Names come from a second request; a server that answers INFO but not
                // PLAYER (some hide their player list) still gives a count.
                let names = if info.players > 0 {
                    game_proto::a2s::players(&addr, timeout)
                        .await
                        .map(|ps| {
                            ps.into_iter()
                                .map(|p| p.name)
                                .filter(|n| !n.is_empty())
                                .collect()
                        })
                        .unwrap_or_default()
                } else {
                    Vec::new()
                };
                Ok(Some(PlayersInfo {
                    online: u32::from(info.players),
                    max: Some(u32::from(info.max_players)),
                    names,
                    server_name: Some(info.name),
                }))
            }
            QueryKind::Palworld => {
                let rest = game
                    .rest
                    .as_ref()
                    .ok_or_else(|| ProtoError::InvalidAddress {
                        addr: String::new(),
                        detail: "palworld queries need a game.rest section".into(),
                    })?;
                let client = self.rest(program, rest)?;
                let m = client.metrics().await?;
                let names = client
                    .players()
                    .await?
                    .into_iter()
                    .map(|p| p.name)
                    .collect();
                Ok(Some(PlayersInfo {
                    online: m.current_players,
                    max: Some(m.max_players),
                    names,
                    server_name: None,
                }))
            }
            QueryKind::Http => {
                let url = q.url.as_deref().unwrap_or_default();
                game_proto::http_check(url, q.expect_status, q.body_contains.as_deref(), timeout)
                    .await?;
                Ok(None)
            }
            QueryKind::Tcp => {
                game_proto::tcp_check(&addr()?, timeout).await?;
                Ok(None)
            }
        }
    }

    /// One liveness probe; `Ok` when the server answered.
    pub(super) async fn probe(
        &self,
        program: &str,
        game: &GameSpec,
        check: LivenessCheck,
    ) -> Result<(), ProtoError> {
        let missing = |what: &str| ProtoError::InvalidAddress {
            addr: String::new(),
            detail: format!("the liveness check needs {what}"),
        };
        match check {
            LivenessCheck::Query => {
                let q = game
                    .effective_query()
                    .ok_or_else(|| missing("a game.query"))?;
                self.query(program, game, &q).await.map(drop)
            }
            LivenessCheck::Rcon => {
                let r = game.rcon.as_ref().ok_or_else(|| missing("game.rcon"))?;
                // Any reply counts, even "unknown command": the console answered.
                self.rcon(program, r).exec("list").await.map(drop)
            }
            LivenessCheck::Rest => {
                let r = game.rest.as_ref().ok_or_else(|| missing("game.rest"))?;
                self.rest(program, r)?.info().await.map(drop)
            }
        }
    }
}
