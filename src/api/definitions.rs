//! Definitions as TOML for the dashboard's Export and Import, in the formats the CLI
//! applies: a program is a `[[program]]` table of a programs file (`warden apply`), a
//! schedule or job a file of its fields (`warden ctl schedule|job apply`), a channel a
//! file of its fields likewise. Export shows what `GET` shows (secrets masked); `check`
//! parses and validates without saving and answers the problems with stable codes and
//! their place in the text (200, so typing never logs a failed request); `import` saves
//! through the same services as the forms and the CLI.

use axum::extract::State;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::AppState;
use super::authn::Caller;
use super::error::{ApiError, ErrorBody, Json, Path};
use super::guard::Admin;
use super::programs::{ApplyResult, apply_programs};
use crate::access::Perm;
use crate::alerts::model::{ChannelSpec, MASK};
use crate::program::{FieldCode, FieldError, ProgramsFile};
use crate::schedule::spec::{JobSpec, ScheduleSpec};

/// Which kind of definition.
#[derive(Deserialize, Serialize, ToSchema, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "snake_case")]
pub enum DefinitionKind {
    /// A supervised program (`[[program]]` tables).
    Program,
    /// A schedule.
    Schedule,
    /// A batch job.
    Job,
    /// An alert channel.
    Channel,
}

/// One definition as TOML.
#[derive(Serialize, ToSchema)]
pub struct TomlExport {
    /// Its kind.
    pub kind: DefinitionKind,
    /// Its name.
    pub name: String,
    /// A file name to save it under, e.g. `survival.program.toml`.
    pub file_name: String,
    /// The TOML text, secrets masked as the API shows them.
    pub toml: String,
}

/// TOML to check or import.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TomlText {
    /// The file's text.
    pub toml: String,
}

/// One problem found in imported TOML.
#[derive(Serialize, ToSchema, Debug, PartialEq)]
pub struct TomlProblem {
    /// `toml_syntax`, `unknown_field`, `missing_field`, `invalid_value`, `masked_secret`,
    /// `empty`, or a validation problem about `field` with the code of `FieldError`
    /// (`required`, `too_long`…).
    pub code: String,
    /// The field concerned (dotted path, `programs[0].restart.policy`), or the key named
    /// by a parse error; empty when none.
    pub field: String,
    /// 1-based line of the text, when known.
    pub line: Option<usize>,
    /// 1-based column, when known.
    pub column: Option<usize>,
    /// The values a validation problem's sentence needs (see `FieldError.params`);
    /// empty for parse problems.
    #[schema(value_type = Object)]
    pub params: serde_json::Map<String, serde_json::Value>,
    /// The parser's or validator's own words.
    pub message: String,
}

/// What `check` found.
#[derive(Serialize, ToSchema)]
pub struct TomlCheck {
    /// Names of the definitions the text holds (when it parsed).
    pub names: Vec<String>,
    /// Problems; empty when the text can be imported.
    pub problems: Vec<TomlProblem>,
}

fn problem(code: &str, field: impl Into<String>, message: impl Into<String>) -> TomlProblem {
    TomlProblem {
        code: code.into(),
        field: field.into(),
        line: None,
        column: None,
        params: serde_json::Map::new(),
        message: message.into(),
    }
}

/// The text between the first pair of backticks of `msg`, as serde names keys.
fn quoted(msg: &str) -> String {
    msg.split('`').nth(1).unwrap_or_default().to_string()
}

/// A TOML error as a problem with its line and column.
fn parse_problem(text: &str, e: &toml::de::Error) -> TomlProblem {
    let msg = e.message().trim().to_string();
    let (code, field) = if msg.starts_with("unknown field") {
        ("unknown_field", quoted(&msg))
    } else if msg.starts_with("missing field") {
        ("missing_field", quoted(&msg))
    } else if msg.starts_with("invalid type")
        || msg.starts_with("invalid value")
        || msg.starts_with("unknown variant")
    {
        ("invalid_value", String::new())
    } else {
        ("toml_syntax", String::new())
    };
    let mut p = problem(code, field, msg);
    if let Some(span) = e.span() {
        let before = &text[..span.start.min(text.len())];
        p.line = Some(before.matches('\n').count() + 1);
        p.column = Some(before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1);
    }
    p
}

fn parse<T: DeserializeOwned>(text: &str) -> Result<T, Vec<TomlProblem>> {
    toml::from_str(text).map_err(|e| vec![parse_problem(text, &e)])
}

fn invalid(prefix: &str, errs: Vec<FieldError>) -> Vec<TomlProblem> {
    errs.into_iter()
        .map(|e| TomlProblem {
            params: e.params,
            ..problem(e.code.as_str(), format!("{prefix}{}", e.field), e.message)
        })
        .collect()
}

/// A definition parsed from TOML, not yet saved.
enum Parsed {
    Programs(Vec<crate::program::ProgramSpec>),
    Schedule(Box<ScheduleSpec>),
    Job(Box<JobSpec>),
    Channel(Box<ChannelSpec>),
}

/// Parses and validates what can be validated without saving; the problems otherwise.
fn read(kind: DefinitionKind, text: &str) -> Result<Parsed, Vec<TomlProblem>> {
    match kind {
        DefinitionKind::Program => {
            let file: ProgramsFile = parse(text)?;
            if file.program.is_empty() {
                return Err(vec![problem(
                    "empty",
                    "program",
                    "the file holds no [[program]] table",
                )]);
            }
            let mut problems = Vec::new();
            for (i, spec) in file.program.iter().enumerate() {
                problems.extend(invalid(&format!("programs[{i}]."), spec.validate()));
            }
            if problems.is_empty() {
                Ok(Parsed::Programs(file.program))
            } else {
                Err(problems)
            }
        }
        // Triggers, programs and jobs a schedule names are checked when it is saved.
        DefinitionKind::Schedule => Ok(Parsed::Schedule(Box::new(parse(text)?))),
        DefinitionKind::Job => {
            let job: JobSpec = parse(text)?;
            let errs = job.validate();
            if errs.is_empty() {
                Ok(Parsed::Job(Box::new(job)))
            } else {
                Err(invalid("", errs))
            }
        }
        DefinitionKind::Channel => {
            let ch: ChannelSpec = parse(text)?;
            let mut problems = invalid("", ch.validate());
            // An exported channel shows its URL and tokens masked; they must be typed.
            if let Ok(target) = serde_json::to_value(&ch.target)
                && let Some(obj) = target.as_object()
            {
                for (k, v) in obj {
                    let masked = match v {
                        serde_json::Value::String(s) => s.contains(MASK),
                        serde_json::Value::Object(m) => m
                            .values()
                            .any(|x| x.as_str().is_some_and(|s| s.contains(MASK))),
                        _ => false,
                    };
                    if masked {
                        problems.push(problem(
                            "masked_secret",
                            format!("target.{k}"),
                            format!("target.{k} is masked ({MASK}); write the real value"),
                        ));
                    }
                }
            }
            if problems.is_empty() {
                Ok(Parsed::Channel(Box::new(ch)))
            } else {
                Err(problems)
            }
        }
    }
}

impl Parsed {
    fn names(&self) -> Vec<String> {
        match self {
            Parsed::Programs(p) => p.iter().map(|s| s.name.clone()).collect(),
            Parsed::Schedule(s) => vec![s.name.clone()],
            Parsed::Job(j) => vec![j.name.clone()],
            Parsed::Channel(c) => vec![c.name.clone()],
        }
    }
}

fn to_toml<T: Serialize>(value: &T) -> Result<String, ApiError> {
    toml::to_string(value).map_err(|e| ApiError::internal(&e))
}

/// One definition as the TOML the CLI applies (secrets masked).
#[utoipa::path(get, path = "/api/definitions/{kind}/{name}/toml", tag = "definitions",
    params(("kind" = DefinitionKind, Path, description = "program, schedule, job or channel"),
        ("name" = String, Path, description = "definition name")),
    responses((status = 200, body = TomlExport), (status = 404, body = ErrorBody)))]
async fn export(
    State(app): State<AppState>,
    caller: Caller,
    Path((kind, name)): Path<(DefinitionKind, String)>,
) -> Result<Json<TomlExport>, ApiError> {
    let toml = match kind {
        DefinitionKind::Program => {
            app.allow(&caller, &name, Perm::View)?;
            let spec = app.sup.get(&name)?.snapshot().spec.masked();
            to_toml(&ProgramsFile {
                program: vec![spec],
            })?
        }
        DefinitionKind::Schedule => {
            caller.require_everywhere(Perm::View)?;
            to_toml(&app.sched.schedule(&name).await?.spec)?
        }
        DefinitionKind::Job => {
            caller.require_everywhere(Perm::View)?;
            to_toml(&app.sched.job(&name).await?.spec)?
        }
        DefinitionKind::Channel => {
            caller.require_everywhere(Perm::View)?;
            to_toml(&app.alerts.channel(&name)?.spec)?
        }
    };
    let noun = serde_json::to_value(kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    Ok(Json(TomlExport {
        kind,
        file_name: format!("{name}.{noun}.toml"),
        name,
        toml,
    }))
}

/// Parses and validates TOML of a definition without saving it; answers 200 with the
/// problems (none when it can be imported).
#[utoipa::path(post, path = "/api/definitions/{kind}/check", tag = "definitions", request_body = TomlText,
    params(("kind" = DefinitionKind, Path, description = "program, schedule, job or channel")),
    responses((status = 200, body = TomlCheck)))]
async fn check(
    _: Admin,
    Path(kind): Path<DefinitionKind>,
    Json(body): Json<TomlText>,
) -> Result<Json<TomlCheck>, ApiError> {
    Ok(Json(match read(kind, &body.toml) {
        Ok(parsed) => TomlCheck {
            names: parsed.names(),
            problems: Vec::new(),
        },
        Err(problems) => TomlCheck {
            names: Vec::new(),
            problems,
        },
    }))
}

/// Creates or updates the definitions in the TOML (admin), as `warden apply` and `warden
/// ctl schedule|job apply` do. 422 with the problems, each with its field.
#[utoipa::path(post, path = "/api/definitions/{kind}/import", tag = "definitions", request_body = TomlText,
    params(("kind" = DefinitionKind, Path, description = "program, schedule, job or channel")),
    responses((status = 200, body = ApplyResult), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn import(
    State(app): State<AppState>,
    Admin(caller): Admin,
    Path(kind): Path<DefinitionKind>,
    Json(body): Json<TomlText>,
) -> Result<Json<ApplyResult>, ApiError> {
    let parsed = read(kind, &body.toml).map_err(|problems| {
        ApiError::validation(
            problems
                .into_iter()
                .map(|p| {
                    let field = if p.field.is_empty() {
                        "toml".into()
                    } else {
                        p.field
                    };
                    match (FieldCode::parse(&p.code), p.code.as_str()) {
                        // A validation problem keeps its code and params.
                        (Some(code), _) => FieldError {
                            field,
                            code,
                            params: p.params,
                            message: p.message,
                        },
                        (None, "empty" | "missing_field") => FieldError::required(field),
                        (None, "masked_secret") => FieldError::invalid_secret(field, &p.message),
                        (None, _) => FieldError::unreadable(
                            field,
                            p.line.map(|l| l as u64),
                            p.column.map(|c| c as u64),
                            &p.message,
                        ),
                    }
                })
                .collect(),
        )
    })?;
    let mut result = ApplyResult::default();
    match parsed {
        Parsed::Programs(programs) => {
            return Ok(Json(apply_programs(&app, &caller, programs).await?));
        }
        Parsed::Schedule(spec) => {
            let name = spec.name.clone();
            if app.sched.schedule(&name).await.is_ok() {
                app.sched.update_schedule(*spec).await?;
                result.updated.push(name.clone());
            } else {
                app.sched.create_schedule(*spec).await?;
                result.created.push(name.clone());
            }
            app.audit(&caller, "schedule.import", &name, None).await;
        }
        Parsed::Job(spec) => {
            let name = spec.name.clone();
            if app.sched.job(&name).await.is_ok() {
                app.sched.update_job(*spec).await?;
                result.updated.push(name.clone());
            } else {
                app.sched.create_job(*spec).await?;
                result.created.push(name.clone());
            }
            app.audit(&caller, "job.import", &name, None).await;
        }
        Parsed::Channel(spec) => {
            let name = spec.name.clone();
            if app.alerts.channel(&name).is_ok() {
                app.alerts.update_channel(*spec).await?;
                result.updated.push(name.clone());
            } else {
                app.alerts.create_channel(*spec).await?;
                result.created.push(name.clone());
            }
            app.audit(&caller, "alerts.channel.import", &name, None)
                .await;
        }
    }
    Ok(Json(result))
}

/// Routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(export))
        .routes(routes!(check))
        .routes(routes!(import))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_errors_name_their_key_and_place() {
        let text = "[[program]]\nname = \"a\"\ncommand = \"sleep\"\ncolour = \"red\"\n";
        let Err(p) = read(DefinitionKind::Program, text) else {
            panic!("accepted an unknown key");
        };
        assert_eq!(p[0].code, "unknown_field", "{p:?}");
        assert_eq!(p[0].field, "colour", "{p:?}");
        assert_eq!(p[0].line, Some(4), "{p:?}");
        let Err(p) = read(DefinitionKind::Program, "[[program]\n") else {
            panic!("accepted broken TOML");
        };
        assert_eq!(
            (p[0].code.as_str(), p[0].line),
            ("toml_syntax", Some(1)),
            "{p:?}"
        );
        let Err(p) = read(DefinitionKind::Program, "") else {
            panic!("accepted an empty file");
        };
        assert_eq!(p[0].code, "empty");
    }

    #[test]
    fn an_exported_program_reads_back_the_same() {
        let spec: crate::program::ProgramSpec = serde_json::from_value(serde_json::json!({
            "name": "rt", "command": "sleep", "args": ["5"], "env": {"A": "1"},
            "restart": {"policy": "always"}, "tags": ["x"],
        }))
        .expect("spec");
        let text = toml::to_string(&ProgramsFile {
            program: vec![spec.clone()],
        })
        .expect("toml");
        let Ok(Parsed::Programs(back)) = read(DefinitionKind::Program, &text) else {
            panic!("the export does not read back:\n{text}");
        };
        assert_eq!(back, vec![spec]);
    }
}
