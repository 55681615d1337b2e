//! Game endpoints: run an RCON command, list players, broadcast a message. The game-aware
//! stop/restart options live on the program actions in `programs.rs`.

use axum::extract::State;
use axum::http::StatusCode;
use game_proto::ProtoError;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::AppState;
use super::authn::Caller;
use super::error::{ApiError, ErrorBody, Json};
use super::guard::{OnProgram, perm};
use crate::games::{GamesError, PlayersInfo};
use crate::program::game::{Broadcast, GameProfile, GameSpec, Readiness, StopStep};

impl From<GamesError> for ApiError {
    fn from(e: GamesError) -> ApiError {
        match e {
            GamesError::Sup(s) => s.into(),
            GamesError::NotConfigured(m) => {
                ApiError::new(StatusCode::CONFLICT, "not_configured", m)
            }
            GamesError::Invalid(e) => ApiError::validation(vec![e]),
            e @ GamesError::NotEmpty { online } => {
                ApiError::new(StatusCode::CONFLICT, "players_online", e.to_string())
                    .with_param("online", online)
            }
            // Protocol errors name the server and give a hint, never a password, so their
            // text is safe and useful to show.
            GamesError::Proto(p) => {
                let (status, code) = match &p {
                    p if p.is_auth_failure() => (StatusCode::BAD_GATEWAY, "game_auth_failed"),
                    ProtoError::Timeout { .. } => (StatusCode::GATEWAY_TIMEOUT, "game_timeout"),
                    ProtoError::Connect { .. } => (StatusCode::BAD_GATEWAY, "game_unreachable"),
                    ProtoError::InvalidInput { .. } => (StatusCode::BAD_REQUEST, "bad_request"),
                    _ => (StatusCode::BAD_GATEWAY, "game_error"),
                };
                ApiError::new(status, code, p.to_string())
            }
        }
    }
}

/// An RCON command.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RconRequest {
    /// The command, e.g. `list`.
    pub command: String,
}

/// The server's reply.
#[derive(Serialize, ToSchema)]
pub struct RconReply {
    /// The whole reply (all packets joined).
    pub output: String,
}

/// Runs an RCON command on the game server and returns its reply. A wrong password
/// answers 502 `game_auth_failed`, and further commands fail the same way without
/// logging in again until `games.rcon_auth_cool_down_seconds` have passed.
#[utoipa::path(post, path = "/api/programs/{name}/rcon", tag = "games",
    params(("name" = String, Path, description = "program name")), request_body = RconRequest,
    responses((status = 200, body = RconReply), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 502, body = ErrorBody), (status = 504, body = ErrorBody)))]
async fn rcon(
    State(app): State<AppState>,
    OnProgram { caller, name, .. }: OnProgram<perm::Players>,
    Json(req): Json<RconRequest>,
) -> Result<Json<RconReply>, ApiError> {
    app.audit(&caller, "program.rcon", &name, Some(req.command.clone()))
        .await;
    let output = app.games.rcon(&name, &req.command).await?;
    Ok(Json(RconReply { output }))
}

/// Players online now, asked from the server's query.
#[utoipa::path(get, path = "/api/programs/{name}/players", tag = "games",
    params(("name" = String, Path, description = "program name")),
    responses((status = 200, body = PlayersInfo), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 502, body = ErrorBody), (status = 504, body = ErrorBody)))]
async fn players(
    State(app): State<AppState>,
    OnProgram { name, .. }: OnProgram<perm::View>,
) -> Result<Json<PlayersInfo>, ApiError> {
    Ok(Json(app.games.players(&name).await?))
}

/// A message for the players.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BroadcastRequest {
    /// One line of text.
    pub message: String,
}

/// How the message went out.
#[derive(Serialize, ToSchema)]
pub struct BroadcastReply {
    /// `rcon`, `stdin` or `rest`.
    pub method: &'static str,
}

/// Sends a message to everyone in game, the profile's way (`say` over RCON or stdin,
/// Palworld's announce).
#[utoipa::path(post, path = "/api/programs/{name}/broadcast", tag = "games",
    params(("name" = String, Path, description = "program name")), request_body = BroadcastRequest,
    responses((status = 200, body = BroadcastReply), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 502, body = ErrorBody)))]
async fn broadcast(
    State(app): State<AppState>,
    OnProgram { caller, name, .. }: OnProgram<perm::Players>,
    Json(req): Json<BroadcastRequest>,
) -> Result<Json<BroadcastReply>, ApiError> {
    let method = app.games.broadcast(&name, &req.message).await?;
    app.audit(&caller, "program.broadcast", &name, Some(req.message))
        .await;
    Ok(Json(BroadcastReply { method }))
}

/// What a game profile assumes, for forms that pre-fill a new game server.
#[derive(Serialize, ToSchema)]
pub struct ProfileInfo {
    /// The profile.
    pub profile: GameProfile,
    /// A game section with the connections such servers usually offer on their usual
    /// ports; passwords are empty and must be filled in.
    pub template: GameSpec,
    /// The stop signal to use when no stop step applies.
    pub stop_signal: &'static str,
    /// Readiness check in effect with the template.
    pub readiness: Option<Readiness>,
    /// Graceful stop steps in effect with the template.
    pub stop_steps: Vec<StopStep>,
    /// Graceful stop steps in effect when the template's RCON section is removed.
    pub stop_steps_without_rcon: Vec<StopStep>,
    /// How broadcasts are sent with the template (`None`: not possible).
    pub broadcast: Option<Broadcast>,
    /// The RCON command that saves the world, where the game has one.
    pub save_rcon: Option<&'static str>,
    /// The console line that saves the world, where the game reads one on stdin.
    pub save_stdin: Option<&'static str>,
}

/// Every game profile.
#[derive(Serialize, ToSchema)]
pub struct ProfileList {
    /// In the order forms list them.
    pub profiles: Vec<ProfileInfo>,
}

/// The game profiles and the defaults each fills in (readiness, stop steps, broadcast,
/// usual ports), computed by the same code the supervisor and `games` use.
#[utoipa::path(get, path = "/api/games/profiles", tag = "games",
    responses((status = 200, body = ProfileList), (status = 401, body = ErrorBody)))]
async fn profiles(_caller: Caller) -> Result<Json<ProfileList>, ApiError> {
    let profiles = GameProfile::ALL
        .into_iter()
        .map(|profile| {
            let template = profile.template();
            let without_rcon = GameSpec {
                rcon: None,
                ..template.clone()
            };
            ProfileInfo {
                profile,
                stop_signal: profile.stop_signal(),
                readiness: template.effective_readiness(),
                stop_steps: template.effective_stop_steps(),
                stop_steps_without_rcon: without_rcon.effective_stop_steps(),
                broadcast: template.effective_broadcast(),
                save_rcon: profile.save_rcon(),
                save_stdin: profile.save_stdin(),
                template,
            }
        })
        .collect();
    Ok(Json(ProfileList { profiles }))
}

/// Routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(rcon))
        .routes(routes!(players))
        .routes(routes!(broadcast))
        .routes(routes!(profiles))
}
