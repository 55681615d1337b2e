-- What warden meant a program to do, made durable before it acts, so that a warden
-- killed at any instant is completed by the next one: `want_running` (a start or restart
-- was under way or done), `generation` (the last generation handed to a spawn; every child
-- carries its generation in its environment), `stop_generation` (children up to this
-- generation were being stopped: a next warden finishes their stop instead of adopting them).
CREATE TABLE program_intent (
    name             TEXT PRIMARY KEY REFERENCES programs(name) ON DELETE CASCADE,
    want_running     INTEGER NOT NULL,
    generation       INTEGER NOT NULL,
    stop_generation  INTEGER NOT NULL
) STRICT;
