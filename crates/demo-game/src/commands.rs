//! The console command handler shared by stdin and RCON: same commands, same output text.

use crate::console;
use crate::world::{JoinError, World};

/// Largest `spam` count, so a typo cannot flood the log for minutes.
pub const MAX_SPAM: u64 = 100_000;
/// Largest `dump` size (1 MiB): plenty to exercise multi-packet RCON responses.
pub const MAX_DUMP: u64 = 1024 * 1024;

/// What the caller must do after replying, beyond showing the text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Graceful stop: save, then exit 0.
    Stop,
    /// Simulated crash: exit 1 at once.
    Crash,
}

/// A command's reply text (possibly empty) and the follow-up action, if any.
pub struct Outcome {
    pub text: String,
    pub action: Option<Action>,
}

impl Outcome {
    fn text(text: impl Into<String>) -> Outcome {
        Outcome {
            text: text.into(),
            action: None,
        }
    }
}

const HELP: &str = "--- Showing help ---
help - show this list
list - list online players
say <message> - broadcast a message
save-all - save the world now
save-off / save-on - disable / enable automatic saving
join <name> / leave <name> - add / remove a fake player
spam <n> - print n numbered lines
dump <bytes> - reply with exactly that many bytes of text
crash - crash the server (exit code 1)
stop - save and stop the server";

/// Runs one command line and logs its reply on the console; the caller sends the same text to
/// a remote client (RCON) and carries out the returned action.
pub fn run(world: &World, line: &str) -> Outcome {
    let outcome = execute(world, line);
    console::info(&outcome.text);
    outcome
}

fn execute(world: &World, line: &str) -> Outcome {
    // The Minecraft console accepts commands with or without the leading slash.
    let line = line.trim();
    let line = line.strip_prefix('/').unwrap_or(line);
    let (cmd, arg) = match line.split_once(char::is_whitespace) {
        Some((cmd, arg)) => (cmd, arg.trim()),
        None => (line, ""),
    };
    match cmd.to_ascii_lowercase().as_str() {
        "" => Outcome::text(""),
        "help" | "?" => Outcome::text(HELP),
        "list" => {
            let players = world.players();
            let names: Vec<&str> = players.iter().map(|p| p.name.as_str()).collect();
            Outcome::text(format!(
                "There are {} of a max of {} players online: {}",
                players.len(),
                world.max_players,
                names.join(", ")
            ))
        }
        "say" if arg.is_empty() => Outcome::text("Usage: say <message>"),
        "say" => Outcome::text(format!("[Server] {arg}")),
        "save-all" => match world.save() {
            Ok(_) => Outcome::text("Saving the game (this may take a moment!)\nSaved the game"),
            Err(e) => Outcome::text(format!("Saving failed: {e}")),
        },
        "save-off" => {
            world.set_autosave(false);
            Outcome::text("Automatic saving is now disabled")
        }
        "save-on" => {
            world.set_autosave(true);
            Outcome::text("Automatic saving is now enabled")
        }
        "join" if !valid_name(arg) => {
            Outcome::text("Usage: join <name> (1-16 letters, digits or _)")
        }
        "join" => match world.join(arg) {
            Ok(()) => Outcome::text(format!("{arg} joined the game")),
            Err(JoinError::Full) => Outcome::text(format!("{arg} could not join: server is full")),
            Err(JoinError::AlreadyOnline) => Outcome::text(format!("{arg} is already online")),
        },
        "leave" if world.leave(arg) => Outcome::text(format!("{arg} left the game")),
        "leave" => Outcome::text("No player was found"),
        "spam" => match arg.parse::<u64>() {
            Ok(n) => {
                let n = n.min(MAX_SPAM);
                let lines: Vec<String> = (1..=n).map(|i| format!("Spam line {i}/{n}")).collect();
                Outcome::text(lines.join("\n"))
            }
            Err(_) => Outcome::text("Usage: spam <n>"),
        },
        "dump" => match arg.parse::<u64>() {
            Ok(n) => Outcome::text(dump_text(n.min(MAX_DUMP))),
            Err(_) => Outcome::text("Usage: dump <bytes>"),
        },
        "crash" => Outcome {
            text: String::new(),
            action: Some(Action::Crash),
        },
        "stop" => Outcome {
            text: "Stopping the server".to_string(),
            action: Some(Action::Stop),
        },
        _ => Outcome::text("Unknown command. Type \"help\" for help."),
    }
}

/// Minecraft's rule for player names.
fn valid_name(name: &str) -> bool {
    (1..=16).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Exactly `len` bytes of ASCII: 63 letters then a newline, repeated, so the console log of a
/// dump stays readable and a client can check the byte count after reassembling packets.
fn dump_text(len: u64) -> String {
    (0..len)
        .map(|i| match i % 64 {
            63 => '\n',
            k => char::from(b'a' + (k % 26) as u8),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn world() -> World {
        World::new("t".into(), 3, 20, std::env::temp_dir(), 2)
    }

    #[test]
    fn list_join_leave() {
        let w = world();
        assert_eq!(
            execute(&w, "list").text,
            "There are 2 of a max of 3 players online: Steve, Alex"
        );
        assert_eq!(execute(&w, "/join Bob").text, "Bob joined the game");
        assert_eq!(execute(&w, "join Bob").text, "Bob is already online");
        assert!(execute(&w, "join Carl").text.contains("full"));
        assert_eq!(execute(&w, "leave Steve").text, "Steve left the game");
        assert_eq!(execute(&w, "leave Steve").text, "No player was found");
        assert!(execute(&w, "join bad name!").text.starts_with("Usage"));
    }

    #[test]
    fn dump_spam_and_unknown() {
        let w = world();
        assert_eq!(execute(&w, "dump 10000").text.len(), 10000);
        assert_eq!(execute(&w, "dump 99999999").text.len(), 1024 * 1024);
        assert!(execute(&w, "dump 500").text.is_ascii());
        assert_eq!(execute(&w, "spam 3").text.lines().count(), 3);
        assert_eq!(
            execute(&w, "frobnicate").text,
            "Unknown command. Type \"help\" for help."
        );
        assert_eq!(execute(&w, "stop").action, Some(Action::Stop));
        assert_eq!(execute(&w, "CRASH").action, Some(Action::Crash));
    }
}
