//! Shared world state (fake players, save counter, tick counter) and the files the server writes.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Version name shown by every protocol.
pub const VERSION_NAME: &str = "1.21";
/// Minecraft Java protocol number of 1.21, reported by Server List Ping.
pub const PROTOCOL_VERSION: i64 = 767;

/// One fake online player.
#[derive(Clone, Debug)]
pub struct Player {
    pub name: String,
    pub joined: Instant,
    pub score: i32,
}

impl Player {
    /// A stable, UUID-shaped id derived from the name, so every protocol shows the same id.
    pub fn uuid(&self) -> String {
        let a = hash64(1, &self.name);
        let b = hash64(2, &self.name);
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            ((b >> 48) & 0x3fff) | 0x8000,
            b & 0xffff_ffff_ffff
        )
    }
}

/// Why a `join` was refused.
pub enum JoinError {
    Full,
    AlreadyOnline,
}

struct State {
    players: Vec<Player>,
    saves: u64,
    autosave: bool,
    ticks: u64,
}

/// The world shared by the main loop and every listener task.
///
/// The mutable part sits behind a std `Mutex` that is only ever held for a few field
/// reads/writes and never across an `.await` (no method here is async, and file I/O in `save`
/// happens after the guard is dropped), so it can never block the runtime or deadlock.
pub struct World {
    pub name: String,
    pub max_players: usize,
    pub tps: u32,
    pub save_dir: PathBuf,
    pub started: Instant,
    state: Mutex<State>,
}

impl World {
    pub fn new(
        name: String,
        max_players: usize,
        tps: u32,
        save_dir: PathBuf,
        players: usize,
    ) -> World {
        let now = Instant::now();
        let players = (0..players.min(max_players))
            .map(|i| Player {
                name: default_player_name(i),
                joined: now,
                score: i32::try_from(i * 3).unwrap_or(0),
            })
            .collect();
        World {
            name,
            max_players,
            tps,
            save_dir,
            started: now,
            state: Mutex::new(State {
                players,
                saves: 0,
                autosave: true,
                ticks: 0,
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Poisoning only means another task panicked mid-update; the data is still usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A snapshot of the online players, in join order.
    pub fn players(&self) -> Vec<Player> {
        self.state().players.clone()
    }

    pub fn join(&self, name: &str) -> Result<(), JoinError> {
        let mut state = self.state();
        if state.players.iter().any(|p| p.name == name) {
            return Err(JoinError::AlreadyOnline);
        }
        if state.players.len() >= self.max_players {
            return Err(JoinError::Full);
        }
        state.players.push(Player {
            name: name.to_string(),
            joined: Instant::now(),
            score: 0,
        });
        Ok(())
    }

    /// Removes a player; false when nobody by that name is online.
    pub fn leave(&self, name: &str) -> bool {
        let mut state = self.state();
        let before = state.players.len();
        state.players.retain(|p| p.name != name);
        state.players.len() != before
    }

    pub fn set_autosave(&self, on: bool) {
        self.state().autosave = on;
    }

    pub fn autosave(&self) -> bool {
        self.state().autosave
    }

    /// Counts one game tick.
    pub fn tick(&self) {
        self.state().ticks += 1;
    }

    pub fn ticks(&self) -> u64 {
        self.state().ticks
    }

    /// Writes `saved` in the save dir (atomically) and returns the save number.
    pub fn save(&self) -> io::Result<u64> {
        let (count, players) = {
            let mut state = self.state();
            state.saves += 1;
            (state.saves, state.players.len())
        };
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let text = format!("save {count} at unix {unix}, {players} players online\n");
        write_atomic(&self.save_dir, "saved", text.as_bytes())?;
        Ok(count)
    }
}

/// Names of the players online at start: "Steve", "Alex", then "Player3", "Player4", ...
pub fn default_player_name(index: usize) -> String {
    match index {
        0 => "Steve".to_string(),
        1 => "Alex".to_string(),
        n => format!("Player{}", n + 1),
    }
}

/// Writes `dir/name` so readers see either the old or the new file, never a half-written one:
/// the bytes go to a unique temporary file in the same directory, which is then renamed over.
pub fn write_atomic(dir: &Path, name: &str, contents: &[u8]) -> io::Result<()> {
    // Unique per call, so concurrent saves (console + RCON + REST) never share a temp file.
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!(".{name}.{}.{seq}.tmp", std::process::id()));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(contents)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, dir.join(name))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// FNV-1a, salted: enough to derive stable fake ids and challenges without a RNG dependency.
pub fn hash64(salt: u64, text: &str) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325_u64 ^ salt.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}
